// SPDX-License-Identifier: GPL-2.0
/*
 * The nvidia-p2p provider: CUDA device memory pinned with the NVIDIA
 * driver's GPUDirect RDMA interface (nv-p2p.h). 64 KiB GPU pages; DMA
 * addresses per PCI device from nvidia_p2p_dma_map_pages(); a CPU mapping
 * of the pages' BAR1 addresses, write-combining or uncached (as GDRCopy
 * maps them); no kernel mapping, so no soft-RoCE.
 *
 * The nvidia_p2p_* symbols are looked up when used (symbol_get), never
 * linked: dmaplane.ko loads without nvidia.ko, and then this provider is
 * not ready and GPU_PIN says -EOPNOTSUPP. A pinned range holds the symbols,
 * so nvidia.ko stays while it lives.
 *
 * Pages are pinned with a free callback (never persistently): the driver
 * may take them back at any time (cudaFree, context teardown, reset) and
 * calls dmaplane_nv_free_callback() first. What the callback may do, from
 * nv-p2p.h and nv-p2p.c of the open kernel modules, nvidia-peermem, the
 * Mellanox peer-memory core and GDRCopy:
 *  - it runs in process context, inside the driver's free path, with the
 *    driver's resource-manager lock held; it may sleep, and it must be
 *    done with the pages when it returns: right after, the driver frees
 *    the page table, the DMA mappings still listed on it and the BAR1
 *    addresses (which may then expose someone else's memory);
 *  - it must not call nvidia_p2p_put_pages(), nvidia_p2p_get_pages() or
 *    nvidia_p2p_dma_map_pages() (they take that lock: deadlock); it
 *    releases with nvidia_p2p_free_dma_mapping() and
 *    nvidia_p2p_free_page_table() instead (no-ops in current drivers,
 *    which free after the callback, required by older ones);
 *  - a concurrent nvidia_p2p_put_pages() of the same table waits for the
 *    callback to return and then finds nothing (returns 0): the unpin path
 *    must not hold anything the callback waits for while it calls it.
 *
 * So the callback fences dmaplane synchronously: it marks the range
 * revoked (no new mapping), zaps every CPU mapping, and, holding a buffer
 * reference, calls dmaplane_gpu_revoke(), which fails the connections
 * using the range and unmaps its MRs (->unmap then only frees the DMA
 * mapping). Later use of the handle fails with -ENODEV; unpin skips
 * nvidia_p2p_put_pages() for pages the driver already took.
 *
 * CPU mappings are zapped through an address_space of the range's own:
 * ->mmap points the VMA at a per-range anonymous file whose f_mapping it
 * is, so unmap_mapping_range() reaches every VMA of the range, and only
 * those, without the mmap locks. A VMA whose ->mmap finished but which
 * mmap_region() has not linked yet would escape it: the callback waits
 * (bounded) for each address space that mapped the range to let go of its
 * mmap lock, which mmap_region() holds until the VMA is linked, and zaps
 * again.
 */
#include <linux/anon_inodes.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched/mm.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include <nv-p2p.h>

#include "dmaplane.h"
#include "gpu.h"

#define DMAPLANE_NV_PAGE	SZ_64K
#define DMAPLANE_NV_SHIFT	16
/* The longest DMA segment built: a GiB, like the kernel-mapping path. */
#define DMAPLANE_NV_SEG_MAX	SZ_1G
/* How long the callback waits for one address space's mmap lock. */
#define DMAPLANE_NV_MM_WAIT_MS	100

static_assert(DMAPLANE_NV_PAGE == 1UL << DMAPLANE_NV_SHIFT);
static_assert(PAGE_SIZE <= DMAPLANE_NV_PAGE);

/* fixtures/nvidia/nv-p2p.h only proves this compiles: never pin with it. */
#ifdef DMAPLANE_NV_P2P_FIXTURE
#define DMAPLANE_NV_USABLE	false
#else
#define DMAPLANE_NV_USABLE	true
#endif

/* The driver's entry points, each holding a reference on nvidia.ko. */
struct dmaplane_nv_syms {
	typeof(nvidia_p2p_get_pages) *get_pages;
	typeof(nvidia_p2p_put_pages) *put_pages;
	typeof(nvidia_p2p_dma_map_pages) *dma_map_pages;
	typeof(nvidia_p2p_dma_unmap_pages) *dma_unmap_pages;
	typeof(nvidia_p2p_free_page_table) *free_page_table;
	typeof(nvidia_p2p_free_dma_mapping) *free_dma_mapping;
};

/*
 * Where a range is. Only the free callback leaves PINNING or PINNED for
 * REVOKING/FREED; only pin (on failure) and unpin go to UNPINNED.
 */
enum dmaplane_nv_state {
	DMAPLANE_NV_PINNING,	/* nvidia_p2p_get_pages() ran, not checked yet */
	DMAPLANE_NV_PINNED,	/* usable */
	DMAPLANE_NV_REVOKING,	/* the callback is fencing dmaplane */
	DMAPLANE_NV_FREED,	/* the driver took the pages: @pt is gone */
	DMAPLANE_NV_UNPINNED,	/* unpin's: it gives @pt back */
};

/* One ->map: the driver's DMA mapping for one device, behind @sgt. */
struct dmaplane_nv_map {
	struct list_head node;
	struct sg_table *sgt;		/* the caller's, filled by ->map */
	struct pci_dev *pdev;
	struct nvidia_p2p_dma_mapping *dma;	/* NULL once released */
};

/* An address space that mapped the range (mmgrab'd). */
struct dmaplane_nv_mm {
	struct list_head node;
	struct mm_struct *mm;
};

/*
 * A pinned range (pin->priv).
 *
 * Lifetime: @ref is held by the pin (from ->pin to ->unpin), by a running
 * free callback and by the CPU mappings' file (@file, from the first mmap
 * until its last VMA is gone); the last one frees the range, drops the
 * driver's symbols and the module reference taken at ->pin.
 *
 * Locking: @lock guards @state, @pt, @pin, @maps, @mms and @file, and
 * ->mmap installs PTEs under it. It is held across
 * nvidia_p2p_dma_map_pages() and nvidia_p2p_dma_unmap_pages(), so the
 * callback, which takes it first, never returns (and lets the driver free
 * the page table) while one of them uses the table: the driver itself
 * does not fence them, and this is the serialisation the Mellanox
 * peer-memory core gives nvidia-peermem. dma_unmap_pages does not take
 * the driver's lock; dma_map_pages does, so a cudaFree of a range racing
 * its own first MR registration blocks both, as with nvidia-peermem (an
 * application freeing memory it is registering). @lock is never held
 * across nvidia_p2p_get_pages() or nvidia_p2p_put_pages(), which wait for
 * a running callback, nor across dmaplane_gpu_revoke() or
 * dmaplane_gpu_put() (they call ->unmap and ->unpin, which take it). The
 * callback takes buf->lock and endpoint locks only through
 * dmaplane_gpu_revoke(), never with @lock held.
 *
 * Callback against unpin: unpin sets UNPINNED under @lock and calls
 * nvidia_p2p_put_pages() unlocked; a callback that comes meanwhile sees
 * UNPINNED, frees the table and returns, and put_pages, which waited for
 * it, finds nothing. A callback that came first set REVOKING or FREED:
 * unpin does not call put_pages, and @ref keeps the range until the
 * callback is done with it. The callback takes its buffer reference under
 * @lock while PINNED, so the pin it revokes is alive; when the buffer is
 * already being released (no reference), unpin is coming, no DMA or CPU
 * mapping is left and there is nothing to fence.
 */
struct dmaplane_nv_range {
	struct kref ref;
	struct mutex lock;		/* see Locking above */
	enum dmaplane_nv_state state;
	struct dmaplane_gpu_range *pin;	/* NULL once unpinned */
	u64 va;
	u64 length;
	struct nvidia_p2p_page_table *pt;
	struct dmaplane_nv_syms nv;
	struct list_head maps;		/* struct dmaplane_nv_map */
	struct list_head mms;		/* struct dmaplane_nv_mm */
	struct file *file;		/* the CPU mappings' file */
	struct address_space mapping;	/* @file's f_mapping */
};

static void dmaplane_nv_syms_put(struct dmaplane_nv_syms *s)
{
	if (s->get_pages)
		symbol_put(nvidia_p2p_get_pages);
	if (s->put_pages)
		symbol_put(nvidia_p2p_put_pages);
	if (s->dma_map_pages)
		symbol_put(nvidia_p2p_dma_map_pages);
	if (s->dma_unmap_pages)
		symbol_put(nvidia_p2p_dma_unmap_pages);
	if (s->free_page_table)
		symbol_put(nvidia_p2p_free_page_table);
	if (s->free_dma_mapping)
		symbol_put(nvidia_p2p_free_dma_mapping);
	memset(s, 0, sizeof(*s));
}

/* All of the driver's entry points, or none (false: no nvidia.ko). */
static bool dmaplane_nv_syms_get(struct dmaplane_nv_syms *s)
{
	memset(s, 0, sizeof(*s));
	if (!DMAPLANE_NV_USABLE)
		return false;
	s->get_pages = symbol_get(nvidia_p2p_get_pages);
	s->put_pages = symbol_get(nvidia_p2p_put_pages);
	s->dma_map_pages = symbol_get(nvidia_p2p_dma_map_pages);
	s->dma_unmap_pages = symbol_get(nvidia_p2p_dma_unmap_pages);
	s->free_page_table = symbol_get(nvidia_p2p_free_page_table);
	s->free_dma_mapping = symbol_get(nvidia_p2p_free_dma_mapping);
	if (s->get_pages && s->put_pages && s->dma_map_pages &&
	    s->dma_unmap_pages && s->free_page_table && s->free_dma_mapping)
		return true;
	dmaplane_nv_syms_put(s);
	return false;
}

bool dmaplane_gpu_nvidia_ready(void)
{
	struct dmaplane_nv_syms s;

	if (!dmaplane_nv_syms_get(&s))
		return false;
	dmaplane_nv_syms_put(&s);
	return true;
}

/* The driver's -ENOTSUPP is kernel-internal: userspace gets -EOPNOTSUPP. */
static int dmaplane_nv_errno(int ret)
{
	return ret == -ENOTSUPP ? -EOPNOTSUPP : ret;
}

static void dmaplane_nv_release(struct kref *ref)
{
	struct dmaplane_nv_range *r = container_of(ref, struct dmaplane_nv_range,
						   ref);
	struct dmaplane_nv_map *m, *mtmp;
	struct dmaplane_nv_mm *mm, *mmtmp;

	/* ->unmap ran for every ->map before ->unpin: nothing is left. */
	list_for_each_entry_safe(m, mtmp, &r->maps, node) {
		WARN_ON_ONCE(m->dma);
		list_del(&m->node);
		kfree(m);
	}
	list_for_each_entry_safe(mm, mmtmp, &r->mms, node) {
		mmdrop(mm->mm);
		kfree(mm);
	}
	dmaplane_nv_syms_put(&r->nv);
	mutex_destroy(&r->lock);
	kfree(r);
	module_put(THIS_MODULE);
}

static void dmaplane_nv_put(struct dmaplane_nv_range *r)
{
	kref_put(&r->ref, dmaplane_nv_release);
}

/*
 * The page table nvidia_p2p_get_pages() gave for @length bytes: a layout
 * this file knows, 64 KiB pages, one per 64 KiB, at page-aligned BAR
 * addresses (they are mapped to userspace as they are).
 */
static int dmaplane_nv_check(const struct nvidia_p2p_page_table *pt,
			     u64 length)
{
	u32 i;

	if (!NVIDIA_P2P_PAGE_TABLE_VERSION_COMPATIBLE(pt))
		return -EOPNOTSUPP;
	if (pt->page_size != NVIDIA_P2P_PAGE_SIZE_64KB)
		return -EOPNOTSUPP;
	if (!pt->pages || pt->entries != length >> DMAPLANE_NV_SHIFT)
		return -EIO;
	for (i = 0; i < pt->entries; i++)
		if (!pt->pages[i] ||
		    !PAGE_ALIGNED(pt->pages[i]->physical_address))
			return -EIO;
	return 0;
}

/*
 * The free callback: the driver takes the pages back. Runs once, in
 * process context, may sleep; see the top of the file for what it may not
 * do, and struct dmaplane_nv_range for the locking.
 */
static void dmaplane_nv_free_callback(void *data);

static int dmaplane_nv_pin(struct dmaplane_gpu_range *pin)
{
	struct nvidia_p2p_page_table *pt;
	struct dmaplane_nv_range *r;
	int ret;

	/* One driver, CUDA's unified addresses: there is no device index. */
	if (pin->device)
		return -EINVAL;
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	if (!dmaplane_nv_syms_get(&r->nv)) {
		kfree(r);
		return -EOPNOTSUPP;
	}
	/* Held until the range is freed: the driver may call back into us. */
	__module_get(THIS_MODULE);
	kref_init(&r->ref);
	mutex_init(&r->lock);
	INIT_LIST_HEAD(&r->maps);
	INIT_LIST_HEAD(&r->mms);
	address_space_init_once(&r->mapping);
	r->state = DMAPLANE_NV_PINNING;
	r->pin = pin;
	r->va = pin->addr;
	r->length = pin->length;

	/* Unlocked: the callback may run (and take @lock) before it returns. */
	ret = r->nv.get_pages(0, 0, pin->addr, pin->length, &r->pt,
			      dmaplane_nv_free_callback, r);
	if (ret) {
		r->pt = NULL;		/* not ours, whatever it says */
		r->state = DMAPLANE_NV_UNPINNED;
		dmaplane_nv_put(r);
		return dmaplane_nv_errno(ret);
	}

	mutex_lock(&r->lock);
	if (r->state != DMAPLANE_NV_PINNING) {
		/* Freed before we looked: nothing to give back. */
		mutex_unlock(&r->lock);
		dmaplane_nv_put(r);
		return -ENODEV;
	}
	ret = dmaplane_nv_check(r->pt, pin->length);
	if (ret) {
		r->state = DMAPLANE_NV_UNPINNED;
		pt = r->pt;
		mutex_unlock(&r->lock);
		r->nv.put_pages(0, 0, r->va, pt);
		dmaplane_nv_put(r);
		return ret;
	}
	r->state = DMAPLANE_NV_PINNED;
	pin->priv = r;
	mutex_unlock(&r->lock);
	return 0;
}

/* Give one DMA mapping back; @lock held, @pt still valid. */
static void dmaplane_nv_map_release(struct dmaplane_nv_range *r,
				    struct dmaplane_nv_map *m)
{
	if (!m->dma)
		return;
	if (r->state == DMAPLANE_NV_PINNED || r->state == DMAPLANE_NV_UNPINNED)
		r->nv.dma_unmap_pages(m->pdev, r->pt, m->dma);
	else
		/* The driver takes the pages back: free, do not unmap. */
		r->nv.free_dma_mapping(m->dma);
	m->dma = NULL;
}

static void dmaplane_nv_unpin(struct dmaplane_gpu_range *pin)
{
	struct dmaplane_nv_range *r = pin->priv;
	struct nvidia_p2p_page_table *pt = NULL;
	struct dmaplane_nv_map *m;
	struct file *file;
	int ret;

	mutex_lock(&r->lock);
	if (r->state == DMAPLANE_NV_PINNED) {
		r->state = DMAPLANE_NV_UNPINNED;
		pt = r->pt;
		list_for_each_entry(m, &r->maps, node) {
			WARN_ON_ONCE(m->dma);
			dmaplane_nv_map_release(r, m);
		}
	}
	r->pin = NULL;
	file = r->file;
	r->file = NULL;
	mutex_unlock(&r->lock);

	/* Waits for a callback in flight, which then leaves @pt to us. */
	if (pt) {
		ret = r->nv.put_pages(0, 0, r->va, pt);
		if (ret)
			pr_debug("dmaplane: nvidia_p2p_put_pages: %d\n", ret);
	}
	if (file)
		fput(file);
	dmaplane_nv_put(r);
}

/* The bus address of byte @pos of the range in @dma. */
static u64 dmaplane_nv_dma_addr(const struct nvidia_p2p_dma_mapping *dma,
				u64 pos)
{
	return dma->dma_addresses[pos >> DMAPLANE_NV_SHIFT] +
	       (pos & (DMAPLANE_NV_PAGE - 1));
}

/*
 * Walk [@offset, + @len) of the range in bus-contiguous segments of at
 * most @max bytes (a multiple of PAGE_SIZE); fill @sg's entries when it is
 * given. The number of segments.
 */
static unsigned int dmaplane_nv_segments(const struct nvidia_p2p_dma_mapping *dma,
					 u64 offset, u64 len, u64 max,
					 struct scatterlist *sg)
{
	u64 pos = offset, end = offset + len;
	unsigned int n = 0;

	while (pos < end) {
		u64 start = dmaplane_nv_dma_addr(dma, pos);
		u64 seg = min_t(u64, PAGE_SIZE, end - pos);

		while (pos + seg < end && seg + PAGE_SIZE <= max &&
		       dmaplane_nv_dma_addr(dma, pos + seg) == start + seg)
			seg += min_t(u64, PAGE_SIZE, end - pos - seg);
		if (sg) {
			sg_dma_address(sg) = start;
			sg_dma_len(sg) = seg;
			sg = sg_next(sg);
		}
		n++;
		pos += seg;
	}
	return n;
}

static int dmaplane_nv_fill(const struct nvidia_p2p_dma_mapping *dma,
			    struct device *dev, u64 offset, u64 len,
			    struct sg_table *sgt)
{
	u64 max = min_t(u64, dma_get_max_seg_size(dev), DMAPLANE_NV_SEG_MAX);
	unsigned int n;
	int ret;

	max = max_t(u64, max & PAGE_MASK, PAGE_SIZE);
	n = dmaplane_nv_segments(dma, offset, len, max, NULL);
	ret = sg_alloc_table(sgt, n, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	dmaplane_nv_segments(dma, offset, len, max, sgt->sgl);
	sgt->nents = sgt->orig_nents;
	return 0;
}

/*
 * [@offset, + @len) for @dev, a PCI device: nvidia_p2p_dma_map_pages()
 * maps the whole range for it (through its IOMMU, if any); @sgt gets the
 * window's bus-contiguous pieces.
 */
static int dmaplane_nv_map(struct dmaplane_gpu_range *pin, struct device *dev,
			   u64 offset, u64 len, struct sg_table *sgt)
{
	struct dmaplane_nv_range *r = pin->priv;
	struct nvidia_p2p_dma_mapping *dma;
	struct dmaplane_nv_map *m;
	struct pci_dev *pdev;
	int ret;

	if (!dev_is_pci(dev))
		return -EOPNOTSUPP;
	pdev = to_pci_dev(dev);
	if (!len || !PAGE_ALIGNED(offset) || offset >= r->length ||
	    len > r->length - offset)
		return -EINVAL;
	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;

	mutex_lock(&r->lock);
	if (r->state != DMAPLANE_NV_PINNED) {
		ret = -ENODEV;
		goto err_unlock;
	}
	ret = r->nv.dma_map_pages(pdev, r->pt, &dma);
	if (ret) {
		ret = dmaplane_nv_errno(ret);
		goto err_unlock;
	}
	if (!NVIDIA_P2P_DMA_MAPPING_VERSION_COMPATIBLE(dma) ||
	    dma->page_size_type != NVIDIA_P2P_PAGE_SIZE_64KB ||
	    dma->entries != r->pt->entries) {
		ret = -EOPNOTSUPP;
		goto err_unmap;
	}
	ret = dmaplane_nv_fill(dma, dev, offset, len, sgt);
	if (ret)
		goto err_unmap;
	m->sgt = sgt;
	m->pdev = pdev;
	m->dma = dma;
	list_add_tail(&m->node, &r->maps);
	mutex_unlock(&r->lock);
	return 0;

err_unmap:
	r->nv.dma_unmap_pages(pdev, r->pt, dma);
err_unlock:
	mutex_unlock(&r->lock);
	kfree(m);
	return ret;
}

static void dmaplane_nv_unmap(struct dmaplane_gpu_range *pin,
			      struct device *dev, struct sg_table *sgt)
{
	struct dmaplane_nv_range *r = pin->priv;
	struct dmaplane_nv_map *m, *found = NULL;

	mutex_lock(&r->lock);
	list_for_each_entry(m, &r->maps, node) {
		if (m->sgt == sgt) {
			found = m;
			break;
		}
	}
	if (found) {
		/* After the callback the driver freed it: m->dma is NULL. */
		dmaplane_nv_map_release(r, found);
		list_del(&found->node);
	}
	mutex_unlock(&r->lock);
	WARN_ON_ONCE(!found);
	kfree(found);
	sg_free_table(sgt);
}

static int dmaplane_nv_file_release(struct inode *inode, struct file *file)
{
	dmaplane_nv_put(file->private_data);
	return 0;
}

/* Only ever a VMA's vm_file: nothing can open, read or map it. */
static const struct file_operations dmaplane_nv_fops = {
	.owner = THIS_MODULE,
	.release = dmaplane_nv_file_release,
};

/* The CPU mappings' file, made at the first mmap; @lock held. */
static int dmaplane_nv_mapping_file(struct dmaplane_nv_range *r)
{
	struct file *file;

	if (r->file)
		return 0;
	file = anon_inode_getfile("[dmaplane-gpu]", &dmaplane_nv_fops, r,
				  O_RDWR);
	if (IS_ERR(file))
		return PTR_ERR(file);
	kref_get(&r->ref);		/* the file's, put by its release */
	r->mapping.host = file_inode(file);
	r->mapping.a_ops = file_inode(file)->i_mapping->a_ops;
	file->f_mapping = &r->mapping;
	r->file = file;
	return 0;
}

/* Remember @mm (once) for the callback's wait; @lock held. */
static int dmaplane_nv_track_mm(struct dmaplane_nv_range *r,
				struct mm_struct *mm)
{
	struct dmaplane_nv_mm *m;

	list_for_each_entry(m, &r->mms, node)
		if (m->mm == mm)
			return 0;
	m = kmalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;
	mmgrab(mm);
	m->mm = mm;
	list_add_tail(&m->node, &r->mms);
	return 0;
}

/* The BAR1 address of byte @pos of the range; @lock held, PINNED. */
static phys_addr_t dmaplane_nv_phys(const struct dmaplane_nv_range *r, u64 pos)
{
	return r->pt->pages[pos >> DMAPLANE_NV_SHIFT]->physical_address +
	       (pos & (DMAPLANE_NV_PAGE - 1));
}

/*
 * Map pages [vm_pgoff, + vma_pages) of the range, each physically
 * contiguous run with one io_remap_pfn_range(). A range contiguous across
 * the whole VMA (the usual case) is mapped in one call, which is what
 * gets it the asked-for memory type under x86 PAT; a VMA split over
 * several runs gets the type PAT already records for the BAR.
 */
static int dmaplane_nv_remap(const struct dmaplane_nv_range *r,
			     struct vm_area_struct *vma, pgprot_t prot)
{
	u64 pos = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 end = pos + (vma->vm_end - vma->vm_start);
	unsigned long addr = vma->vm_start;
	int ret;

	while (pos < end) {
		phys_addr_t start = dmaplane_nv_phys(r, pos);
		u64 run = PAGE_SIZE;

		while (pos + run < end &&
		       dmaplane_nv_phys(r, pos + run) == start + run)
			run += PAGE_SIZE;
		ret = io_remap_pfn_range(vma, addr, PHYS_PFN(start), run, prot);
		if (ret)
			return ret;
		addr += run;
		pos += run;
	}
	return 0;
}

static int dmaplane_nv_mmap(struct dmaplane_gpu_range *pin,
			    struct vm_area_struct *vma)
{
	struct dmaplane_nv_range *r = pin->priv;
	pgprot_t prot = pin->flags & DMAPLANE_GPU_PIN_UNCACHED ?
			pgprot_noncached(vma->vm_page_prot) :
			pgprot_writecombine(vma->vm_page_prot);
	int ret;

	mutex_lock(&r->lock);
	if (r->state != DMAPLANE_NV_PINNED) {
		ret = -ENODEV;
		goto out;
	}
	ret = dmaplane_nv_mapping_file(r);
	if (!ret)
		ret = dmaplane_nv_track_mm(r, vma->vm_mm);
	if (!ret)
		ret = dmaplane_nv_remap(r, vma, prot);
	/* From here the VMA is in @mapping: the callback can zap it. */
	if (!ret)
		vma_set_file(vma, r->file);
out:
	mutex_unlock(&r->lock);
	return ret;
}

/*
 * Zap every CPU mapping of the range (no new ones: REVOKING). A VMA
 * mmap_region() has not linked into @mapping yet is linked before its
 * address space's mmap lock is released: wait for each address space
 * that mapped the range to have it free once, then zap again. Bounded:
 * a lock held that long belongs to someone else (ours is held only
 * between ->mmap and the link, and the driver's lock, which the caller
 * holds, is not needed there), and then our VMA is linked already.
 */
static void dmaplane_nv_zap(struct dmaplane_nv_range *r)
{
	struct dmaplane_nv_mm *m;
	unsigned int waited;

	unmap_mapping_range(&r->mapping, 0, 0, 1);
	/* Only ->mmap adds to @mms, under @lock, and only while PINNED. */
	list_for_each_entry(m, &r->mms, node) {
		for (waited = 0; waited < DMAPLANE_NV_MM_WAIT_MS; waited++) {
			if (mmap_read_trylock(m->mm)) {
				mmap_read_unlock(m->mm);
				break;
			}
			usleep_range(1000, 2000);
		}
	}
	unmap_mapping_range(&r->mapping, 0, 0, 1);
}

static void dmaplane_nv_free_callback(void *data)
{
	struct dmaplane_nv_range *r = data;
	struct dmaplane_gpu_range *pin = NULL;
	struct dmaplane_nv_map *m;

	/* Live: pin and unpin put their reference only after this returns. */
	kref_get(&r->ref);
	mutex_lock(&r->lock);
	switch (r->state) {
	case DMAPLANE_NV_PINNED:
		if (dmaplane_gpu_get(r->pin))
			pin = r->pin;
		r->state = DMAPLANE_NV_REVOKING;
		mutex_unlock(&r->lock);
		/* No reference: the buffer is going, nothing maps it. */
		if (pin) {
			dmaplane_nv_zap(r);
			dmaplane_gpu_revoke(pin);
		}
		mutex_lock(&r->lock);
		break;
	case DMAPLANE_NV_PINNING:	/* pin sees FREED and fails */
	case DMAPLANE_NV_UNPINNED:	/* put_pages waits for us */
		break;
	default:
		WARN_ONCE(1, "dmaplane: nvidia free callback in state %d\n",
			  r->state);
		mutex_unlock(&r->lock);
		dmaplane_nv_put(r);
		return;
	}
	/* What no ->unmap released yet (none, normally), then the table. */
	list_for_each_entry(m, &r->maps, node)
		dmaplane_nv_map_release(r, m);
	if (r->pt)
		r->nv.free_page_table(r->pt);
	r->pt = NULL;
	if (r->state != DMAPLANE_NV_UNPINNED)
		r->state = DMAPLANE_NV_FREED;
	mutex_unlock(&r->lock);
	/* May be the last buffer reference: ->unpin runs here, finds FREED. */
	if (pin)
		dmaplane_gpu_put(pin);
	dmaplane_nv_put(r);
}

const struct dmaplane_gpu_ops dmaplane_gpu_nvidia_ops = {
	.provider = DMAPLANE_GPU_NVIDIA_P2P,
	.page_size = DMAPLANE_NV_PAGE,
	.pin = dmaplane_nv_pin,
	.unpin = dmaplane_nv_unpin,
	.map = dmaplane_nv_map,
	.unmap = dmaplane_nv_unmap,
	.kva = NULL,		/* BAR1 only: no kernel mapping, no soft-RoCE */
	.mmap = dmaplane_nv_mmap,
};
