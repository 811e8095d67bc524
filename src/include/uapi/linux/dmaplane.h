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
#define DMAPLANE_UAPI_VERSION	6
#define DMAPLANE_IOC_MAGIC	0xD7

/* Capability bits reported by DMAPLANE_IOC_GET_INFO. */
#define DMAPLANE_CAP_BUFFER_PAGES	_BITULL(0) /* page-backed buffers */
#define DMAPLANE_CAP_NUMA		_BITULL(1) /* kernel built with NUMA */
#define DMAPLANE_CAP_RDMA		_BITULL(2) /* RDMA device tracking */
#define DMAPLANE_CAP_BUFFER_COHERENT	_BITULL(3) /* uapi 2: DMAPLANE_BUF_COHERENT */
#define DMAPLANE_CAP_BUFFER_HUGE	_BITULL(4) /* DMAPLANE_BUF_HUGE */
#define DMAPLANE_CAP_BUFFER_USER	_BITULL(5) /* DMAPLANE_BUF_USER */
#define DMAPLANE_CAP_MMAP		_BITULL(6) /* mmap of buffers */
#define DMAPLANE_CAP_TOPOLOGY		_BITULL(7) /* GET_TOPOLOGY, NUMA_BENCH */
#define DMAPLANE_CAP_DMABUF		_BITULL(8) /* uapi 3: EXPORT/IMPORT_DMABUF, REVOKE */
#define DMAPLANE_CAP_RDMA_DEVICES	_BITULL(9) /* RDMA_DEVICES */
#define DMAPLANE_CAP_ENDPOINTS		_BITULL(10) /* ENDPOINT_* (rdma_cm, RC) */
#define DMAPLANE_CAP_VERBS		_BITULL(11) /* uapi 4: MR_*, POST, REAP, ENDPOINT_EVENTFD */
#define DMAPLANE_CAP_CREDITS		_BITULL(12) /* uapi 5: flow control (credits) */
#define DMAPLANE_CAP_GPU		_BITULL(13) /* uapi 6: GPU_PIN, GPU_SIM_FREE */

/*
 * GPU memory providers (GPU_PIN's @provider; bit (1 << provider) in
 * GET_INFO's gpu_providers and gpu_ready):
 *  NVIDIA_P2P  nvidia_p2p_get_pages(): @addr is a CUDA device pointer;
 *              built only against the NVIDIA driver's nv-p2p.h
 *  DMABUF      a GPU driver's dma-buf (e.g. cuMemGetHandleForAddressRange);
 *              @device is the dma-buf fd, @addr 0, @length 0 (all of it)
 *  SIM         the sim's GPU: an ivshmem-plain PCI BAR in a QEMU guest
 *              (module parameter sim_gpu=1); @addr is an offset in it
 */
#define DMAPLANE_GPU_NVIDIA_P2P		1
#define DMAPLANE_GPU_DMABUF		2
#define DMAPLANE_GPU_SIM		3
#define DMAPLANE_GPU_PROVIDER_MAX	DMAPLANE_GPU_SIM

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
 * @gpu_providers:	out: uapi 6: providers built in, bit (1 << DMAPLANE_GPU_*)
 * @gpu_ready:		out: providers usable now (their driver or device
 *			is there)
 * @gpu_sim_devices:	out: sim GPUs bound (GPU_PIN's @device below this)
 * @reserved2:		must be 0
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
	__u32 gpu_providers;
	__u32 gpu_ready;
	__u32 gpu_sim_devices;
	__u32 reserved2;
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

/*
 * Buffer backing, one of (none of them: order-0 pages):
 *  COHERENT  dma_alloc_coherent() on the module's DMA device for the node;
 *            physically contiguous, at most DMAPLANE_COHERENT_MAX bytes
 *  HUGE      2 MiB physically contiguous chunks (size rounded up to 2 MiB);
 *            a chunk that cannot be had falls back to 4 KiB pages and
 *            DMAPLANE_BUF_RES_HUGE_PARTIAL says so
 *  USER      pin the caller's range [user_addr, user_addr + size) for DMA
 *            (FOLL_LONGTERM, writable), charged to RLIMIT_MEMLOCK
 * NUMA_STRICT: every page on numa_node or the create fails (-ENOMEM when
 * the node has no room, -EXDEV when pages ended up elsewhere, as pinned
 * user pages may); without it the node is a preference and the buffer
 * reports where its pages went.
 */
#define DMAPLANE_BUF_COHERENT		_BITUL(0)
#define DMAPLANE_BUF_HUGE		_BITUL(1)
#define DMAPLANE_BUF_USER		_BITUL(2)
#define DMAPLANE_BUF_NUMA_STRICT	_BITUL(3)
#define DMAPLANE_BUF_KIND_MASK \
	(DMAPLANE_BUF_COHERENT | DMAPLANE_BUF_HUGE | DMAPLANE_BUF_USER)
#define DMAPLANE_BUF_VALID_FLAGS \
	(DMAPLANE_BUF_KIND_MASK | DMAPLANE_BUF_NUMA_STRICT)

/* What a create obtained, and the buffer's state (result_flags). */
#define DMAPLANE_BUF_RES_HUGE_PARTIAL	_BITUL(0) /* some chunks are 4 KiB pages */
#define DMAPLANE_BUF_RES_NUMA_FALLBACK	_BITUL(1) /* some pages off numa_node */
#define DMAPLANE_BUF_RES_IMPORTED	_BITUL(2) /* a foreign dma-buf (IMPORT_DMABUF) */
#define DMAPLANE_BUF_RES_DYNAMIC	_BITUL(3) /* imported with move_notify */
#define DMAPLANE_BUF_RES_REVOKED	_BITUL(4) /* its exporter revoked it */
#define DMAPLANE_BUF_RES_GPU		_BITUL(5) /* GPU memory (GPU_PIN) */

/* Largest coherent buffer: the page allocator's largest block (4 MiB). */
#define DMAPLANE_COHERENT_MAX		(4ULL << 20)
#define DMAPLANE_HUGE_CHUNK		(2ULL << 20)

/*
 * mmap offset of a buffer: handle << DMAPLANE_MMAP_SHIFT, plus the byte
 * offset inside the buffer. Use the mmap_offset a create returns.
 */
#define DMAPLANE_MMAP_SHIFT		40

/**
 * struct dmaplane_buffer_create - DMAPLANE_IOC_BUFFER_CREATE
 * @size:	in: requested bytes, rounded up to the page size (to 2 MiB for
 *		HUGE); > 0
 * @flags:	in: DMAPLANE_BUF_* bits
 * @numa_node:	in: node id, or DMAPLANE_NUMA_ANY (not with NUMA_STRICT)
 * @handle:	out: buffer handle, valid on this open file only
 * @reserved:	must be 0
 * @alloc_size:	out: bytes allocated (size rounded up)
 * @user_addr:	in: USER only: page-aligned start of the range to pin; must
 *		be 0 otherwise
 * @mmap_offset: out: offset to pass to mmap(2) for this buffer
 * @nr_pages:	out: PAGE_SIZE pages in the buffer
 * @pages_on_node: out: how many of them are on @numa_node (checked page by
 *		page with page_to_nid); 0 for DMAPLANE_NUMA_ANY
 * @result_flags: out: DMAPLANE_BUF_RES_* bits
 * @reserved2:	must be 0
 *
 * Errors: -EINVAL (zero size, unknown flags, two kinds, node not online,
 * NUMA_STRICT without a node, user_addr misaligned, wrapping or given
 * without USER), -EFBIG (above max_buffer_size, or a COHERENT buffer above
 * DMAPLANE_COHERENT_MAX), -EDQUOT (this file's max_file_bytes would be
 * exceeded), -ENOSPC (module-wide max_total_bytes would be exceeded),
 * -ENOMEM (no memory, no memory on a strict node, or a USER range over
 * RLIMIT_MEMLOCK without CAP_IPC_LOCK), -EXDEV (NUMA_STRICT and a page is
 * elsewhere), -EFAULT (USER range not mapped writable), -EMFILE (this file
 * holds max_handles objects), -EINTR.
 */
struct dmaplane_buffer_create {
	__u64 size;
	__u32 flags;
	__s32 numa_node;
	__u32 handle;
	__u32 reserved;
	__u64 alloc_size;
	/* uapi 2 */
	__u64 user_addr;
	__u64 mmap_offset;
	__u64 nr_pages;
	__u64 pages_on_node;
	__u32 result_flags;
	__u32 reserved2;
};

/**
 * struct dmaplane_handle_op - DMAPLANE_IOC_BUFFER_DESTROY, ENDPOINT_DESTROY,
 * MR_DEREG
 * @handle:	in: handle returned by this open file; -ENOENT otherwise
 * @flags:	in: must be 0
 *
 * A buffer that is still mmapped or covered by an MR is not destroyed, nor
 * an endpoint with MRs, nor an MR that operations in flight still use:
 * -EBUSY.
 */
struct dmaplane_handle_op {
	__u32 handle;
	__u32 flags;
};

#define DMAPLANE_HANDLE_OP_VALID_FLAGS	0U

/**
 * struct dmaplane_buffer_info - DMAPLANE_IOC_BUFFER_INFO
 * @handle:	in: buffer handle of this open file; -ENOENT otherwise
 * @flags:	in: must be 0
 * @size:	out: bytes
 * @buf_flags:	out: DMAPLANE_BUF_* flags it was created with
 * @numa_node:	out: node it was created for, or DMAPLANE_NUMA_ANY
 * @result_flags: out: DMAPLANE_BUF_RES_* bits
 * @mappings:	out: live mmaps of it
 * @nr_pages:	out: PAGE_SIZE pages
 * @pages_on_node: out: pages on @numa_node
 * @dma_segments: out: entries of its DMA-mapped scatterlist
 * @huge_chunks: out: 2 MiB chunks it holds (HUGE)
 * @mmap_offset: out: offset to pass to mmap(2)
 * @node_pages_ptr: in: user pointer to __u64[@node_pages_len], or 0: entry
 *		n receives the number of its pages on node n
 * @node_pages_len: in: entries at @node_pages_ptr; min(@node_pages_len,
 *		@nr_node_ids) are written
 * @nr_node_ids: out: entries a full histogram needs
 * @exports:	out: live dma-bufs exported from it
 * @attachments: out: devices attached to those dma-bufs
 * @mrs:	out: MRs registered over it
 * @reserved:	must be 0
 *
 * An imported buffer has no page histogram: asking for one is -EOPNOTSUPP.
 */
struct dmaplane_buffer_info {
	__u32 handle;
	__u32 flags;
	__u64 size;
	__u32 buf_flags;
	__s32 numa_node;
	__u32 result_flags;
	__u32 mappings;
	__u64 nr_pages;
	__u64 pages_on_node;
	__u64 dma_segments;
	__u64 huge_chunks;
	__u64 mmap_offset;
	__u64 node_pages_ptr;
	__u32 node_pages_len;
	__u32 nr_node_ids;
	/* uapi 3 */
	__u32 exports;
	__u32 attachments;
	/* uapi 4 */
	__u32 mrs;
	__u32 reserved;
};

#define DMAPLANE_BUFFER_INFO_VALID_FLAGS	0U

/**
 * struct dmaplane_numa_node - one online node in DMAPLANE_IOC_GET_TOPOLOGY
 * @node_id:	node id
 * @nr_cpus:	online CPUs on it (0 for a memory-only node)
 * @cpu_index:	index of its first CPU id in the topology's CPU array
 * @reserved:	0
 * @mem_total:	bytes the page allocator manages on it (MemTotal in
 *		/sys/devices/system/node/nodeN/meminfo)
 * @mem_free:	bytes free on it
 */
struct dmaplane_numa_node {
	__u32 node_id;
	__u32 nr_cpus;
	__u32 cpu_index;
	__u32 reserved;
	__u64 mem_total;
	__u64 mem_free;
};

/**
 * struct dmaplane_topology - DMAPLANE_IOC_GET_TOPOLOGY
 * @flags:	in: must be 0
 * @nr_nodes:	out: online nodes
 * @nodes_len:	in: entries at @nodes_ptr (and rows/columns at
 *		@distances_ptr); the first min(@nodes_len, @nr_nodes) nodes
 *		are written, in node id order
 * @cpus_len:	in: entries at @cpus_ptr
 * @nodes_ptr:	in: user pointer to struct dmaplane_numa_node[@nodes_len]
 * @distances_ptr: in: user pointer to __u32[@nodes_len * @nodes_len], or 0:
 *		[i * @nodes_len + j] receives the SLIT distance from the i-th
 *		to the j-th node written
 * @cpus_ptr:	in: user pointer to __u32[@cpus_len], or 0: the CPU ids of
 *		every node, node after node (see cpu_index, nr_cpus)
 * @nr_cpus:	out: CPU ids a full @cpus_ptr array holds
 * @reserved:	must be 0
 *
 * Call with zero lengths to learn @nr_nodes and @nr_cpus. Errors: -EINVAL
 * (flags, reserved, a length with a NULL pointer, @nodes_len squared
 * overflowing), -EFAULT.
 */
struct dmaplane_topology {
	__u32 flags;
	__u32 nr_nodes;
	__u32 nodes_len;
	__u32 cpus_len;
	__u64 nodes_ptr;
	__u64 distances_ptr;
	__u64 cpus_ptr;
	__u32 nr_cpus;
	__u32 reserved;
};

#define DMAPLANE_TOPOLOGY_VALID_FLAGS	0U

/* What a bandwidth cell measures, done by a kthread on the row's CPUs. */
enum dmaplane_bench_op {
	DMAPLANE_BENCH_READ = 0,	/* sum the buffer on the column's node */
	DMAPLANE_BENCH_WRITE = 1,	/* fill it */
	DMAPLANE_BENCH_COPY = 2,	/* copy it into a buffer on the row's node */
	DMAPLANE_BENCH_NR_OPS,
};

/**
 * struct dmaplane_numa_bench_cell - one cell of the bandwidth matrix
 * @cpu_node:	node whose first CPU ran the pass
 * @mem_node:	node holding the buffer
 * @status:	0, or -errno (e.g. -ENOMEM: no room for the buffer there)
 * @passes:	passes over the buffer made
 * @bytes:	bytes moved in all passes
 * @ns:		time they took
 */
struct dmaplane_numa_bench_cell {
	__u32 cpu_node;
	__u32 mem_node;
	__s32 status;
	__u32 passes;
	__u64 bytes;
	__u64 ns;
};

#define DMAPLANE_BENCH_SIZE_MIN		_BITULL(20)
#define DMAPLANE_BENCH_PASSES_MAX	1000
#define DMAPLANE_BENCH_TIME_MAX_MS	60000

/**
 * struct dmaplane_numa_bench - DMAPLANE_IOC_NUMA_BENCH (CAP_SYS_ADMIN)
 * @size:	in: buffer bytes, page-rounded; DMAPLANE_BENCH_SIZE_MIN ..
 *		max_buffer_size
 * @op:		in: enum dmaplane_bench_op
 * @flags:	in: must be 0
 * @passes:	in: passes per cell, 1 .. DMAPLANE_BENCH_PASSES_MAX
 * @time_limit_ms: in: per cell, 1 .. DMAPLANE_BENCH_TIME_MAX_MS: no new pass
 *		starts after it (the first always runs)
 * @cells_len:	in: entries at @cells_ptr
 * @nr_cells:	out: cells of the full matrix (nodes with CPUs x nodes with
 *		memory), row-major; min(@cells_len, @nr_cells) are written
 * @cells_ptr:	in: user pointer to struct dmaplane_numa_bench_cell[]
 *
 * Buffers are charged to max_total_bytes while the cell runs. Errors:
 * -EINVAL, -EFBIG (size), -EPERM (no CAP_SYS_ADMIN), -EINTR (a signal
 * stopped it; nothing is written), -EFAULT.
 */
struct dmaplane_numa_bench {
	__u64 size;
	__u32 op;
	__u32 flags;
	__u32 passes;
	__u32 time_limit_ms;
	__u32 cells_len;
	__u32 nr_cells;
	__u64 cells_ptr;
};

#define DMAPLANE_NUMA_BENCH_VALID_FLAGS	0U

/**
 * struct dmaplane_map_bench - DMAPLANE_IOC_MAP_BENCH: the cost of building
 * and DMA-mapping a scatterlist for a buffer (as an importer or an MR
 * registration must), measured in the kernel, without touching the
 * buffer's own mapping.
 * @handle:	in: a pages, HUGE or USER buffer of this file (-EINVAL for
 *		COHERENT: it has no streaming mapping)
 * @flags:	in: must be 0
 * @iterations:	in: 1 .. DMAPLANE_BENCH_PASSES_MAX
 * @reserved:	must be 0
 * @dma_segments: out: scatterlist entries after merging contiguous pages
 * @build_ns:	out: building the sg_table, all iterations
 * @map_ns:	out: dma_map_sgtable(), all iterations
 * @unmap_ns:	out: dma_unmap_sgtable() and freeing the table
 */
struct dmaplane_map_bench {
	__u32 handle;
	__u32 flags;
	__u32 iterations;
	__u32 reserved;
	__u64 dma_segments;
	__u64 build_ns;
	__u64 map_ns;
	__u64 unmap_ns;
};

#define DMAPLANE_MAP_BENCH_VALID_FLAGS	0U

/* Export flags. */
#define DMAPLANE_EXPORT_CLOEXEC		_BITUL(0) /* the new fd is O_CLOEXEC */
#define DMAPLANE_EXPORT_READ_ONLY	_BITUL(1) /* O_RDONLY dma-buf (else O_RDWR) */
#define DMAPLANE_EXPORT_VALID_FLAGS \
	(DMAPLANE_EXPORT_CLOEXEC | DMAPLANE_EXPORT_READ_ONLY)

/**
 * struct dmaplane_export_dmabuf - DMAPLANE_IOC_EXPORT_DMABUF
 * @handle:	in: a buffer of this file, not itself an import
 * @flags:	in: DMAPLANE_EXPORT_* bits
 * @fd:		out: the dma-buf file descriptor
 * @reserved:	must be 0
 *
 * The dma-buf holds the buffer: it outlives BUFFER_DESTROY and the file.
 * Importers map it for their own device; DMA_BUF_IOCTL_SYNC syncs every
 * attached device's mapping. Errors: -ENOENT, -EINVAL (flags, reserved,
 * an imported buffer), -EMFILE (no fd), -ENOMEM.
 */
struct dmaplane_export_dmabuf {
	__u32 handle;
	__u32 flags;
	__s32 fd;
	__u32 reserved;
};

#define DMAPLANE_IMPORT_VALID_FLAGS	0U

/**
 * struct dmaplane_import_dmabuf - DMAPLANE_IOC_IMPORT_DMABUF
 * @fd:		in: a dma-buf file descriptor opened read-write
 * @flags:	in: must be 0
 * @handle:	out: buffer handle on this file, usable where a buffer is
 *		(BUFFER_INFO, BUFFER_DESTROY, mmap through the exporter)
 * @result_flags: out: DMAPLANE_BUF_RES_IMPORTED, and _DYNAMIC when the
 *		exporter may move the memory: it then tells us (move_notify),
 *		the handle is marked revoked and its use fails with -ENODEV;
 *		otherwise the import is pinned
 * @size:	out: bytes
 * @mmap_offset: out: offset to pass to mmap(2) on this file
 *
 * Errors: -EBADF (not an open fd), -EINVAL (flags, not a dma-buf),
 * -EACCES (dma-buf not open for writing), -ENODEV (revoked by its
 * exporter), -EMFILE, -ENOMEM.
 */
struct dmaplane_import_dmabuf {
	__s32 fd;
	__u32 flags;
	__u32 handle;
	__u32 result_flags;
	__u64 size;
	__u64 mmap_offset;
};

/**
 * struct dmaplane_revoke - DMAPLANE_IOC_BUFFER_REVOKE: withdraw every
 * dma-buf exported from a buffer, as an exporter that moves or frees its
 * memory must. Importers that can move (move_notify) drop their mappings;
 * new attachments and mappings of those dma-bufs fail with -ENODEV. CPU
 * mappings stay valid: the memory itself does not move.
 * @handle:	in: a buffer of this file
 * @flags:	in: must be 0
 * @exports:	out: dma-bufs revoked
 * @reserved:	must be 0
 *
 * Errors: -ENOENT, -EINVAL, -EBUSY (an importer holds it pinned: nothing
 * was revoked).
 */
struct dmaplane_revoke {
	__u32 handle;
	__u32 flags;
	__u32 exports;
	__u32 reserved;
};

#define DMAPLANE_REVOKE_VALID_FLAGS	0U

#define DMAPLANE_RDMA_NAME_LEN		64

/**
 * struct dmaplane_rdma_device - one RDMA device in DMAPLANE_IOC_RDMA_DEVICES
 * @name:	NUL-terminated device name (rxe0, mlx5_0, ...)
 * @index:	the kernel's device index (as `rdma dev` shows)
 * @phys_port_cnt: ports
 * @node_guid:	node GUID, host byte order
 * @max_mr_size: largest memory region, bytes
 * @max_qp, @max_qp_wr, @max_send_sge, @max_cqe, @max_mr: device limits
 * @max_fast_reg_page_list_len: pages one FRWR registration can map
 * @port_state:	port 1: enum ib_port_state (4 = ACTIVE)
 * @port_active_mtu: port 1: active MTU in bytes
 * @port_link_layer: port 1: 1 = InfiniBand, 2 = Ethernet (RoCE)
 * @reserved:	0
 */
struct dmaplane_rdma_device {
	char name[DMAPLANE_RDMA_NAME_LEN];
	__u32 index;
	__u32 phys_port_cnt;
	__u64 node_guid;
	__u64 max_mr_size;
	__u32 max_qp;
	__u32 max_qp_wr;
	__u32 max_send_sge;
	__u32 max_cqe;
	__u32 max_mr;
	__u32 max_fast_reg_page_list_len;
	__u32 port_state;
	__u32 port_active_mtu;
	__u32 port_link_layer;
	__u32 reserved;
};

/**
 * struct dmaplane_rdma_devices - DMAPLANE_IOC_RDMA_DEVICES
 * @flags:	in: must be 0
 * @nr_devices:	out: RDMA devices registered now
 * @devices_len: in: entries at @devices_ptr; min(@devices_len,
 *		@nr_devices) are written
 * @reserved:	must be 0
 * @devices_ptr: in: user pointer to struct dmaplane_rdma_device[], or 0
 *
 * Errors: -EINVAL (flags, reserved, a length without a pointer), -EFAULT.
 */
struct dmaplane_rdma_devices {
	__u32 flags;
	__u32 nr_devices;
	__u32 devices_len;
	__u32 reserved;
	__u64 devices_ptr;
};

#define DMAPLANE_RDMA_DEVICES_VALID_FLAGS	0U

/* An IPv4 or IPv6 address and port, as rdma_cm takes them. */
struct dmaplane_addr {
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 port;		/* host byte order; 0 = any (listen) */
	__u32 scope_id;		/* IPv6 link-local scope, else 0 */
	__u8 addr[16];		/* IPv4 in the first 4 bytes, network order */
};

/* Endpoint states (ENDPOINT_INFO). */
enum dmaplane_ep_state {
	DMAPLANE_EP_IDLE = 0,
	DMAPLANE_EP_LISTENING = 1,
	DMAPLANE_EP_CONNECTING = 2,
	DMAPLANE_EP_CONNECTED = 3,
	DMAPLANE_EP_DISCONNECTED = 4,	/* the peer went away */
	DMAPLANE_EP_ERROR = 5,		/* see error */
};

#define DMAPLANE_EP_DEPTH_DEFAULT	128
#define DMAPLANE_EP_DEPTH_MAX		4096
#define DMAPLANE_EP_TIMEOUT_DEFAULT_MS	5000
#define DMAPLANE_EP_TIMEOUT_MAX_MS	60000

/**
 * struct dmaplane_ep_create - DMAPLANE_IOC_ENDPOINT_CREATE: an RC endpoint
 * (rdma_cm id; PD, CQ and QP once it is connected) owned by this file.
 * @flags:	in: DMAPLANE_EP_NO_CREDITS or 0
 * @handle:	out: endpoint handle
 * @send_depth: in: send queue depth, 0 = DMAPLANE_EP_DEPTH_DEFAULT,
 *		at most DMAPLANE_EP_DEPTH_MAX (and the device's max_qp_wr)
 * @recv_depth: in: receive queue depth, the same rules
 * @timeout_ms:	in: for address and route resolution, 0 = default, at most
 *		DMAPLANE_EP_TIMEOUT_MAX_MS
 * @retry_count: in: transport retries before a peer is declared dead,
 *		1..7 (0 = DMAPLANE_EP_RETRY_DEFAULT; soft-RoCE retries
 *		forever at 7)
 * @rnr_retry_count: in: receiver-not-ready retries, 0..7 (7 = infinite;
 *		0 = 7)
 * @ack_timeout: in: how long the QP waits for an acknowledgment before
 *		a retry, 4.096 us * 2^n, 1..31 (0: the CM's, from the path's
 *		packet lifetime: 2^19, about 2.1 s, on RoCE). A dead peer is
 *		reported after about (retry_count + 1) of these.
 * @reserved:	must be 0
 * @credit_window: in: flow control: the most receives this endpoint
 *		grants its peer at once, 1..@recv_depth (0 = @recv_depth)
 * @credit_low:	in: grant at once when the peer has this many credits
 *		or fewer left, < @credit_window (0 = @credit_window / 4)
 * @credit_high: in: otherwise grant once this many receives wait to be
 *		granted, 1..@credit_window (0 = half the window, at least 1)
 * @reserved2:	must be 0
 *
 * Flow control (default): the receiving side grants its peer one credit
 * per posted RECV; SEND and WRITE_IMM each take one, so a sender never
 * reaches an empty receive queue (no receiver-not-ready retries) and no
 * completion is lost. Grants travel on a control queue pair of the
 * connection's own. DMAPLANE_EP_NO_CREDITS turns it off: for tests that
 * show what happens without it, and for peers that budget receives
 * themselves. Both sides of a connection must agree (else -EPROTO).
 */
struct dmaplane_ep_create {
	__u32 flags;
	__u32 handle;
	__u32 send_depth;
	__u32 recv_depth;
	__u32 timeout_ms;
	__u8 retry_count;
	__u8 rnr_retry_count;
	__u8 ack_timeout;	/* uapi 4 */
	__u8 reserved;
	/* uapi 5 */
	__u32 credit_window;
	__u32 credit_low;
	__u32 credit_high;
	__u32 reserved2;
};

#define DMAPLANE_EP_RETRY_DEFAULT	6
#define DMAPLANE_EP_ACK_TIMEOUT_MAX	31

/* struct dmaplane_ep_create.flags */
#define DMAPLANE_EP_NO_CREDITS		_BITUL(0) /* uapi 5: no flow control */
#define DMAPLANE_EP_CREATE_VALID_FLAGS	DMAPLANE_EP_NO_CREDITS

/**
 * struct dmaplane_ep_listen - DMAPLANE_IOC_ENDPOINT_LISTEN
 * @handle:	in: an idle endpoint of this file
 * @backlog:	in: connection requests queued before ENDPOINT_ACCEPT, 1..1024
 * @addr:	in: local address to bind (port 0: any); out: the bound port
 *
 * Errors: -ENOENT, -EINVAL (not idle, bad family, backlog), -EADDRINUSE,
 * -EADDRNOTAVAIL (no RDMA device serves the address).
 */
struct dmaplane_ep_listen {
	__u32 handle;
	__u32 backlog;
	struct dmaplane_addr addr;
};

/**
 * struct dmaplane_ep_connect - DMAPLANE_IOC_ENDPOINT_CONNECT: resolve,
 * connect and wait until established.
 * @handle:	in: an idle endpoint of this file
 * @timeout_ms:	in: for the whole connection, 0 = the endpoint's timeout
 * @addr:	in: the listener's address
 *
 * Both sides send a dmaplane handshake in the CM's private data: a peer
 * that is not a dmaplane endpoint is refused.
 * Errors: -ENOENT, -EINVAL, -ECONNREFUSED (nobody listens, or the listener
 * refused the handshake), -EPROTO (the acceptor's handshake), -ETIMEDOUT,
 * -EHOSTUNREACH / -ENETUNREACH (address or route resolution failed),
 * -ENODEV (the RDMA device went away), -EINTR (a signal: the endpoint is
 * left in ERROR). A failed endpoint is not reusable: destroy it.
 */
struct dmaplane_ep_connect {
	__u32 handle;
	__u32 timeout_ms;
	struct dmaplane_addr addr;
};

/**
 * struct dmaplane_ep_accept - DMAPLANE_IOC_ENDPOINT_ACCEPT: wait for a
 * connection request on a listening endpoint, accept it as a new
 * endpoint of this file and wait until it is established.
 * @handle:	in: a listening endpoint
 * @timeout_ms:	in: how long to wait for a request, 0 = the listener's
 * @new_handle:	out: the connected endpoint
 * @reserved:	must be 0
 * @peer:	out: the peer's address
 *
 * Errors: -ENOENT, -EINVAL (not listening, nor a listener that failed),
 * -ETIMEDOUT, -EINTR, -ECONNABORTED (the peer gave up, rejected or
 * disconnected, before it was established), -ENODEV (the listener's
 * device was removed), -ENOMEM, -EMFILE (this file's handle table is
 * full).
 */
struct dmaplane_ep_accept {
	__u32 handle;
	__u32 timeout_ms;
	__u32 new_handle;
	__u32 reserved;
	struct dmaplane_addr peer;
};

/**
 * struct dmaplane_ep_info - DMAPLANE_IOC_ENDPOINT_INFO
 * @handle:	in: an endpoint of this file
 * @state:	out: enum dmaplane_ep_state
 * @error:	out: 0, or the -errno that ended it
 * @device_index: out: the RDMA device's index, or -1 before resolution
 * @qp_num:	out: its QP number, 0 without a QP
 * @send_depth, @recv_depth: out: queue depths
 * @local, @peer: out: addresses (zero until known)
 * @peer_send_depth, @peer_recv_depth: out: the peer's queue depths, from
 *		its connection handshake (0 until connected)
 * @flags:	out: DMAPLANE_EP_INFO_CREDITS when flow control is on
 * @credit_window: out: the most credits granted to the peer at once
 * @credits:	out: credits the peer granted this endpoint, not used yet
 * @peer_credits: out: credits granted to the peer, not used yet
 * @queued:	out: operations waiting for a credit
 * @inflight:	out: operations posted and not completed yet (queued too)
 * @stalls:	out: times an operation found no credit
 * @stall_ns:	out: how long those stalls lasted, in all
 * @id:		out: the endpoint's module-wide id, as debugfs "endpoints"
 *		and the dmaplane tracepoints name it
 */
struct dmaplane_ep_info {
	__u32 handle;
	__u32 state;
	__s32 error;
	__s32 device_index;
	__u32 qp_num;
	__u32 send_depth;
	__u32 recv_depth;
	__u32 reserved;
	struct dmaplane_addr local;
	struct dmaplane_addr peer;
	/* uapi 4 */
	__u32 peer_send_depth;
	__u32 peer_recv_depth;
	/* uapi 5 */
	__u32 flags;
	__u32 credit_window;
	__u32 credits;
	__u32 peer_credits;
	__u32 queued;
	__u32 inflight;
	__u64 stalls;
	__u64 stall_ns;
	__u64 id;
};

/* struct dmaplane_ep_info.flags */
#define DMAPLANE_EP_INFO_CREDITS	_BITUL(0)

/* Access an MR grants (MR_REG). Remote write needs local write too. */
#define DMAPLANE_MR_LOCAL_WRITE		_BITUL(0) /* RECV and READ land in it */
#define DMAPLANE_MR_REMOTE_WRITE	_BITUL(1) /* the peer may WRITE into it */
#define DMAPLANE_MR_REMOTE_READ		_BITUL(2) /* the peer may READ from it */
#define DMAPLANE_MR_VALID_FLAGS		(DMAPLANE_MR_LOCAL_WRITE | \
					 DMAPLANE_MR_REMOTE_WRITE | \
					 DMAPLANE_MR_REMOTE_READ)

/**
 * struct dmaplane_mr_reg - DMAPLANE_IOC_MR_REG: register a window of a
 * buffer with a connected endpoint's protection domain (fast registration:
 * a REG_MR work request on its QP).
 * @endpoint:	in: a connected endpoint of this file
 * @buffer:	in: a buffer of this file, an import too
 * @access:	in: DMAPLANE_MR_* bits
 * @handle:	out: the MR handle
 * @offset:	in: where the window starts in the buffer, a multiple of 4096
 * @length:	in: its length in bytes, 0 = to the end of the buffer
 * @rkey:	out: the key a peer names the window by, 0 without remote
 *		access. Peers address the window from offset 0: a remote
 *		offset is never a kernel or bus address.
 * @reserved:	must be 0
 *
 * The buffer cannot be destroyed (-EBUSY) while an MR covers it; MR_DEREG
 * invalidates the rkey (LOCAL_INV) before the pages can go.
 * Errors: -ENOENT (no such endpoint or buffer), -ENOTCONN (not connected),
 * -EINVAL (flags, alignment, window outside the buffer), -ENODEV (an
 * import its exporter revoked), -EOPNOTSUPP (an import a software device
 * cannot reach: its exporter has no kernel mapping), -EMSGSIZE
 * (more pages than the device registers at once), -ENODEV, -ECONNRESET.
 */
struct dmaplane_mr_reg {
	__u32 endpoint;
	__u32 buffer;
	__u32 access;
	__u32 handle;
	__u64 offset;
	__u64 length;
	__u32 rkey;
	__u32 reserved;
};

/* Operations (struct dmaplane_op.opcode, struct dmaplane_completion.opcode). */
enum dmaplane_opcode {
	DMAPLANE_OP_NOOP = 0,		/* completes at once; measures the channel */
	DMAPLANE_OP_SEND = 1,
	DMAPLANE_OP_RECV = 2,
	DMAPLANE_OP_WRITE = 3,
	DMAPLANE_OP_WRITE_IMM = 4,	/* WRITE that consumes a peer's RECV */
	DMAPLANE_OP_READ = 5,
};

#define DMAPLANE_OP_MAX_LENGTH		_BITUL(31)

/**
 * struct dmaplane_op - one operation in DMAPLANE_IOC_POST.
 * @cookie:	in: returned in its completion
 * @opcode:	in: enum dmaplane_opcode
 * @flags:	in: must be 0
 * @mr:		in: local MR of the same endpoint; 0 with @length 0
 * @imm:	in: WRITE_IMM's immediate value (host order)
 * @offset:	in: where the local data starts in @mr
 * @length:	in: bytes, at most DMAPLANE_OP_MAX_LENGTH; 0 only for SEND,
 *		RECV and WRITE_IMM
 * @remote_offset: in: WRITE, WRITE_IMM, READ: offset in the peer's window
 * @rkey:	in: WRITE, WRITE_IMM, READ: the window's rkey
 * @reserved:	must be 0
 *
 * RECV and READ need an MR with DMAPLANE_MR_LOCAL_WRITE. The peer's
 * device checks the remote window: a bad rkey or range completes the
 * operation with -EACCES or -EREMOTEIO and breaks the connection.
 */
struct dmaplane_op {
	__u64 cookie;
	__u32 opcode;
	__u32 flags;
	__u32 mr;
	__u32 imm;
	__u64 offset;
	__u64 length;
	__u64 remote_offset;
	__u32 rkey;
	__u32 reserved;
};

#define DMAPLANE_OP_VALID_FLAGS		0U
#define DMAPLANE_POST_MAX		256

/**
 * struct dmaplane_post - DMAPLANE_IOC_POST: post a batch of operations.
 * @endpoint:	in: a connected endpoint (NOOP: any endpoint)
 * @count:	in: operations at @ops, 1..DMAPLANE_POST_MAX
 * @ops:	in: user pointer to @count struct dmaplane_op
 * @posted:	out: how many were posted, in order
 * @error:	out: 0 when all were; else why ops[@posted] was not
 * @flags:	in: DMAPLANE_POST_NOWAIT or 0
 * @reserved:	must be 0
 *
 * With flow control, SEND and WRITE_IMM each need a credit from the peer.
 * Without one, an operation waits in the endpoint's queue (it counts as
 * posted; its completion comes once it went out) and so does every
 * send-side operation after it, in order; with DMAPLANE_POST_NOWAIT it
 * is refused with -EAGAIN instead and the batch stops there.
 *
 * The ioctl fails only when nothing was posted (it returns @error then).
 * Per-op errors: -EINVAL (opcode, flags, reserved, a zero length where
 * data is needed), -ENOENT (no such MR), -EXDEV (MR of another endpoint),
 * -ERANGE (outside the MR, or a remote range that wraps), -EACCES (the MR
 * lacks local write), -EMSGSIZE (over DMAPLANE_OP_MAX_LENGTH), -EAGAIN
 * (send or receive queue full: completions not reaped yet count as
 * full; or no credit, with DMAPLANE_POST_NOWAIT), -ENOTCONN, -ENODEV or
 * the error that ended the connection.
 */
struct dmaplane_post {
	__u32 endpoint;
	__u32 count;
	__u64 ops;
	__u32 posted;
	__s32 error;
	__u32 flags;
	__u32 reserved;
};

#define DMAPLANE_POST_NOWAIT		_BITUL(0) /* uapi 5: -EAGAIN, not queued */
#define DMAPLANE_POST_VALID_FLAGS	DMAPLANE_POST_NOWAIT

/* struct dmaplane_completion.flags */
#define DMAPLANE_COMP_IMM		_BITUL(0) /* @imm is valid */
#define DMAPLANE_COMP_WRITE_IMM		_BITUL(1) /* RECV consumed by a WRITE_IMM */

/**
 * struct dmaplane_completion - one completed operation (REAP).
 * @cookie:	the operation's cookie
 * @opcode:	the operation's opcode
 * @status:	0, or -errno: -ECANCELED (flushed: the connection ended),
 *		-EACCES (remote access), -EREMOTEIO (remote operation),
 *		-ETIMEDOUT (transport retries exhausted: dead peer),
 *		-EMSGSIZE (a RECV too small), -EIO (anything else)
 * @wc_status:	the verbs work-completion status, for diagnostics
 * @bytes:	bytes received (RECV), or the operation's length
 * @imm:	immediate value (with DMAPLANE_COMP_IMM), host order
 * @flags:	DMAPLANE_COMP_* bits
 */
struct dmaplane_completion {
	__u64 cookie;
	__u32 opcode;
	__s32 status;
	__u32 wc_status;
	__u32 bytes;
	__u32 imm;
	__u32 flags;
};

/**
 * struct dmaplane_reap - DMAPLANE_IOC_REAP: collect completions.
 * @endpoint:	in: an endpoint of this file
 * @max:	in: room at @entries, 1..DMAPLANE_POST_MAX
 * @entries:	in: user pointer to @max struct dmaplane_completion
 * @min:	in: wait until this many are ready (0..@max; 0 = do not wait)
 * @timeout_ms:	in: longest wait, at most DMAPLANE_EP_TIMEOUT_MAX_MS
 * @count:	out: completions copied, oldest first
 * @reserved:	must be 0
 *
 * Returns what is ready once @min are, the timeout passes (-ETIMEDOUT if
 * none is ready) or the connection has ended and every operation it had
 * posted has completed (flushed ones with -ECANCELED); once none is left
 * to reap, the connection's error. -EINTR on a signal with nothing reaped.
 */
struct dmaplane_reap {
	__u32 endpoint;
	__u32 max;
	__u64 entries;
	__u32 min;
	__u32 timeout_ms;
	__u32 count;
	__u32 reserved;
};

/**
 * struct dmaplane_ep_eventfd - DMAPLANE_IOC_ENDPOINT_EVENTFD: signal an
 * eventfd for every completion on the endpoint and when it fails, so one
 * poll()/epoll can watch many endpoints.
 * @endpoint:	in: an endpoint of this file
 * @fd:		in: an eventfd, or -1 to stop signalling
 */
struct dmaplane_ep_eventfd {
	__u32 endpoint;
	__s32 fd;
};

/* The CPU mapping of a pinned range is uncached instead of write-combining. */
#define DMAPLANE_GPU_PIN_UNCACHED	_BITUL(0)
#define DMAPLANE_GPU_PIN_VALID_FLAGS	DMAPLANE_GPU_PIN_UNCACHED

/**
 * struct dmaplane_gpu_pin - DMAPLANE_IOC_GPU_PIN: pin a range of GPU memory
 * and name it by a buffer handle. The handle works where a buffer's does:
 * BUFFER_INFO, BUFFER_DESTROY (unpins), mmap (where the provider allows a
 * CPU mapping: write-combining, or uncached with GPU_PIN_UNCACHED),
 * EXPORT_DMABUF, MR_REG and the verbs.
 * @provider:	in: DMAPLANE_GPU_*
 * @flags:	in: DMAPLANE_GPU_PIN_* bits
 * @addr:	in: start, a multiple of the provider's page size (see above)
 * @length:	in: bytes, a multiple of the provider's page size
 * @device:	in: SIM: device index; DMABUF: the dma-buf fd; otherwise 0
 * @handle:	out: buffer handle on this file
 * @mmap_offset: out: offset to pass to mmap(2) on this file
 * @page_size:	out: the provider's page size (64 KiB for NVIDIA and SIM)
 * @result_flags: out: DMAPLANE_BUF_RES_GPU (and the import bits for DMABUF)
 *
 * The GPU driver may take the memory back at any time (cudaFree, or
 * GPU_SIM_FREE): the range is then revoked: connections with operations in
 * flight on it, or that a peer could reach it through, fail with -ENODEV,
 * its MRs are invalidated, and later use of the handle fails with -ENODEV;
 * BUFFER_INFO shows DMAPLANE_BUF_RES_REVOKED.
 *
 * Errors: -EINVAL (flags, reserved, alignment, zero length, a range that
 * wraps), -EOPNOTSUPP (provider not built in or not usable here), -ENODEV
 * (no such device), -ERANGE (outside the device's memory), -EFBIG (above
 * max_buffer_size), the provider's errors (e.g. -EINVAL from
 * nvidia_p2p_get_pages), -EMFILE, -ENOMEM. GPU memory is not charged to
 * the host-memory byte limits (max_total_bytes, max_file_bytes).
 */
struct dmaplane_gpu_pin {
	__u32 provider;
	__u32 flags;
	__u64 addr;
	__u64 length;
	__s32 device;
	__u32 handle;
	__u64 mmap_offset;
	__u32 page_size;
	__u32 result_flags;
};

#define DMAPLANE_GPU_SIM_FREE_VALID_FLAGS	0U

/**
 * struct dmaplane_gpu_sim_free - DMAPLANE_IOC_GPU_SIM_FREE (test trigger,
 * CAP_SYS_ADMIN): the sim GPU frees [@addr, @addr + @length) the way
 * cudaFree does: every pinned range overlapping it, whoever pinned it, is
 * revoked before this returns.
 * @device:	in: sim device index
 * @flags:	in: must be 0
 * @addr:	in: start in the device's memory
 * @length:	in: bytes (non-zero)
 * @revoked:	out: pinned ranges revoked
 * @reserved:	must be 0
 *
 * Errors: -EPERM, -EINVAL, -EOPNOTSUPP (no sim GPU), -ENODEV, -ERANGE.
 */
struct dmaplane_gpu_sim_free {
	__u32 device;
	__u32 flags;
	__u64 addr;
	__u64 length;
	__u32 revoked;
	__u32 reserved;
};

#define DMAPLANE_IOC_GET_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x00, struct dmaplane_info)
#define DMAPLANE_IOC_ECHO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x01, struct dmaplane_echo)
#define DMAPLANE_IOC_BUFFER_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x02, struct dmaplane_buffer_create)
#define DMAPLANE_IOC_BUFFER_DESTROY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x03, struct dmaplane_handle_op)
#define DMAPLANE_IOC_BUFFER_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x04, struct dmaplane_buffer_info)
#define DMAPLANE_IOC_GET_TOPOLOGY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x05, struct dmaplane_topology)
#define DMAPLANE_IOC_NUMA_BENCH \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x06, struct dmaplane_numa_bench)
#define DMAPLANE_IOC_MAP_BENCH \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x07, struct dmaplane_map_bench)
#define DMAPLANE_IOC_EXPORT_DMABUF \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x08, struct dmaplane_export_dmabuf)
#define DMAPLANE_IOC_IMPORT_DMABUF \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x09, struct dmaplane_import_dmabuf)
#define DMAPLANE_IOC_BUFFER_REVOKE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0a, struct dmaplane_revoke)
#define DMAPLANE_IOC_RDMA_DEVICES \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0b, struct dmaplane_rdma_devices)
#define DMAPLANE_IOC_ENDPOINT_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0c, struct dmaplane_ep_create)
#define DMAPLANE_IOC_ENDPOINT_DESTROY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0d, struct dmaplane_handle_op)
#define DMAPLANE_IOC_ENDPOINT_LISTEN \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0e, struct dmaplane_ep_listen)
#define DMAPLANE_IOC_ENDPOINT_CONNECT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0f, struct dmaplane_ep_connect)
#define DMAPLANE_IOC_ENDPOINT_ACCEPT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x10, struct dmaplane_ep_accept)
#define DMAPLANE_IOC_ENDPOINT_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x11, struct dmaplane_ep_info)
#define DMAPLANE_IOC_MR_REG \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x12, struct dmaplane_mr_reg)
#define DMAPLANE_IOC_MR_DEREG \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x13, struct dmaplane_handle_op)
#define DMAPLANE_IOC_POST \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x14, struct dmaplane_post)
#define DMAPLANE_IOC_REAP \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x15, struct dmaplane_reap)
#define DMAPLANE_IOC_ENDPOINT_EVENTFD \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x16, struct dmaplane_ep_eventfd)
#define DMAPLANE_IOC_GPU_PIN \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x17, struct dmaplane_gpu_pin)
#define DMAPLANE_IOC_GPU_SIM_FREE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x18, struct dmaplane_gpu_sim_free)

#endif /* _UAPI_LINUX_DMAPLANE_H */
