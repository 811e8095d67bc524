/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmaplane module internals shared between its files.
 */
#ifndef _DMAPLANE_H
#define _DMAPLANE_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/kref.h>
#include <linux/mm_types.h>
#include <linux/scatterlist.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <uapi/linux/dmaplane.h>

#define DMAPLANE_MODULE_VERSION "0.1.0"

/* Module parameters (main.c). */
extern unsigned long dmaplane_max_buffer_size;
extern unsigned long dmaplane_max_total_bytes;
extern unsigned long dmaplane_max_file_bytes;
extern unsigned int dmaplane_max_handles;

/* Upper bounds the mmap offset encoding (DMAPLANE_MMAP_SHIFT) leaves room for. */
#define DMAPLANE_MAX_HANDLES_LIMIT	BIT(20)
#define DMAPLANE_MAX_BUFFER_LIMIT	BIT_ULL(DMAPLANE_MMAP_SHIFT)

/* Device-wide counters, read by GET_INFO and debugfs; all atomics. */
struct dmaplane_stats {
	atomic_t open_contexts;
	atomic_t buffers;
	atomic64_t buffer_bytes;
	atomic64_t ioctls;
	atomic_t mappings;		/* live mmaps of buffers */
	atomic64_t pinned_pages;	/* user pages pinned now */
	atomic64_t memlock_denied;	/* USER creates over RLIMIT_MEMLOCK */
	atomic64_t numa_pages_on_node;	/* pages placed on the node asked for */
	atomic64_t numa_pages_off_node;	/* pages a preferred node could not hold */
	atomic64_t numa_strict_failures; /* strict creates refused */
	atomic64_t huge_chunks;		/* 2 MiB chunks allocated */
	atomic64_t huge_fallback_chunks; /* 2 MiB chunks that became 4 KiB pages */
	atomic_t exports;		/* live dma-bufs exported */
	atomic_t attachments;		/* devices attached to them */
	atomic64_t revocations;		/* imports told their memory moved */
	atomic64_t released_attached;	/* exports released with attachments */
	atomic_t endpoints;		/* live RDMA endpoints */
	atomic_t mrs;			/* live registrations */
	atomic64_t mr_dereg_no_inv;	/* MRs freed without LOCAL_INV (QP down) */
	atomic64_t ops_posted;		/* operations posted (NOOP included) */
	atomic64_t op_bytes;		/* bytes of successful operations */
	atomic64_t op_errors;		/* operations completed with an error */
	atomic64_t handshakes_refused;	/* connections without a dmaplane hello */
	atomic64_t peer_errors;		/* connections a peer broke the protocol on */
	atomic64_t gpu_pinned_bytes;	/* GPU memory pinned now */
	atomic64_t gpu_revocations;	/* pinned ranges their provider took back */
};

extern struct dmaplane_stats dmaplane_stats;

enum dmaplane_obj_type {
	DMAPLANE_OBJ_BUFFER = 1,
	DMAPLANE_OBJ_ENDPOINT,
	DMAPLANE_OBJ_MR,
};

struct dmaplane_obj;
struct dmaplane_import_att;

struct dmaplane_obj_ops {
	/* Called when the last reference is dropped; frees the object. */
	void (*release)(struct dmaplane_obj *obj);
	/* Optional: true while the object may not lose its handle (-EBUSY). */
	bool (*busy)(struct dmaplane_obj *obj);
};

/*
 * Every handle-table entry embeds this. The table holds one reference;
 * lookups take their own with kref_get_unless_zero() under the xa_lock.
 */
struct dmaplane_obj {
	struct kref ref;
	enum dmaplane_obj_type type;
	u32 handle;
	u64 file_bytes;		/* charged to the file while it has a handle */
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
	atomic64_t bytes;	/* file_bytes of the objects it names */
	u64 max_bytes;		/* max_file_bytes at open time */
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
struct dmaplane_obj *dmaplane_ctx_lookup(struct dmaplane_ctx *ctx, u32 handle,
					 enum dmaplane_obj_type type);
int dmaplane_ctx_charge(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj,
			u64 bytes);
void dmaplane_ctx_uncharge(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj);

/*
 * What a handler leaves for the dispatcher to finish once the argument has
 * reached userspace, and to undo if it could not: an object whose reserved
 * handle is published (@created), and a file installed at a reserved fd
 * (@file at @fd). Nothing a caller cannot name is ever left behind.
 */
struct dmaplane_commit {
	struct dmaplane_obj *created;
	struct file *file;
	int fd;
};

/* A handler validates and executes one command on a kernel copy of its argument. */
typedef int (*dmaplane_ioctl_fn)(struct dmaplane_ctx *ctx, void *arg,
				 struct dmaplane_commit *commit);

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

/* The backing a buffer was created with. */
enum dmaplane_buf_kind {
	DMAPLANE_KIND_PAGES,
	DMAPLANE_KIND_COHERENT,
	DMAPLANE_KIND_HUGE,
	DMAPLANE_KIND_USER,
	DMAPLANE_KIND_IMPORT,
	DMAPLANE_KIND_GPU,
};

#define DMAPLANE_HUGE_ORDER	(PMD_SHIFT - PAGE_SHIFT)

/*
 * A buffer. Immutable once created, except where a field says otherwise.
 * The handle table, every mmap and every dma-buf exported from it (later
 * MRs too) hold a reference; the memory goes with the last one.
 *
 * @pages lists every PAGE_SIZE page in order, whatever the backing. @sgt
 * merges physically contiguous runs; for PAGES, HUGE and USER it is mapped
 * for @dma_dev (streaming, bidirectional) for the buffer's lifetime; for
 * COHERENT it describes the coherent allocation at @cpu_addr/@dma_addr.
 * An IMPORT has no pages: @import_att maps the foreign dma-buf for the
 * module's DMA device, shared with every other import of that dma-buf. A
 * GPU buffer has none either: @gpu is the pinned range, mapped per device
 * by its provider (gpu.h).
 */
struct dmaplane_buffer {
	struct dmaplane_obj obj;
	enum dmaplane_buf_kind kind;
	u32 flags;		/* DMAPLANE_BUF_* as created */
	u32 result_flags;	/* DMAPLANE_BUF_RES_* */
	int nid;		/* node asked for, or NUMA_NO_NODE */
	u64 id;			/* module-wide, names it in debugfs */
	u64 size;
	unsigned long nr_pages;
	unsigned long pages_on_node;
	unsigned long huge_chunks;
	struct page **pages;
	unsigned long *huge_map; /* HUGE: bit n set when chunk n is 2 MiB */
	struct sg_table sgt;
	struct device *dma_dev;
	bool dma_mapped;	/* @sgt is mapped for @dma_dev */
	void *cpu_addr;		/* COHERENT */
	dma_addr_t dma_addr;	/* COHERENT */
	struct mm_struct *pin_mm; /* USER: whose pinned_vm was charged */
	struct list_head node;	/* the module's buffer list (buffer.c) */
	atomic_t mappings;	/* live VMAs */
	atomic_t exports;	/* live dma-bufs exported from it */
	atomic_t attachments;	/* devices attached to them */
	atomic_t mrs;		/* MRs registered over it */
	/*
	 * @lock serialises exporting, attaching and revoking: @export_list
	 * and each export's revoked flag and static attachment count; and
	 * registering against revoking: @mr_list and a GPU buffer's @revoked.
	 * It nests outside a dma-buf's reservation lock and is never held
	 * while taking an endpoint's op_lock.
	 */
	struct mutex lock;
	struct list_head export_list;	/* struct dmaplane_export */
	struct list_head mr_list;	/* struct dmaplane_mr, buf_node */
	/*
	 * @map_lock covers @dev_maps, the exporter's one mapping per
	 * importing device (dmabuf_export.c); it nests inside a dma-buf's
	 * reservation lock.
	 */
	struct mutex map_lock;
	struct list_head dev_maps;	/* struct dmaplane_dev_map */
	struct dmaplane_gpu_range *gpu;	/* GPU */
	/*
	 * IMPORT: @import_node (on @import_att's list) and @revoked are under
	 * the dma-buf's resv. GPU: @revoked is set under @lock, once.
	 */
	struct dma_buf *import_dmabuf;
	struct dmaplane_import_att *import_att;
	struct list_head import_node;
	bool revoked;
};

/* buffer.c */
int dmaplane_buffer_size(u64 requested, u64 max, u64 align, u64 *rounded);
int dmaplane_charge(atomic64_t *total, u64 bytes, u64 limit);
struct dmaplane_buffer *dmaplane_buffer_lookup(struct dmaplane_ctx *ctx,
					       u32 handle);
void dmaplane_buffer_put(struct dmaplane_buffer *buf);
void dmaplane_buffer_init(struct dmaplane_buffer *buf,
			  enum dmaplane_buf_kind kind, u64 size);
int dmaplane_buffer_alloc(struct dmaplane_buffer_create *req,
			  struct dmaplane_ctx *ctx,
			  struct dmaplane_buffer **out);
int dmaplane_buffer_reserve(struct dmaplane_ctx *ctx,
			    struct dmaplane_buffer *buf,
			    struct dmaplane_commit *commit);
int dmaplane_build_sgt(struct dmaplane_buffer *buf, struct device *dev,
		       struct sg_table *sgt);
typedef void (*dmaplane_buffer_fn)(struct dmaplane_buffer *buf, void *data);
void dmaplane_buffers_walk(dmaplane_buffer_fn fn, void *data);
int dmaplane_ioc_buffer_create(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit);
int dmaplane_ioc_buffer_destroy(struct dmaplane_ctx *ctx, void *arg,
				struct dmaplane_commit *commit);
int dmaplane_ioc_buffer_info(struct dmaplane_ctx *ctx, void *arg,
			     struct dmaplane_commit *commit);
int dmaplane_ioc_map_bench(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit);

/* buffer_alloc.c: the backings */
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_pin_charge(atomic64_t *pinned, u64 npages, u64 limit,
			bool unlimited);
#endif
int dmaplane_alloc_node_pages(struct page **pages, unsigned long n, int nid,
			      gfp_t gfp);
void dmaplane_free_node_pages(struct page **pages, unsigned long n);
int dmaplane_alloc_pages(struct dmaplane_buffer *buf, gfp_t node_gfp);
int dmaplane_alloc_huge(struct dmaplane_buffer *buf, gfp_t node_gfp);
int dmaplane_huge_sgt(struct dmaplane_buffer *buf, struct sg_table *sgt);
int dmaplane_alloc_coherent(struct dmaplane_buffer *buf, gfp_t node_gfp);
int dmaplane_pin_user(struct dmaplane_buffer *buf, u64 user_addr);
void dmaplane_free_backing(struct dmaplane_buffer *buf);

/* mmap.c */
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_mmap_window(unsigned long pgoff, unsigned long npages,
			 u32 *handle, unsigned long *first);
#endif
int dmaplane_mmap(struct file *file, struct vm_area_struct *vma);
int dmaplane_vma_check(struct vm_area_struct *vma);
void dmaplane_vma_restrict(struct vm_area_struct *vma);
int dmaplane_buffer_mmap(struct dmaplane_buffer *buf,
			 struct vm_area_struct *vma);
static inline u64 dmaplane_mmap_offset(u32 handle)
{
	return (u64)handle << DMAPLANE_MMAP_SHIFT;
}

/* numa.c */
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_placement_verdict(unsigned long on_node, unsigned long total,
			       bool strict, u32 *result_flags);
#endif
int dmaplane_buffer_place(struct dmaplane_buffer *buf);
int dmaplane_node_histogram(struct dmaplane_buffer *buf, u64 __user *uhist,
			    u32 len);
int dmaplane_ioc_get_topology(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit);

/* numa_bench.c */
int dmaplane_ioc_numa_bench(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit);

/* dmabuf_export.c */
#if IS_ENABLED(CONFIG_KUNIT)
struct dma_buf *dmaplane_export(struct dmaplane_buffer *buf, bool read_only);
#endif
int dmaplane_revoke(struct dmaplane_buffer *buf, u32 *revoked);
int dmaplane_ioc_export_dmabuf(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit);
int dmaplane_ioc_buffer_revoke(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit);

/* dmabuf_import.c */
int dmaplane_import(struct dmaplane_ctx *ctx, int fd,
		    struct dmaplane_commit *commit, struct dmaplane_buffer **out);
int dmaplane_ioc_import_dmabuf(struct dmaplane_ctx *ctx, void *arg,
			       struct dmaplane_commit *commit);
int dmaplane_import_mmap(struct dmaplane_buffer *buf,
			 struct vm_area_struct *vma);
void dmaplane_import_release(struct dmaplane_buffer *buf);
unsigned int dmaplane_import_segments(struct dmaplane_buffer *buf);

/* gpu.c (providers: gpu.h) */
void dmaplane_gpu_fill_info(struct dmaplane_info *info);
void dmaplane_gpu_release(struct dmaplane_buffer *buf);
int dmaplane_gpu_mmap(struct dmaplane_buffer *buf, struct vm_area_struct *vma);
int dmaplane_ioc_gpu_pin(struct dmaplane_ctx *ctx, void *arg,
			 struct dmaplane_commit *commit);
int dmaplane_ioc_gpu_sim_free(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit);

/* rdma_ep.c */
#if IS_ENABLED(CONFIG_KUNIT)
struct sockaddr;
struct sockaddr_storage;
int dmaplane_addr_to_sockaddr(const struct dmaplane_addr *a,
			      struct sockaddr_storage *ss);
void dmaplane_sockaddr_to_addr(const struct sockaddr *sa,
			       struct dmaplane_addr *a);
int dmaplane_ep_check_params(struct dmaplane_ep_create *p);
#endif
int dmaplane_ep_init(void);
void dmaplane_ep_exit(void);
int dmaplane_ioc_ep_create(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit);
int dmaplane_ioc_ep_destroy(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit);
int dmaplane_ioc_ep_listen(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit);
int dmaplane_ioc_ep_connect(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit);
int dmaplane_ioc_ep_accept(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit);
int dmaplane_ioc_ep_info(struct dmaplane_ctx *ctx, void *arg,
			 struct dmaplane_commit *commit);

/* rdma_mr.c */
void dmaplane_mr_revoke_buffer(struct dmaplane_buffer *buf);
int dmaplane_ioc_mr_reg(struct dmaplane_ctx *ctx, void *arg,
			struct dmaplane_commit *commit);
int dmaplane_ioc_mr_dereg(struct dmaplane_ctx *ctx, void *arg,
			  struct dmaplane_commit *commit);

/* rdma_verbs.c */
int dmaplane_ioc_post(struct dmaplane_ctx *ctx, void *arg,
		      struct dmaplane_commit *commit);
int dmaplane_ioc_reap(struct dmaplane_ctx *ctx, void *arg,
		      struct dmaplane_commit *commit);
int dmaplane_ioc_ep_eventfd(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit);

/* dma_dev.c */
int dmaplane_dma_init(void);
void dmaplane_dma_exit(void);
struct device *dmaplane_dma_dev(int nid);

/* rdma_dev.c */
int dmaplane_rdma_init(void);
void dmaplane_rdma_exit(void);
unsigned int dmaplane_rdma_device_count(void);
int dmaplane_ioc_rdma_devices(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit);

/* debugfs.c */
void dmaplane_debugfs_init(void);
void dmaplane_debugfs_exit(void);

/* main.c */
void dmaplane_fill_info(struct dmaplane_info *info);

#endif /* _DMAPLANE_H */
