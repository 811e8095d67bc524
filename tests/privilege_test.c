// SPDX-License-Identifier: GPL-2.0
/*
 * privilege: what a user who is not root may do with /dev/dmaplane, and
 * every denial (SECURITY.md). Each case runs in a child that becomes
 * nobody (uid and gid 65534, no capabilities), with or without the
 * device's group, after the parent gave the node mode 0660 and that group
 * (what udev/60-dmaplane.rules does with group dmaplane). Needs root to
 * start; the node's owner and mode are put back at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"
#include "verbsutil.h"

#define NOBODY		65534
#define DEVICE_GROUP	65533	/* stands for group dmaplane */
#define MIB		(1024 * 1024UL)
#define MEMLOCK		(4 * MIB)

static struct stat node;	/* as found */
static bool node_changed;

/*
 * Become nobody, in the device's group when @member, with RLIMIT_MEMLOCK
 * at MEMLOCK: 0, or the step that failed.
 */
static int become_nobody(bool member)
{
	struct rlimit rl = { .rlim_cur = MEMLOCK, .rlim_max = MEMLOCK };
	gid_t group = DEVICE_GROUP;

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 90;
	if (setgroups(member ? 1 : 0, &group))
		return 91;
	if (setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
		return 92;
	return 0;
}

/* Run @fn as nobody in a child; a KTAP failure unless it returns 0. */
static void as_nobody(bool member, int (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0) {
		int ret = become_nobody(member);

		_exit(ret ? ret : fn());
	}
	KTAP_EXPECT(pid > 0, "fork: %s", strerror(errno));
	if (pid > 0)
		child_exited_ok(pid);
}

static void give_node_to_group(void)
{
	KTAP_EXPECT_RET(stat(DMAPLANE_DEV_PATH, &node) ? -errno : 0, 0);
	KTAP_EXPECT_RET(chown(DMAPLANE_DEV_PATH, 0, DEVICE_GROUP) ? -errno : 0,
			0);
	KTAP_EXPECT_RET(chmod(DMAPLANE_DEV_PATH, 0660) ? -errno : 0, 0);
	node_changed = !ktap_case_failed();
}

static int open_outside_group(void)
{
	return dmaplane_open() == -EACCES ? 0 : 1;
}

static int open_in_group(void)
{
	int fd = dmaplane_open();
	struct dmaplane_info info;

	if (fd < 0)
		return 1;
	return dmaplane_get_info(fd, &info) ? 2 : 0;
}

/* Opening takes the node's mode: the group, not a capability. */
static void open_needs_the_group(void)
{
	as_nobody(false, open_outside_group);
	as_nobody(true, open_in_group);
}

/* A USER buffer over @len bytes at @addr: its handle, or -errno. */
static long user_buffer(int fd, void *addr, uint64_t len)
{
	struct dmaplane_buffer_create req = {
		.size = len, .flags = DMAPLANE_BUF_USER, .numa_node = -1,
		.user_addr = (uintptr_t)addr,
	};
	int ret = dmaplane_buffer_create_req(fd, &req);

	return ret ? ret : (long)req.handle;
}

static int use_buffers(void)
{
	int fd = dmaplane_open(), d = -1;
	struct dmaplane_import_dmabuf imp;
	unsigned char *p, *mem;
	long user;
	uint32_t h;

	if (fd < 0 || dmaplane_buffer_create(fd, MIB, -1, 0, &h, NULL))
		return 1;
	p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)h << 40);
	if (p == MAP_FAILED)
		return 2;
	fill_pattern(p, MIB, 3);
	if (dmaplane_export_dmabuf(fd, h, 0, &d) ||
	    dmaplane_import_dmabuf(fd, d, &imp))
		return 3;
	/* Pinning the caller's own memory counts against RLIMIT_MEMLOCK. */
	mem = mmap(NULL, 2 * MEMLOCK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 4;
	user = user_buffer(fd, mem, MEMLOCK / 2);
	if (user < 0)
		return 5;
	if (user_buffer(fd, mem + MEMLOCK / 2, MEMLOCK) != -ENOMEM)
		return 6;
	if (dmaplane_buffer_destroy(fd, user) ||
	    dmaplane_buffer_destroy(fd, imp.handle))
		return 7;
	return pattern_holds(p, MIB, 3) ? 0 : 8;
}

/* A member works with buffers, mappings and dma-bufs within its limits. */
static void member_uses_buffers(void)
{
	uint64_t denied = dmaplane_counter("memlock_denied");

	as_nobody(true, use_buffers);
	KTAP_EXPECT(dmaplane_counter("memlock_denied") == denied + 1,
		    "memlock_denied %llu, was %llu",
		    (unsigned long long)dmaplane_counter("memlock_denied"),
		    (unsigned long long)denied);
}

static int try_privileged(void)
{
	struct dmaplane_numa_bench_cell *cells = NULL;
	int fd = dmaplane_open();
	uint32_t revoked, n;

	if (fd < 0)
		return 1;
	/* Whole-machine bandwidth runs, and taking GPU memory back. */
	if (dmaplane_numa_bench(fd, MIB, DMAPLANE_BENCH_READ, 1, 1000, &cells,
				&n) != -EPERM)
		return 2;
	if (dmaplane_gpu_sim_free(fd, 0, 0, 4096, &revoked) != -EPERM)
		return 3;
	/* The module's counters and object lists are root's. */
	if (open(DMAPLANE_DEBUGFS_INFO, O_RDONLY) >= 0 || errno != EACCES)
		return 4;
	return 0;
}

static void privileged_commands_refused(void)
{
	as_nobody(true, try_privileged);
}

static uint32_t root_buffer;

static int reach_root_buffer(void)
{
	struct dmaplane_buffer_info info;
	int fd = dmaplane_open();

	if (fd < 0)
		return 1;
	/* Handles name objects of one open file: another file's are not there. */
	if (dmaplane_buffer_info(fd, root_buffer, &info, NULL, 0) != -ENOENT)
		return 2;
	if (mmap(NULL, MIB, PROT_READ, MAP_SHARED, fd,
		 (off_t)root_buffer << 40) != MAP_FAILED)
		return 3;
	return dmaplane_buffer_destroy(fd, root_buffer) == -ENOENT ? 0 : 4;
}

/* Another user's objects are out of reach (an fd is what grants them). */
static void others_objects_unreachable(void)
{
	int fd = dmaplane_open();

	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, MIB, -1, 0, &root_buffer,
					       NULL), 0);
	as_nobody(true, reach_root_buffer);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, root_buffer), 0);
	close(fd);
}

static int use_rdma(void)
{
	const char *ip = getenv("DP_GUEST_IP");
	struct dmaplane_completion c;
	struct dmaplane_addr a;
	uint32_t client, server, h, mr, rkey, smr, n = 0;
	struct region src, dst;
	int fd = dmaplane_open();

	if (fd < 0 || dmaplane_ep_create(fd, NULL, &h) ||
	    dmaplane_addr_parse(ip, 999, &a))
		return 1;
	/* Ports below 1024 need CAP_NET_BIND_SERVICE, as for sockets. */
	if (dmaplane_ep_listen(fd, h, 4, &a) != -EACCES)
		return 2;
	if (dmaplane_ep_loopback(fd, ip, NULL, &client, &server))
		return 3;
	if (!region_make(fd, &src, MIB) || !region_make(fd, &dst, MIB))
		return 4;
	if (dmaplane_mr_reg(fd, client, src.buf, 0, MIB, 0, &smr, NULL) ||
	    dmaplane_mr_reg(fd, server, dst.buf, 0, MIB,
			    DMAPLANE_MR_LOCAL_WRITE | DMAPLANE_MR_REMOTE_WRITE,
			    &mr, &rkey))
		return 5;
	fill_pattern(src.p, MIB, 9);
	struct dmaplane_op op = {
		.cookie = 1, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
		.length = MIB, .rkey = rkey,
	};
	if (dmaplane_post(fd, client, &op, 1, NULL) ||
	    dmaplane_reap(fd, client, &c, 1, 1, VERBS_WAIT_MS, &n) || n != 1 ||
	    c.status)
		return 6;
	return pattern_holds(dst.p, MIB, 9) ? 0 : 7;
}

/* A member connects, registers and moves data like anyone. */
static void member_uses_rdma(void)
{
	if (!getenv("DP_GUEST_IP") || count_rdma_devices() <= 0) {
		ktap_skip("no RDMA device and guest address (guests get soft-RoCE with --rxe)");
		return;
	}
	as_nobody(true, use_rdma);
}

/* What the children left went with their files. */
static void nothing_left_behind(void)
{
	KTAP_EXPECT(counter_settled("buffers", 0) == 0, "buffers left");
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0, "endpoints left");
	KTAP_EXPECT(counter_settled("mrs", 0) == 0, "MRs left");
	if (node_changed) {
		KTAP_EXPECT_RET(chown(DMAPLANE_DEV_PATH, node.st_uid,
				      node.st_gid) ? -errno : 0, 0);
		KTAP_EXPECT_RET(chmod(DMAPLANE_DEV_PATH, node.st_mode & 07777) ?
				-errno : 0, 0);
	}
}

static const struct ktap_case cases[] = {
	KTAP_CASE(give_node_to_group),
	KTAP_CASE(open_needs_the_group),
	KTAP_CASE(member_uses_buffers),
	KTAP_CASE(privileged_commands_refused),
	KTAP_CASE(others_objects_unreachable),
	KTAP_CASE(member_uses_rdma),
	KTAP_CASE(nothing_left_behind),
};

int main(void)
{
	return ktap_run_suite("privilege", cases,
			      sizeof(cases) / sizeof(cases[0]));
}
