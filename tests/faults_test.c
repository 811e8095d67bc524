// SPDX-License-Identifier: GPL-2.0
/*
 * faults: systematic allocation-failure injection. Each scenario arms
 * /proc/thread-self/fail-nth with N = 1, 2, ... right before one dmaplane
 * call, so the N-th slab or page allocation of that call fails, until a
 * run completes without an injected failure. Every injected failure must
 * come back as a clean error or be absorbed by a fallback (never a crash,
 * hang or partial object), and the module's counters must return to where
 * they were: nothing leaked.
 * kmemleak and the kernel-log check run afterwards (tests/run-guest.sh).
 *
 * Needs CONFIG_FAULT_INJECTION with FAILSLAB, FAIL_PAGE_ALLOC and debugfs
 * (the debug kernel); skipped elsewhere, saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

/* More steps than any scenario can allocate: a loop that never ends is a bug. */
#define MAX_STEPS 4096

static const char *const fault_knobs[][2] = {
	{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/failslab/verbose", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
};

static int fail_nth_fd = -1;
static void *armed_map;		/* a mapping an op left for inject_each() */
static size_t armed_map_len;

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Make sleeping and highmem allocations eligible, silence the dumps. */
static const char *setup_injection(void)
{
	for (size_t i = 0; i < sizeof(fault_knobs) / sizeof(fault_knobs[0]); i++)
		if (write_str(fault_knobs[i][0], fault_knobs[i][1]))
			return fault_knobs[i][0];
	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	return fail_nth_fd < 0 ? "/proc/thread-self/fail-nth" : NULL;
}

static void arm(int nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", nth);

	if (pwrite(fail_nth_fd, buf, len, 0) != len)
		ktap_fail(__FILE__, __LINE__, "arming fail-nth: %s",
			  strerror(errno));
}

/* Disarm; true when the armed failure was injected. */
static bool disarm(void)
{
	char buf[16] = "";
	bool injected;

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		ktap_fail(__FILE__, __LINE__, "reading fail-nth: %s",
			  strerror(errno));
	injected = buf[0] == '0';
	arm(0);
	return injected;
}

struct counters {
	uint64_t open_contexts, buffers, buffer_bytes, pinned_pages, mappings;
	uint64_t exports, attachments, endpoints, mrs;
};

static void read_counters(struct counters *c)
{
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "open_contexts",
				       &c->open_contexts), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &c->buffers), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffer_bytes",
				       &c->buffer_bytes), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "pinned_pages",
				       &c->pinned_pages), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "mappings",
				       &c->mappings), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "exports",
				       &c->exports), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "attachments",
				       &c->attachments), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "endpoints",
				       &c->endpoints), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "mrs", &c->mrs),
			0);
}

/*
 * The counters are back to @want. Give them up to 30 s: an endpoint whose
 * peer closed finishes its teardown on the module's work queue.
 */
static void expect_counters(const struct counters *want, int step)
{
	struct counters now;

	read_counters(&now);
	for (int i = 0; i < 300 && memcmp(&now, want, sizeof(now)); i++) {
		usleep(100 * 1000);
		read_counters(&now);
	}
	KTAP_EXPECT(!memcmp(&now, want, sizeof(now)),
		    "step %d: contexts %llu/%llu buffers %llu/%llu bytes %llu/%llu pinned %llu/%llu mappings %llu/%llu exports %llu/%llu attachments %llu/%llu endpoints %llu/%llu mrs %llu/%llu",
		    step, (unsigned long long)now.open_contexts,
		    (unsigned long long)want->open_contexts,
		    (unsigned long long)now.buffers,
		    (unsigned long long)want->buffers,
		    (unsigned long long)now.buffer_bytes,
		    (unsigned long long)want->buffer_bytes,
		    (unsigned long long)now.pinned_pages,
		    (unsigned long long)want->pinned_pages,
		    (unsigned long long)now.mappings,
		    (unsigned long long)want->mappings,
		    (unsigned long long)now.exports,
		    (unsigned long long)want->exports,
		    (unsigned long long)now.attachments,
		    (unsigned long long)want->attachments,
		    (unsigned long long)now.endpoints,
		    (unsigned long long)want->endpoints,
		    (unsigned long long)now.mrs,
		    (unsigned long long)want->mrs);
}

/* Skips the current case when the kernel cannot inject failures. */
static bool injection_ready(void)
{
	if (fail_nth_fd < 0)
		ktap_skip("no fail-nth/failslab/fail_page_alloc: needs the debug kernel");
	return fail_nth_fd >= 0;
}

/*
 * Run @op on a fresh file (set up by @setup, if any, before arming) with
 * the N-th allocation failing, for N = 1, 2, ... until a run injects
 * nothing. A failed allocation may come back as an
 * error (it must be @want_err, or any errno when @want_err is 0) or be
 * absorbed by a fallback (kvmalloc falling back to vmalloc, say); either
 * way, once the file is closed every counter is back where it started.
 * Returns how many runs reported an error.
 */
static int inject_each(int (*setup)(int fd), int (*op)(int fd),
		       const char *what, int want_err)
{
	int step, errors = 0, absorbed = 0;
	struct counters base;

	read_counters(&base);
	for (step = 1; step <= MAX_STEPS && !ktap_case_failed(); step++) {
		int fd = dmaplane_open();
		bool injected;
		int ret;

		KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
		if (fd < 0)
			break;
		ret = setup ? setup(fd) : 0;
		KTAP_EXPECT(ret == 0, "%s setup: %s", what, ktap_errname(ret));
		if (ret) {
			close(fd);
			break;
		}
		arm(step);
		ret = op(fd);
		injected = disarm();
		if (armed_map) {
			KTAP_EXPECT(munmap(armed_map, armed_map_len) == 0,
				    "munmap: %s", strerror(errno));
			armed_map = NULL;
		}
		close(fd);
		expect_counters(&base, step);
		if (!injected) {
			KTAP_EXPECT(ret == 0, "%s without injection: %s", what,
				    ktap_errname(ret));
			printf("# %s: %d allocations failed in turn: %d errors, %d absorbed\n",
			       what, step - 1, errors, absorbed);
			return errors;
		}
		if (ret == 0) {
			absorbed++;
			continue;
		}
		errors++;
		if (want_err)
			KTAP_EXPECT(ret == want_err, "%s step %d: got %s, want %s",
				    what, step, ktap_errname(ret),
				    ktap_errname(want_err));
	}
	KTAP_EXPECT(step <= MAX_STEPS, "%s never completed", what);
	return errors;
}

static int op_open(int fd)
{
	int other;

	(void)fd;
	other = dmaplane_open();
	if (other >= 0)
		close(other);
	return other < 0 ? other : 0;
}

static int op_buffer_page(int fd)
{
	uint32_t h;

	return dmaplane_buffer_create(fd, 4096, DMAPLANE_NUMA_ANY, 0, &h, NULL);
}

static int op_buffer_many_pages(int fd)
{
	uint32_t h;

	return dmaplane_buffer_create(fd, 64 << 10, 0, 0, &h, NULL);
}

/* The table's xarray grows past its first node after 64 entries. */
static int op_buffer_many_handles(int fd)
{
	uint32_t h;
	int ret = 0;

	for (int i = 0; i < 80 && !ret; i++)
		ret = dmaplane_buffer_create(fd, 4096, DMAPLANE_NUMA_ANY, 0,
					     &h, NULL);
	return ret;
}

static int create_kind(int fd, uint64_t size, uint32_t flags, int node,
		       uint64_t user_addr, struct dmaplane_buffer_create *req)
{
	*req = (struct dmaplane_buffer_create){
		.size = size, .flags = flags, .numa_node = node,
		.user_addr = user_addr,
	};
	return dmaplane_buffer_create_req(fd, req);
}

static int op_buffer_coherent(int fd)
{
	struct dmaplane_buffer_create req;

	return create_kind(fd, 64 << 10, DMAPLANE_BUF_COHERENT, 0, 0, &req);
}

/* A chunk that cannot be had falls back to pages: absorbed, not failed. */
static int op_buffer_huge(int fd)
{
	struct dmaplane_buffer_create req;

	return create_kind(fd, 2 << 20, DMAPLANE_BUF_HUGE, -1, 0, &req);
}

static int op_buffer_strict(int fd)
{
	struct dmaplane_buffer_create req;

	return create_kind(fd, 64 << 10, DMAPLANE_BUF_NUMA_STRICT, 0, 0, &req);
}

static unsigned char *user_mem;	/* 16 pages, faulted in before any arming */

static int op_buffer_user(int fd)
{
	struct dmaplane_buffer_create req;

	return create_kind(fd, 16 * 4096, DMAPLANE_BUF_USER, -1,
			   (uintptr_t)user_mem, &req);
}

/*
 * Create, histogram, map-bench and mmap one buffer. The mapping is undone
 * after disarming: munmap() may allocate, and one that fails would leave
 * the file open.
 */
static int op_buffer_use(int fd)
{
	struct dmaplane_buffer_create req;
	struct dmaplane_buffer_info info;
	struct dmaplane_map_bench mb;
	uint64_t hist[4];
	void *p;
	int ret = create_kind(fd, 64 << 10, 0, -1, 0, &req);

	if (!ret)
		ret = dmaplane_buffer_info(fd, req.handle, &info, hist, 4);
	if (!ret)
		ret = dmaplane_map_bench(fd, req.handle, 1, &mb);
	if (ret)
		return ret;
	p = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 req.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	armed_map = p;
	armed_map_len = 64 << 10;
	return 0;
}

/* Export, import into the same file, CPU-access sync; the fd goes too. */
static int op_dmabuf(int fd)
{
	struct dma_buf_sync sync = { .flags = DMA_BUF_SYNC_START |
					      DMA_BUF_SYNC_RW };
	struct dmaplane_buffer_create req;
	struct dmaplane_import_dmabuf imp;
	int d = -1, ret = create_kind(fd, 64 << 10, 0, -1, 0, &req);

	if (!ret)
		ret = dmaplane_export_dmabuf(fd, req.handle, 0, &d);
	if (!ret)
		ret = dmaplane_import_dmabuf(fd, d, &imp);
	if (!ret && ioctl(d, DMA_BUF_IOCTL_SYNC, &sync))
		ret = -errno;
	if (d >= 0)
		close(d);
	return ret;
}

static int udmabuf_fd = -1;	/* over a sealed memfd, made before arming */

static int op_import_udmabuf(int fd)
{
	struct dmaplane_import_dmabuf imp;

	return dmaplane_import_dmabuf(fd, udmabuf_fd, &imp);
}

static void make_udmabuf(void)
{
	int mfd = memfd_create("faults", MFD_ALLOW_SEALING);
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	struct udmabuf_create create = { .memfd = mfd, .size = 16 * 4096 };

	if (mfd >= 0 && dev >= 0 && !ftruncate(mfd, create.size) &&
	    !fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK))
		udmabuf_fd = ioctl(dev, UDMABUF_CREATE, &create);
	if (dev >= 0)
		close(dev);
	if (mfd >= 0)
		close(mfd);
}

/* An endpoint, listening on this guest's soft-RoCE address when there is one. */
static int op_endpoint(int fd)
{
	const char *ip = getenv("DP_GUEST_IP");
	struct dmaplane_ep_info info;
	struct dmaplane_addr a;
	uint32_t h;
	int ret = dmaplane_ep_create(fd, NULL, &h);

	if (!ret && ip && count_rdma_devices() > 0 &&
	    !dmaplane_addr_parse(ip, 0, &a))
		ret = dmaplane_ep_listen(fd, h, 4, &a);
	if (!ret)
		ret = dmaplane_ep_info(fd, h, &info);
	return ret;
}

/* Set up unarmed: a loopback connection and a buffer in the file. */
static uint32_t verbs_client, verbs_server, verbs_buf;

static int setup_verbs(int fd)
{
	int ret = dmaplane_ep_loopback(fd, getenv("DP_GUEST_IP"), NULL,
				       &verbs_client, &verbs_server);

	if (!ret)
		ret = dmaplane_buffer_create(fd, 64 << 10, DMAPLANE_NUMA_ANY, 0,
					     &verbs_buf, NULL);
	return ret;
}

/* Register on both ends, WRITE, SEND/RECV, NOOP, reap, deregister. */
static int op_verbs(int fd)
{
	struct dmaplane_completion c[4];
	uint32_t smr, dmr, rkey, got;
	int ret = dmaplane_mr_reg(fd, verbs_client, verbs_buf, 0, 4096, 0,
				  &smr, NULL);

	if (!ret)
		ret = dmaplane_mr_reg(fd, verbs_server, verbs_buf, 4096, 0,
				      DMAPLANE_MR_LOCAL_WRITE |
				      DMAPLANE_MR_REMOTE_WRITE, &dmr, &rkey);
	if (ret)
		return ret;
	struct dmaplane_op recv = { .opcode = DMAPLANE_OP_RECV, .mr = dmr,
				    .length = 4096 };
	struct dmaplane_op ops[3] = {
		{ .cookie = 1, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
		  .length = 4096, .rkey = rkey },
		{ .cookie = 2, .opcode = DMAPLANE_OP_SEND, .mr = smr,
		  .length = 512 },
		{ .cookie = 3 },
	};

	ret = dmaplane_post(fd, verbs_server, &recv, 1, NULL);
	if (!ret)
		ret = dmaplane_post(fd, verbs_client, ops, 3, NULL);
	for (uint32_t n = 0; !ret && n < 3; n += got)
		ret = dmaplane_reap(fd, verbs_client, c, 4, 1, 20000, &got);
	if (!ret)
		ret = dmaplane_reap(fd, verbs_server, c, 1, 1, 20000, &got);
	if (!ret)
		ret = dmaplane_mr_dereg(fd, smr);
	if (!ret)
		ret = dmaplane_mr_dereg(fd, dmr);
	return ret;
}

static int op_topology(int fd)
{
	struct dmaplane_topo topo;
	int ret = dmaplane_topology(fd, &topo);

	dmaplane_topology_free(&topo);
	return ret;
}

static int op_info_and_echo(int fd)
{
	struct dmaplane_info info;
	int ret = dmaplane_get_info(fd, &info);

	return ret ? ret : dmaplane_echo(fd, 1, 0, NULL);
}

static void open_fails_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_open, "open", 0);
}

static void buffer_create_fails_cleanly(void)
{
	if (injection_ready())
		KTAP_EXPECT(inject_each(NULL, op_buffer_page, "buffer_create 1 page",
					-ENOMEM) > 0,
			    "no error at all: injection missed the module");
}

static void buffer_create_pages_fail_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_buffer_many_pages, "buffer_create 16 pages",
			    -ENOMEM);
}

static void handle_table_growth_fails_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_buffer_many_handles, "80 buffer_create",
			    -ENOMEM);
}

static void buffer_kinds_fail_cleanly(void)
{
	if (!injection_ready())
		return;
	inject_each(NULL, op_buffer_coherent, "coherent 64 KiB", -ENOMEM);
	inject_each(NULL, op_buffer_huge, "huge 2 MiB", -ENOMEM);
	inject_each(NULL, op_buffer_strict, "strict node 0 64 KiB", -ENOMEM);
	/* GUP may report its own failures as -EFAULT as well as -ENOMEM. */
	inject_each(NULL, op_buffer_user, "user 16 pages", 0);
}

static void buffer_use_fails_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_buffer_use, "create+info+map_bench+mmap", 0);
}

static void dmabuf_fails_cleanly(void)
{
	if (!injection_ready())
		return;
	inject_each(NULL, op_dmabuf, "export+import+sync", 0);
	if (udmabuf_fd < 0) {
		printf("# no udmabuf: import from udmabuf not injected\n");
		return;
	}
	inject_each(NULL, op_import_udmabuf, "import udmabuf", 0);
}

static void endpoint_fails_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_endpoint, "endpoint create+listen", 0);
}

static void verbs_fail_cleanly(void)
{
	if (!injection_ready())
		return;
	if (!getenv("DP_GUEST_IP") || count_rdma_devices() <= 0) {
		ktap_skip("no RDMA device and guest address (guests get soft-RoCE with --rxe)");
		return;
	}
	inject_each(setup_verbs, op_verbs, "MR_REG/POST/REAP/MR_DEREG", 0);
}

static void topology_fails_cleanly(void)
{
	if (injection_ready())
		inject_each(NULL, op_topology, "get_topology", -ENOMEM);
}

static void non_allocating_calls_unaffected(void)
{
	if (injection_ready())
		KTAP_EXPECT(inject_each(NULL, op_info_and_echo, "get_info+echo", 0)
			    == 0, "GET_INFO/ECHO fail no allocation");
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_fails_cleanly),
	KTAP_CASE(buffer_create_fails_cleanly),
	KTAP_CASE(buffer_create_pages_fail_cleanly),
	KTAP_CASE(handle_table_growth_fails_cleanly),
	KTAP_CASE(buffer_kinds_fail_cleanly),
	KTAP_CASE(buffer_use_fails_cleanly),
	KTAP_CASE(dmabuf_fails_cleanly),
	KTAP_CASE(endpoint_fails_cleanly),
	KTAP_CASE(verbs_fail_cleanly),
	KTAP_CASE(topology_fails_cleanly),
	KTAP_CASE(non_allocating_calls_unaffected),
};

int main(void)
{
	const char *missing = setup_injection();

	user_mem = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (user_mem == MAP_FAILED)
		return 1;
	make_udmabuf();

	if (missing)
		printf("# fault injection unavailable (%s)\n", missing);
	return ktap_run_suite("faults", cases, sizeof(cases) / sizeof(cases[0]));
}
