// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf importer: a foreign dma-buf (udmabuf, a dma-heap, a GPU driver,
 * another dmaplane file) as a buffer handle, mapped for the module's DMA
 * device.
 *
 * A dma-buf imported several times (by any files) is attached and mapped
 * once; the attachment goes with its last import. An exporter that can
 * move its memory (a dynamic exporter) is attached with move_notify: when
 * it moves or revokes the memory, the mapping is dropped under its
 * reservation lock, every import of it is marked revoked and every later
 * use of those fails with -ENODEV (a new import maps it again, where the
 * exporter allows). Any other exporter's memory is pinned for as long as
 * an import lives.
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

/*
 * One attachment per imported dma-buf, shared by every import of it from
 * any file: an exporter maps each attachment for its device, and two
 * mappings of one memory for one device are what DMA-API debug refuses
 * (and what no hardware needs).
 */
struct dmaplane_import_att {
	struct list_head node;		/* dmaplane_import_atts */
	unsigned int users;		/* imports holding it */
	struct dma_buf *dmabuf;		/* a reference */
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;		/* NULL once moved; under the resv */
	struct list_head buffers;	/* the imports; under the resv */
};

/* The list and every att's @users; taken outside any dma-buf's resv. */
static DEFINE_MUTEX(dmaplane_import_lock);
static LIST_HEAD(dmaplane_import_atts);

/*
 * The exporter moves or revokes the memory; its reservation lock is held.
 * Every import of it is revoked: later uses fail with -ENODEV.
 */
static void dmaplane_import_move_notify(struct dma_buf_attachment *attach)
{
	struct dmaplane_import_att *att = attach->importer_priv;
	struct dmaplane_buffer *buf;

	if (att->sgt) {
		dma_buf_unmap_attachment(attach, att->sgt, DMA_BIDIRECTIONAL);
		att->sgt = NULL;
	}
	list_for_each_entry(buf, &att->buffers, import_node) {
		if (!buf->revoked)
			atomic64_inc(&dmaplane_stats.revocations);
		WRITE_ONCE(buf->revoked, true);
	}
}

static const struct dma_buf_attach_ops dmaplane_importer_ops = {
	.allow_peer2peer = false,
	.move_notify = dmaplane_import_move_notify,
};

/* Unmap and detach @att. dmaplane_import_lock held, no imports left. */
static void dmaplane_import_att_free(struct dmaplane_import_att *att)
{
	struct dma_buf *dmabuf = att->dmabuf;

	list_del(&att->node);
	dma_resv_lock(dmabuf->resv, NULL);
	if (att->sgt)
		dma_buf_unmap_attachment(att->attach, att->sgt,
					 DMA_BIDIRECTIONAL);
	dma_resv_unlock(dmabuf->resv);
	dma_buf_detach(dmabuf, att->attach);
	dma_buf_put(dmabuf);
	kfree(att);
}

void dmaplane_import_release(struct dmaplane_buffer *buf)
{
	struct dmaplane_import_att *att = buf->import_att;
	struct dma_buf *dmabuf = buf->import_dmabuf;

	if (!dmabuf)
		return;
	if (att) {
		mutex_lock(&dmaplane_import_lock);
		dma_resv_lock(dmabuf->resv, NULL);
		list_del(&buf->import_node);
		dma_resv_unlock(dmabuf->resv);
		if (!--att->users)
			dmaplane_import_att_free(att);
		mutex_unlock(&dmaplane_import_lock);
	}
	dma_buf_put(dmabuf);
}

unsigned int dmaplane_import_segments(struct dmaplane_buffer *buf)
{
	unsigned int n;

	dma_resv_lock(buf->import_dmabuf->resv, NULL);
	n = buf->import_att->sgt && !buf->revoked ?
	    buf->import_att->sgt->nents : 0;
	dma_resv_unlock(buf->import_dmabuf->resv);
	return n;
}

/* A new attachment of @dmabuf for the module's DMA device, not mapped. */
static struct dmaplane_import_att *dmaplane_import_att_new(struct dma_buf *dmabuf)
{
	struct device *dev = dmaplane_dma_dev(NUMA_NO_NODE);
	struct dmaplane_import_att *att;

	att = kzalloc(sizeof(*att), GFP_KERNEL_ACCOUNT);
	if (!att)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&att->buffers);
	if (dma_buf_is_dynamic(dmabuf))
		att->attach = dma_buf_dynamic_attach(dmabuf, dev,
						     &dmaplane_importer_ops,
						     att);
	else
		att->attach = dma_buf_attach(dmabuf, dev);
	if (IS_ERR(att->attach)) {
		int ret = PTR_ERR(att->attach);

		kfree(att);
		return ERR_PTR(ret);
	}
	get_dma_buf(dmabuf);
	att->dmabuf = dmabuf;
	list_add_tail(&att->node, &dmaplane_import_atts);
	return att;
}

/*
 * Join @buf to its dma-buf's attachment (made on the first import) and
 * map it, unless it is mapped already.
 */
static int dmaplane_import_attach(struct dmaplane_buffer *buf)
{
	struct dma_buf *dmabuf = buf->import_dmabuf;
	struct dmaplane_import_att *att;
	struct sg_table *sgt;
	int ret = 0;

	mutex_lock(&dmaplane_import_lock);
	list_for_each_entry(att, &dmaplane_import_atts, node)
		if (att->dmabuf == dmabuf)
			goto found;
	att = dmaplane_import_att_new(dmabuf);
	if (IS_ERR(att)) {
		ret = PTR_ERR(att);
		goto out;
	}
found:
	att->users++;
	buf->import_att = att;
	if (dma_buf_is_dynamic(dmabuf))
		buf->result_flags |= DMAPLANE_BUF_RES_DYNAMIC;
	dma_resv_lock(dmabuf->resv, NULL);
	list_add_tail(&buf->import_node, &att->buffers);
	/* The first import, or the first since the exporter moved it. */
	if (!att->sgt) {
		sgt = dma_buf_map_attachment(att->attach, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt))
			ret = PTR_ERR(sgt);
		else
			att->sgt = sgt;
	}
	dma_resv_unlock(dmabuf->resv);
out:
	mutex_unlock(&dmaplane_import_lock);
	return ret;
}

int dmaplane_import_mmap(struct dmaplane_buffer *buf,
			 struct vm_area_struct *vma)
{
	if (READ_ONCE(buf->revoked))
		return -ENODEV;
	dmaplane_vma_restrict(vma);
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
