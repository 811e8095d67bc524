// SPDX-License-Identifier: GPL-2.0
/*
 * Per-open-file context: the handle table.
 *
 * Handles are allocated cyclically from 1..max_handles in a per-file xarray,
 * so they mean nothing outside the file that created them and a destroyed
 * handle is not handed out again right away.
 */
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

struct dmaplane_ctx *dmaplane_ctx_create(void)
{
	struct dmaplane_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return NULL;
	xa_init_flags(&ctx->handles, XA_FLAGS_ALLOC1);
	ctx->max_handles = dmaplane_max_handles;
	ctx->max_bytes = dmaplane_max_file_bytes;
	atomic_inc(&dmaplane_stats.open_contexts);
	return ctx;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_create);

void dmaplane_ctx_destroy(struct dmaplane_ctx *ctx)
{
	struct dmaplane_obj *obj;
	unsigned long handle;

	/* Reserved (unpublished) slots are skipped by xa_for_each(). */
	xa_for_each(&ctx->handles, handle, obj) {
		xa_erase(&ctx->handles, handle);
		dmaplane_ctx_uncharge(ctx, obj);
		dmaplane_obj_put(obj);
	}
	xa_destroy(&ctx->handles);
	atomic_dec(&dmaplane_stats.open_contexts);
	kfree(ctx);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_destroy);

void dmaplane_obj_init(struct dmaplane_obj *obj, enum dmaplane_obj_type type,
		       const struct dmaplane_obj_ops *ops)
{
	kref_init(&obj->ref);
	obj->type = type;
	obj->ops = ops;
	obj->handle = 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_obj_init);

static void dmaplane_obj_release(struct kref *ref)
{
	struct dmaplane_obj *obj = container_of(ref, struct dmaplane_obj, ref);

	obj->ops->release(obj);
}

void dmaplane_obj_put(struct dmaplane_obj *obj)
{
	kref_put(&obj->ref, dmaplane_obj_release);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_obj_put);

/*
 * Reserve a handle for @obj without making it visible to lookups.
 * Returns 0 with obj->handle set, or -EMFILE when the table is full.
 */
int dmaplane_ctx_reserve(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj)
{
	u32 handle;
	int ret;

	ret = xa_alloc_cyclic(&ctx->handles, &handle, NULL,
			      XA_LIMIT(1, ctx->max_handles),
			      &ctx->next_handle, GFP_KERNEL_ACCOUNT);
	if (ret == -EBUSY)
		return -EMFILE;
	if (ret < 0)
		return ret;
	obj->handle = handle;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_reserve);

/* Make a reserved handle visible; the table takes over the caller's ref. */
void dmaplane_ctx_publish(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj)
{
	/* Overwriting a reserved slot allocates nothing, so it cannot fail. */
	WARN_ON(xa_err(xa_store(&ctx->handles, obj->handle, obj, GFP_KERNEL)));
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_publish);

/*
 * Charge @bytes of @obj to the file's max_file_bytes: -EDQUOT when that
 * would pass it. The charge goes with the handle (dmaplane_ctx_uncharge()).
 */
int dmaplane_ctx_charge(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj,
			u64 bytes)
{
	if (dmaplane_charge(&ctx->bytes, bytes, ctx->max_bytes))
		return -EDQUOT;
	obj->file_bytes = bytes;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_charge);

void dmaplane_ctx_uncharge(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj)
{
	atomic64_sub(obj->file_bytes, &ctx->bytes);
	obj->file_bytes = 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_uncharge);

/* Drop a reserved handle and the caller's reference to @obj. */
void dmaplane_ctx_abort(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj)
{
	xa_erase(&ctx->handles, obj->handle);
	dmaplane_ctx_uncharge(ctx, obj);
	dmaplane_obj_put(obj);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_abort);

/*
 * Remove @handle from the table and drop the table's reference.
 * -ENOENT when @handle is not a published object of @type in this file,
 * -EBUSY while the object's busy op says it is in use.
 */
int dmaplane_ctx_remove(struct dmaplane_ctx *ctx, u32 handle,
			enum dmaplane_obj_type type)
{
	struct dmaplane_obj *obj;

	xa_lock(&ctx->handles);
	obj = xa_load(&ctx->handles, handle);
	if (!obj || obj->type != type) {
		xa_unlock(&ctx->handles);
		return -ENOENT;
	}
	if (obj->ops->busy && obj->ops->busy(obj)) {
		xa_unlock(&ctx->handles);
		return -EBUSY;
	}
	__xa_erase(&ctx->handles, handle);
	xa_unlock(&ctx->handles);

	dmaplane_ctx_uncharge(ctx, obj);
	dmaplane_obj_put(obj);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_remove);

/*
 * The published object @handle of @type with a reference for the caller,
 * or NULL. The reference keeps the object, not its handle.
 */
struct dmaplane_obj *dmaplane_ctx_lookup(struct dmaplane_ctx *ctx, u32 handle,
					 enum dmaplane_obj_type type)
{
	struct dmaplane_obj *obj;

	xa_lock(&ctx->handles);
	obj = xa_load(&ctx->handles, handle);
	if (obj && (obj->type != type || !kref_get_unless_zero(&obj->ref)))
		obj = NULL;
	xa_unlock(&ctx->handles);
	return obj;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ctx_lookup);
