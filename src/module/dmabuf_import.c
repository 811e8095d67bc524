// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf importer: a foreign dma-buf (udmabuf, a dma-heap, a GPU driver,
 * another dmaplane file) as a buffer handle, mapped for the module's DMA
 * device.
 *
 * An exporter that can move its memory (a dynamic exporter) is attached
 * with move_notify: when it moves or revokes the memory, the mapping is
 * dropped under its reservation lock, the handle is marked revoked and
 * every later use fails with -ENODEV. Any other exporter's memory is
 * pinned for as long as the import lives.
 *
 * The importer never touches the exporter's struct pages: mmap goes
 * through the exporter (dma_buf_mmap) and no page histogram is kept.
 */
#include <linux/dma-buf.h>
#include <linux/dma-resv.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>

#include "dmaplane.h"

MODULE_IMPORT_NS(DMA_BUF);

/* Called with the exporter's reservation lock held. */
static void dmaplane_import_move_notify(struct dma_buf_attachment *attach)
{
	struct dmaplane_buffer *buf = attach->importer_priv;

	if (buf->import_sgt) {
		dma_buf_unmap_attachment(attach, buf->import_sgt,
					 DMA_BIDIRECTIONAL);
		buf->import_sgt = NULL;
	}
	if (!buf->revoked)
		atomic64_inc(&dmaplane_stats.revocations);
	WRITE_ONCE(buf->revoked, true);
}

static const struct dma_buf_attach_ops dmaplane_importer_ops = {
	.allow_peer2peer = false,
	.move_notify = dmaplane_import_move_notify,
};

void dmaplane_import_release(struct dmaplane_buffer *buf)
{
	struct dma_buf *dmabuf = buf->import_dmabuf;

	if (!dmabuf)
		return;
	if (buf->import_attach) {
		dma_resv_lock(dmabuf->resv, NULL);
		if (buf->import_sgt)
			dma_buf_unmap_attachment(buf->import_attach,
						 buf->import_sgt,
						 DMA_BIDIRECTIONAL);
		buf->import_sgt = NULL;
		dma_resv_unlock(dmabuf->resv);
		dma_buf_detach(dmabuf, buf->import_attach);
	}
	dma_buf_put(dmabuf);
}

unsigned int dmaplane_import_segments(struct dmaplane_buffer *buf)
{
	unsigned int n;

	dma_resv_lock(buf->import_dmabuf->resv, NULL);
	n = buf->import_sgt ? buf->import_sgt->nents : 0;
	dma_resv_unlock(buf->import_dmabuf->resv);
	return n;
}

/* Attach for the module's DMA device and map, under the exporter's lock. */
static int dmaplane_import_attach(struct dmaplane_buffer *buf)
{
	struct dma_buf *dmabuf = buf->import_dmabuf;
	struct device *dev = dmaplane_dma_dev(NUMA_NO_NODE);
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;

	if (dma_buf_is_dynamic(dmabuf)) {
		attach = dma_buf_dynamic_attach(dmabuf, dev,
						&dmaplane_importer_ops, buf);
		buf->result_flags |= DMAPLANE_BUF_RES_DYNAMIC;
	} else {
		attach = dma_buf_attach(dmabuf, dev);
	}
	if (IS_ERR(attach))
		return PTR_ERR(attach);
	buf->import_attach = attach;

	dma_resv_lock(dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	if (!IS_ERR(sgt))
		buf->import_sgt = sgt;
	dma_resv_unlock(dmabuf->resv);
	return PTR_ERR_OR_ZERO(sgt);
}

int dmaplane_import_mmap(struct dmaplane_buffer *buf,
			 struct vm_area_struct *vma)
{
	if (READ_ONCE(buf->revoked))
		return -ENODEV;
	return dma_buf_mmap(buf->import_dmabuf, vma, vma->vm_pgoff);
}

/*
 * Import dma-buf @fd as a buffer of @ctx, its handle reserved through
 * @commit; *@out is valid until the ioctl returns.
 */
int dmaplane_import(struct dmaplane_ctx *ctx, int fd,
		    struct dmaplane_commit *commit, struct dmaplane_buffer **out)
{
	struct dmaplane_buffer *buf;
	struct dma_buf *dmabuf;
	int ret;

	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	/* Devices write through dmaplane buffers: read-only is not enough. */
	if (!(dmabuf->file->f_mode & FMODE_WRITE) ||
	    !PAGE_ALIGNED(dmabuf->size)) {
		ret = dmabuf->file->f_mode & FMODE_WRITE ? -EINVAL : -EACCES;
		dma_buf_put(dmabuf);
		return ret;
	}
	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf) {
		dma_buf_put(dmabuf);
		return -ENOMEM;
	}
	/* From here the release op undoes everything, also half done. */
	dmaplane_buffer_init(buf, DMAPLANE_KIND_IMPORT, dmabuf->size);
	buf->import_dmabuf = dmabuf;
	buf->result_flags = DMAPLANE_BUF_RES_IMPORTED;
	buf->dma_dev = dmaplane_dma_dev(NUMA_NO_NODE);
	ret = dmaplane_import_attach(buf);
	if (ret) {
		dmaplane_buffer_put(buf);
		return ret;
	}
	ret = dmaplane_buffer_reserve(ctx, buf, commit);
	if (!ret)
		*out = buf;
	return ret;
}

int dmaplane_ioc_import_dmabuf(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit)
{
	struct dmaplane_import_dmabuf *req = arg;
	struct dmaplane_buffer *buf;
	int ret;

	if (req->flags & ~DMAPLANE_IMPORT_VALID_FLAGS)
		return -EINVAL;
	ret = dmaplane_import(ctx, req->fd, commit, &buf);
	if (ret)
		return ret;
	req->handle = buf->obj.handle;
	req->result_flags = buf->result_flags;
	req->size = buf->size;
	req->mmap_offset = dmaplane_mmap_offset(buf->obj.handle);
	return 0;
}
