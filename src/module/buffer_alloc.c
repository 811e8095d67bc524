// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer backings: order-0 pages, 2 MiB chunks, coherent DMA memory and
 * pinned user pages. Each fills buf->pages (every PAGE_SIZE page, in order)
 * and, for COHERENT, the allocation itself; buffer.c builds and maps the
 * scatterlist. dmaplane_free_backing() undoes any of them, also half done.
 */
#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

#define DMAPLANE_HUGE_PAGES	BIT(DMAPLANE_HUGE_ORDER)

/* Zeroed: the pages are mmapped to userspace. Charged to the caller's memcg. */
#define DMAPLANE_GFP	(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | __GFP_NOWARN)

static int dmaplane_alloc_page_array(struct dmaplane_buffer *buf)
{
	buf->pages = kvcalloc(buf->nr_pages, sizeof(*buf->pages),
			      GFP_KERNEL_ACCOUNT);
	return buf->pages ? 0 : -ENOMEM;
}

/*
 * Fill @pages[0..@n) with order-0 pages from @nid. On failure the array
 * holds what was allocated up to the first NULL: dmaplane_free_node_pages()
 * releases exactly that.
 */
int dmaplane_alloc_node_pages(struct page **pages, unsigned long n, int nid,
			      gfp_t gfp)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		pages[i] = alloc_pages_node(nid, gfp, 0);
		if (!pages[i])
			return -ENOMEM;
		cond_resched();
	}
	return 0;
}

void dmaplane_free_node_pages(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n && pages[i]; i++)
		__free_page(pages[i]);
}

/* Fill buf->pages[first..first+n) with order-0 pages. */
static int dmaplane_fill_pages(struct dmaplane_buffer *buf, unsigned long first,
			       unsigned long n, gfp_t node_gfp)
{
	return dmaplane_alloc_node_pages(buf->pages + first, n, buf->nid,
					 DMAPLANE_GFP | __GFP_RETRY_MAYFAIL |
					 node_gfp);
}

int dmaplane_alloc_pages(struct dmaplane_buffer *buf, gfp_t node_gfp)
{
	int ret = dmaplane_alloc_page_array(buf);

	return ret ? ret : dmaplane_fill_pages(buf, 0, buf->nr_pages, node_gfp);
}

/*
 * 2 MiB chunks, each split into order-0 pages so that every page can be
 * mapped and freed on its own while the chunk stays physically contiguous
 * for DMA. A chunk the allocator cannot give (quickly) becomes 512 order-0
 * pages: the buffer still works, with more DMA segments.
 */
int dmaplane_alloc_huge(struct dmaplane_buffer *buf, gfp_t node_gfp)
{
	unsigned long i, j;
	struct page *chunk;
	int ret;

	ret = dmaplane_alloc_page_array(buf);
	if (ret)
		return ret;
	buf->huge_map = bitmap_zalloc(buf->nr_pages / DMAPLANE_HUGE_PAGES,
				      GFP_KERNEL_ACCOUNT);
	if (!buf->huge_map)
		return -ENOMEM;
	for (i = 0; i < buf->nr_pages; i += DMAPLANE_HUGE_PAGES) {
		if (fatal_signal_pending(current))
			return -EINTR;
		chunk = alloc_pages_node(buf->nid, DMAPLANE_GFP |
					 __GFP_NORETRY | node_gfp,
					 DMAPLANE_HUGE_ORDER);
		if (!chunk) {
			ret = dmaplane_fill_pages(buf, i, DMAPLANE_HUGE_PAGES,
						  node_gfp);
			if (ret)
				return ret;
			buf->result_flags |= DMAPLANE_BUF_RES_HUGE_PARTIAL;
			atomic64_inc(&dmaplane_stats.huge_fallback_chunks);
			continue;
		}
		split_page(chunk, DMAPLANE_HUGE_ORDER);
		for (j = 0; j < DMAPLANE_HUGE_PAGES; j++)
			buf->pages[i + j] = nth_page(chunk, j);
		set_bit(i / DMAPLANE_HUGE_PAGES, buf->huge_map);
		buf->huge_chunks++;
		atomic64_inc(&dmaplane_stats.huge_chunks);
		cond_resched();
	}
	return 0;
}

/*
 * The scatterlist of a HUGE buffer straight from its chunks: one entry per
 * 2 MiB chunk, without walking its 512 pages; a chunk that fell back to
 * 4 KiB pages gets an entry per page.
 */
int dmaplane_huge_sgt(struct dmaplane_buffer *buf, struct sg_table *sgt)
{
	unsigned long chunks = buf->nr_pages / DMAPLANE_HUGE_PAGES;
	unsigned long c, j, nents;
	struct scatterlist *sg;
	struct page **p;
	int ret;

	nents = buf->huge_chunks + (chunks - buf->huge_chunks) *
		DMAPLANE_HUGE_PAGES;
	ret = sg_alloc_table(sgt, nents, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	sg = sgt->sgl;
	for (c = 0; c < chunks; c++) {
		p = buf->pages + c * DMAPLANE_HUGE_PAGES;
		if (test_bit(c, buf->huge_map)) {
			sg_set_page(sg, p[0], PAGE_SIZE << DMAPLANE_HUGE_ORDER,
				    0);
			sg = sg_next(sg);
			continue;
		}
		for (j = 0; j < DMAPLANE_HUGE_PAGES; j++) {
			sg_set_page(sg, p[j], PAGE_SIZE, 0);
			sg = sg_next(sg);
		}
	}
	return 0;
}

int dmaplane_alloc_coherent(struct dmaplane_buffer *buf, gfp_t node_gfp)
{
	struct page *first;
	unsigned long i;
	int ret;

	ret = dmaplane_alloc_page_array(buf);
	if (ret)
		return ret;
	buf->cpu_addr = dma_alloc_coherent(buf->dma_dev, buf->size,
					   &buf->dma_addr,
					   GFP_KERNEL | __GFP_NOWARN | node_gfp);
	if (!buf->cpu_addr)
		return -ENOMEM;
	/* The allocator's own view of the pages, whatever its mapping. */
	ret = dma_get_sgtable(buf->dma_dev, &buf->sgt, buf->cpu_addr,
			      buf->dma_addr, buf->size);
	if (ret)
		return ret;
	first = sg_page(buf->sgt.sgl);
	for (i = 0; i < buf->nr_pages; i++)
		buf->pages[i] = nth_page(first, i);
	return 0;
}

/*
 * Add @npages to *@pinned unless that passes @limit (pages) for a caller
 * without @unlimited (CAP_IPC_LOCK): -ENOMEM, as mlock(2) and RDMA memory
 * registration say for RLIMIT_MEMLOCK.
 */
VISIBLE_IF_KUNIT int dmaplane_pin_charge(atomic64_t *pinned, u64 npages,
					 u64 limit, bool unlimited)
{
	u64 now = atomic64_add_return(npages, pinned);

	if (!unlimited && (now > limit || now < npages)) {
		atomic64_sub(npages, pinned);
		return -ENOMEM;
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_pin_charge);

int dmaplane_pin_user(struct dmaplane_buffer *buf, u64 user_addr)
{
	const unsigned int gup = FOLL_WRITE | FOLL_LONGTERM;
	const unsigned long batch = PAGE_SIZE / sizeof(struct page *);
	struct mm_struct *mm = current->mm;
	unsigned long done = 0;
	int ret, n;

	ret = dmaplane_alloc_page_array(buf);
	if (ret)
		return ret;
	ret = dmaplane_pin_charge(&mm->pinned_vm, buf->nr_pages,
				  rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT,
				  capable(CAP_IPC_LOCK));
	if (ret) {
		atomic64_inc(&dmaplane_stats.memlock_denied);
		return ret;
	}
	mmgrab(mm);
	buf->pin_mm = mm;

	while (done < buf->nr_pages) {
		if (fatal_signal_pending(current))
			return -EINTR;
		n = pin_user_pages_fast(user_addr + done * PAGE_SIZE,
					min(buf->nr_pages - done, batch), gup,
					buf->pages + done);
		if (n <= 0)
			return n ? n : -EFAULT;
		done += n;
		atomic64_add(n, &dmaplane_stats.pinned_pages);
		cond_resched();
	}
	return 0;
}

static unsigned long dmaplane_pages_held(struct dmaplane_buffer *buf)
{
	unsigned long n = 0;

	while (n < buf->nr_pages && buf->pages[n])
		n++;
	return n;
}

void dmaplane_free_backing(struct dmaplane_buffer *buf)
{
	unsigned long held;

	if (!buf->pages)
		return;
	switch (buf->kind) {
	case DMAPLANE_KIND_COHERENT:
		sg_free_table(&buf->sgt);
		if (buf->cpu_addr)
			dma_free_coherent(buf->dma_dev, buf->size, buf->cpu_addr,
					  buf->dma_addr);
		break;
	case DMAPLANE_KIND_USER:
		held = dmaplane_pages_held(buf);
		/* The device may have written any of them. */
		unpin_user_pages_dirty_lock(buf->pages, held, true);
		atomic64_sub(held, &dmaplane_stats.pinned_pages);
		if (buf->pin_mm) {
			atomic64_sub(buf->nr_pages, &buf->pin_mm->pinned_vm);
			mmdrop(buf->pin_mm);
		}
		break;
	case DMAPLANE_KIND_IMPORT:	/* no pages: dmaplane_import_release() */
	case DMAPLANE_KIND_GPU:		/* none: dmaplane_gpu_release() */
		break;
	case DMAPLANE_KIND_PAGES:
	case DMAPLANE_KIND_HUGE:
		/* Split chunks are order-0 pages like the others. */
		dmaplane_free_node_pages(buf->pages, buf->nr_pages);
		break;
	}
	bitmap_free(buf->huge_map);
	kvfree(buf->pages);
	buf->pages = NULL;
}
