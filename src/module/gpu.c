// SPDX-License-Identifier: GPL-2.0
/*
 * GPU memory as buffers: GPU_PIN pins a range through a provider (gpu.h)
 * and names it by an ordinary buffer handle (kind GPU); the provider gives
 * DMA addresses per device, a kernel mapping for software RDMA devices and
 * a CPU mapping where it allows one.
 *
 * The GPU driver may take the memory back at any time (cudaFree): the
 * provider calls dmaplane_gpu_revoke(), which fences every dmaplane user
 * of the range before it returns: no new MR, mmap, export or operation;
 * MRs a peer can reach, or with operations in flight, end their connection
 * (-ENODEV, the QP flushed); every MR of the range is invalidated and
 * unmapped; importers of its dma-bufs (only ones that can be told may
 * attach) drop their mappings.
 *
 * The dma-buf provider is the importer (dmabuf_import.c) under the GPU
 * name: the exporting GPU driver keeps the memory while it is attached.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"
#include "gpu.h"

/* [@addr, + @length) is whole provider pages inside [0, @limit). */
bool dmaplane_gpu_range_ok(u64 addr, u64 length, u64 page_size, u64 limit)
{
	u64 end;

	return length && IS_ALIGNED(addr, page_size) &&
	       IS_ALIGNED(length, page_size) &&
	       !check_add_overflow(addr, length, &end) && end <= limit;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_gpu_range_ok);

/* Do [@a, + @alen) and [@b, + @blen) share a byte? (Both are valid ranges.) */
bool dmaplane_gpu_overlaps(u64 a, u64 alen, u64 b, u64 blen)
{
	return a < b + blen && b < a + alen;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_gpu_overlaps);

static const struct dmaplane_gpu_ops *dmaplane_gpu_provider(u32 provider)
{
	switch (provider) {
	case DMAPLANE_GPU_SIM:
		return &dmaplane_gpu_sim_ops;
#ifdef DMAPLANE_NVIDIA_P2P
	case DMAPLANE_GPU_NVIDIA_P2P:
		return &dmaplane_gpu_nvidia_ops;
#endif
	default:
		return NULL;
	}
}

void dmaplane_gpu_fill_info(struct dmaplane_info *info)
{
	info->capabilities |= DMAPLANE_CAP_GPU;
	info->gpu_providers = BIT(DMAPLANE_GPU_DMABUF) | BIT(DMAPLANE_GPU_SIM);
	info->gpu_ready = BIT(DMAPLANE_GPU_DMABUF);
	info->gpu_sim_devices = dmaplane_gpu_sim_devices();
	if (info->gpu_sim_devices)
		info->gpu_ready |= BIT(DMAPLANE_GPU_SIM);
#ifdef DMAPLANE_NVIDIA_P2P
	info->gpu_providers |= BIT(DMAPLANE_GPU_NVIDIA_P2P);
	if (dmaplane_gpu_nvidia_ready())
		info->gpu_ready |= BIT(DMAPLANE_GPU_NVIDIA_P2P);
#endif
}

/* A reference on the range's buffer, unless it is being released. */
bool dmaplane_gpu_get(struct dmaplane_gpu_range *pin)
{
	return kref_get_unless_zero(&pin->buf->obj.ref);
}

void dmaplane_gpu_put(struct dmaplane_gpu_range *pin)
{
	dmaplane_buffer_put(pin->buf);
}

/*
 * The provider takes the range back. Sleeps; the caller holds a reference
 * (dmaplane_gpu_get) and none of the locks its unpin takes. Once this
 * returns nothing of dmaplane's reaches the memory.
 */
void dmaplane_gpu_revoke(struct dmaplane_gpu_range *pin)
{
	struct dmaplane_buffer *buf = pin->buf;
	u32 exports;
	bool first;

	/* buf->lock orders this against MR_REG's check (rdma_mr.c). */
	mutex_lock(&buf->lock);
	first = !buf->revoked;
	WRITE_ONCE(buf->revoked, true);
	mutex_unlock(&buf->lock);
	if (!first)
		return;
	dmaplane_mr_revoke_buffer(buf);
	/* Importers of its dma-bufs drop their mappings (all can be told). */
	if (dmaplane_revoke(buf, &exports))
		pr_warn_ratelimited("dmaplane: buffer %llu: an importer could not be told of its revocation\n",
				    buf->id);
	atomic64_inc(&dmaplane_stats.gpu_revocations);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_gpu_revoke);

void dmaplane_gpu_release(struct dmaplane_buffer *buf)
{
	struct dmaplane_gpu_range *pin = buf->gpu;

	if (pin->ops)
		pin->ops->unpin(pin);
	atomic64_sub(buf->size, &dmaplane_stats.gpu_pinned_bytes);
	kfree(pin);
}

int dmaplane_gpu_mmap(struct dmaplane_buffer *buf, struct vm_area_struct *vma)
{
	struct dmaplane_gpu_range *pin = buf->gpu;

	if (READ_ONCE(buf->revoked))
		return -ENODEV;
	if (!pin->ops->mmap)
		return -EOPNOTSUPP;
	return pin->ops->mmap(pin, vma);
}

/* The dma-buf provider: the importer, with the GPU result bit. */
static int dmaplane_gpu_pin_dmabuf(struct dmaplane_ctx *ctx,
				   struct dmaplane_gpu_pin *req,
				   struct dmaplane_commit *commit)
{
	struct dmaplane_buffer *buf;
	int ret;

	if (req->flags || req->addr || req->length)
		return -EINVAL;
	ret = dmaplane_import(ctx, req->device, commit, &buf);
	if (ret)
		return ret;
	buf->result_flags |= DMAPLANE_BUF_RES_GPU;
	req->handle = buf->obj.handle;
	req->length = buf->size;
	req->page_size = PAGE_SIZE;
	req->result_flags = buf->result_flags;
	req->mmap_offset = dmaplane_mmap_offset(buf->obj.handle);
	return 0;
}

/*
 * A buffer over [@addr, + @len) of @ops's device @device, pinned, with
 * one reference for the caller.
 */
VISIBLE_IF_KUNIT int dmaplane_gpu_buffer_new(const struct dmaplane_gpu_ops *ops,
					     u32 device, u64 addr, u64 len,
					     u32 flags,
					     struct dmaplane_buffer **out)
{
	struct dmaplane_gpu_range *pin;
	struct dmaplane_buffer *buf;
	int ret;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	pin = kzalloc(sizeof(*pin), GFP_KERNEL_ACCOUNT);
	if (!pin) {
		kfree(buf);
		return -ENOMEM;
	}
	/*
	 * Not charged to the file's or the module's byte limits: those
	 * bound host memory, and the GPU's own size bounds this.
	 */
	/* From here the release op undoes everything, also half done. */
	dmaplane_buffer_init(buf, DMAPLANE_KIND_GPU, len);
	atomic64_add(len, &dmaplane_stats.gpu_pinned_bytes);
	buf->gpu = pin;
	buf->result_flags = DMAPLANE_BUF_RES_GPU;
	buf->dma_dev = dmaplane_dma_dev(NUMA_NO_NODE);
	pin->buf = buf;
	pin->device = device;
	pin->flags = flags;
	pin->addr = addr;
	pin->length = len;
	pin->ops = ops;
	ret = ops->pin(pin);
	if (ret) {
		pin->ops = NULL;	/* nothing to unpin */
		dmaplane_buffer_put(buf);
		return ret;
	}
	*out = buf;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_gpu_buffer_new);

int dmaplane_ioc_gpu_pin(struct dmaplane_ctx *ctx, void *arg,
			 struct dmaplane_commit *commit)
{
	struct dmaplane_gpu_pin *req = arg;
	const struct dmaplane_gpu_ops *ops;
	struct dmaplane_buffer *buf;
	int ret;

	if (req->flags & ~DMAPLANE_GPU_PIN_VALID_FLAGS)
		return -EINVAL;
	if (req->provider == DMAPLANE_GPU_DMABUF)
		return dmaplane_gpu_pin_dmabuf(ctx, req, commit);
	if (!req->provider || req->provider > DMAPLANE_GPU_PROVIDER_MAX)
		return -EINVAL;
	ops = dmaplane_gpu_provider(req->provider);
	if (!ops)
		return -EOPNOTSUPP;
	if (!dmaplane_gpu_range_ok(req->addr, req->length, ops->page_size,
				   U64_MAX) || req->device < 0)
		return -EINVAL;
	if (req->length > dmaplane_max_buffer_size)
		return -EFBIG;
	ret = dmaplane_gpu_buffer_new(ops, req->device, req->addr,
				      req->length, req->flags, &buf);
	if (!ret)
		ret = dmaplane_buffer_reserve(ctx, buf, commit);
	if (ret)
		return ret;
	req->handle = buf->obj.handle;
	req->mmap_offset = dmaplane_mmap_offset(buf->obj.handle);
	req->page_size = ops->page_size;
	req->result_flags = buf->result_flags;
	return 0;
}

int dmaplane_ioc_gpu_sim_free(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit)
{
	struct dmaplane_gpu_sim_free *req = arg;

	if (req->flags & ~DMAPLANE_GPU_SIM_FREE_VALID_FLAGS || req->reserved)
		return -EINVAL;
	/* It takes memory from whoever pinned it, as the GPU's owner can. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return dmaplane_gpu_sim_free(req->device, req->addr, req->length,
				     &req->revoked);
}
