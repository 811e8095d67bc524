// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer objects: memory owned by one open file, with a DMA view and an
 * mmap view, placed on a NUMA node and verified page by page.
 *
 * A create checks its arguments, charges the bytes to the file and to the
 * module before any page is allocated, allocates the backing
 * (buffer_alloc.c), verifies placement (numa.c), builds the scatterlist
 * and maps it for the module's DMA device for the node (dma_dev.c).
 */
#include <linux/dma-mapping.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

static void dmaplane_buffer_unmap(struct dmaplane_buffer *buf)
{
	if (buf->kind == DMAPLANE_KIND_COHERENT)
		return;
	if (buf->dma_mapped) {
		dma_sync_sgtable_for_cpu(buf->dma_dev, &buf->sgt,
					 DMA_BIDIRECTIONAL);
		dma_unmap_sgtable(buf->dma_dev, &buf->sgt, DMA_BIDIRECTIONAL,
				  DMA_ATTR_SKIP_CPU_SYNC);
	}
	sg_free_table(&buf->sgt);
}

/*
 * Every buffer, for debugfs. A buffer is listed from its creation until
 * its release; the list holds no reference.
 */
static LIST_HEAD(dmaplane_buffers);
static DEFINE_MUTEX(dmaplane_buffers_lock);
static u64 dmaplane_next_buffer_id;	/* under dmaplane_buffers_lock */

static void dmaplane_buffer_unlist(struct dmaplane_buffer *buf)
{
	mutex_lock(&dmaplane_buffers_lock);
	list_del(&buf->node);
	mutex_unlock(&dmaplane_buffers_lock);
}

/* Call @fn for every buffer, under the list lock (debugfs). */
void dmaplane_buffers_walk(dmaplane_buffer_fn fn, void *data)
{
	struct dmaplane_buffer *buf;

	mutex_lock(&dmaplane_buffers_lock);
	list_for_each_entry(buf, &dmaplane_buffers, node)
		fn(buf, data);
	mutex_unlock(&dmaplane_buffers_lock);
}

static void dmaplane_buffer_release(struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf =
		container_of(obj, struct dmaplane_buffer, obj);

	dmaplane_buffer_unlist(buf);
	if (buf->kind == DMAPLANE_KIND_IMPORT) {
		dmaplane_import_release(buf);
	} else if (buf->kind == DMAPLANE_KIND_GPU) {
		dmaplane_gpu_release(buf);
	} else {
		dmaplane_buffer_unmap(buf);
		dmaplane_free_backing(buf);
		atomic64_sub(buf->size, &dmaplane_stats.buffer_bytes);
	}
	atomic_dec(&dmaplane_stats.buffers);
	mutex_destroy(&buf->lock);
	kfree(buf);
}

/*
 * An mmapped or registered buffer keeps its handle: its memory is in a
 * process's or a NIC's hands.
 */
static bool dmaplane_buffer_busy(struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf = container_of(obj, struct dmaplane_buffer,
						   obj);

	return atomic_read(&buf->mappings) > 0 || atomic_read(&buf->mrs) > 0;
}

static const struct dmaplane_obj_ops dmaplane_buffer_ops = {
	.release = dmaplane_buffer_release,
	.busy = dmaplane_buffer_busy,
};

/* The fields every kind shares; the release op undoes it from here on. */
void dmaplane_buffer_init(struct dmaplane_buffer *buf,
			  enum dmaplane_buf_kind kind, u64 size)
{
	dmaplane_obj_init(&buf->obj, DMAPLANE_OBJ_BUFFER, &dmaplane_buffer_ops);
	buf->kind = kind;
	buf->size = size;
	buf->nr_pages = size >> PAGE_SHIFT;
	buf->nid = NUMA_NO_NODE;
	atomic_set(&buf->mappings, 0);
	atomic_set(&buf->exports, 0);
	atomic_set(&buf->attachments, 0);
	atomic_set(&buf->mrs, 0);
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->export_list);
	INIT_LIST_HEAD(&buf->mr_list);
	mutex_init(&buf->map_lock);
	INIT_LIST_HEAD(&buf->dev_maps);
	atomic_inc(&dmaplane_stats.buffers);
	mutex_lock(&dmaplane_buffers_lock);
	buf->id = ++dmaplane_next_buffer_id;
	list_add_tail(&buf->node, &dmaplane_buffers);
	mutex_unlock(&dmaplane_buffers_lock);
}

struct dmaplane_buffer *dmaplane_buffer_lookup(struct dmaplane_ctx *ctx,
					       u32 handle)
{
	struct dmaplane_obj *obj;

	obj = dmaplane_ctx_lookup(ctx, handle, DMAPLANE_OBJ_BUFFER);
	return obj ? container_of(obj, struct dmaplane_buffer, obj) : NULL;
}

void dmaplane_buffer_put(struct dmaplane_buffer *buf)
{
	dmaplane_obj_put(&buf->obj);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_buffer_put);

/*
 * Round @requested up to a multiple of @align (a power of two) into
 * *@rounded: -EINVAL for 0, -EFBIG above @max (checked before rounding
 * too, so a size near U64_MAX cannot wrap).
 */
int dmaplane_buffer_size(u64 requested, u64 max, u64 align, u64 *rounded)
{
	if (!requested)
		return -EINVAL;
	if (requested > max || requested > U64_MAX - (align - 1))
		return -EFBIG;
	*rounded = round_up(requested, align);
	return *rounded > max ? -EFBIG : 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_buffer_size);

/*
 * Add @bytes to *@total unless that would pass @limit (-ENOSPC). Lock-free,
 * so concurrent creators cannot overshoot the limit together.
 */
int dmaplane_charge(atomic64_t *total, u64 bytes, u64 limit)
{
	s64 old = atomic64_read(total);

	do {
		if (bytes > limit || (u64)old > limit - bytes)
			return -ENOSPC;
	} while (!atomic64_try_cmpxchg(total, &old, old + bytes));
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_charge);

/*
 * The buffer's scatterlist for @dev: a HUGE buffer knows its chunks; any
 * other is walked page by page and physically contiguous runs are merged,
 * as an importer of a page array must. No segment is longer than @dev
 * takes: an importer's limit may be below the 2 MiB chunks.
 */
int dmaplane_build_sgt(struct dmaplane_buffer *buf, struct device *dev,
		       struct sg_table *sgt)
{
	unsigned int max_seg = dma_get_max_seg_size(dev);

	if (buf->kind == DMAPLANE_KIND_HUGE &&
	    max_seg >= PAGE_SIZE << DMAPLANE_HUGE_ORDER)
		return dmaplane_huge_sgt(buf, sgt);
	return sg_alloc_table_from_pages_segment(sgt, buf->pages, buf->nr_pages,
						 0, buf->size, max_seg,
						 GFP_KERNEL_ACCOUNT);
}

static int dmaplane_buffer_map(struct dmaplane_buffer *buf)
{
	int ret;

	if (buf->kind == DMAPLANE_KIND_COHERENT)
		return 0;
	ret = dmaplane_build_sgt(buf, buf->dma_dev, &buf->sgt);
	if (ret)
		return ret;
	/*
	 * Syncs are explicit: USER buffers over the same memory map it more
	 * than once, which DMA-API debug accepts only from mappings that
	 * skip the implicit CPU syncs.
	 */
	ret = dma_map_sgtable(buf->dma_dev, &buf->sgt, DMA_BIDIRECTIONAL,
			      DMA_ATTR_SKIP_CPU_SYNC);
	if (ret)
		return ret;
	dma_sync_sgtable_for_device(buf->dma_dev, &buf->sgt, DMA_BIDIRECTIONAL);
	buf->dma_mapped = true;
	return 0;
}

static int dmaplane_buffer_check(const struct dmaplane_buffer_create *req)
{
	u32 kind = req->flags & DMAPLANE_BUF_KIND_MASK;
	int nid = req->numa_node;
	u64 end;

	if (req->flags & ~DMAPLANE_BUF_VALID_FLAGS || req->reserved ||
	    req->reserved2)
		return -EINVAL;
	if (kind & (kind - 1))
		return -EINVAL;
	if (nid == DMAPLANE_NUMA_ANY) {
		if (req->flags & DMAPLANE_BUF_NUMA_STRICT)
			return -EINVAL;
	} else if (nid < 0 || nid >= nr_node_ids || !node_online(nid)) {
		return -EINVAL;
	}
	if (kind != DMAPLANE_BUF_USER)
		return req->user_addr ? -EINVAL : 0;
	if (!PAGE_ALIGNED(req->user_addr) ||
	    check_add_overflow(req->user_addr, req->size, &end))
		return -EINVAL;
	return 0;
}

static enum dmaplane_buf_kind dmaplane_kind(u32 flags)
{
	switch (flags & DMAPLANE_BUF_KIND_MASK) {
	case DMAPLANE_BUF_COHERENT:
		return DMAPLANE_KIND_COHERENT;
	case DMAPLANE_BUF_HUGE:
		return DMAPLANE_KIND_HUGE;
	case DMAPLANE_BUF_USER:
		return DMAPLANE_KIND_USER;
	default:
		return DMAPLANE_KIND_PAGES;
	}
}

static int dmaplane_buffer_rounded_size(const struct dmaplane_buffer_create *req,
					enum dmaplane_buf_kind kind, u64 *size)
{
	u64 max = dmaplane_max_buffer_size;

	switch (kind) {
	case DMAPLANE_KIND_HUGE:
		return dmaplane_buffer_size(req->size, max, DMAPLANE_HUGE_CHUNK,
					    size);
	case DMAPLANE_KIND_COHERENT:
		max = min3(max, DMAPLANE_COHERENT_MAX,
			   (u64)PAGE_SIZE << (MAX_ORDER - 1));
		fallthrough;
	default:
		return dmaplane_buffer_size(req->size, max, PAGE_SIZE, size);
	}
}

static int dmaplane_buffer_back(struct dmaplane_buffer *buf, u64 user_addr)
{
	/* Strict placement: the allocator may not fall back to other nodes. */
	gfp_t node_gfp = buf->flags & DMAPLANE_BUF_NUMA_STRICT ?
			 __GFP_THISNODE : 0;
	int ret;

	switch (buf->kind) {
	case DMAPLANE_KIND_COHERENT:
		ret = dmaplane_alloc_coherent(buf, node_gfp);
		break;
	case DMAPLANE_KIND_HUGE:
		ret = dmaplane_alloc_huge(buf, node_gfp);
		break;
	case DMAPLANE_KIND_USER:
		ret = dmaplane_pin_user(buf, user_addr);
		break;
	default:
		ret = dmaplane_alloc_pages(buf, node_gfp);
		break;
	}
	if (!ret)
		ret = dmaplane_buffer_place(buf);
	if (ret && buf->flags & DMAPLANE_BUF_NUMA_STRICT)
		atomic64_inc(&dmaplane_stats.numa_strict_failures);
	return ret ? ret : dmaplane_buffer_map(buf);
}

/*
 * A new buffer as @req describes it, with one reference for the caller.
 * Bytes are charged module-wide, then to @ctx (when given) before any page
 * is allocated. Fills @req's out fields except the handle.
 */
int dmaplane_buffer_alloc(struct dmaplane_buffer_create *req,
			  struct dmaplane_ctx *ctx,
			  struct dmaplane_buffer **out)
{
	struct dmaplane_buffer *buf;
	enum dmaplane_buf_kind kind;
	u64 size;
	int ret;

	ret = dmaplane_buffer_check(req);
	if (ret)
		return ret;
	kind = dmaplane_kind(req->flags);
	ret = dmaplane_buffer_rounded_size(req, kind, &size);
	if (ret)
		return ret;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	/* Module-wide first: with the default max_file_bytes it is the one hit. */
	ret = dmaplane_charge(&dmaplane_stats.buffer_bytes, size,
			      dmaplane_max_total_bytes);
	if (ret)
		goto err_free_buf;
	if (ctx) {
		ret = dmaplane_ctx_charge(ctx, &buf->obj, size);
		if (ret)
			goto err_uncharge_total;
	}

	dmaplane_buffer_init(buf, kind, size);
	buf->flags = req->flags;
	if (req->numa_node != DMAPLANE_NUMA_ANY)
		buf->nid = req->numa_node;
	buf->dma_dev = dmaplane_dma_dev(buf->nid);
	ret = dmaplane_buffer_back(buf, req->user_addr);
	if (ret) {
		if (ctx)
			dmaplane_ctx_uncharge(ctx, &buf->obj);
		dmaplane_obj_put(&buf->obj);
		return ret;
	}

	req->alloc_size = size;
	req->nr_pages = buf->nr_pages;
	req->pages_on_node = buf->pages_on_node;
	req->result_flags = buf->result_flags;
	*out = buf;
	return 0;

err_uncharge_total:
	atomic64_sub(size, &dmaplane_stats.buffer_bytes);
err_free_buf:
	kfree(buf);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_buffer_alloc);

/* Publish a new buffer's handle through the dispatcher (ctx charged). */
int dmaplane_buffer_reserve(struct dmaplane_ctx *ctx,
			    struct dmaplane_buffer *buf,
			    struct dmaplane_commit *commit)
{
	int ret = dmaplane_ctx_reserve(ctx, &buf->obj);

	if (ret) {
		dmaplane_ctx_uncharge(ctx, &buf->obj);
		dmaplane_buffer_put(buf);
		return ret;
	}
	commit->created = &buf->obj;
	return 0;
}

int dmaplane_ioc_buffer_create(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit)
{
	struct dmaplane_buffer_create *req = arg;
	struct dmaplane_buffer *buf;
	int ret;

	ret = dmaplane_buffer_alloc(req, ctx, &buf);
	if (!ret)
		ret = dmaplane_buffer_reserve(ctx, buf, commit);
	if (ret)
		return ret;
	req->handle = buf->obj.handle;
	req->mmap_offset = dmaplane_mmap_offset(buf->obj.handle);
	return 0;
}

int dmaplane_ioc_buffer_destroy(struct dmaplane_ctx *ctx, void *arg,
				struct dmaplane_commit *commit)
{
	struct dmaplane_handle_op *op = arg;

	if (op->flags & ~DMAPLANE_HANDLE_OP_VALID_FLAGS)
		return -EINVAL;
	return dmaplane_ctx_remove(ctx, op->handle, DMAPLANE_OBJ_BUFFER);
}

int dmaplane_ioc_buffer_info(struct dmaplane_ctx *ctx, void *arg,
			     struct dmaplane_commit *commit)
{
	struct dmaplane_buffer_info *info = arg;
	struct dmaplane_buffer *buf;
	int ret = 0;

	if (info->flags & ~DMAPLANE_BUFFER_INFO_VALID_FLAGS || info->reserved ||
	    (info->node_pages_len && !info->node_pages_ptr))
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, info->handle);
	if (!buf)
		return -ENOENT;
	/* An importer may not look at the exporter's pages; GPUs have none. */
	if ((buf->kind == DMAPLANE_KIND_IMPORT ||
	     buf->kind == DMAPLANE_KIND_GPU) && info->node_pages_len) {
		ret = -EOPNOTSUPP;
		goto out;
	}

	info->size = buf->size;
	info->buf_flags = buf->flags;
	info->numa_node = buf->nid == NUMA_NO_NODE ? DMAPLANE_NUMA_ANY :
			  buf->nid;
	info->result_flags = buf->result_flags;
	info->mappings = atomic_read(&buf->mappings);
	info->nr_pages = buf->nr_pages;
	info->pages_on_node = buf->pages_on_node;
	if (buf->kind == DMAPLANE_KIND_IMPORT)
		info->dma_segments = dmaplane_import_segments(buf);
	else if (buf->kind != DMAPLANE_KIND_GPU)
		info->dma_segments = buf->sgt.nents;
	info->huge_chunks = buf->huge_chunks;
	info->mmap_offset = dmaplane_mmap_offset(buf->obj.handle);
	info->nr_node_ids = nr_node_ids;
	info->exports = atomic_read(&buf->exports);
	info->attachments = atomic_read(&buf->attachments);
	info->mrs = atomic_read(&buf->mrs);
	if (READ_ONCE(buf->revoked))
		info->result_flags |= DMAPLANE_BUF_RES_REVOKED;
	if (info->node_pages_len)
		ret = dmaplane_node_histogram(buf,
					      u64_to_user_ptr(info->node_pages_ptr),
					      info->node_pages_len);
out:
	dmaplane_buffer_put(buf);
	return ret;
}

/*
 * Build, map, unmap and free a scatterlist for the buffer's pages
 * @iterations times, timing each phase: what an importer or an MR
 * registration pays per buffer, 4 KiB pages against 2 MiB chunks.
 */
int dmaplane_ioc_map_bench(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit)
{
	struct dmaplane_map_bench *mb = arg;
	struct dmaplane_buffer *buf;
	struct sg_table sgt;
	ktime_t t0, t1, t2;
	u32 i;
	int ret = 0;

	if (mb->flags & ~DMAPLANE_MAP_BENCH_VALID_FLAGS || mb->reserved ||
	    !mb->iterations || mb->iterations > DMAPLANE_BENCH_PASSES_MAX)
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, mb->handle);
	if (!buf)
		return -ENOENT;
	if (buf->kind == DMAPLANE_KIND_COHERENT ||
	    buf->kind == DMAPLANE_KIND_IMPORT ||
	    buf->kind == DMAPLANE_KIND_GPU) {
		ret = -EINVAL;
		goto out;
	}

	mb->build_ns = 0;
	mb->map_ns = 0;
	mb->unmap_ns = 0;
	for (i = 0; i < mb->iterations; i++) {
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		t0 = ktime_get();
		ret = dmaplane_build_sgt(buf, buf->dma_dev, &sgt);
		if (ret)
			break;
		t1 = ktime_get();
		/* The pages are mapped already (the buffer's own mapping);
		 * this second one never hands data to the CPU, so no syncs,
		 * which is also what lets DMA-API debug accept the overlap.
		 */
		ret = dma_map_sgtable(buf->dma_dev, &sgt, DMA_BIDIRECTIONAL,
				      DMA_ATTR_SKIP_CPU_SYNC);
		t2 = ktime_get();
		if (ret) {
			sg_free_table(&sgt);
			break;
		}
		mb->dma_segments = sgt.nents;
		mb->build_ns += ktime_to_ns(ktime_sub(t1, t0));
		mb->map_ns += ktime_to_ns(ktime_sub(t2, t1));
		dma_unmap_sgtable(buf->dma_dev, &sgt, DMA_BIDIRECTIONAL,
				  DMA_ATTR_SKIP_CPU_SYNC);
		sg_free_table(&sgt);
		mb->unmap_ns += ktime_to_ns(ktime_sub(ktime_get(), t2));
		cond_resched();
	}
out:
	dmaplane_buffer_put(buf);
	return ret;
}
