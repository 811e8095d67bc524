// SPDX-License-Identifier: GPL-2.0
/*
 * dmabuf: EXPORT_DMABUF, IMPORT_DMABUF and BUFFER_REVOKE. Data through
 * every view (dmaplane mmap, dma-buf mmap, an import's mmap), across two
 * processes over SCM_RIGHTS with DMA_BUF_IOCTL_SYNC, lifetimes in every
 * close order, 1000 import/destroy cycles, every bad input, and imports
 * from udmabuf and the system dma-heap where the kernel has them (the
 * debug kernel; the stock kernel skips those, saying so).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define MIB (1UL << 20)

static int dev_fd = -1;

static uint32_t new_buffer(int fd, uint64_t size, uint32_t flags)
{
	struct dmaplane_buffer_create req = {
		.size = size, .flags = flags, .numa_node = DMAPLANE_NUMA_ANY,
	};

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(fd, &req), 0);
	return req.handle;
}

static uint64_t offset_of(uint32_t handle)
{
	return (uint64_t)handle << DMAPLANE_MMAP_SHIFT;
}

static unsigned char *map_fd(int fd, uint64_t off, size_t len, int prot)
{
	unsigned char *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);

	KTAP_EXPECT(p != MAP_FAILED, "mmap fd %d +0x%llx: %s", fd,
		    (unsigned long long)off, strerror(errno));
	return p == MAP_FAILED ? NULL : p;
}

static int sync_dmabuf(int fd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags | DMA_BUF_SYNC_RW };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) ? -errno : 0;
}

/* Write through the dma-buf (CPU access bracketed by SYNC). */
static void write_dmabuf(int dmabuf, size_t len, unsigned int seed)
{
	unsigned char *p = map_fd(dmabuf, 0, len, PROT_READ | PROT_WRITE);

	if (!p)
		return;
	KTAP_EXPECT_RET(sync_dmabuf(dmabuf, DMA_BUF_SYNC_START), 0);
	fill_pattern(p, len, seed);
	KTAP_EXPECT_RET(sync_dmabuf(dmabuf, DMA_BUF_SYNC_END), 0);
	munmap(p, len);
}

static bool dmabuf_holds(int dmabuf, size_t len, unsigned int seed)
{
	unsigned char *p = map_fd(dmabuf, 0, len, PROT_READ);
	bool ok;

	if (!p)
		return false;
	KTAP_EXPECT_RET(sync_dmabuf(dmabuf, DMA_BUF_SYNC_START), 0);
	ok = pattern_holds(p, len, seed);
	KTAP_EXPECT_RET(sync_dmabuf(dmabuf, DMA_BUF_SYNC_END), 0);
	munmap(p, len);
	return ok;
}

/* Read a dmaplane handle's mapping (own buffer or import). */
static bool handle_holds(int fd, uint32_t handle, size_t len,
			 unsigned int seed)
{
	unsigned char *p = map_fd(fd, offset_of(handle), len, PROT_READ);
	bool ok = p && pattern_holds(p, len, seed);

	if (p)
		munmap(p, len);
	return ok;
}

static struct dmaplane_buffer_info info_of(int fd, uint32_t handle)
{
	struct dmaplane_buffer_info info;

	KTAP_EXPECT_RET(dmaplane_buffer_info(fd, handle, &info, NULL, 0), 0);
	return info;
}

static int send_fd(int sock, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -errno;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void open_device(void)
{
	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", ktap_errname(dev_fd));
}

static void export_maps_and_syncs(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	int a = -1, b = -1;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &a), 0);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h,
					       DMAPLANE_EXPORT_CLOEXEC, &b), 0);
	KTAP_EXPECT(a >= 0 && b >= 0, "fds %d %d", a, b);
	KTAP_EXPECT(!(fcntl(a, F_GETFD) & FD_CLOEXEC), "CLOEXEC without asking");
	KTAP_EXPECT(fcntl(b, F_GETFD) & FD_CLOEXEC, "no CLOEXEC");
	KTAP_EXPECT((fcntl(a, F_GETFL) & O_ACCMODE) == O_RDWR, "not O_RDWR");
	KTAP_EXPECT(info_of(dev_fd, h).exports == 2, "exports %u",
		    info_of(dev_fd, h).exports);
	write_dmabuf(a, MIB, 1);
	KTAP_EXPECT(dmabuf_holds(b, MIB, 1), "second export differs");
	KTAP_EXPECT(handle_holds(dev_fd, h, MIB, 1), "buffer mapping differs");
	close(a);
	close(b);
	KTAP_EXPECT(info_of(dev_fd, h).exports == 0, "exports after close");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void export_every_kind(void)
{
	static const uint32_t kinds[] = {
		DMAPLANE_BUF_COHERENT, DMAPLANE_BUF_HUGE, DMAPLANE_BUF_USER,
	};
	unsigned char *mem = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				  -1, 0);

	for (int i = 0; i < 3; i++) {
		struct dmaplane_buffer_create req = {
			.size = kinds[i] == DMAPLANE_BUF_HUGE ? 2 * MIB : MIB,
			.flags = kinds[i], .numa_node = -1,
			.user_addr = kinds[i] == DMAPLANE_BUF_USER ?
				     (uintptr_t)mem : 0,
		};
		int d = -1;

		KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
		KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, req.handle, 0,
						       &d), 0);
		if (d < 0)
			continue;
		write_dmabuf(d, req.alloc_size, 10 + i);
		KTAP_EXPECT(handle_holds(dev_fd, req.handle, req.alloc_size,
					 10 + i), "kind 0x%x differs", kinds[i]);
		if (kinds[i] == DMAPLANE_BUF_USER)
			KTAP_EXPECT(pattern_holds(mem, MIB, 10 + i),
				    "user pages did not get the writes");
		close(d);
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	}
	munmap(mem, MIB);
}

static void export_read_only(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	struct dmaplane_import_dmabuf imp;
	unsigned char *p;
	int d = -1;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h,
					       DMAPLANE_EXPORT_READ_ONLY, &d),
			0);
	KTAP_EXPECT((fcntl(d, F_GETFL) & O_ACCMODE) == O_RDONLY, "not O_RDONLY");
	p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
	KTAP_EXPECT(p == MAP_FAILED && errno == EACCES,
		    "writable mapping of a read-only export: %s",
		    p == MAP_FAILED ? strerror(errno) : "mapped");
	if (p != MAP_FAILED)
		munmap(p, MIB);
	p = map_fd(d, 0, MIB, PROT_READ);
	if (p)
		munmap(p, MIB);
	/* dmaplane imports are written by devices: read-only is refused. */
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), -EACCES);
	close(d);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void export_rejects_bad_input(void)
{
	struct dmaplane_export_dmabuf req;
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	int other = dmaplane_open(), d = -1;

	req = (struct dmaplane_export_dmabuf){ .handle = h, .flags = 1U << 2 };
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_EXPORT_DMABUF, &req) ?
			-errno : 0, -EINVAL);
	req = (struct dmaplane_export_dmabuf){ .handle = h, .reserved = 1 };
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_EXPORT_DMABUF, &req) ?
			-errno : 0, -EINVAL);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, 0, 0, &d), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h + 1000, 0, &d),
			-ENOENT);
	if (other >= 0) {
		KTAP_EXPECT_RET(dmaplane_export_dmabuf(other, h, 0, &d),
				-ENOENT);
		close(other);
	}
	KTAP_EXPECT(dmaplane_counter("exports") == 0, "a failed export lives");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/* An export whose fd number cannot reach the caller leaves no fd and no dma-buf. */
static void failed_copy_out_leaks_no_fd(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	struct dmaplane_export_dmabuf req = { .handle = h };
	uint64_t exports = dmaplane_counter("exports");
	int next = dup(0), after;
	void *ro;

	close(next);
	ro = readonly_arg(&req, sizeof(req));
	if (!ro)
		return;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_EXPORT_DMABUF, ro) ? -errno
			: 0, -EFAULT);
	munmap(ro, 4096);
	after = dup(0);
	KTAP_EXPECT(after == next, "fd %d was taken by a failed export", next);
	close(after);
	KTAP_EXPECT(dmaplane_counter("exports") == exports,
		    "a failed export left a dma-buf");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/* The dma-buf keeps the memory after the handle and the file are gone. */
static void export_outlives_handle_and_file(void)
{
	uint64_t buffers = dmaplane_counter("buffers");
	int fd = dmaplane_open(), d = -1;
	uint32_t h;

	if (fd < 0)
		return;
	h = new_buffer(fd, MIB, DMAPLANE_BUF_HUGE);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(fd, h, 0, &d), 0);
	write_dmabuf(d, 2 * MIB, 21);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, h), 0);
	close(fd);
	KTAP_EXPECT(dmaplane_counter("buffers") == buffers + 1,
		    "buffer freed under its dma-buf");
	KTAP_EXPECT(dmabuf_holds(d, 2 * MIB, 21), "data lost");
	close(d);
	KTAP_EXPECT(dmaplane_counter("buffers") == buffers,
		    "buffer not freed with its dma-buf");
}

static void self_import_shares_data(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	struct dmaplane_import_dmabuf imp;
	struct dmaplane_buffer_info info;
	int other = dmaplane_open(), d = -1;
	unsigned char *p;

	if (other < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	write_dmabuf(d, MIB, 31);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(other, d, &imp), 0);
	KTAP_EXPECT(imp.size == MIB && imp.handle != 0, "size %llu",
		    (unsigned long long)imp.size);
	KTAP_EXPECT(imp.result_flags == (DMAPLANE_BUF_RES_IMPORTED |
					 DMAPLANE_BUF_RES_DYNAMIC),
		    "flags 0x%x", imp.result_flags);
	KTAP_EXPECT(imp.mmap_offset == offset_of(imp.handle), "");
	KTAP_EXPECT(info_of(dev_fd, h).attachments == 1, "attachments %u",
		    info_of(dev_fd, h).attachments);
	info = info_of(other, imp.handle);
	KTAP_EXPECT(info.size == MIB && info.dma_segments >= 1 &&
		    (info.result_flags & DMAPLANE_BUF_RES_IMPORTED),
		    "import info: size %llu segments %llu flags 0x%x",
		    (unsigned long long)info.size,
		    (unsigned long long)info.dma_segments, info.result_flags);
	/* Both ways: the import maps the exporter's memory. */
	KTAP_EXPECT(handle_holds(other, imp.handle, MIB, 31), "import differs");
	p = map_fd(other, imp.mmap_offset, MIB, PROT_READ | PROT_WRITE);
	if (p) {
		fill_pattern(p, MIB, 32);
		munmap(p, MIB);
	}
	KTAP_EXPECT(handle_holds(dev_fd, h, MIB, 32), "exporter missed writes");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(other, imp.handle), 0);
	KTAP_EXPECT(info_of(dev_fd, h).attachments == 0, "attachment left");
	close(other);
	close(d);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/*
 * More importers than DMA-API debug allows overlapping mappings of a
 * cacheline (7): they share the exporter's one mapping per device, and
 * each still sees the buffer (the debug kernel's log is the judge).
 */
static void many_importers_share_a_mapping(void)
{
	enum { DMABUFS = 2, IMPORTS = 12 };
	uint32_t h = new_buffer(dev_fd, MIB, 0), handles[DMABUFS * IMPORTS];
	struct dmaplane_import_dmabuf imp;
	int d[DMABUFS] = { -1, -1 }, n = 0;

	for (int i = 0; i < DMABUFS; i++)
		KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d[i]), 0);
	for (int i = 0; i < DMABUFS * IMPORTS && !ktap_case_failed(); i++) {
		KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d[i % DMABUFS],
						       &imp), 0);
		handles[n++] = imp.handle;
	}
	/* Imports of one dma-buf share its attachment. */
	KTAP_EXPECT(info_of(dev_fd, h).attachments == DMABUFS,
		    "attachments %u, imports %d",
		    info_of(dev_fd, h).attachments, n);
	/* CPU access through a dma-buf syncs the shared mapping. */
	write_dmabuf(d[0], MIB, 41);
	for (int i = 0; i < n; i++)
		KTAP_EXPECT(handle_holds(dev_fd, handles[i], MIB, 41),
			    "import %d differs", i);
	for (int i = 0; i < n; i++)
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, handles[i]), 0);
	KTAP_EXPECT(info_of(dev_fd, h).attachments == 0, "attachments left");
	for (int i = 0; i < DMABUFS; i++)
		close(d[i]);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void import_rejects_bad_fds(void)
{
	struct dmaplane_import_dmabuf imp;
	int pipefd[2], closed = dup(0), mfd = memfd_create("x", 0);
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	struct dmaplane_buffer_info info;
	struct dmaplane_map_bench mb;
	uint64_t hist[4];
	int d = -1;

	close(closed);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, -1, &imp), -EBADF);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, closed, &imp), -EBADF);
	KTAP_EXPECT_RET(pipe(pipefd), 0);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, pipefd[0], &imp),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, mfd, &imp), -EINVAL);
	/* Not even a dmaplane fd is a dma-buf. */
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, dev_fd, &imp), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	imp = (struct dmaplane_import_dmabuf){ .fd = d, .flags = 1 };
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_IMPORT_DMABUF, &imp) ?
			-errno : 0, -EINVAL);
	/* What an import cannot do: re-export, page histogram, map bench. */
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, imp.handle, 0, &closed),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, imp.handle, &info, hist, 4),
			-EOPNOTSUPP);
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, imp.handle, 1, &mb), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	close(d);
	close(pipefd[0]);
	close(pipefd[1]);
	close(mfd);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/* Parent writes, child reads and answers, over SCM_RIGHTS; both SYNC. */
static void dmabuf_crosses_processes(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	int sv[2], d = -1;
	pid_t pid;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	KTAP_EXPECT_RET(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	write_dmabuf(d, MIB, 41);
	pid = fork();
	if (pid == 0) {
		int got = recv_fd(sv[1]);
		unsigned char *p;

		if (got < 0)
			_exit(2);
		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, got, 0);
		if (p == MAP_FAILED || sync_dmabuf(got, DMA_BUF_SYNC_START))
			_exit(3);
		if (!pattern_holds(p, MIB, 41))
			_exit(4);
		fill_pattern(p, MIB, 42);
		_exit(sync_dmabuf(got, DMA_BUF_SYNC_END) ? 5 : 0);
	}
	KTAP_EXPECT_RET(send_fd(sv[0], d), 0);
	if (child_exited_ok(pid))
		KTAP_EXPECT(dmabuf_holds(d, MIB, 42) &&
			    handle_holds(dev_fd, h, MIB, 42),
			    "the child's writes did not arrive");
	close(sv[0]);
	close(sv[1]);
	close(d);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/* The exporting process is gone; the importer goes on using the memory. */
static void exporter_exits_importer_stays(void)
{
	uint64_t buffers = dmaplane_counter("buffers");
	struct dmaplane_import_dmabuf imp;
	int sv[2], d;
	pid_t pid;

	KTAP_EXPECT_RET(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (pid == 0) {
		int fd = dmaplane_open(), e = -1;
		uint32_t h2;
		struct dmaplane_buffer_create req = {
			.size = MIB, .numa_node = -1,
		};

		if (fd < 0 || dmaplane_buffer_create_req(fd, &req))
			_exit(2);
		h2 = req.handle;
		if (dmaplane_export_dmabuf(fd, h2, 0, &e))
			_exit(3);
		write_dmabuf(e, MIB, 51);
		_exit(send_fd(sv[1], e) ? 4 : 0);
	}
	d = recv_fd(sv[0]);
	KTAP_EXPECT(d >= 0, "recv: %s", ktap_errname(d));
	child_exited_ok(pid);
	if (d >= 0) {
		KTAP_EXPECT(dmaplane_counter("buffers") == buffers + 1,
			    "the exiting process took the buffer along");
		KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
		close(d);
		KTAP_EXPECT(handle_holds(dev_fd, imp.handle, MIB, 51),
			    "import of a dead process's buffer differs");
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	}
	close(sv[0]);
	close(sv[1]);
	KTAP_EXPECT(dmaplane_counter("buffers") == buffers &&
		    dmaplane_counter("attachments") == 0,
		    "buffers %llu (was %llu), attachments %llu",
		    (unsigned long long)dmaplane_counter("buffers"),
		    (unsigned long long)buffers,
		    (unsigned long long)dmaplane_counter("attachments"));
}

/* Every order of letting go ends with nothing left. */
static void close_orders_release_everything(void)
{
	uint64_t buffers = dmaplane_counter("buffers");
	struct dmaplane_import_dmabuf imp;

	for (int order = 0; order < 2; order++) {
		int exp_fd = dmaplane_open(), imp_fd = dmaplane_open(), d = -1;
		uint32_t h;

		if (exp_fd < 0 || imp_fd < 0)
			return;
		h = new_buffer(exp_fd, MIB, 0);
		KTAP_EXPECT_RET(dmaplane_export_dmabuf(exp_fd, h, 0, &d), 0);
		write_dmabuf(d, MIB, 60 + order);
		KTAP_EXPECT_RET(dmaplane_import_dmabuf(imp_fd, d, &imp), 0);
		if (order == 0) {
			/* Importer first, then the dma-buf, then the exporter. */
			close(imp_fd);
			close(d);
			close(exp_fd);
		} else {
			/* Exporter first: the import keeps the memory. */
			close(d);
			KTAP_EXPECT_RET(dmaplane_buffer_destroy(exp_fd, h), 0);
			close(exp_fd);
			KTAP_EXPECT(handle_holds(imp_fd, imp.handle, MIB, 61),
				    "import lost the exporter's data");
			close(imp_fd);
		}
		KTAP_EXPECT(dmaplane_counter("buffers") == buffers &&
			    dmaplane_counter("exports") == 0 &&
			    dmaplane_counter("attachments") == 0,
			    "order %d: buffers %llu exports %llu attachments %llu",
			    order,
			    (unsigned long long)dmaplane_counter("buffers"),
			    (unsigned long long)dmaplane_counter("exports"),
			    (unsigned long long)dmaplane_counter("attachments"));
	}
}

/* debugfs and `dmaplanectl buffers` show an export and its attachment. */
static void buffers_listing_shows_attachments(void)
{
	const char *ctl = getenv("DMAPLANE_CTL");
	uint32_t h = new_buffer(dev_fd, MIB, 0);
	struct dmaplane_import_dmabuf imp;
	char line[512], cmd[512];
	int d = -1, found = 0;
	FILE *f;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
	f = fopen("/sys/kernel/debug/dmaplane/buffers", "r");
	KTAP_EXPECT(f, "debugfs buffers: %s", strerror(errno));
	while (f && fgets(line, sizeof(line), f)) {
		found += strstr(line, "kind=pages size=1048576") &&
			 strstr(line, "exports=1 attachments=1");
		found += strstr(line, "kind=import size=1048576") &&
			 strstr(line, "flags=0xc") != NULL;
	}
	if (f)
		fclose(f);
	KTAP_EXPECT(found == 2, "%d of 2 lines found in debugfs", found);
	if (!ctl) {
		ktap_skip("DMAPLANE_CTL not set (tests/run-guest.sh sets it)");
	} else {
		snprintf(cmd, sizeof(cmd), "%s buffers --json", ctl);
		f = popen(cmd, "r");
		found = 0;
		while (f && fgets(line, sizeof(line), f))
			found += strstr(line, "\"exports\": 1, \"attachments\": 1") !=
				 NULL;
		KTAP_EXPECT(f && pclose(f) == 0 && found == 1,
			    "dmaplanectl buffers --json: %d matches", found);
	}
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	close(d);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void attach_detach_cycles(void)
{
	uint32_t h = new_buffer(dev_fd, 64 * 1024, 0);
	struct dmaplane_import_dmabuf imp;
	int d = -1, i;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	for (i = 0; i < 1000 && !ktap_case_failed(); i++) {
		KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	}
	KTAP_EXPECT(info_of(dev_fd, h).attachments == 0 &&
		    dmaplane_counter("attachments") == 0,
		    "attachments left after %d cycles", i);
	printf("# %d attach/map/unmap/detach cycles\n", i);
	close(d);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void revoke_fences_importers(void)
{
	uint32_t h = new_buffer(dev_fd, MIB, 0), n = 99;
	uint64_t revocations = dmaplane_counter("revocations");
	struct dmaplane_import_dmabuf imp, again;
	struct dmaplane_revoke bad;
	int d = -1, d2 = -1;
	unsigned char *p;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d), 0);
	write_dmabuf(d, MIB, 91);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
	bad = (struct dmaplane_revoke){ .handle = h, .flags = 1 };
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_REVOKE, &bad) ?
			-errno : 0, -EINVAL);
	bad = (struct dmaplane_revoke){ .handle = h, .reserved = 1 };
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_REVOKE, &bad) ?
			-errno : 0, -EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_revoke(dev_fd, 0, &n), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_revoke(dev_fd, imp.handle, &n), -EINVAL);

	KTAP_EXPECT_RET(dmaplane_buffer_revoke(dev_fd, h, &n), 0);
	KTAP_EXPECT(n == 1, "%u exports revoked", n);
	KTAP_EXPECT(dmaplane_counter("revocations") == revocations + 1,
		    "the importer was not told");
	KTAP_EXPECT(info_of(dev_fd, imp.handle).result_flags &
		    DMAPLANE_BUF_RES_REVOKED, "import not marked revoked");
	KTAP_EXPECT(info_of(dev_fd, imp.handle).dma_segments == 0,
		    "revoked import still mapped");
	/* New use of the revoked memory fails; the owner keeps using it. */
	p = mmap(NULL, MIB, PROT_READ, MAP_SHARED, dev_fd, imp.mmap_offset);
	KTAP_EXPECT(p == MAP_FAILED && errno == ENODEV, "mmap of revoked import: %s",
		    p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, MIB, PROT_READ, MAP_SHARED, d, 0);
	KTAP_EXPECT(p == MAP_FAILED && errno == ENODEV, "mmap of revoked dma-buf: %s",
		    p == MAP_FAILED ? strerror(errno) : "mapped");
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &again), -ENODEV);
	KTAP_EXPECT(handle_holds(dev_fd, h, MIB, 91), "owner lost its buffer");
	/* A second revoke finds nothing left; a new export is not revoked. */
	KTAP_EXPECT_RET(dmaplane_buffer_revoke(dev_fd, h, &n), 0);
	KTAP_EXPECT(n == 0, "%u exports revoked twice", n);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, h, 0, &d2), 0);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d2, &again), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, again.handle), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	close(d);
	close(d2);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

/* A udmabuf over a sealed memfd of @size; -errno, or the dma-buf fd. */
static int make_udmabuf(int memfd, size_t size)
{
	struct udmabuf_create create = {
		.memfd = memfd, .flags = UDMABUF_FLAGS_CLOEXEC, .size = size,
	};
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), d;

	if (dev < 0)
		return -errno;
	d = ioctl(dev, UDMABUF_CREATE, &create);
	d = d < 0 ? -errno : d;
	close(dev);
	return d;
}

static int sealed_memfd(size_t size)
{
	int mfd = memfd_create("dmaplane-test", MFD_ALLOW_SEALING);

	if (mfd < 0 || ftruncate(mfd, size) ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK))
		return -errno;
	return mfd;
}

static bool have(const char *path)
{
	if (access(path, F_OK) == 0)
		return true;
	ktap_skip("no %s (needs CONFIG_UDMABUF/CONFIG_DMABUF_HEAPS_SYSTEM: the debug kernel)",
		  path);
	return false;
}

/* udmabuf → dmaplane, and its data across two processes. */
static void udmabuf_import_across_processes(void)
{
	struct dmaplane_import_dmabuf imp;
	unsigned char *mem;
	int mfd, d, sv[2];
	pid_t pid;

	if (!have("/dev/udmabuf"))
		return;
	mfd = sealed_memfd(MIB);
	KTAP_EXPECT(mfd >= 0, "memfd: %s", ktap_errname(mfd));
	mem = mfd >= 0 ? map_fd(mfd, 0, MIB, PROT_READ | PROT_WRITE) : NULL;
	if (!mem)
		return;
	fill_pattern(mem, MIB, 71);
	d = make_udmabuf(mfd, MIB);
	KTAP_EXPECT(d >= 0, "UDMABUF_CREATE: %s", ktap_errname(d));
	if (d < 0)
		goto out;
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, d, &imp), 0);
	KTAP_EXPECT(imp.result_flags == DMAPLANE_BUF_RES_IMPORTED,
		    "udmabuf import flags 0x%x (pinned expected)",
		    imp.result_flags);
	KTAP_EXPECT(handle_holds(dev_fd, imp.handle, MIB, 71),
		    "import differs from the memfd");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);

	/*
	 * The child imports the udmabuf it was sent and writes through it.
	 * No DMA_BUF_IOCTL_SYNC on the udmabuf itself: 6.1's udmabuf maps
	 * its pages for its own misc device on the first sync, with the
	 * default 64 KiB segment limit, and DMA-API debug reports the longer
	 * segments of a contiguous memfd. The memory is the memfd's, and
	 * CPU-coherent; the dmaplane export cases do the syncs.
	 */
	KTAP_EXPECT_RET(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (pid == 0) {
		int fd = dmaplane_open(), got = recv_fd(sv[1]);
		struct dmaplane_import_dmabuf ci;
		unsigned char *p;

		if (fd < 0 || got < 0 || dmaplane_import_dmabuf(fd, got, &ci))
			_exit(2);
		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 ci.mmap_offset);
		if (p == MAP_FAILED)
			_exit(3);
		if (!pattern_holds(p, MIB, 71))
			_exit(4);
		fill_pattern(p, MIB, 72);
		_exit(0);
	}
	KTAP_EXPECT_RET(send_fd(sv[0], d), 0);
	if (child_exited_ok(pid))
		KTAP_EXPECT(pattern_holds(mem, MIB, 72),
			    "the child's writes are not in the memfd");
	close(sv[0]);
	close(sv[1]);
	close(d);
out:
	munmap(mem, MIB);
	close(mfd);
}

static void dma_heap_import(void)
{
	struct dma_heap_allocation_data alloc = {
		.len = MIB, .fd_flags = O_RDWR | O_CLOEXEC,
	};
	struct dmaplane_import_dmabuf imp, again;
	unsigned char *p;
	int heap, other;

	if (!have("/dev/dma_heap/system"))
		return;
	heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	KTAP_EXPECT(heap >= 0, "open heap: %s", strerror(errno));
	if (heap < 0)
		return;
	KTAP_EXPECT_RET(ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &alloc) ? -errno : 0,
			0);
	close(heap);
	if (ktap_case_failed())
		return;
	write_dmabuf(alloc.fd, MIB, 81);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, alloc.fd, &imp), 0);
	KTAP_EXPECT(handle_holds(dev_fd, imp.handle, MIB, 81),
		    "import differs from the heap buffer");
	p = map_fd(dev_fd, imp.mmap_offset, MIB, PROT_READ | PROT_WRITE);
	if (p) {
		fill_pattern(p, MIB, 82);
		munmap(p, MIB);
	}
	KTAP_EXPECT(dmabuf_holds(alloc.fd, MIB, 82), "heap missed the writes");
	/*
	 * Imported again, by this file and another: one attachment serves
	 * all (the heap maps each attachment, and DMA-API debug refuses two
	 * mappings of one memory for one device); it outlives the first.
	 */
	other = dmaplane_open();
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, alloc.fd, &again), 0);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(other, alloc.fd, &imp), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, again.handle), 0);
	KTAP_EXPECT(handle_holds(other, imp.handle, MIB, 82),
		    "second import differs");
	close(other);
	close(alloc.fd);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_device),
	KTAP_CASE(export_maps_and_syncs),
	KTAP_CASE(export_every_kind),
	KTAP_CASE(export_read_only),
	KTAP_CASE(export_rejects_bad_input),
	KTAP_CASE(failed_copy_out_leaks_no_fd),
	KTAP_CASE(export_outlives_handle_and_file),
	KTAP_CASE(self_import_shares_data),
	KTAP_CASE(many_importers_share_a_mapping),
	KTAP_CASE(import_rejects_bad_fds),
	KTAP_CASE(dmabuf_crosses_processes),
	KTAP_CASE(exporter_exits_importer_stays),
	KTAP_CASE(close_orders_release_everything),
	KTAP_CASE(buffers_listing_shows_attachments),
	KTAP_CASE(attach_detach_cycles),
	KTAP_CASE(revoke_fences_importers),
	KTAP_CASE(udmabuf_import_across_processes),
	KTAP_CASE(dma_heap_import),
};

int main(void)
{
	return ktap_run_suite("dmabuf", cases, sizeof(cases) / sizeof(cases[0]));
}
