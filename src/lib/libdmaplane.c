// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "libdmaplane.h"

static int dmaplane_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

int dmaplane_open(void)
{
	int fd = open(DMAPLANE_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int dmaplane_get_info(int fd, struct dmaplane_info *info)
{
	memset(info, 0, sizeof(*info));
	return dmaplane_ioctl(fd, DMAPLANE_IOC_GET_INFO, info);
}

int dmaplane_echo(int fd, uint64_t value, uint32_t flags, uint64_t *out)
{
	struct dmaplane_echo echo = { .value = value, .flags = flags };
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_ECHO, &echo);

	if (!ret && out)
		*out = echo.value;
	return ret;
}

int dmaplane_buffer_create(int fd, uint64_t size, int numa_node,
			   uint32_t flags, uint32_t *handle,
			   uint64_t *alloc_size)
{
	struct dmaplane_buffer_create req = {
		.size = size,
		.flags = flags,
		.numa_node = numa_node,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_CREATE, &req);

	if (ret)
		return ret;
	*handle = req.handle;
	if (alloc_size)
		*alloc_size = req.alloc_size;
	return 0;
}

int dmaplane_buffer_destroy(int fd, uint32_t handle)
{
	struct dmaplane_handle_op op = { .handle = handle };

	return dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_DESTROY, &op);
}

const char *dmaplane_cap_name(uint64_t cap)
{
	switch (cap) {
	case DMAPLANE_CAP_BUFFER_PAGES:
		return "buffer_pages";
	case DMAPLANE_CAP_NUMA:
		return "numa";
	case DMAPLANE_CAP_RDMA:
		return "rdma";
	default:
		return NULL;
	}
}
