// SPDX-License-Identifier: GPL-2.0
/*
 * buffer: the four backings (pages, coherent, huge, user-pinned), mmap and
 * its bounds, BUFFER_INFO, lifetimes (destroy while mapped, close while
 * mapped, fork), RLIMIT_MEMLOCK accounting, every bad input, MAP_BENCH and
 * 1000 create/destroy cycles. Needs dmaplane.ko loaded and debugfs.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define MIB (1ULL << 20)

static int dev_fd = -1;
static size_t page_size;

/* A pages buffer (DMAPLANE_NUMA_ANY) of @size; the request, filled. */
static struct dmaplane_buffer_create make_req(uint64_t size, uint32_t flags)
{
	return (struct dmaplane_buffer_create){
		.size = size, .flags = flags, .numa_node = DMAPLANE_NUMA_ANY,
	};
}

static void *map_buffer(int fd, const struct dmaplane_buffer_create *req,
			uint64_t offset, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       req->mmap_offset + offset);

	KTAP_EXPECT(p != MAP_FAILED, "mmap %zu bytes at +%llu: %s", len,
		    (unsigned long long)offset, strerror(errno));
	return p == MAP_FAILED ? NULL : p;
}

/* -errno of an mmap that should fail, 0 if it (wrongly) succeeded. */
static int mmap_err(int fd, size_t len, int prot, int flags, uint64_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		return -errno;
	munmap(p, len);
	return 0;
}

/*
 * Data written through one mapping reads back through a second mapping of
 * the whole buffer and through a partial mapping at an offset.
 */
static void check_views(const struct dmaplane_buffer_create *req)
{
	size_t size = req->alloc_size, off = 3 * page_size;
	unsigned char *a, *b, *part;
	size_t bad;

	a = map_buffer(dev_fd, req, 0, size);
	b = map_buffer(dev_fd, req, 0, size);
	part = map_buffer(dev_fd, req, off, 2 * page_size);
	if (a && b && part) {
		KTAP_EXPECT(a[0] == 0 && a[size - 1] == 0,
			    "new buffer not zeroed");
		fill_pattern(a, size, 7);
		bad = pattern_mismatch(b, size, 7, 0);
		KTAP_EXPECT(bad == size, "second mapping differs at %zu", bad);
		bad = pattern_mismatch(part, 2 * page_size, 7, off);
		KTAP_EXPECT(bad == 2 * page_size,
			    "offset mapping differs at +%zu", bad);
		part[0] ^= 0xff;
		KTAP_EXPECT(a[off] == part[0] && b[off] == part[0],
			    "write through the offset view lost");
	}
	if (a)
		munmap(a, size);
	if (b)
		munmap(b, size);
	if (part)
		munmap(part, 2 * page_size);
}

static void check_info(const struct dmaplane_buffer_create *req)
{
	struct dmaplane_buffer_info info;

	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req->handle, &info, NULL,
					     0), 0);
	KTAP_EXPECT(info.size == req->alloc_size, "info size %llu",
		    (unsigned long long)info.size);
	KTAP_EXPECT(info.buf_flags == req->flags, "info flags 0x%x",
		    info.buf_flags);
	KTAP_EXPECT(info.nr_pages == req->alloc_size / page_size &&
		    info.nr_pages == req->nr_pages, "nr_pages %llu",
		    (unsigned long long)info.nr_pages);
	KTAP_EXPECT(info.mmap_offset == req->mmap_offset &&
		    req->mmap_offset ==
		    (uint64_t)req->handle << DMAPLANE_MMAP_SHIFT,
		    "mmap_offset 0x%llx", (unsigned long long)req->mmap_offset);
	KTAP_EXPECT(info.dma_segments >= 1 && info.dma_segments <= info.nr_pages,
		    "dma_segments %llu", (unsigned long long)info.dma_segments);
	KTAP_EXPECT(info.mappings == 0, "mappings %u", info.mappings);
	KTAP_EXPECT(info.result_flags == req->result_flags, "");
}

/* Create, check INFO and the mmap views, destroy. */
static void exercise(struct dmaplane_buffer_create *req, uint64_t want_size)
{
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, req), 0);
	if (ktap_case_failed())
		return;
	KTAP_EXPECT(req->alloc_size == want_size, "alloc_size %llu, want %llu",
		    (unsigned long long)req->alloc_size,
		    (unsigned long long)want_size);
	check_info(req);
	check_views(req);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req->handle), 0);
}

static void open_device(void)
{
	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", ktap_errname(dev_fd));
}

static void pages_buffer_views(void)
{
	struct dmaplane_buffer_create req = make_req(MIB + 1, 0);

	exercise(&req, MIB + page_size);
}

static void coherent_buffer_views(void)
{
	struct dmaplane_buffer_create req = make_req(MIB,
						     DMAPLANE_BUF_COHERENT);

	exercise(&req, MIB);
}

static void huge_buffer_views(void)
{
	struct dmaplane_buffer_create req = make_req(3 * MIB,
						     DMAPLANE_BUF_HUGE);

	/* Rounded up to whole 2 MiB chunks. */
	exercise(&req, 4 * MIB);
}

/* The chunk count and the fallback flag always tell the same story. */
static void huge_buffer_reports_chunks(void)
{
	struct dmaplane_buffer_create req = make_req(8 * MIB,
						     DMAPLANE_BUF_HUGE);
	struct dmaplane_buffer_info info;
	uint64_t before = dmaplane_counter("huge_chunks");

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	if (ktap_case_failed())
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle, &info, NULL,
					     0), 0);
	KTAP_EXPECT(info.huge_chunks <= 4, "%llu chunks",
		    (unsigned long long)info.huge_chunks);
	KTAP_EXPECT(!!(info.result_flags & DMAPLANE_BUF_RES_HUGE_PARTIAL) ==
		    (info.huge_chunks < 4), "flags 0x%x with %llu chunks",
		    info.result_flags, (unsigned long long)info.huge_chunks);
	/* A 2 MiB chunk is one DMA segment at most. */
	KTAP_EXPECT(info.dma_segments <=
		    (4 - info.huge_chunks) * 512 + info.huge_chunks,
		    "%llu segments for %llu chunks",
		    (unsigned long long)info.dma_segments,
		    (unsigned long long)info.huge_chunks);
	KTAP_EXPECT(dmaplane_counter("huge_chunks") - before == info.huge_chunks,
		    "huge_chunks counter");
	printf("# 8 MiB huge buffer: %llu of 4 chunks huge, %llu DMA segments\n",
	       (unsigned long long)info.huge_chunks,
	       (unsigned long long)info.dma_segments);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

/* Anonymous memory of @size, touched so every page exists. */
static unsigned char *anon(size_t size)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	KTAP_EXPECT(p != MAP_FAILED, "anonymous mmap: %s", strerror(errno));
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, size);
	return p;
}

static void user_buffer_views(void)
{
	size_t size = MIB;
	unsigned char *mem = anon(size), *view;
	struct dmaplane_buffer_create req = make_req(size, DMAPLANE_BUF_USER);
	uint64_t pinned = dmaplane_counter("pinned_pages");
	size_t bad;

	if (!mem)
		return;
	fill_pattern(mem, size, 3);
	req.user_addr = (uintptr_t)mem;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	if (ktap_case_failed())
		goto out;
	check_info(&req);
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == pinned + size / page_size,
		    "pinned_pages counter");
	/* The pinned pages are the caller's: both views see both writes. */
	view = map_buffer(dev_fd, &req, 0, size);
	if (view) {
		bad = pattern_mismatch(view, size, 3, 0);
		KTAP_EXPECT(bad == size, "dmaplane view differs at %zu", bad);
		fill_pattern(view, size, 11);
		bad = pattern_mismatch(mem, size, 11, 0);
		KTAP_EXPECT(bad == size, "user view differs at %zu", bad);
		munmap(view, size);
	}
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == pinned,
		    "pages still pinned after destroy");
out:
	munmap(mem, size);
}

/*
 * The same memory pinned by two USER buffers, a third over half of it:
 * all are mapped for DMA at once (DMA-API debug, on the debug kernel,
 * accepts overlapping mappings only without implicit CPU syncs) and all
 * show the same bytes.
 */
static void user_buffers_may_overlap(void)
{
	size_t size = MIB;
	unsigned char *mem = anon(size), *view;
	struct dmaplane_buffer_create req[3];

	if (!mem)
		return;
	fill_pattern(mem, size, 5);
	for (int i = 0; i < 3; i++) {
		req[i] = make_req(i == 2 ? size / 2 : size, DMAPLANE_BUF_USER);
		req[i].user_addr = (uintptr_t)mem + (i == 2 ? size / 2 : 0);
		KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req[i]), 0);
	}
	if (ktap_case_failed())
		goto out;
	view = map_buffer(dev_fd, &req[2], 0, size / 2);
	if (view) {
		KTAP_EXPECT(pattern_mismatch(view, size / 2, 5, size / 2) ==
			    size / 2, "the third buffer shows other bytes");
		munmap(view, size / 2);
	}
	for (int i = 0; i < 3; i++)
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req[i].handle),
				0);
out:
	munmap(mem, size);
}

/* A caller built against UAPI 1 passes the 40-byte struct: still served. */
static void uapi1_sized_create_still_works(void)
{
	struct dmaplane_buffer_create req = make_req(page_size + 1, 0);
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, DMAPLANE_IOC_MAGIC,
				 _IOC_NR(DMAPLANE_IOC_BUFFER_CREATE),
				 offsetof(struct dmaplane_buffer_create,
					  user_addr));

	req.mmap_offset = 0x1234;
	KTAP_EXPECT_RET(ioctl(dev_fd, cmd, &req) ? -errno : 0, 0);
	KTAP_EXPECT(req.handle != 0 && req.alloc_size == 2 * page_size,
		    "handle %u alloc_size %llu", req.handle,
		    (unsigned long long)req.alloc_size);
	/* Nothing past the caller's struct is written. */
	KTAP_EXPECT(req.mmap_offset == 0x1234, "wrote past the v1 struct");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

static void create_rejects_bad_input(void)
{
	struct dmaplane_info info;
	struct dmaplane_buffer_create req;
	unsigned char *mem = anon(2 * page_size);
	void *ro;

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
#define EXPECT_CREATE(field_changes, want)				\
	do {								\
		req = make_req(page_size, 0);				\
		field_changes;						\
		KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), \
				want);					\
	} while (0)
	EXPECT_CREATE(req.size = 0, -EINVAL);
	EXPECT_CREATE(req.flags = 1U << 4, -EINVAL);
	EXPECT_CREATE(req.flags = DMAPLANE_BUF_COHERENT | DMAPLANE_BUF_HUGE,
		      -EINVAL);
	EXPECT_CREATE(req.flags = DMAPLANE_BUF_USER | DMAPLANE_BUF_HUGE,
		      -EINVAL);
	EXPECT_CREATE(req.flags = DMAPLANE_BUF_NUMA_STRICT, -EINVAL);
	EXPECT_CREATE(req.numa_node = -2, -EINVAL);
	EXPECT_CREATE(req.numa_node = (int)info.numa_nodes_possible, -EINVAL);
	EXPECT_CREATE(req.reserved = 1, -EINVAL);
	EXPECT_CREATE(req.reserved2 = 1, -EINVAL);
	EXPECT_CREATE(req.user_addr = 0x10000, -EINVAL);
	EXPECT_CREATE((req.flags = DMAPLANE_BUF_COHERENT,
		       req.size = DMAPLANE_COHERENT_MAX + 1), -EFBIG);
	EXPECT_CREATE((req.flags = DMAPLANE_BUF_HUGE, req.size = UINT64_MAX),
		      -EFBIG);
	/* USER: misaligned, wrapping, unmapped, read-only ranges. */
	EXPECT_CREATE((req.flags = DMAPLANE_BUF_USER,
		       req.user_addr = (uintptr_t)mem + 1), -EINVAL);
	EXPECT_CREATE((req.flags = DMAPLANE_BUF_USER,
		       req.user_addr = UINT64_MAX & ~(uint64_t)(page_size - 1),
		       req.size = 2 * page_size), -EINVAL);
	EXPECT_CREATE((req.flags = DMAPLANE_BUF_USER, req.user_addr = 0),
		      -EFAULT);
	if (mem) {
		munmap(mem + page_size, page_size);
		/* The second page is gone: nothing may stay pinned. */
		EXPECT_CREATE((req.flags = DMAPLANE_BUF_USER,
			       req.user_addr = (uintptr_t)mem,
			       req.size = 2 * page_size), -EFAULT);
		munmap(mem, page_size);
	}
	ro = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		  0);
	if (ro != MAP_FAILED) {
		EXPECT_CREATE((req.flags = DMAPLANE_BUF_USER,
			       req.user_addr = (uintptr_t)ro), -EFAULT);
		munmap(ro, page_size);
	}
#undef EXPECT_CREATE
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == 0,
		    "%llu pages pinned after failed creates",
		    (unsigned long long)dmaplane_counter("pinned_pages"));
}

static void info_rejects_bad_input(void)
{
	struct dmaplane_buffer_create req = make_req(page_size, 0);
	struct dmaplane_buffer_info info;
	uint64_t hist[2];
	int other = dmaplane_open();

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, 0, &info, NULL, 0),
			-ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle + 1000, &info,
					     NULL, 0), -ENOENT);
	if (other >= 0) {
		KTAP_EXPECT_RET(dmaplane_buffer_info(other, req.handle, &info,
						     NULL, 0), -ENOENT);
		close(other);
	}
	memset(&info, 0, sizeof(info));
	info.handle = req.handle;
	info.flags = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_INFO, &info) ? -errno
			: 0, -EINVAL);
	info.flags = 0;
	info.reserved = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_INFO, &info) ? -errno
			: 0, -EINVAL);
	info.reserved = 0;
	info.node_pages_len = 4;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_INFO, &info) ? -errno
			: 0, -EINVAL);
	info.node_pages_ptr = 8;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_BUFFER_INFO, &info) ? -errno
			: 0, -EFAULT);
	/* A short histogram gets what fits; the rest of the array is untouched. */
	hist[0] = hist[1] = UINT64_MAX;
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle, &info, hist,
					     1), 0);
	KTAP_EXPECT(hist[1] == UINT64_MAX, "wrote past node_pages_len");
	KTAP_EXPECT(info.nr_node_ids >= 1, "nr_node_ids %u", info.nr_node_ids);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

static void mmap_rejects_bad_input(void)
{
	struct dmaplane_buffer_create req = make_req(4 * page_size, 0);
	uint64_t off;
	int other = dmaplane_open();
	size_t ps = page_size;

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	off = req.mmap_offset;
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ, MAP_PRIVATE, off),
			-EINVAL);
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ | PROT_EXEC, MAP_SHARED,
				 off), -EPERM);
	/* Past the end, straddling the end, the offset of no buffer. */
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ, MAP_SHARED,
				 off + 4 * ps), -EINVAL);
	KTAP_EXPECT_RET(mmap_err(dev_fd, 2 * ps, PROT_READ, MAP_SHARED,
				 off + 3 * ps), -EINVAL);
	KTAP_EXPECT_RET(mmap_err(dev_fd, 5 * ps, PROT_READ, MAP_SHARED, off),
			-EINVAL);
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ, MAP_SHARED, 0),
			-EINVAL);
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ, MAP_SHARED,
				 off + (1000ULL << DMAPLANE_MMAP_SHIFT)), -ENOENT);
	if (other >= 0) {
		KTAP_EXPECT_RET(mmap_err(other, ps, PROT_READ, MAP_SHARED, off),
				-ENOENT);
		close(other);
	}
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	KTAP_EXPECT_RET(mmap_err(dev_fd, ps, PROT_READ, MAP_SHARED, off),
			-ENOENT);
}

static void mapping_cannot_grow(void)
{
	struct dmaplane_buffer_create req = make_req(4 * page_size, 0);
	void *p, *q;

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	p = map_buffer(dev_fd, &req, 0, 2 * page_size);
	if (p) {
		q = mremap(p, 2 * page_size, 4 * page_size, MREMAP_MAYMOVE);
		KTAP_EXPECT(q == MAP_FAILED, "VM_DONTEXPAND mapping grew");
		munmap(q == MAP_FAILED ? p : q, q == MAP_FAILED ?
		       2 * page_size : 4 * page_size);
	}
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

/* VM_DONTCOPY: a child has nothing at the parent's mapping address. */
static void mapping_not_inherited(void)
{
	struct dmaplane_buffer_create req = make_req(page_size, 0);
	volatile unsigned char *p;
	int status = 0;
	pid_t pid;

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	p = map_buffer(dev_fd, &req, 0, page_size);
	if (!p)
		return;
	p[0] = 1;
	pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		_exit(p[0] == 1 ? 0 : 1);
	}
	KTAP_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	KTAP_EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		    "child status 0x%x: the mapping was inherited", status);
	munmap((void *)p, page_size);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

static uint32_t mappings_of(uint32_t handle)
{
	struct dmaplane_buffer_info info;

	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, handle, &info, NULL, 0),
			0);
	return info.mappings;
}

/* Every VMA counts, also the halves of a split one. */
static void destroy_while_mapped_is_ebusy(void)
{
	struct dmaplane_buffer_create req = make_req(4 * page_size, 0);
	unsigned char *p;

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	p = map_buffer(dev_fd, &req, 0, 4 * page_size);
	if (!p)
		return;
	KTAP_EXPECT(mappings_of(req.handle) == 1, "");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), -EBUSY);
	munmap(p + page_size, page_size);
	KTAP_EXPECT(mappings_of(req.handle) == 2, "split mapping: %u",
		    mappings_of(req.handle));
	munmap(p, page_size);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), -EBUSY);
	munmap(p + 2 * page_size, 2 * page_size);
	KTAP_EXPECT(mappings_of(req.handle) == 0, "");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), -ENOENT);
}

/* Closing the file keeps a mapped buffer until the mapping goes. */
static void close_keeps_mapped_buffer(void)
{
	uint64_t base = dmaplane_counter("buffers");
	int fd = dmaplane_open();
	struct dmaplane_buffer_create req = make_req(MIB, DMAPLANE_BUF_HUGE);
	unsigned char *p;
	size_t bad;

	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(fd, &req), 0);
	p = map_buffer(fd, &req, 0, req.alloc_size);
	close(fd);
	if (!p)
		return;
	fill_pattern(p, req.alloc_size, 5);
	KTAP_EXPECT(dmaplane_counter("buffers") == base + 1, "buffer freed early");
	bad = pattern_mismatch(p, req.alloc_size, 5, 0);
	KTAP_EXPECT(bad == req.alloc_size, "data lost at %zu", bad);
	munmap(p, req.alloc_size);
	KTAP_EXPECT(dmaplane_counter("buffers") == base,
		    "buffer not freed with its last mapping");
}

/* In a child without CAP_IPC_LOCK: 0 when every step held. */
static int memlock_child(void)
{
	struct rlimit lim = { 16 * 4096, 16 * 4096 };
	size_t big = 64 * page_size, small = 8 * page_size;
	unsigned char *mem = mmap(NULL, big, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				  -1, 0);
	struct dmaplane_buffer_create req = make_req(big, DMAPLANE_BUF_USER);
	uint64_t pinned_kb = 1;

	if (mem == MAP_FAILED || drop_capability(CAP_IPC_LOCK) ||
	    setrlimit(RLIMIT_MEMLOCK, &lim))
		return 10;
	req.user_addr = (uintptr_t)mem;
	if (dmaplane_buffer_create_req(dev_fd, &req) != -ENOMEM)
		return 11;
	if (proc_status_kb("VmPin", &pinned_kb) || pinned_kb != 0)
		return 12;
	req = make_req(small, DMAPLANE_BUF_USER);
	req.user_addr = (uintptr_t)mem;
	if (dmaplane_buffer_create_req(dev_fd, &req))
		return 13;
	if (proc_status_kb("VmPin", &pinned_kb) ||
	    pinned_kb != small / 1024)
		return 14;
	/* 8 pinned + 16 more would pass the 16-page limit. */
	if (dmaplane_buffer_create_req(dev_fd, &(struct dmaplane_buffer_create){
			.size = 16 * page_size, .flags = DMAPLANE_BUF_USER,
			.numa_node = -1, .user_addr = (uintptr_t)mem }) != -ENOMEM)
		return 15;
	if (dmaplane_buffer_destroy(dev_fd, req.handle))
		return 16;
	if (proc_status_kb("VmPin", &pinned_kb) || pinned_kb != 0)
		return 17;
	return 0;
}

static void user_pin_over_memlock_is_enomem(void)
{
	uint64_t denied = dmaplane_counter("memlock_denied");
	uint64_t pinned = dmaplane_counter("pinned_pages");
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(memlock_child());
	KTAP_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	KTAP_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child failed at step %d (status 0x%x)",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
	KTAP_EXPECT(dmaplane_counter("memlock_denied") == denied + 2,
		    "memlock_denied %llu -> %llu", (unsigned long long)denied,
		    (unsigned long long)dmaplane_counter("memlock_denied"));
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == pinned,
		    "pages left pinned");
}

/* A process that exits with pinned buffers gives every page back. */
static void exit_unpins_everything(void)
{
	uint64_t pinned = dmaplane_counter("pinned_pages");
	uint64_t buffers = dmaplane_counter("buffers");
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		int fd = dmaplane_open();
		unsigned char *mem = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS |
					  MAP_POPULATE, -1, 0);
		struct dmaplane_buffer_create req = make_req(MIB,
							     DMAPLANE_BUF_USER);

		req.user_addr = (uintptr_t)mem;
		if (fd < 0 || mem == MAP_FAILED ||
		    dmaplane_buffer_create_req(fd, &req) ||
		    mmap(NULL, MIB, PROT_READ, MAP_SHARED, fd,
			 req.mmap_offset) == MAP_FAILED)
			_exit(1);
		_exit(0);
	}
	KTAP_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	KTAP_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child status 0x%x", status);
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == pinned,
		    "pinned_pages %llu, was %llu",
		    (unsigned long long)dmaplane_counter("pinned_pages"),
		    (unsigned long long)pinned);
	KTAP_EXPECT(dmaplane_counter("buffers") == buffers, "buffers leaked");
}

static void map_bench_measures(void)
{
	struct dmaplane_buffer_create pages = make_req(4 * MIB, 0);
	struct dmaplane_buffer_create coh = make_req(MIB,
						     DMAPLANE_BUF_COHERENT);
	struct dmaplane_map_bench mb;

	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &pages), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &coh), 0);
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, pages.handle, 3, &mb), 0);
	KTAP_EXPECT(mb.dma_segments >= 1 && mb.dma_segments <= 1024,
		    "%llu segments", (unsigned long long)mb.dma_segments);
	KTAP_EXPECT(mb.build_ns > 0 && mb.map_ns > 0, "no time measured");
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, coh.handle, 1, &mb),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, pages.handle, 0, &mb),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, pages.handle,
					   DMAPLANE_BENCH_PASSES_MAX + 1, &mb),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, 0, 1, &mb), -ENOENT);
	memset(&mb, 0, sizeof(mb));
	mb.handle = pages.handle;
	mb.iterations = 1;
	mb.reserved = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_MAP_BENCH, &mb) ? -errno : 0,
			-EINVAL);
	mb.reserved = 0;
	mb.flags = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_MAP_BENCH, &mb) ? -errno : 0,
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, pages.handle), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, coh.handle), 0);
}

/* 1000 create/destroy cycles over every backing: counters back at start. */
static void alloc_free_cycles(void)
{
	static const uint32_t kinds[] = {
		0, DMAPLANE_BUF_COHERENT, DMAPLANE_BUF_HUGE, DMAPLANE_BUF_USER,
	};
	uint64_t buffers = dmaplane_counter("buffers");
	uint64_t bytes = dmaplane_counter("buffer_bytes");
	unsigned char *mem = anon(64 * 1024);
	int i;

	if (!mem)
		return;
	for (i = 0; i < 1000 && !ktap_case_failed(); i++) {
		struct dmaplane_buffer_create req =
			make_req(64 * 1024, kinds[i % 4]);

		if (kinds[i % 4] == DMAPLANE_BUF_USER)
			req.user_addr = (uintptr_t)mem;
		KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	}
	munmap(mem, 64 * 1024);
	KTAP_EXPECT(dmaplane_counter("buffers") == buffers &&
		    dmaplane_counter("buffer_bytes") == bytes &&
		    dmaplane_counter("pinned_pages") == 0,
		    "counters not back after %d cycles", i);
	printf("# %d create/destroy cycles\n", i);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_device),
	KTAP_CASE(pages_buffer_views),
	KTAP_CASE(coherent_buffer_views),
	KTAP_CASE(huge_buffer_views),
	KTAP_CASE(huge_buffer_reports_chunks),
	KTAP_CASE(user_buffer_views),
	KTAP_CASE(user_buffers_may_overlap),
	KTAP_CASE(uapi1_sized_create_still_works),
	KTAP_CASE(create_rejects_bad_input),
	KTAP_CASE(info_rejects_bad_input),
	KTAP_CASE(mmap_rejects_bad_input),
	KTAP_CASE(mapping_cannot_grow),
	KTAP_CASE(mapping_not_inherited),
	KTAP_CASE(destroy_while_mapped_is_ebusy),
	KTAP_CASE(close_keeps_mapped_buffer),
	KTAP_CASE(user_pin_over_memlock_is_enomem),
	KTAP_CASE(exit_unpins_everything),
	KTAP_CASE(map_bench_measures),
	KTAP_CASE(alloc_free_cycles),
};

int main(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	return ktap_run_suite("buffer", cases, sizeof(cases) / sizeof(cases[0]));
}
