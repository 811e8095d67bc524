// SPDX-License-Identifier: GPL-2.0
/*
 * Memory registration: a window of a buffer becomes an MR of one
 * endpoint's protection domain by fast registration (ib_alloc_mr,
 * ib_map_mr_sg, a REG_MR work request), with the access the caller asked
 * for and, for remote access, an rkey of its own. The window is mapped for
 * the RDMA device's DMA device, not the module's.
 *
 * Peers address a window from offset 0 (a zero-based virtual address), so
 * neither a kernel address (soft-RoCE's "DMA" addresses are kernel
 * virtual addresses) nor a bus address ever reaches the wire.
 *
 * An imported dma-buf is mapped for the device by the exporter (a static
 * attachment: the exporter keeps the memory where it is while the MR
 * lives); a software device, which takes kernel virtual addresses for DMA
 * addresses, gets the pages of the exporter's kernel mapping instead. GPU
 * memory is mapped by its provider, or reached through the provider's
 * kernel mapping by a software device; when the provider revokes it, its
 * MRs are fenced and dropped (dmaplane_mr_revoke_buffer) and stay as
 * handles that fail with -ENODEV.
 *
 * Deregistration invalidates the rkey with LOCAL_INV while the QP works,
 * then frees the MR and unmaps the pages; only then is the buffer's
 * reference dropped. A buffer with an MR refuses BUFFER_DESTROY.
 */
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/log2.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <rdma/rdma_cm.h>
#include <kunit/visibility.h>

#include "gpu.h"
#include "rdma.h"

/* The largest device page an MR is built from: a HUGE buffer's chunk. */
#define DMAPLANE_MR_MAX_PAGE_SHIFT	21

static void dmaplane_mr_release(struct dmaplane_obj *obj);

/* Operations in flight keep an MR's handle. */
static bool dmaplane_mr_busy(struct dmaplane_obj *obj)
{
	return atomic_read(&container_of(obj, struct dmaplane_mr,
					 obj)->inflight) > 0;
}

static const struct dmaplane_obj_ops dmaplane_mr_ops = {
	.release = dmaplane_mr_release,
	.busy = dmaplane_mr_busy,
};

struct dmaplane_mr *dmaplane_mr_lookup(struct dmaplane_ctx *ctx, u32 handle)
{
	struct dmaplane_obj *obj;

	obj = dmaplane_ctx_lookup(ctx, handle, DMAPLANE_OBJ_MR);
	return obj ? container_of(obj, struct dmaplane_mr, obj) : NULL;
}

void dmaplane_mr_put(struct dmaplane_mr *mr)
{
	dmaplane_obj_put(&mr->obj);
}

/*
 * The largest page size (in @size_cap, at most 2 MiB) that every mapped
 * entry starts on and every entry but the last is a multiple of, and the
 * number of such pages in *@npages; -EMSGSIZE when that is more than
 * @max_pages, -EINVAL when not even the smallest page size fits.
 */
VISIBLE_IF_KUNIT int dmaplane_mr_page_size(struct scatterlist *sgl,
					   unsigned int nents, u64 size_cap,
					   u32 max_pages, u32 *npages)
{
	unsigned int shift;

	for (shift = DMAPLANE_MR_MAX_PAGE_SHIFT; shift >= 12; shift--) {
		u64 page = BIT_ULL(shift), pages = 0;
		struct scatterlist *sg;
		unsigned int i;
		bool fits = true;

		if (!(size_cap & page))
			continue;
		for_each_sg(sgl, sg, nents, i) {
			u64 len = sg_dma_len(sg);

			if (!IS_ALIGNED(sg_dma_address(sg), page) ||
			    (i + 1 < nents && !IS_ALIGNED(len, page))) {
				fits = false;
				break;
			}
			pages += DIV_ROUND_UP_ULL(len, page);
		}
		if (!fits)
			continue;
		if (pages > max_pages)
			return -EMSGSIZE;
		*npages = pages;
		return shift;
	}
	return -EINVAL;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_mr_page_size);

typedef void (*dmaplane_dma_piece_fn)(void *arg, dma_addr_t addr, u64 len);

/*
 * Call @fn on each piece of [@start, @end) of @sgt's DMA segments, in
 * order; the bytes they cover (less than @end - @start if the segments end
 * first).
 */
static u64 dmaplane_dma_range(struct sg_table *sgt, u64 start, u64 end,
			      dmaplane_dma_piece_fn fn, void *arg)
{
	struct scatterlist *sg;
	u64 pos = 0, covered = 0;
	unsigned int i;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		u64 seg = sg_dma_len(sg), lo = max(pos, start);
		u64 hi = min(pos + seg, end);

		if (lo < hi) {
			fn(arg, sg_dma_address(sg) + lo - pos, hi - lo);
			covered += hi - lo;
		}
		pos += seg;
		if (pos >= end)
			break;
	}
	return covered;
}

static void dmaplane_sync_piece_for_cpu(void *arg, dma_addr_t addr, u64 len)
{
	ib_dma_sync_single_for_cpu(arg, addr, len, DMA_BIDIRECTIONAL);
}

static void dmaplane_sync_piece_for_device(void *arg, dma_addr_t addr,
					   u64 len)
{
	ib_dma_sync_single_for_device(arg, addr, len, DMA_BIDIRECTIONAL);
}

/*
 * Hand [@offset, @offset + @len) of the window to the device (before
 * posting) or back to the CPU (after a completion): only that range, so
 * operations on other parts of the window are left alone. post_lock held
 * with the QP live, or a completion of the MR pending: the window is
 * mapped. Only pages the DMA API mapped need it: not for software
 * devices, nor for an import's attachment (the exporter keeps its own
 * mapping coherent for importers; CPU access goes through
 * DMA_BUF_IOCTL_SYNC), nor for GPU memory (no CPU cache in the way).
 */
void dmaplane_mr_sync(struct dmaplane_mr *mr, u64 offset, u64 len,
		      bool for_cpu)
{
	if (ib_uses_virt_dma(mr->ibdev) || mr->mapping != DMAPLANE_MR_PAGES)
		return;
	dmaplane_dma_range(&mr->sgt, offset, offset + len,
			   for_cpu ? dmaplane_sync_piece_for_cpu :
			   dmaplane_sync_piece_for_device, mr->ibdev);
}

/* @n pages from @pages described by @mr->sgt and mapped for the device. */
static int dmaplane_mr_map_pages(struct dmaplane_mr *mr, struct page **pages,
				 unsigned long n)
{
	unsigned int max_seg = ib_dma_max_seg_size(mr->ibdev) & PAGE_MASK;
	int ret;

	ret = sg_alloc_table_from_pages_segment(&mr->sgt, pages, n, 0,
						mr->length, max_seg,
						GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	/* Syncs are explicit, around each operation (dmaplane_mr_sync). */
	ret = ib_dma_map_sgtable_attrs(mr->ibdev, &mr->sgt, DMA_BIDIRECTIONAL,
				       DMA_ATTR_SKIP_CPU_SYNC);
	if (ret)
		sg_free_table(&mr->sgt);
	return ret;
}

/*
 * A software device reaches an import through the exporter's kernel
 * mapping: the pages behind it, as the device only takes kernel addresses.
 */
static int dmaplane_mr_map_import_vmap(struct dmaplane_mr *mr)
{
	struct dma_buf *dmabuf = mr->buf->import_dmabuf;
	unsigned long i, n = DIV_ROUND_UP(mr->length, PAGE_SIZE);
	struct page **pages;
	int ret;

	ret = dma_buf_vmap(dmabuf, &mr->vmap);
	if (ret)
		return -EOPNOTSUPP;
	if (mr->vmap.is_iomem) {
		ret = -EOPNOTSUPP;
		goto err_vunmap;
	}
	pages = kvmalloc_array(n, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages) {
		ret = -ENOMEM;
		goto err_vunmap;
	}
	for (i = 0; i < n; i++) {
		void *va = mr->vmap.vaddr + mr->offset + i * PAGE_SIZE;

		pages[i] = is_vmalloc_addr(va) ? vmalloc_to_page(va) :
			   virt_to_page(va);
		/* A mapping of raw page frames has no pages to give. */
		if (!pages[i] || !pfn_valid(page_to_pfn(pages[i]))) {
			kvfree(pages);
			ret = -EOPNOTSUPP;
			goto err_vunmap;
		}
	}
	ret = dmaplane_mr_map_pages(mr, pages, n);
	kvfree(pages);
	if (ret)
		goto err_vunmap;
	mr->mapping = DMAPLANE_MR_IMPORT_VMAP;
	return 0;

err_vunmap:
	dma_buf_vunmap(dmabuf, &mr->vmap);
	iosys_map_clear(&mr->vmap);
	return ret;
}

static void dmaplane_count_piece(void *arg, dma_addr_t addr, u64 len)
{
	(*(unsigned int *)arg)++;
}

/* Set the next entry of the table being filled (*@arg) to the piece. */
static void dmaplane_fill_piece(void *arg, dma_addr_t addr, u64 len)
{
	struct scatterlist **out = arg;

	sg_dma_address(*out) = addr;
	sg_dma_len(*out) = len;
	*out = sg_next(*out);
}

/* The DMA addresses of [@mr->offset, + @mr->length) of @from, into @mr->sgt. */
VISIBLE_IF_KUNIT int dmaplane_mr_copy_window(struct dmaplane_mr *mr,
					     struct sg_table *from)
{
	u64 start = mr->offset, end = mr->offset + mr->length;
	struct scatterlist *out;
	unsigned int n = 0;
	int ret;

	/* An exporter's mapping shorter than the window: not registrable. */
	if (dmaplane_dma_range(from, start, end, dmaplane_count_piece, &n) !=
	    mr->length)
		return -EINVAL;
	ret = sg_alloc_table(&mr->sgt, n, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	out = mr->sgt.sgl;
	dmaplane_dma_range(from, start, end, dmaplane_fill_piece, &out);
	mr->sgt.nents = n;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_mr_copy_window);

/*
 * A device that does DMA reaches an import through the exporter's own
 * mapping for it: a static attachment, so the exporter keeps the memory
 * in place for as long as the MR lives.
 */
static int dmaplane_mr_map_import_attach(struct dmaplane_mr *mr)
{
	struct dma_buf *dmabuf = mr->buf->import_dmabuf;
	struct sg_table *sgt;
	int ret;

	mr->attach = dma_buf_attach(dmabuf, mr->ibdev->dma_device);
	if (IS_ERR(mr->attach)) {
		ret = PTR_ERR(mr->attach);
		mr->attach = NULL;
		return ret;
	}
	dma_resv_lock(dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(mr->attach, DMA_BIDIRECTIONAL);
	dma_resv_unlock(dmabuf->resv);
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		goto err_detach;
	}
	mr->attach_sgt = sgt;
	ret = dmaplane_mr_copy_window(mr, sgt);
	if (ret)
		goto err_unmap;
	mr->mapping = DMAPLANE_MR_IMPORT_ATTACH;
	return 0;

err_unmap:
	dma_resv_lock(dmabuf->resv, NULL);
	dma_buf_unmap_attachment(mr->attach, sgt, DMA_BIDIRECTIONAL);
	dma_resv_unlock(dmabuf->resv);
	mr->attach_sgt = NULL;
err_detach:
	dma_buf_detach(dmabuf, mr->attach);
	mr->attach = NULL;
	return ret;
}

/*
 * A software device reaches GPU memory through the provider's kernel
 * mapping: one segment per GiB (so any page size up to 2 MiB the
 * mapping's alignment allows fits), kernel addresses as DMA addresses.
 */
static int dmaplane_mr_map_gpu_kva(struct dmaplane_mr *mr)
{
	struct dmaplane_gpu_range *pin = mr->buf->gpu;
	void *kva = pin->ops->kva ? pin->ops->kva(pin) : NULL;
	struct scatterlist *sg;
	u64 pos = 0;
	int i, ret;

	if (!kva)
		return -EOPNOTSUPP;
	ret = sg_alloc_table(&mr->sgt, DIV_ROUND_UP_ULL(mr->length, SZ_1G),
			     GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	for_each_sgtable_sg(&mr->sgt, sg, i) {
		sg_dma_address(sg) = (uintptr_t)kva + mr->offset + pos;
		sg_dma_len(sg) = min_t(u64, SZ_1G, mr->length - pos);
		pos += sg_dma_len(sg);
	}
	mr->sgt.nents = mr->sgt.orig_nents;
	mr->mapping = DMAPLANE_MR_GPU_KVA;
	return 0;
}

static int dmaplane_mr_map_gpu(struct dmaplane_mr *mr)
{
	struct dmaplane_gpu_range *pin = mr->buf->gpu;
	int ret;

	if (ib_uses_virt_dma(mr->ibdev))
		return dmaplane_mr_map_gpu_kva(mr);
	ret = pin->ops->map(pin, mr->ibdev->dma_device, mr->offset,
			    mr->length, &mr->sgt);
	if (!ret)
		mr->mapping = DMAPLANE_MR_GPU;
	return ret;
}

/* The window, mapped for the RDMA device. */
static int dmaplane_mr_map_window(struct dmaplane_mr *mr)
{
	struct dmaplane_buffer *buf = mr->buf;

	switch (buf->kind) {
	case DMAPLANE_KIND_GPU:
		return dmaplane_mr_map_gpu(mr);
	case DMAPLANE_KIND_IMPORT:
		if (ib_uses_virt_dma(mr->ibdev))
			return dmaplane_mr_map_import_vmap(mr);
		return dmaplane_mr_map_import_attach(mr);
	default:
		mr->mapping = DMAPLANE_MR_PAGES;
		return dmaplane_mr_map_pages(mr, buf->pages +
					     (mr->offset >> PAGE_SHIFT),
					     DIV_ROUND_UP(mr->length,
							  PAGE_SIZE));
	}
}

static void dmaplane_mr_unmap_window(struct dmaplane_mr *mr)
{
	struct dma_buf *dmabuf = mr->buf->import_dmabuf;
	struct dmaplane_gpu_range *pin = mr->buf->gpu;

	switch (mr->mapping) {
	case DMAPLANE_MR_IMPORT_ATTACH:
		sg_free_table(&mr->sgt);
		dma_resv_lock(dmabuf->resv, NULL);
		dma_buf_unmap_attachment(mr->attach, mr->attach_sgt,
					 DMA_BIDIRECTIONAL);
		dma_resv_unlock(dmabuf->resv);
		dma_buf_detach(dmabuf, mr->attach);
		mr->attach = NULL;
		mr->attach_sgt = NULL;
		break;
	case DMAPLANE_MR_GPU:
		pin->ops->unmap(pin, mr->ibdev->dma_device, &mr->sgt);
		break;
	case DMAPLANE_MR_GPU_KVA:
		sg_free_table(&mr->sgt);
		break;
	case DMAPLANE_MR_PAGES:
	case DMAPLANE_MR_IMPORT_VMAP:
		ib_dma_unmap_sgtable_attrs(mr->ibdev, &mr->sgt,
					   DMA_BIDIRECTIONAL,
					   DMA_ATTR_SKIP_CPU_SYNC);
		sg_free_table(&mr->sgt);
		if (mr->mapping == DMAPLANE_MR_IMPORT_VMAP) {
			dma_buf_vunmap(dmabuf, &mr->vmap);
			iosys_map_clear(&mr->vmap);
		}
		break;
	}
}

static int dmaplane_mr_ib_access(u32 access)
{
	int ib = 0;

	if (access & DMAPLANE_MR_LOCAL_WRITE)
		ib |= IB_ACCESS_LOCAL_WRITE;
	if (access & DMAPLANE_MR_REMOTE_WRITE)
		ib |= IB_ACCESS_REMOTE_WRITE;
	if (access & DMAPLANE_MR_REMOTE_READ)
		ib |= IB_ACCESS_REMOTE_READ;
	return ib;
}

/* Allocate, map and fast-register the MR for the window. op_lock held. */
static int dmaplane_mr_register(struct dmaplane_mr *mr)
{
	struct dmaplane_ep *ep = mr->ep;
	struct ib_device_attr *attrs = &mr->ibdev->attrs;
	struct ib_reg_wr reg = { .wr.opcode = IB_WR_REG_MR };
	struct ib_mr *ibmr;
	u32 npages;
	int shift, n, ret;

	/* One entry is kept spare (below): a device needs two. */
	if (attrs->max_fast_reg_page_list_len < 2)
		return -EOPNOTSUPP;
	ret = dmaplane_mr_map_window(mr);
	if (ret)
		return ret;
	shift = dmaplane_mr_page_size(mr->sgt.sgl, mr->sgt.nents,
				      attrs->page_size_cap,
				      attrs->max_fast_reg_page_list_len - 1,
				      &npages);
	if (shift < 0) {
		ret = shift;
		goto err_unmap;
	}
	/*
	 * One spare page-list entry: soft-RoCE in 6.1 (rxe_mr_copy) reads
	 * the map after the one a transfer ends in, past its array when the
	 * window's pages fill their last map exactly.
	 */
	ibmr = ib_alloc_mr(ep->pd, IB_MR_TYPE_MEM_REG, npages + 1);
	if (IS_ERR(ibmr)) {
		ret = PTR_ERR(ibmr);
		goto err_unmap;
	}
	n = ib_map_mr_sg_zbva(ibmr, mr->sgt.sgl, mr->sgt.nents, NULL,
			      BIT(shift));
	if (n != mr->sgt.nents) {
		ret = n < 0 ? n : -EINVAL;
		goto err_dereg;
	}
	/* A fresh key per registration: a stale rkey never matches again. */
	ib_update_fast_reg_key(ibmr, ib_inc_rkey(ibmr->rkey));
	reg.mr = ibmr;
	reg.key = ibmr->rkey;
	reg.access = dmaplane_mr_ib_access(mr->access);
	ret = dmaplane_ep_post_local(ep, &reg.wr);
	if (ret)
		goto err_dereg;
	mr->ibmr = ibmr;
	mr->lkey = ibmr->lkey;
	if (mr->access & (DMAPLANE_MR_REMOTE_WRITE | DMAPLANE_MR_REMOTE_READ))
		mr->rkey = ibmr->rkey;
	list_add_tail(&mr->ep_node, &ep->mrs);
	atomic_inc(&dmaplane_stats.mrs);
	return 0;

err_dereg:
	ib_dereg_mr(ibmr);
err_unmap:
	dmaplane_mr_unmap_window(mr);
	return ret;
}

/* Free the verbs MR and the window's mapping. op_lock held. */
static void dmaplane_mr_drop(struct dmaplane_mr *mr)
{
	ib_dereg_mr(mr->ibmr);
	mr->ibmr = NULL;
	dmaplane_mr_unmap_window(mr);
	list_del_init(&mr->ep_node);
	atomic_dec(&dmaplane_stats.mrs);
}

/*
 * The endpoint is going (or its device is): deregister every MR of its
 * PD. The QP is drained: nothing uses them. op_lock held.
 */
void dmaplane_mr_drop_all(struct dmaplane_ep *ep)
{
	struct dmaplane_mr *mr, *tmp;

	list_for_each_entry_safe(mr, tmp, &ep->mrs, ep_node)
		dmaplane_mr_drop(mr);
}

/*
 * Invalidate the rkey, then free the MR and its mapping. With operations
 * still in flight (the file is closing under them), or with @fence, the
 * connection ends with @error first and everything on it completes
 * flushed. op_lock held.
 */
static void dmaplane_mr_invalidate(struct dmaplane_mr *mr, int error,
				   bool fence)
{
	struct dmaplane_ep *ep = mr->ep;
	struct ib_send_wr inv = {
		.opcode = IB_WR_LOCAL_INV,
		.ex.invalidate_rkey = mr->ibmr->rkey,
	};

	if (fence || atomic_read(&mr->inflight)) {
		dmaplane_ep_fail(ep, error);
		dmaplane_ep_quiesce(ep);
	}
	/* A QP that cannot invalidate is in error: ib_dereg_mr() does it. */
	if (dmaplane_ep_post_local(ep, &inv))
		atomic64_inc(&dmaplane_stats.mr_dereg_no_inv);
	dmaplane_mr_drop(mr);
}

/*
 * The next MR over @buf no revocation took yet, with a reference; NULL
 * when none is left.
 */
static struct dmaplane_mr *dmaplane_mr_take(struct dmaplane_buffer *buf)
{
	struct dmaplane_mr *mr, *found = NULL;

	mutex_lock(&buf->lock);
	list_for_each_entry(mr, &buf->mr_list, buf_node) {
		if (mr->revoked || !kref_get_unless_zero(&mr->obj.ref))
			continue;
		mr->revoked = true;
		found = mr;
		break;
	}
	mutex_unlock(&buf->lock);
	return found;
}

/*
 * @buf's memory was taken back (gpu.c): no new MR can be made over it.
 * Fence and drop every MR that is: one a peer can reach, or with
 * operations in flight, ends its connection (-ENODEV, QP flushed, peer
 * disconnected); then the rkey is invalidated and the window unmapped.
 */
void dmaplane_mr_revoke_buffer(struct dmaplane_buffer *buf)
{
	struct dmaplane_mr *mr;

	while ((mr = dmaplane_mr_take(buf))) {
		struct dmaplane_ep *ep = mr->ep;
		bool remote = mr->access & (DMAPLANE_MR_REMOTE_WRITE |
					    DMAPLANE_MR_REMOTE_READ);

		mutex_lock(&ep->op_lock);
		if (mr->ibmr)
			dmaplane_mr_invalidate(mr, -ENODEV, remote);
		mutex_unlock(&ep->op_lock);
		if (remote)
			dmaplane_ep_break(ep);
		dmaplane_mr_put(mr);
	}
}

static void dmaplane_mr_release(struct dmaplane_obj *obj)
{
	struct dmaplane_mr *mr = container_of(obj, struct dmaplane_mr, obj);
	struct dmaplane_ep *ep = mr->ep;

	mutex_lock(&ep->op_lock);
	if (mr->ibmr)
		dmaplane_mr_invalidate(mr, -ECANCELED, false);
	mutex_unlock(&ep->op_lock);
	mutex_lock(&mr->buf->lock);
	list_del(&mr->buf_node);
	mutex_unlock(&mr->buf->lock);
	atomic_dec(&mr->buf->mrs);
	atomic_dec(&ep->mr_handles);
	dmaplane_buffer_put(mr->buf);
	dmaplane_ep_put(ep);
	kfree(mr);
}

/* The window @req names in @buf, checked; its length in *@len. */
static int dmaplane_mr_check(const struct dmaplane_mr_reg *req,
			     const struct dmaplane_buffer *buf, u64 *len)
{
	if (req->access & ~DMAPLANE_MR_VALID_FLAGS || req->reserved)
		return -EINVAL;
	/* The verbs require local write wherever the peer may write. */
	if (req->access & DMAPLANE_MR_REMOTE_WRITE &&
	    !(req->access & DMAPLANE_MR_LOCAL_WRITE))
		return -EINVAL;
	if (!PAGE_ALIGNED(req->offset) || req->offset >= buf->size)
		return -EINVAL;
	*len = req->length ?: buf->size - req->offset;
	if (*len > buf->size - req->offset)
		return -EINVAL;
	return 0;
}

int dmaplane_ioc_mr_reg(struct dmaplane_ctx *ctx, void *arg,
			struct dmaplane_commit *commit)
{
	struct dmaplane_mr_reg *req = arg;
	struct dmaplane_buffer *buf;
	struct dmaplane_ep *ep;
	struct dmaplane_mr *mr;
	u64 len;
	int ret;

	ep = dmaplane_ep_lookup(ctx, req->endpoint);
	if (!ep)
		return -ENOENT;
	buf = dmaplane_buffer_lookup(ctx, req->buffer);
	if (!buf) {
		ret = -ENOENT;
		goto err_ep;
	}
	ret = dmaplane_mr_check(req, buf, &len);
	if (ret)
		goto err_buf;
	/* The exporter withdrew the memory: nothing to register. */
	if (READ_ONCE(buf->revoked)) {
		ret = -ENODEV;
		goto err_buf;
	}
	mr = kzalloc(sizeof(*mr), GFP_KERNEL_ACCOUNT);
	if (!mr) {
		ret = -ENOMEM;
		goto err_buf;
	}
	dmaplane_obj_init(&mr->obj, DMAPLANE_OBJ_MR, &dmaplane_mr_ops);
	INIT_LIST_HEAD(&mr->ep_node);
	INIT_LIST_HEAD(&mr->buf_node);
	mr->ep = ep;
	mr->buf = buf;
	mr->offset = req->offset;
	mr->length = len;
	mr->access = req->access;

	mutex_lock(&ep->op_lock);
	if (!READ_ONCE(ep->qp_live) || !ep->cm_id) {
		ret = READ_ONCE(ep->error) ?: -ENOTCONN;
	} else {
		mr->ibdev = ep->cm_id->device;
		ret = dmaplane_mr_register(mr);
	}
	mutex_unlock(&ep->op_lock);
	if (ret)
		goto err_mr;
	/* From here the release op owns the references. */
	atomic_inc(&buf->mrs);
	atomic_inc(&ep->mr_handles);
	/* A revocation that came meanwhile missed this MR: undo it. */
	mutex_lock(&buf->lock);
	if (!buf->revoked)
		list_add_tail(&mr->buf_node, &buf->mr_list);
	mutex_unlock(&buf->lock);
	if (list_empty(&mr->buf_node)) {
		dmaplane_mr_put(mr);
		return -ENODEV;
	}
	ret = dmaplane_ctx_reserve(ctx, &mr->obj);
	if (ret) {
		dmaplane_mr_put(mr);
		return ret;
	}
	req->handle = mr->obj.handle;
	req->rkey = mr->rkey;
	commit->created = &mr->obj;
	return 0;

err_mr:
	kfree(mr);
err_buf:
	dmaplane_buffer_put(buf);
err_ep:
	dmaplane_ep_put(ep);
	return ret;
}

int dmaplane_ioc_mr_dereg(struct dmaplane_ctx *ctx, void *arg,
			  struct dmaplane_commit *commit)
{
	struct dmaplane_handle_op *op = arg;

	if (op->flags & ~DMAPLANE_HANDLE_OP_VALID_FLAGS)
		return -EINVAL;
	return dmaplane_ctx_remove(ctx, op->handle, DMAPLANE_OBJ_MR);
}
