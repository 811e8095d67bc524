// SPDX-License-Identifier: GPL-2.0
/*
 * mmap of buffers. The offset names the buffer (handle << DMAPLANE_MMAP_SHIFT)
 * plus a page-aligned offset inside it; any window inside the buffer may be
 * mapped, shared only, never executable, not inherited across fork and not
 * growable (VM_DONTCOPY | VM_DONTEXPAND).
 *
 * Every VMA holds a buffer reference and counts in buf->mappings (which
 * makes BUFFER_DESTROY return -EBUSY). The module's own pages (PAGES, HUGE)
 * are faulted in as ordinary pages, so get_user_pages() works on them;
 * COHERENT memory goes through dma_mmap_coherent() and pinned USER pages,
 * which belong to another mapping, are mapped by PFN, as is GPU memory (by
 * its provider). An IMPORT is mapped by its exporter (dma_buf_mmap), with
 * the same flags: that VMA holds the dma-buf, not us.
 */
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

#define DMAPLANE_MMAP_PGSHIFT	(DMAPLANE_MMAP_SHIFT - PAGE_SHIFT)

/*
 * Decode a VMA's page offset @pgoff and length @npages into the buffer
 * handle and the first page inside it. The window's end is checked against
 * the buffer later; here only that it cannot wrap the in-buffer offset.
 */
VISIBLE_IF_KUNIT int dmaplane_mmap_window(unsigned long pgoff,
					  unsigned long npages, u32 *handle,
					  unsigned long *first)
{
	unsigned long h = pgoff >> DMAPLANE_MMAP_PGSHIFT;

	if (!h || h > U32_MAX)
		return -EINVAL;
	*handle = h;
	*first = pgoff & ((1UL << DMAPLANE_MMAP_PGSHIFT) - 1);
	return npages > (1UL << DMAPLANE_MMAP_PGSHIFT) - *first ? -EINVAL : 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_mmap_window);

static void dmaplane_vma_open(struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = vma->vm_private_data;

	kref_get(&buf->obj.ref);
	atomic_inc(&buf->mappings);
	atomic_inc(&dmaplane_stats.mappings);
}

static void dmaplane_vma_close(struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = vma->vm_private_data;

	atomic_dec(&dmaplane_stats.mappings);
	atomic_dec(&buf->mappings);
	dmaplane_buffer_put(buf);
}

/* PAGES and HUGE: the buffer's own order-0 pages, refcounted per PTE. */
static vm_fault_t dmaplane_vma_fault(struct vm_fault *vmf)
{
	struct dmaplane_buffer *buf = vmf->vma->vm_private_data;

	if (vmf->pgoff >= buf->nr_pages)
		return VM_FAULT_SIGBUS;
	vmf->page = buf->pages[vmf->pgoff];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct dmaplane_page_vm_ops = {
	.open = dmaplane_vma_open,
	.close = dmaplane_vma_close,
	.fault = dmaplane_vma_fault,
};

/* COHERENT and USER: every PTE is set up front; a missing one is SIGBUS. */
static const struct vm_operations_struct dmaplane_pfn_vm_ops = {
	.open = dmaplane_vma_open,
	.close = dmaplane_vma_close,
};

/* USER: PFN ranges over the pinned pages, one per contiguous run. */
static int dmaplane_mmap_pinned(struct dmaplane_buffer *buf,
				struct vm_area_struct *vma)
{
	unsigned long first = vma->vm_pgoff, n = vma_pages(vma);
	unsigned long i, run, addr = vma->vm_start;
	int ret;

	for (i = first; i < first + n; i += run) {
		unsigned long pfn = page_to_pfn(buf->pages[i]);

		for (run = 1; i + run < first + n &&
		     page_to_pfn(buf->pages[i + run]) == pfn + run; run++)
			;
		ret = remap_pfn_range(vma, addr, pfn, run << PAGE_SHIFT,
				      vma->vm_page_prot);
		if (ret)
			return ret;
		addr += run << PAGE_SHIFT;
	}
	return 0;
}

/* The rules every dmaplane mapping follows, also through a dma-buf fd. */
int dmaplane_vma_check(struct vm_area_struct *vma)
{
	/* VM_MAYSHARE: a read-only file's shared mapping has no VM_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	return 0;
}

/*
 * What every mapping made through the device is, an import's (which its
 * exporter then sets up) included: not inherited, not growable, not
 * dumped, never executable.
 */
void dmaplane_vma_restrict(struct vm_area_struct *vma)
{
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_flags &= ~VM_MAYEXEC;
}

/*
 * Map pages [vm_pgoff, vm_pgoff + vma_pages) of @buf, checked by the
 * caller, into @vma, which takes a buffer reference of its own.
 */
int dmaplane_buffer_mmap(struct dmaplane_buffer *buf,
			 struct vm_area_struct *vma)
{
	int ret;

	dmaplane_vma_restrict(vma);
	vma->vm_ops = &dmaplane_pfn_vm_ops;
	switch (buf->kind) {
	case DMAPLANE_KIND_COHERENT:
		ret = dma_mmap_coherent(buf->dma_dev, vma, buf->cpu_addr,
					buf->dma_addr, buf->size);
		break;
	case DMAPLANE_KIND_USER:
		ret = dmaplane_mmap_pinned(buf, vma);
		break;
	case DMAPLANE_KIND_GPU:
		ret = dmaplane_gpu_mmap(buf, vma);
		break;
	default:
		vma->vm_ops = &dmaplane_page_vm_ops;
		ret = 0;
		break;
	}
	if (ret)
		return ret;
	kref_get(&buf->obj.ref);
	vma->vm_private_data = buf;
	atomic_inc(&buf->mappings);
	atomic_inc(&dmaplane_stats.mappings);
	return 0;
}

int dmaplane_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct dmaplane_ctx *ctx = file->private_data;
	struct dmaplane_buffer *buf;
	unsigned long first;
	u32 handle;
	int ret;

	ret = dmaplane_vma_check(vma);
	if (ret)
		return ret;
	ret = dmaplane_mmap_window(vma->vm_pgoff, vma_pages(vma), &handle,
				   &first);
	if (ret)
		return ret;
	buf = dmaplane_buffer_lookup(ctx, handle);
	if (!buf)
		return -ENOENT;
	if (first >= buf->nr_pages || vma_pages(vma) > buf->nr_pages - first) {
		ret = -EINVAL;
	} else {
		/* From here on the VMA's offset is the page index in the buffer. */
		vma->vm_pgoff = first;
		ret = buf->kind == DMAPLANE_KIND_IMPORT ?
		      dmaplane_import_mmap(buf, vma) :
		      dmaplane_buffer_mmap(buf, vma);
	}
	dmaplane_buffer_put(buf);
	return ret;
}
