// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf exporter: any dmaplane buffer (not an import) as a dma-buf fd.
 *
 * Each EXPORT_DMABUF makes a new dma-buf holding a buffer reference. The
 * buffer is mapped once per importing device (a dmaplane_dev_map), and
 * every attachment on that device, of any of its dma-bufs, gets its own
 * copy of that mapping's scatterlist: the hardware needs no more, and
 * DMA-API debug rightly refuses more than a few overlapping mappings of
 * one cacheline (importing one dma-buf eight times would be eight). The
 * mappings skip the CPU sync at map time (as DRM's exporters do): the
 * pages are already mapped for the module's own device, and
 * begin/end_cpu_access sync every live mapping instead.
 *
 * The exporter is dynamic (pin/unpin), so importers that can move are told
 * through move_notify when the owner revokes the buffer (BUFFER_REVOKE).
 * GPU memory is mapped for importers by its provider and may be taken back
 * at any time: only importers that can be told (move_notify) may attach.
 *
 * Locking: buf->lock serialises attach/detach against revoke (an export's
 * revoked flag and static attachment count); the dma-buf's reservation
 * lock, taken inside it, covers each attachment's mapping state and the
 * attachment list; buf->map_lock, inside that, the device mappings.
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/file.h>
#include <linux/iosys-map.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <kunit/visibility.h>

#include "dmaplane.h"
#include "gpu.h"

MODULE_IMPORT_NS(DMA_BUF);

struct dmaplane_export {
	struct dmaplane_buffer *buf;	/* a reference */
	struct dma_buf *dmabuf;
	struct list_head node;		/* buf->export_list */
	bool revoked;			/* buf->lock and the resv to set */
	unsigned int static_attachments; /* without move_notify; buf->lock */
	void *vaddr;			/* vmap, serialised by the dma-buf core */
};

/* The buffer mapped for one device; buf->map_lock. */
struct dmaplane_dev_map {
	struct list_head node;		/* buf->dev_maps */
	struct device *dev;
	struct sg_table sgt;		/* DMA_BIDIRECTIONAL */
	unsigned int users;		/* attachments mapped through it */
};

struct dmaplane_attachment {
	struct dmaplane_dev_map *map;	/* while mapped; under the resv */
};

/* @buf mapped for @dev: the existing mapping, or a new one. map_lock held. */
static struct dmaplane_dev_map *dmaplane_dev_map_get(struct dmaplane_buffer *buf,
						     struct device *dev)
{
	struct dmaplane_dev_map *m;
	int ret;

	list_for_each_entry(m, &buf->dev_maps, node) {
		if (m->dev == dev) {
			m->users++;
			return m;
		}
	}
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return ERR_PTR(-ENOMEM);
	if (buf->kind == DMAPLANE_KIND_GPU) {
		ret = buf->gpu->ops->map(buf->gpu, dev, 0, buf->size, &m->sgt);
		if (ret)
			goto err_free;
	} else {
		ret = dmaplane_build_sgt(buf, dev, &m->sgt);
		if (ret)
			goto err_free;
		ret = dma_map_sgtable(dev, &m->sgt, DMA_BIDIRECTIONAL,
				      DMA_ATTR_SKIP_CPU_SYNC);
		if (ret)
			goto err_free_table;
	}
	m->dev = dev;
	m->users = 1;
	list_add_tail(&m->node, &buf->dev_maps);
	return m;

err_free_table:
	sg_free_table(&m->sgt);
err_free:
	kfree(m);
	return ERR_PTR(ret);
}

/* The last attachment on @m's device is unmapped. map_lock held. */
static void dmaplane_dev_map_put(struct dmaplane_buffer *buf,
				 struct dmaplane_dev_map *m)
{
	if (--m->users)
		return;
	list_del(&m->node);
	if (buf->kind == DMAPLANE_KIND_GPU) {
		buf->gpu->ops->unmap(buf->gpu, m->dev, &m->sgt);
	} else {
		dma_unmap_sgtable(m->dev, &m->sgt, DMA_BIDIRECTIONAL,
				  DMA_ATTR_SKIP_CPU_SYNC);
		sg_free_table(&m->sgt);
	}
	kfree(m);
}

/*
 * An importer's own copy of @src (pages and DMA addresses): the dma-buf
 * core may scramble the page links of every table it hands out.
 */
static struct sg_table *dmaplane_sgt_copy(const struct sg_table *src)
{
	struct scatterlist *s, *d;
	struct sg_table *sgt;
	int i;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	if (sg_alloc_table(sgt, src->orig_nents, GFP_KERNEL_ACCOUNT)) {
		kfree(sgt);
		return ERR_PTR(-ENOMEM);
	}
	d = sgt->sgl;
	for_each_sgtable_sg(src, s, i) {
		if (sg_page(s))
			sg_set_page(d, sg_page(s), s->length, s->offset);
		sg_dma_address(d) = sg_dma_address(s);
		sg_dma_len(d) = sg_dma_len(s);
		d = sg_next(d);
	}
	sgt->nents = src->nents;
	return sgt;
}

static int dmaplane_dmabuf_attach(struct dma_buf *dmabuf,
				  struct dma_buf_attachment *attach)
{
	struct dmaplane_export *exp = dmabuf->priv;
	struct dmaplane_buffer *buf = exp->buf;
	struct dmaplane_attachment *a;
	int ret = 0;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	mutex_lock(&buf->lock);
	if (exp->revoked) {
		ret = -ENODEV;
	} else if (buf->kind == DMAPLANE_KIND_GPU && !attach->importer_ops) {
		ret = -EOPNOTSUPP;
	} else {
		attach->priv = a;
		if (!attach->importer_ops)
			exp->static_attachments++;
		atomic_inc(&buf->attachments);
		atomic_inc(&dmaplane_stats.attachments);
	}
	mutex_unlock(&buf->lock);
	if (ret)
		kfree(a);
	return ret;
}

static void dmaplane_dmabuf_detach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attach)
{
	struct dmaplane_export *exp = dmabuf->priv;
	struct dmaplane_buffer *buf = exp->buf;

	mutex_lock(&buf->lock);
	if (!attach->importer_ops)
		exp->static_attachments--;
	atomic_dec(&buf->attachments);
	atomic_dec(&dmaplane_stats.attachments);
	mutex_unlock(&buf->lock);
	kfree(attach->priv);
}

/* The memory never moves on its own: pinning only has to refuse revoked. */
static int dmaplane_dmabuf_pin(struct dma_buf_attachment *attach)
{
	struct dmaplane_export *exp = attach->dmabuf->priv;

	return exp->revoked ? -ENODEV : 0;
}

static void dmaplane_dmabuf_unpin(struct dma_buf_attachment *attach)
{
}

static struct sg_table *dmaplane_dmabuf_map(struct dma_buf_attachment *attach,
					    enum dma_data_direction dir)
{
	struct dmaplane_export *exp = attach->dmabuf->priv;
	struct dmaplane_attachment *a = attach->priv;
	struct dmaplane_buffer *buf = exp->buf;
	struct dmaplane_dev_map *m;
	struct sg_table *sgt;

	dma_resv_assert_held(attach->dmabuf->resv);
	if (exp->revoked)
		return ERR_PTR(-ENODEV);
	if (a->map)
		return ERR_PTR(-EBUSY);
	mutex_lock(&buf->map_lock);
	m = dmaplane_dev_map_get(buf, attach->dev);
	if (IS_ERR(m)) {
		sgt = ERR_CAST(m);
		goto out;
	}
	sgt = dmaplane_sgt_copy(&m->sgt);
	if (IS_ERR(sgt))
		dmaplane_dev_map_put(buf, m);
	else
		a->map = m;
out:
	mutex_unlock(&buf->map_lock);
	return sgt;
}

static void dmaplane_dmabuf_unmap(struct dma_buf_attachment *attach,
				  struct sg_table *sgt,
				  enum dma_data_direction dir)
{
	struct dmaplane_export *exp = attach->dmabuf->priv;
	struct dmaplane_attachment *a = attach->priv;
	struct dmaplane_buffer *buf = exp->buf;

	sg_free_table(sgt);
	kfree(sgt);
	mutex_lock(&buf->map_lock);
	dmaplane_dev_map_put(buf, a->map);
	mutex_unlock(&buf->map_lock);
	a->map = NULL;
}

/* Sync the buffer's own mapping and every device's, for the CPU or back. */
static int dmaplane_dmabuf_sync(struct dma_buf *dmabuf, bool for_cpu)
{
	struct dmaplane_export *exp = dmabuf->priv;
	struct dmaplane_buffer *buf = exp->buf;
	struct dmaplane_dev_map *m;

	/* Device memory: no CPU cache between it and the devices. */
	if (buf->kind == DMAPLANE_KIND_GPU)
		return 0;
	if (buf->dma_mapped) {
		if (for_cpu)
			dma_sync_sgtable_for_cpu(buf->dma_dev, &buf->sgt,
						 DMA_BIDIRECTIONAL);
		else
			dma_sync_sgtable_for_device(buf->dma_dev, &buf->sgt,
						    DMA_BIDIRECTIONAL);
	}
	mutex_lock(&buf->map_lock);
	list_for_each_entry(m, &buf->dev_maps, node) {
		if (for_cpu)
			dma_sync_sgtable_for_cpu(m->dev, &m->sgt,
						 DMA_BIDIRECTIONAL);
		else
			dma_sync_sgtable_for_device(m->dev, &m->sgt,
						    DMA_BIDIRECTIONAL);
	}
	mutex_unlock(&buf->map_lock);
	return 0;
}

static int dmaplane_dmabuf_begin_cpu(struct dma_buf *dmabuf,
				     enum dma_data_direction dir)
{
	return dmaplane_dmabuf_sync(dmabuf, true);
}

static int dmaplane_dmabuf_end_cpu(struct dma_buf *dmabuf,
				   enum dma_data_direction dir)
{
	return dmaplane_dmabuf_sync(dmabuf, false);
}

static int dmaplane_dmabuf_mmap(struct dma_buf *dmabuf,
				struct vm_area_struct *vma)
{
	struct dmaplane_export *exp = dmabuf->priv;
	int ret = dmaplane_vma_check(vma);

	if (!ret && READ_ONCE(exp->revoked))
		ret = -ENODEV;
	return ret ? ret : dmaplane_buffer_mmap(exp->buf, vma);
}

static int dmaplane_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct dmaplane_export *exp = dmabuf->priv;
	struct dmaplane_buffer *buf = exp->buf;

	if (buf->kind == DMAPLANE_KIND_COHERENT) {
		iosys_map_set_vaddr(map, buf->cpu_addr);
		return 0;
	}
	if (buf->kind == DMAPLANE_KIND_GPU) {
		void *kva = buf->gpu->ops->kva ? buf->gpu->ops->kva(buf->gpu) :
			    NULL;

		if (!kva)
			return -EOPNOTSUPP;
		iosys_map_set_vaddr(map, kva);
		return 0;
	}
	exp->vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!exp->vaddr)
		return -ENOMEM;
	iosys_map_set_vaddr(map, exp->vaddr);
	return 0;
}

static void dmaplane_dmabuf_vunmap(struct dma_buf *dmabuf,
				   struct iosys_map *map)
{
	struct dmaplane_export *exp = dmabuf->priv;

	if (exp->vaddr)
		vunmap(exp->vaddr);
	exp->vaddr = NULL;
}

static void dmaplane_dmabuf_release(struct dma_buf *dmabuf)
{
	struct dmaplane_export *exp = dmabuf->priv;
	struct dmaplane_buffer *buf = exp->buf;

	/* Importers hold the dma-buf while attached; say so if one did not. */
	if (!list_empty(&dmabuf->attachments)) {
		pr_warn_ratelimited("dmaplane: buffer %llu: dma-buf released with attachments\n",
				    buf->id);
		atomic64_inc(&dmaplane_stats.released_attached);
	}
	mutex_lock(&buf->lock);
	list_del(&exp->node);
	mutex_unlock(&buf->lock);
	atomic_dec(&buf->exports);
	atomic_dec(&dmaplane_stats.exports);
	dmaplane_buffer_put(buf);
	kfree(exp);
}

static const struct dma_buf_ops dmaplane_dmabuf_ops = {
	.attach = dmaplane_dmabuf_attach,
	.detach = dmaplane_dmabuf_detach,
	.pin = dmaplane_dmabuf_pin,
	.unpin = dmaplane_dmabuf_unpin,
	.map_dma_buf = dmaplane_dmabuf_map,
	.unmap_dma_buf = dmaplane_dmabuf_unmap,
	.begin_cpu_access = dmaplane_dmabuf_begin_cpu,
	.end_cpu_access = dmaplane_dmabuf_end_cpu,
	.mmap = dmaplane_dmabuf_mmap,
	.vmap = dmaplane_dmabuf_vmap,
	.vunmap = dmaplane_dmabuf_vunmap,
	.release = dmaplane_dmabuf_release,
};

/* A new dma-buf over @buf; it takes a reference of its own. */
VISIBLE_IF_KUNIT struct dma_buf *dmaplane_export(struct dmaplane_buffer *buf,
						 bool read_only)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct dmaplane_export *exp;
	struct dma_buf *dmabuf;

	if (buf->kind == DMAPLANE_KIND_IMPORT)
		return ERR_PTR(-EINVAL);
	if (READ_ONCE(buf->revoked))
		return ERR_PTR(-ENODEV);
	exp = kzalloc(sizeof(*exp), GFP_KERNEL);
	if (!exp)
		return ERR_PTR(-ENOMEM);
	kref_get(&buf->obj.ref);
	exp->buf = buf;
	info.ops = &dmaplane_dmabuf_ops;
	info.size = buf->size;
	info.flags = read_only ? O_RDONLY : O_RDWR;
	info.priv = exp;
	dmabuf = dma_buf_export(&info);
	if (IS_ERR(dmabuf)) {
		dmaplane_buffer_put(buf);
		kfree(exp);
		return dmabuf;
	}
	exp->dmabuf = dmabuf;
	mutex_lock(&buf->lock);
	list_add_tail(&exp->node, &buf->export_list);
	mutex_unlock(&buf->lock);
	atomic_inc(&buf->exports);
	atomic_inc(&dmaplane_stats.exports);
	return dmabuf;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_export);

int dmaplane_ioc_export_dmabuf(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit)
{
	struct dmaplane_export_dmabuf *req = arg;
	struct dmaplane_buffer *buf;
	struct dma_buf *dmabuf;
	int fd;

	if (req->flags & ~DMAPLANE_EXPORT_VALID_FLAGS || req->reserved)
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, req->handle);
	if (!buf)
		return -ENOENT;
	dmabuf = dmaplane_export(buf, req->flags & DMAPLANE_EXPORT_READ_ONLY);
	dmaplane_buffer_put(buf);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	fd = get_unused_fd_flags(req->flags & DMAPLANE_EXPORT_CLOEXEC ?
				 O_CLOEXEC : 0);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	/* Installed by the dispatcher once the fd number reached userspace. */
	req->fd = fd;
	commit->fd = fd;
	commit->file = dmabuf->file;
	return 0;
}

/*
 * Revoke every dma-buf exported from @buf: importers that can move drop
 * their mappings (move_notify), later attachments and mappings fail with
 * -ENODEV. -EBUSY, and nothing revoked, while an importer that cannot be
 * told is attached.
 */
int dmaplane_revoke(struct dmaplane_buffer *buf, u32 *revoked)
{
	struct dmaplane_export *exp;
	int ret = 0;

	*revoked = 0;
	mutex_lock(&buf->lock);
	list_for_each_entry(exp, &buf->export_list, node)
		if (exp->static_attachments)
			ret = -EBUSY;
	list_for_each_entry(exp, &buf->export_list, node) {
		if (ret || exp->revoked)
			continue;
		dma_resv_lock(exp->dmabuf->resv, NULL);
		exp->revoked = true;
		dma_buf_move_notify(exp->dmabuf);
		dma_resv_unlock(exp->dmabuf->resv);
		(*revoked)++;
	}
	mutex_unlock(&buf->lock);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_revoke);

int dmaplane_ioc_buffer_revoke(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit)
{
	struct dmaplane_revoke *req = arg;
	struct dmaplane_buffer *buf;
	int ret;

	if (req->flags & ~DMAPLANE_REVOKE_VALID_FLAGS || req->reserved)
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, req->handle);
	if (!buf)
		return -ENOENT;
	ret = buf->kind == DMAPLANE_KIND_IMPORT ? -EINVAL :
	      dmaplane_revoke(buf, &req->exports);
	dmaplane_buffer_put(buf);
	return ret;
}
