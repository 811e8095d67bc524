// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer objects: page-backed memory owned by one open file.
 *
 * Bytes are charged to the module-wide total before any page is allocated.
 */
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

struct dmaplane_buffer {
	struct dmaplane_obj obj;
	size_t size;		/* page-rounded */
	unsigned long nr_pages;
	struct page **pages;
};

static void dmaplane_buffer_free_pages(struct page **pages, unsigned long n)
{
	while (n--)
		__free_page(pages[n]);
}

static void dmaplane_buffer_release(struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf =
		container_of(obj, struct dmaplane_buffer, obj);

	dmaplane_buffer_free_pages(buf->pages, buf->nr_pages);
	kvfree(buf->pages);
	atomic64_sub(buf->size, &dmaplane_stats.buffer_bytes);
	atomic_dec(&dmaplane_stats.buffers);
	kfree(buf);
}

static const struct dmaplane_obj_ops dmaplane_buffer_ops = {
	.release = dmaplane_buffer_release,
};

/*
 * Page-round @requested into *@rounded: -EINVAL for 0, -EFBIG above @max
 * (checked before rounding too, so a size near U64_MAX cannot wrap).
 */
VISIBLE_IF_KUNIT int dmaplane_buffer_size(u64 requested, u64 max, u64 *rounded)
{
	if (!requested)
		return -EINVAL;
	if (requested > max || requested > U64_MAX - (PAGE_SIZE - 1))
		return -EFBIG;
	*rounded = PAGE_ALIGN(requested);
	return *rounded > max ? -EFBIG : 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_buffer_size);

/*
 * Add @bytes to *@total unless that would pass @limit (-ENOSPC). Lock-free,
 * so concurrent creators cannot overshoot the limit together.
 */
VISIBLE_IF_KUNIT int dmaplane_charge(atomic64_t *total, u64 bytes, u64 limit)
{
	s64 old = atomic64_read(total);

	do {
		if (bytes > limit || (u64)old > limit - bytes)
			return -ENOSPC;
	} while (!atomic64_try_cmpxchg(total, &old, old + bytes));
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_charge);

static int dmaplane_buffer_alloc_pages(struct dmaplane_buffer *buf, int nid)
{
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_ZERO |
			  __GFP_NOWARN | __GFP_RETRY_MAYFAIL;
	unsigned long i;
	int ret;

	buf->pages = kvcalloc(buf->nr_pages, sizeof(*buf->pages),
			      GFP_KERNEL_ACCOUNT);
	if (!buf->pages)
		return -ENOMEM;

	for (i = 0; i < buf->nr_pages; i++) {
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto err_free_pages;
		}
		buf->pages[i] = alloc_pages_node(nid, gfp, 0);
		if (!buf->pages[i]) {
			ret = -ENOMEM;
			goto err_free_pages;
		}
		cond_resched();
	}
	return 0;

err_free_pages:
	dmaplane_buffer_free_pages(buf->pages, i);
	kvfree(buf->pages);
	return ret;
}

int dmaplane_ioc_buffer_create(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_obj **created)
{
	struct dmaplane_buffer_create *req = arg;
	struct dmaplane_buffer *buf;
	u64 size;
	int nid = req->numa_node;
	int ret;

	if (req->flags & ~DMAPLANE_BUF_VALID_FLAGS || req->reserved)
		return -EINVAL;
	if (nid != DMAPLANE_NUMA_ANY &&
	    (nid < 0 || nid >= MAX_NUMNODES || !node_online(nid)))
		return -EINVAL;
	if (nid == DMAPLANE_NUMA_ANY)
		nid = NUMA_NO_NODE;
	ret = dmaplane_buffer_size(req->size, dmaplane_max_buffer_size, &size);
	if (ret)
		return ret;

	ret = dmaplane_charge(&dmaplane_stats.buffer_bytes, size,
			      dmaplane_max_total_bytes);
	if (ret)
		return ret;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	buf->size = size;
	buf->nr_pages = size >> PAGE_SHIFT;

	ret = dmaplane_buffer_alloc_pages(buf, nid);
	if (ret)
		goto err_free_buf;

	dmaplane_obj_init(&buf->obj, DMAPLANE_OBJ_BUFFER, &dmaplane_buffer_ops);
	atomic_inc(&dmaplane_stats.buffers);
	ret = dmaplane_ctx_reserve(ctx, &buf->obj);
	if (ret) {
		/* The release op undoes the charge and the counters. */
		dmaplane_obj_put(&buf->obj);
		return ret;
	}

	req->handle = buf->obj.handle;
	req->alloc_size = size;
	*created = &buf->obj;
	return 0;

err_free_buf:
	kfree(buf);
err_uncharge:
	atomic64_sub(size, &dmaplane_stats.buffer_bytes);
	return ret;
}

int dmaplane_ioc_buffer_destroy(struct dmaplane_ctx *ctx, void *arg,
				struct dmaplane_obj **created)
{
	struct dmaplane_handle_op *op = arg;

	if (op->flags & ~DMAPLANE_HANDLE_OP_VALID_FLAGS)
		return -EINVAL;
	return dmaplane_ctx_remove(ctx, op->handle, DMAPLANE_OBJ_BUFFER);
}
