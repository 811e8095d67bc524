// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl dispatch: one table indexed by _IOC_NR, argument sizes taken from
 * the command (the dma-heap pattern), copy_struct_from_user() semantics for
 * callers built against older or newer headers.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/nospec.h>
#include <linux/stddef.h>
#include <linux/uaccess.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

static int dmaplane_ioc_get_info(struct dmaplane_ctx *ctx, void *arg,
				 struct dmaplane_commit *commit)
{
	struct dmaplane_info *info = arg;

	if (info->flags & ~DMAPLANE_INFO_VALID_FLAGS || info->reserved ||
	    info->reserved2)
		return -EINVAL;
	dmaplane_fill_info(info);
	return 0;
}

static int dmaplane_ioc_echo(struct dmaplane_ctx *ctx, void *arg,
			     struct dmaplane_commit *commit)
{
	struct dmaplane_echo *echo = arg;

	if (echo->flags & ~DMAPLANE_ECHO_VALID_FLAGS || echo->reserved)
		return -EINVAL;
	if (echo->flags & DMAPLANE_ECHO_INVERT)
		echo->value = ~echo->value;
	return 0;
}

/* Every argument struct fits here; grow it when a struct outgrows it. */
#define DMAPLANE_IOCTL_MAX_ARG	160

#define DMAPLANE_IOCTL(_cmd, _fn, _type, _last_v1_field)			\
	[_IOC_NR(_cmd)] = {						\
		.cmd = _cmd + BUILD_BUG_ON_ZERO(sizeof(_type) >		\
						DMAPLANE_IOCTL_MAX_ARG),	\
		.min_size = offsetofend(_type, _last_v1_field),		\
		.fn = _fn,						\
	}

static const struct dmaplane_ioctl_desc dmaplane_ioctls[] = {
	DMAPLANE_IOCTL(DMAPLANE_IOC_GET_INFO, dmaplane_ioc_get_info,
		       struct dmaplane_info, module_version),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ECHO, dmaplane_ioc_echo,
		       struct dmaplane_echo, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_CREATE, dmaplane_ioc_buffer_create,
		       struct dmaplane_buffer_create, alloc_size),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_DESTROY, dmaplane_ioc_buffer_destroy,
		       struct dmaplane_handle_op, flags),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_INFO, dmaplane_ioc_buffer_info,
		       struct dmaplane_buffer_info, nr_node_ids),
	DMAPLANE_IOCTL(DMAPLANE_IOC_GET_TOPOLOGY, dmaplane_ioc_get_topology,
		       struct dmaplane_topology, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_NUMA_BENCH, dmaplane_ioc_numa_bench,
		       struct dmaplane_numa_bench, cells_ptr),
	DMAPLANE_IOCTL(DMAPLANE_IOC_MAP_BENCH, dmaplane_ioc_map_bench,
		       struct dmaplane_map_bench, unmap_ns),
	DMAPLANE_IOCTL(DMAPLANE_IOC_EXPORT_DMABUF, dmaplane_ioc_export_dmabuf,
		       struct dmaplane_export_dmabuf, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_IMPORT_DMABUF, dmaplane_ioc_import_dmabuf,
		       struct dmaplane_import_dmabuf, mmap_offset),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_REVOKE, dmaplane_ioc_buffer_revoke,
		       struct dmaplane_revoke, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_RDMA_DEVICES, dmaplane_ioc_rdma_devices,
		       struct dmaplane_rdma_devices, devices_ptr),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_CREATE, dmaplane_ioc_ep_create,
		       struct dmaplane_ep_create, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_DESTROY, dmaplane_ioc_ep_destroy,
		       struct dmaplane_handle_op, flags),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_LISTEN, dmaplane_ioc_ep_listen,
		       struct dmaplane_ep_listen, addr),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_CONNECT, dmaplane_ioc_ep_connect,
		       struct dmaplane_ep_connect, addr),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_ACCEPT, dmaplane_ioc_ep_accept,
		       struct dmaplane_ep_accept, peer),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_INFO, dmaplane_ioc_ep_info,
		       struct dmaplane_ep_info, peer),
	DMAPLANE_IOCTL(DMAPLANE_IOC_MR_REG, dmaplane_ioc_mr_reg,
		       struct dmaplane_mr_reg, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_MR_DEREG, dmaplane_ioc_mr_dereg,
		       struct dmaplane_handle_op, flags),
	DMAPLANE_IOCTL(DMAPLANE_IOC_POST, dmaplane_ioc_post,
		       struct dmaplane_post, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_REAP, dmaplane_ioc_reap,
		       struct dmaplane_reap, reserved),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_EVENTFD, dmaplane_ioc_ep_eventfd,
		       struct dmaplane_ep_eventfd, fd),
	DMAPLANE_IOCTL(DMAPLANE_IOC_GPU_PIN, dmaplane_ioc_gpu_pin,
		       struct dmaplane_gpu_pin, result_flags),
	DMAPLANE_IOCTL(DMAPLANE_IOC_GPU_SIM_FREE, dmaplane_ioc_gpu_sim_free,
		       struct dmaplane_gpu_sim_free, reserved),
};

/*
 * The table entry for @cmd: ERR_PTR(-ENOTTY) for a command this module does
 * not know (foreign magic, unknown number, other direction bits), and
 * ERR_PTR(-EINVAL) for an argument shorter than the command's first version.
 */
VISIBLE_IF_KUNIT const struct dmaplane_ioctl_desc *
dmaplane_ioctl_lookup(unsigned int cmd)
{
	const struct dmaplane_ioctl_desc *desc;
	unsigned int nr = _IOC_NR(cmd);

	if (_IOC_TYPE(cmd) != DMAPLANE_IOC_MAGIC ||
	    nr >= ARRAY_SIZE(dmaplane_ioctls))
		return ERR_PTR(-ENOTTY);
	nr = array_index_nospec(nr, ARRAY_SIZE(dmaplane_ioctls));
	desc = &dmaplane_ioctls[nr];
	if (!desc->fn || _IOC_DIR(cmd) != _IOC_DIR(desc->cmd))
		return ERR_PTR(-ENOTTY);
	if (_IOC_SIZE(cmd) < desc->min_size)
		return ERR_PTR(-EINVAL);
	return desc;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ioctl_lookup);

long dmaplane_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dmaplane_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct dmaplane_ioctl_desc *desc;
	u8 karg[DMAPLANE_IOCTL_MAX_ARG] __aligned(8);
	struct dmaplane_commit commit = { .fd = -1 };
	unsigned int usize = _IOC_SIZE(cmd);
	unsigned int ksize;
	int ret;

	desc = dmaplane_ioctl_lookup(cmd);
	if (IS_ERR(desc))
		return PTR_ERR(desc);

	ksize = _IOC_SIZE(desc->cmd);
	/* Zero-fills what an older caller did not pass; -E2BIG on a newer
	 * caller's non-zero bytes this module does not understand.
	 */
	ret = copy_struct_from_user(karg, ksize, uarg, usize);
	if (ret)
		return ret;

	atomic64_inc(&dmaplane_stats.ioctls);
	ret = desc->fn(ctx, karg, &commit);
	if (ret)
		return ret;

	if (copy_to_user(uarg, karg, min(usize, ksize))) {
		if (commit.created)
			dmaplane_ctx_abort(ctx, commit.created);
		if (commit.file) {
			put_unused_fd(commit.fd);
			fput(commit.file);
		}
		return -EFAULT;
	}
	if (commit.created)
		dmaplane_ctx_publish(ctx, commit.created);
	if (commit.file)
		fd_install(commit.fd, commit.file);
	return 0;
}
