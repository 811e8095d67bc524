/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dmaplane: buffer orchestration for AI data paths.
 *
 * The only header shared between dmaplane.ko and userspace.
 *
 * Rules (see README.md, "UAPI"):
 *  - Every command is _IOWR(DMAPLANE_IOC_MAGIC, nr, struct). The struct size
 *    is carried by the command itself. A caller built against an older header
 *    passes a shorter struct: the kernel zero-fills what it did not pass and
 *    copies back only what it can hold. A caller built against a newer header
 *    passes a longer struct: accepted when the bytes the kernel does not know
 *    are zero, -E2BIG otherwise. Shorter than the command's first version:
 *    -EINVAL.
 *  - Unknown command numbers, a wrong magic or wrong direction bits: -ENOTTY.
 *  - Every flags word has a *_VALID_FLAGS mask; unknown bits: -EINVAL.
 *  - Every "reserved" field is input and must be zero: -EINVAL otherwise.
 *  - Handles are small integers private to one open file description.
 *  - No kernel address is ever returned.
 */
#ifndef _UAPI_LINUX_DMAPLANE_H
#define _UAPI_LINUX_DMAPLANE_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define DMAPLANE_DEVICE_NAME	"dmaplane"
#define DMAPLANE_UAPI_VERSION	1
#define DMAPLANE_IOC_MAGIC	0xD7

/* Capability bits reported by DMAPLANE_IOC_GET_INFO. */
#define DMAPLANE_CAP_BUFFER_PAGES	_BITULL(0) /* page-backed buffers */
#define DMAPLANE_CAP_NUMA		_BITULL(1) /* kernel built with NUMA */
#define DMAPLANE_CAP_RDMA		_BITULL(2) /* RDMA device tracking */

#define DMAPLANE_VERSION_LEN	32

/**
 * struct dmaplane_info - DMAPLANE_IOC_GET_INFO
 * @flags:		in: must be 0
 * @uapi_version:	out: DMAPLANE_UAPI_VERSION of the running module
 * @capabilities:	out: DMAPLANE_CAP_* bits
 * @numa_nodes_online:	out: NUMA nodes online in this kernel
 * @numa_nodes_possible: out: highest possible node id + 1
 * @rdma_devices:	out: RDMA devices currently registered
 * @reserved:		must be 0
 * @module_version:	out: NUL-terminated module version string
 */
struct dmaplane_info {
	__u32 flags;
	__u32 uapi_version;
	__u64 capabilities;
	__u32 numa_nodes_online;
	__u32 numa_nodes_possible;
	__u32 rdma_devices;
	__u32 reserved;
	char module_version[DMAPLANE_VERSION_LEN];
};

#define DMAPLANE_INFO_VALID_FLAGS	0U

/* Return the bitwise complement of the value instead of the value. */
#define DMAPLANE_ECHO_INVERT		_BITUL(0)
#define DMAPLANE_ECHO_VALID_FLAGS	DMAPLANE_ECHO_INVERT

/**
 * struct dmaplane_echo - DMAPLANE_IOC_ECHO, a no-op round trip through the
 * dispatcher; used to measure ioctl dispatch cost.
 * @value:	in/out: returned unchanged, or complemented with ECHO_INVERT
 * @flags:	in: DMAPLANE_ECHO_* bits
 * @reserved:	must be 0
 */
struct dmaplane_echo {
	__u64 value;
	__u32 flags;
	__u32 reserved;
};

/* Any NUMA node: the allocator's local-node default. */
#define DMAPLANE_NUMA_ANY		(-1)
#define DMAPLANE_BUF_VALID_FLAGS	0U

/**
 * struct dmaplane_buffer_create - DMAPLANE_IOC_BUFFER_CREATE
 * @size:	in: requested bytes, rounded up to the page size; > 0
 * @flags:	in: DMAPLANE_BUF_* bits (none defined yet)
 * @numa_node:	in: preferred node id, or DMAPLANE_NUMA_ANY
 * @handle:	out: buffer handle, valid on this open file only
 * @reserved:	must be 0
 * @alloc_size:	out: bytes allocated (size rounded up to pages)
 *
 * Errors: -EINVAL (zero size, unknown flags, node not online),
 * -EFBIG (above the module's max_buffer_size parameter),
 * -ENOSPC (module-wide max_total_bytes would be exceeded),
 * -EMFILE (this file holds max_handles objects), -ENOMEM, -EINTR.
 */
struct dmaplane_buffer_create {
	__u64 size;
	__u32 flags;
	__s32 numa_node;
	__u32 handle;
	__u32 reserved;
	__u64 alloc_size;
};

/**
 * struct dmaplane_handle_op - DMAPLANE_IOC_BUFFER_DESTROY
 * @handle:	in: handle returned by this open file; -ENOENT otherwise
 * @flags:	in: must be 0
 */
struct dmaplane_handle_op {
	__u32 handle;
	__u32 flags;
};

#define DMAPLANE_HANDLE_OP_VALID_FLAGS	0U

#define DMAPLANE_IOC_GET_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x00, struct dmaplane_info)
#define DMAPLANE_IOC_ECHO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x01, struct dmaplane_echo)
#define DMAPLANE_IOC_BUFFER_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x02, struct dmaplane_buffer_create)
#define DMAPLANE_IOC_BUFFER_DESTROY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x03, struct dmaplane_handle_op)

#endif /* _UAPI_LINUX_DMAPLANE_H */
