/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmaplane module internals shared between its files.
 */
#ifndef _DMAPLANE_H
#define _DMAPLANE_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <uapi/linux/dmaplane.h>

#define DMAPLANE_MODULE_VERSION "0.1.0"

/* Module parameters (main.c). */
extern unsigned long dmaplane_max_buffer_size;
extern unsigned long dmaplane_max_total_bytes;
extern unsigned int dmaplane_max_handles;

/* Device-wide counters, read by GET_INFO and debugfs; all atomics. */
struct dmaplane_stats {
	atomic_t open_contexts;
	atomic_t buffers;
	atomic64_t buffer_bytes;
	atomic64_t ioctls;
};

extern struct dmaplane_stats dmaplane_stats;

enum dmaplane_obj_type {
	DMAPLANE_OBJ_BUFFER = 1,
};

struct dmaplane_obj;

struct dmaplane_obj_ops {
	/* Called when the last reference is dropped; frees the object. */
	void (*release)(struct dmaplane_obj *obj);
};

/*
 * Every handle-table entry embeds this. The table holds one reference;
 * lookups take their own with kref_get_unless_zero() under the xa_lock.
 */
struct dmaplane_obj {
	struct kref ref;
	enum dmaplane_obj_type type;
	u32 handle;
	const struct dmaplane_obj_ops *ops;
};

/*
 * Per-open-file context.
 *
 * @handles maps u32 handles to struct dmaplane_obj. An entry is first
 * reserved (NULL, invisible to lookups) and published only once its handle
 * reached userspace, so a failed copy_to_user() never leaves an object the
 * caller cannot name. All table updates take the xarray's own lock.
 */
struct dmaplane_ctx {
	struct xarray handles;
	u32 next_handle;	/* cyclic allocation cursor, under xa_lock */
	u32 max_handles;	/* max_handles parameter at open time */
};

/* ctx.c */
struct dmaplane_ctx *dmaplane_ctx_create(void);
void dmaplane_ctx_destroy(struct dmaplane_ctx *ctx);
void dmaplane_obj_init(struct dmaplane_obj *obj, enum dmaplane_obj_type type,
		       const struct dmaplane_obj_ops *ops);
void dmaplane_obj_put(struct dmaplane_obj *obj);
int dmaplane_ctx_reserve(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj);
void dmaplane_ctx_publish(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj);
void dmaplane_ctx_abort(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj);
int dmaplane_ctx_remove(struct dmaplane_ctx *ctx, u32 handle,
			enum dmaplane_obj_type type);

/*
 * A handler validates and executes one command on a kernel copy of its
 * argument. A handler that creates an object reserves its handle and returns
 * it in *@created; the dispatcher publishes it once the argument (holding
 * the handle) reached userspace, and destroys it otherwise.
 */
typedef int (*dmaplane_ioctl_fn)(struct dmaplane_ctx *ctx, void *arg,
				 struct dmaplane_obj **created);

struct dmaplane_ioctl_desc {
	unsigned int cmd;	/* full command: direction, size, number */
	unsigned int min_size;	/* size of the command's first UAPI version */
	dmaplane_ioctl_fn fn;
};

/* ioctl.c */
long dmaplane_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
#if IS_ENABLED(CONFIG_KUNIT)
const struct dmaplane_ioctl_desc *dmaplane_ioctl_lookup(unsigned int cmd);
#endif

/* buffer.c */
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_buffer_size(u64 requested, u64 max, u64 *rounded);
int dmaplane_charge(atomic64_t *total, u64 bytes, u64 limit);
#endif
int dmaplane_ioc_buffer_create(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_obj **created);
int dmaplane_ioc_buffer_destroy(struct dmaplane_ctx *ctx, void *arg,
				struct dmaplane_obj **created);

/* rdma_dev.c */
int dmaplane_rdma_init(void);
void dmaplane_rdma_exit(void);
unsigned int dmaplane_rdma_device_count(void);

/* debugfs.c */
void dmaplane_debugfs_init(void);
void dmaplane_debugfs_exit(void);

/* main.c */
void dmaplane_fill_info(struct dmaplane_info *info);

#endif /* _DMAPLANE_H */
