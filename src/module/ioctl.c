// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl dispatch: one table indexed by _IOC_NR, argument sizes taken from
 * the command (the dma-heap pattern), copy_struct_from_user() semantics for
 * callers built against older or newer headers.
 */
#include <linux/fs.h>
#include <linux/nospec.h>
#include <linux/stddef.h>
#include <linux/uaccess.h>

#include "dmaplane.h"

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

static int dmaplane_ioc_get_info(struct dmaplane_ctx *ctx, void *arg,
				 struct dmaplane_obj **created)
{
	struct dmaplane_info *info = arg;

	if (info->flags & ~DMAPLANE_INFO_VALID_FLAGS || info->reserved)
		return -EINVAL;
	dmaplane_fill_info(info);
	return 0;
}

static int dmaplane_ioc_echo(struct dmaplane_ctx *ctx, void *arg,
			     struct dmaplane_obj **created)
{
	struct dmaplane_echo *echo = arg;

	if (echo->flags & ~DMAPLANE_ECHO_VALID_FLAGS || echo->reserved)
		return -EINVAL;
	if (echo->flags & DMAPLANE_ECHO_INVERT)
		echo->value = ~echo->value;
	return 0;
}

/* Every argument struct fits here; grow it when a struct outgrows it. */
#define DMAPLANE_IOCTL_MAX_ARG	128

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
};

long dmaplane_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dmaplane_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct dmaplane_ioctl_desc *desc;
	u8 karg[DMAPLANE_IOCTL_MAX_ARG] __aligned(8);
	struct dmaplane_obj *created = NULL;
	unsigned int nr = _IOC_NR(cmd);
	unsigned int usize = _IOC_SIZE(cmd);
	unsigned int ksize;
	int ret;

	if (_IOC_TYPE(cmd) != DMAPLANE_IOC_MAGIC ||
	    nr >= ARRAY_SIZE(dmaplane_ioctls))
		return -ENOTTY;
	nr = array_index_nospec(nr, ARRAY_SIZE(dmaplane_ioctls));
	desc = &dmaplane_ioctls[nr];
	if (!desc->fn || _IOC_DIR(cmd) != _IOC_DIR(desc->cmd))
		return -ENOTTY;
	if (usize < desc->min_size)
		return -EINVAL;

	ksize = _IOC_SIZE(desc->cmd);
	/* Zero-fills what an older caller did not pass; -E2BIG on a newer
	 * caller's non-zero bytes this module does not understand.
	 */
	ret = copy_struct_from_user(karg, ksize, uarg, usize);
	if (ret)
		return ret;

	atomic64_inc(&dmaplane_stats.ioctls);
	ret = desc->fn(ctx, karg, &created);
	if (ret)
		return ret;

	if (copy_to_user(uarg, karg, min(usize, ksize))) {
		if (created)
			dmaplane_ctx_abort(ctx, created);
		return -EFAULT;
	}
	if (created)
		dmaplane_ctx_publish(ctx, created);
	return 0;
}
