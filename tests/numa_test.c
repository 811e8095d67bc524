// SPDX-License-Identifier: GPL-2.0
/*
 * numa: GET_TOPOLOGY against sysfs and against the machine the guest was
 * booted as ($DP_TOPOLOGY, written by vm/launch.sh), strict and preferred
 * placement on every node verified page by page, -EXDEV for pinned pages
 * on the wrong node, -ENOMEM for a node too small, and NUMA_BENCH's matrix
 * and its bad inputs. Needs dmaplane.ko loaded and debugfs.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/mempolicy.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define MIB (1ULL << 20)
#define MAX_FIXTURE_NODES 8

static int dev_fd = -1;
static size_t page_size;
static struct dmaplane_topo topo;

/* The booted machine, from $DP_TOPOLOGY (fixtures/topologies format). */
static struct {
	int nodes;
	unsigned int cpus[MAX_FIXTURE_NODES];
	unsigned long mem_mib[MAX_FIXTURE_NODES];
	unsigned int dist[MAX_FIXTURE_NODES][MAX_FIXTURE_NODES];
} fixture;

static const char *load_fixture(void)
{
	const char *path = getenv("DP_TOPOLOGY");
	char line[256];
	FILE *f;
	int n;

	if (!path)
		return "DP_TOPOLOGY not set (not in a sim guest)";
	f = fopen(path, "r");
	if (!f)
		return "DP_TOPOLOGY unreadable";
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, '=');

		if (!v || line[0] == '#')
			continue;
		*v++ = '\0';
		if (!strcmp(line, "nodes"))
			fixture.nodes = atoi(v);
		else if (sscanf(line, "node%d_", &n) == 1 && n >= 0 &&
			 n < MAX_FIXTURE_NODES) {
			if (strstr(line, "_cpus"))
				fixture.cpus[n] = atoi(v);
			else if (strstr(line, "_mem_mib"))
				fixture.mem_mib[n] = strtoul(v, NULL, 10);
			else if (strstr(line, "_distances"))
				for (int j = 0; j < MAX_FIXTURE_NODES; j++)
					fixture.dist[n][j] = strtoul(v, &v, 10);
		}
	}
	fclose(f);
	return fixture.nodes > 0 ? NULL : "DP_TOPOLOGY has no nodes";
}

static void open_and_read_topology(void)
{
	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", ktap_errname(dev_fd));
	KTAP_EXPECT_RET(dmaplane_topology(dev_fd, &topo), 0);
	for (uint32_t i = 0; i < topo.nr_nodes; i++)
		printf("# node %u: %u cpus, %llu MiB (%llu free)\n",
		       topo.nodes[i].node_id, topo.nodes[i].nr_cpus,
		       (unsigned long long)(topo.nodes[i].mem_total >> 20),
		       (unsigned long long)(topo.nodes[i].mem_free >> 20));
}

/* "0-1,3" as sysfs writes a cpulist, from a list of CPU ids. */
static void cpulist(const uint32_t *cpus, uint32_t n, char *out, size_t len)
{
	size_t pos = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = i;

		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		pos += snprintf(out + pos, len - pos, "%s%u", pos ? "," : "",
				cpus[i]);
		if (j > i)
			pos += snprintf(out + pos, len - pos, "-%u", cpus[j]);
		i = j;
	}
}

static void topology_matches_sysfs(void)
{
	int online = count_online_nodes();
	char path[128], want[512], got[512];

	KTAP_EXPECT((int)topo.nr_nodes == online, "%u nodes, sysfs %d",
		    topo.nr_nodes, online);
	for (uint32_t i = 0; i < topo.nr_nodes; i++) {
		const struct dmaplane_numa_node *n = &topo.nodes[i];
		uint64_t kb = 0;
		size_t pos = 0;

		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%u/cpulist", n->node_id);
		KTAP_EXPECT_RET(read_first_line(path, want, sizeof(want)), 0);
		cpulist(topo.cpus + n->cpu_index, n->nr_cpus, got, sizeof(got));
		KTAP_EXPECT(!strcmp(want, got), "node %u cpus '%s', sysfs '%s'",
			    n->node_id, got, want);

		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%u/meminfo", n->node_id);
		snprintf(want, sizeof(want), "Node %u MemTotal", n->node_id);
		KTAP_EXPECT_RET(read_keyed_u64(path, want, &kb), 0);
		KTAP_EXPECT(n->mem_total == kb * 1024,
			    "node %u mem_total %llu, sysfs %llu kB", n->node_id,
			    (unsigned long long)n->mem_total,
			    (unsigned long long)kb);
		KTAP_EXPECT(n->mem_free <= n->mem_total, "free > total");

		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%u/distance", n->node_id);
		KTAP_EXPECT_RET(read_first_line(path, want, sizeof(want)), 0);
		got[0] = '\0';
		for (uint32_t j = 0; j < topo.nr_nodes; j++)
			pos += snprintf(got + pos, sizeof(got) - pos, "%s%u",
					j ? " " : "",
					topo.distances[i * topo.nr_nodes + j]);
		KTAP_EXPECT(!strcmp(want, got),
			    "node %u distances '%s', sysfs '%s'", n->node_id,
			    got, want);
	}
}

/* What the guest was booted with, exactly: nodes, CPUs, SLIT. */
static void topology_matches_fixture(void)
{
	const char *why = load_fixture();

	if (why) {
		ktap_skip("%s", why);
		return;
	}
	KTAP_EXPECT((int)topo.nr_nodes == fixture.nodes, "%u nodes, booted %d",
		    topo.nr_nodes, fixture.nodes);
	for (uint32_t i = 0; i < topo.nr_nodes && (int)i < fixture.nodes; i++) {
		const struct dmaplane_numa_node *n = &topo.nodes[i];

		KTAP_EXPECT(n->node_id == i, "node ids not dense: %u",
			    n->node_id);
		KTAP_EXPECT(n->nr_cpus == fixture.cpus[i], "node %u: %u cpus, booted %u",
			    i, n->nr_cpus, fixture.cpus[i]);
		/* The kernel keeps some of a node for itself, never more. */
		KTAP_EXPECT(n->mem_total > 0 &&
			    n->mem_total <= fixture.mem_mib[i] * MIB,
			    "node %u: %llu bytes, booted with %lu MiB", i,
			    (unsigned long long)n->mem_total,
			    fixture.mem_mib[i]);
		for (uint32_t j = 0; j < topo.nr_nodes && (int)j < fixture.nodes; j++)
			KTAP_EXPECT(topo.distances[i * topo.nr_nodes + j] ==
				    fixture.dist[i][j],
				    "distance %u->%u is %u, booted %u", i, j,
				    topo.distances[i * topo.nr_nodes + j],
				    fixture.dist[i][j]);
	}
	printf("# %d-node machine: topology and SLIT as booted\n",
	       fixture.nodes);
}

static long topo_ioctl(struct dmaplane_topology *t)
{
	return ioctl(dev_fd, DMAPLANE_IOC_GET_TOPOLOGY, t) ? -errno : 0;
}

static void topology_rejects_bad_input(void)
{
	struct dmaplane_topology t = { .flags = 1 };
	struct dmaplane_numa_node node[2];
	uint32_t dist[4] = { 0, 0, 0, 0xdead };

	KTAP_EXPECT_RET(topo_ioctl(&t), -EINVAL);
	t = (struct dmaplane_topology){ .reserved = 1 };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EINVAL);
	t = (struct dmaplane_topology){ .nodes_len = 1 };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EINVAL);
	t = (struct dmaplane_topology){ .cpus_len = 1 };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EINVAL);
	t = (struct dmaplane_topology){ .distances_ptr = (uintptr_t)dist };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EINVAL);
	t = (struct dmaplane_topology){ .nodes_len = 1, .nodes_ptr = 8 };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EFAULT);
	t = (struct dmaplane_topology){ .cpus_len = 1, .cpus_ptr = 8 };
	KTAP_EXPECT_RET(topo_ioctl(&t), -EFAULT);
	/* One node asked for: one entry and one distance, counts in full. */
	t = (struct dmaplane_topology){
		.nodes_len = 1, .nodes_ptr = (uintptr_t)node,
		.distances_ptr = (uintptr_t)dist,
	};
	memset(node, 0xff, sizeof(node));
	KTAP_EXPECT_RET(topo_ioctl(&t), 0);
	KTAP_EXPECT(t.nr_nodes == topo.nr_nodes && t.nr_cpus == topo.nr_cpus,
		    "counts %u/%u", t.nr_nodes, t.nr_cpus);
	KTAP_EXPECT(node[0].node_id == topo.nodes[0].node_id && dist[0] == 10,
		    "first node %u distance %u", node[0].node_id, dist[0]);
	KTAP_EXPECT(node[1].node_id == 0xffffffff && dist[1] == 0 &&
		    dist[3] == 0xdead, "wrote past nodes_len");
}

/* Nodes that have memory, by index into topo.nodes. */
static bool has_memory(uint32_t i)
{
	return topo.nodes[i].mem_total > 0;
}

static void check_placement(uint32_t kind, int node, bool strict,
			    uint64_t size)
{
	struct dmaplane_buffer_create req = {
		.size = size, .flags = kind, .numa_node = node,
	};
	struct dmaplane_buffer_info info;
	uint64_t hist[64] = { 0 }, sum = 0;

	if (strict)
		req.flags |= DMAPLANE_BUF_NUMA_STRICT;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	if (ktap_case_failed())
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle, &info, hist,
					     64), 0);
	for (int n = 0; n < 64; n++)
		sum += hist[n];
	KTAP_EXPECT(sum == req.nr_pages, "histogram holds %llu of %llu pages",
		    (unsigned long long)sum, (unsigned long long)req.nr_pages);
	KTAP_EXPECT(node < 64 && hist[node] == req.pages_on_node &&
		    info.pages_on_node == req.pages_on_node,
		    "node %d: histogram %llu, create %llu", node,
		    (unsigned long long)hist[node],
		    (unsigned long long)req.pages_on_node);
	if (strict)
		KTAP_EXPECT(req.pages_on_node == req.nr_pages &&
			    !(req.result_flags & DMAPLANE_BUF_RES_NUMA_FALLBACK),
			    "strict kind 0x%x on node %d: %llu of %llu pages there",
			    kind, node, (unsigned long long)req.pages_on_node,
			    (unsigned long long)req.nr_pages);
	else
		KTAP_EXPECT(!!(req.result_flags & DMAPLANE_BUF_RES_NUMA_FALLBACK) ==
			    (req.pages_on_node < req.nr_pages),
			    "fallback flag disagrees with the page count");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

/* The acceptance check: strict buffers land 100% on every node asked. */
static void strict_placement_on_every_node(void)
{
	uint64_t before = dmaplane_counter("numa_pages_on_node");
	uint64_t expect = 0;

	for (uint32_t i = 0; i < topo.nr_nodes; i++) {
		int node = topo.nodes[i].node_id;

		if (!has_memory(i))
			continue;
		check_placement(0, node, true, 4 * MIB);
		check_placement(DMAPLANE_BUF_HUGE, node, true, 4 * MIB);
		check_placement(DMAPLANE_BUF_COHERENT, node, true, MIB);
		expect += (8 * MIB + MIB) / page_size;
	}
	KTAP_EXPECT(dmaplane_counter("numa_pages_on_node") - before == expect,
		    "numa_pages_on_node grew by %llu, want %llu",
		    (unsigned long long)(dmaplane_counter("numa_pages_on_node") -
					 before), (unsigned long long)expect);
}

static void preferred_placement_reports_pages(void)
{
	for (uint32_t i = 0; i < topo.nr_nodes; i++)
		if (has_memory(i))
			check_placement(0, topo.nodes[i].node_id, false, 2 * MIB);
}

/* Anonymous pages faulted in on @node (MPOL_BIND). */
static unsigned char *anon_on_node(size_t size, int node)
{
	unsigned long mask = 1UL << node;
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (syscall(SYS_mbind, p, size, MPOL_BIND, &mask, sizeof(mask) * 8,
		    0)) {
		munmap(p, size);
		return NULL;
	}
	memset(p, 1, size);
	return p;
}

/* Pinned pages stay where they are: strict on another node is -EXDEV. */
static void user_pages_elsewhere_exdev(void)
{
	size_t size = 64 * page_size;
	uint64_t failures = dmaplane_counter("numa_strict_failures");
	struct dmaplane_buffer_create req;
	unsigned char *mem;
	int home, away;

	if (topo.nr_nodes < 2 || !has_memory(0) || !has_memory(1)) {
		ktap_skip("needs two nodes with memory (a multi-node topology)");
		return;
	}
	home = topo.nodes[0].node_id;
	away = topo.nodes[1].node_id;
	mem = anon_on_node(size, home);
	KTAP_EXPECT(mem, "anonymous memory bound to node %d: %s", home,
		    strerror(errno));
	if (!mem)
		return;
	req = (struct dmaplane_buffer_create){
		.size = size, .numa_node = away, .user_addr = (uintptr_t)mem,
		.flags = DMAPLANE_BUF_USER | DMAPLANE_BUF_NUMA_STRICT,
	};
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), -EXDEV);
	KTAP_EXPECT(dmaplane_counter("numa_strict_failures") == failures + 1,
		    "strict failure not counted");
	KTAP_EXPECT(dmaplane_counter("pinned_pages") == 0,
		    "a refused pin left pages pinned");
	/* Preferred: accepted, and it says where the pages are. */
	req.flags = DMAPLANE_BUF_USER;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	KTAP_EXPECT(req.pages_on_node == 0 &&
		    (req.result_flags & DMAPLANE_BUF_RES_NUMA_FALLBACK),
		    "%llu pages on node %d, flags 0x%x",
		    (unsigned long long)req.pages_on_node, away,
		    req.result_flags);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	req.numa_node = home;
	req.flags = DMAPLANE_BUF_USER | DMAPLANE_BUF_NUMA_STRICT;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	KTAP_EXPECT(req.pages_on_node == size / page_size, "");
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	munmap(mem, size);
}

/* A node smaller than the request: strict fails, preferred spills over. */
static void strict_on_full_node_enomem(void)
{
	uint64_t max_total = 0, max_buf = 0, in_use, size;
	uint32_t small = 0;
	struct dmaplane_buffer_create req;

	KTAP_EXPECT_RET(read_u64_file(DMAPLANE_PARAM("max_total_bytes"),
				      &max_total), 0);
	KTAP_EXPECT_RET(read_u64_file(DMAPLANE_PARAM("max_buffer_size"),
				      &max_buf), 0);
	in_use = dmaplane_counter("buffer_bytes");
	for (uint32_t i = 1; i < topo.nr_nodes; i++)
		if (has_memory(i) && topo.nodes[i].mem_total <
		    topo.nodes[small].mem_total)
			small = i;
	size = topo.nodes[small].mem_total + 32 * MIB;
	if (topo.nr_nodes < 2 || size > max_buf || size + in_use > max_total) {
		ktap_skip("no node is smaller than the module's limits allow to fill");
		return;
	}
	req = (struct dmaplane_buffer_create){
		.size = size, .numa_node = topo.nodes[small].node_id,
		.flags = DMAPLANE_BUF_NUMA_STRICT,
	};
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), -ENOMEM);
	KTAP_EXPECT(dmaplane_counter("buffer_bytes") == in_use,
		    "a refused create left bytes charged");
	req.flags = 0;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(dev_fd, &req), 0);
	KTAP_EXPECT(req.pages_on_node < req.nr_pages &&
		    (req.result_flags & DMAPLANE_BUF_RES_NUMA_FALLBACK),
		    "preferred: %llu of %llu on node %u",
		    (unsigned long long)req.pages_on_node,
		    (unsigned long long)req.nr_pages,
		    topo.nodes[small].node_id);
	printf("# node %u (%llu MiB): strict %llu MiB refused, preferred put %llu%% there\n",
	       topo.nodes[small].node_id,
	       (unsigned long long)(topo.nodes[small].mem_total >> 20),
	       (unsigned long long)(size >> 20),
	       (unsigned long long)(req.pages_on_node * 100 / req.nr_pages));
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

static void numa_bench_fills_matrix(void)
{
	struct dmaplane_numa_bench_cell *cells = NULL;
	uint32_t n = 0, rows = 0, cols = 0, k = 0;

	for (uint32_t i = 0; i < topo.nr_nodes; i++) {
		rows += topo.nodes[i].nr_cpus > 0;
		cols += has_memory(i);
	}
	KTAP_EXPECT_RET(dmaplane_numa_bench(dev_fd, MIB, DMAPLANE_BENCH_COPY, 2,
					    1000, &cells, &n), 0);
	KTAP_EXPECT(n == rows * cols, "%u cells for %u x %u", n, rows, cols);
	for (uint32_t i = 0; cells && i < topo.nr_nodes; i++) {
		if (!topo.nodes[i].nr_cpus)
			continue;
		for (uint32_t j = 0; j < topo.nr_nodes && k < n; j++) {
			const struct dmaplane_numa_bench_cell *c = &cells[k];

			if (!has_memory(j))
				continue;
			k++;
			KTAP_EXPECT(c->cpu_node == topo.nodes[i].node_id &&
				    c->mem_node == topo.nodes[j].node_id,
				    "cell %u is %u->%u", k - 1, c->cpu_node,
				    c->mem_node);
			KTAP_EXPECT(c->status == 0 && c->passes >= 1 &&
				    c->passes <= 2 && c->bytes == c->passes * MIB &&
				    c->ns > 0, "cell %u->%u: status %d passes %u bytes %llu",
				    c->cpu_node, c->mem_node, c->status,
				    c->passes, (unsigned long long)c->bytes);
		}
	}
	free(cells);
}

static long bench_ioctl(struct dmaplane_numa_bench *b)
{
	return ioctl(dev_fd, DMAPLANE_IOC_NUMA_BENCH, b) ? -errno : 0;
}

static void numa_bench_rejects_bad_input(void)
{
	struct dmaplane_numa_bench good = {
		.size = MIB, .op = DMAPLANE_BENCH_READ, .passes = 1,
		.time_limit_ms = 100,
	}, b;
	uint64_t max_buf = 0;
	int status = 0;
	pid_t pid;

	KTAP_EXPECT_RET(read_u64_file(DMAPLANE_PARAM("max_buffer_size"),
				      &max_buf), 0);
#define EXPECT_BENCH(change, want)					\
	do {								\
		b = good;						\
		change;							\
		KTAP_EXPECT_RET(bench_ioctl(&b), want);			\
	} while (0)
	EXPECT_BENCH((void)0, 0);
	EXPECT_BENCH(b.flags = 1, -EINVAL);
	EXPECT_BENCH(b.op = DMAPLANE_BENCH_NR_OPS, -EINVAL);
	EXPECT_BENCH(b.passes = 0, -EINVAL);
	EXPECT_BENCH(b.passes = DMAPLANE_BENCH_PASSES_MAX + 1, -EINVAL);
	EXPECT_BENCH(b.time_limit_ms = 0, -EINVAL);
	EXPECT_BENCH(b.time_limit_ms = DMAPLANE_BENCH_TIME_MAX_MS + 1, -EINVAL);
	EXPECT_BENCH(b.size = MIB - 1, -EINVAL);
	EXPECT_BENCH(b.size = max_buf + 1, -EFBIG);
	EXPECT_BENCH(b.cells_len = 1, -EINVAL);
	EXPECT_BENCH((b.cells_len = 1, b.cells_ptr = 8), -EFAULT);
#undef EXPECT_BENCH
	/* Without CAP_SYS_ADMIN: no hogging CPUs and memory bandwidth. */
	pid = fork();
	if (pid == 0) {
		b = good;
		_exit(drop_capability(CAP_SYS_ADMIN) ? 2 :
		      bench_ioctl(&b) == -EPERM ? 0 : 1);
	}
	KTAP_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	KTAP_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "unprivileged bench not refused (status 0x%x)", status);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* A signal stops a long matrix with -EINTR, and nothing stays charged. */
static void numa_bench_is_interruptible(void)
{
	uint64_t bytes = dmaplane_counter("buffer_bytes");
	struct sigaction sa = { .sa_handler = on_signal }, old;
	int status = 0;
	pid_t pid;

	/* Installed before the fork: the child never dies of SIGUSR1. */
	sigaction(SIGUSR1, &sa, &old);	/* no SA_RESTART */
	pid = fork();
	if (pid == 0) {
		struct dmaplane_numa_bench_cell cell;
		struct dmaplane_numa_bench b = {
			.size = 16 * MIB, .op = DMAPLANE_BENCH_READ,
			.passes = DMAPLANE_BENCH_PASSES_MAX,
			.time_limit_ms = DMAPLANE_BENCH_TIME_MAX_MS,
			.cells_len = 1, .cells_ptr = (uintptr_t)&cell,
		};

		_exit(bench_ioctl(&b) == -EINTR ? 0 : 1);
	}
	sigaction(SIGUSR1, &old, NULL);
	/* Until the child is gone: a signal before its ioctl is harmless. */
	for (int i = 0; i < 600 && waitpid(pid, &status, WNOHANG) == 0; i++) {
		kill(pid, SIGUSR1);
		usleep(100 * 1000);
	}
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	KTAP_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "bench not interrupted (status 0x%x)", status);
	KTAP_EXPECT(dmaplane_counter("buffer_bytes") == bytes,
		    "bench memory still charged");
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_and_read_topology),
	KTAP_CASE(topology_matches_sysfs),
	KTAP_CASE(topology_matches_fixture),
	KTAP_CASE(topology_rejects_bad_input),
	KTAP_CASE(strict_placement_on_every_node),
	KTAP_CASE(preferred_placement_reports_pages),
	KTAP_CASE(user_pages_elsewhere_exdev),
	KTAP_CASE(strict_on_full_node_enomem),
	KTAP_CASE(numa_bench_fills_matrix),
	KTAP_CASE(numa_bench_rejects_bad_input),
	KTAP_CASE(numa_bench_is_interruptible),
};

int main(void)
{
	int ret;

	page_size = sysconf(_SC_PAGESIZE);
	ret = ktap_run_suite("numa", cases, sizeof(cases) / sizeof(cases[0]));
	dmaplane_topology_free(&topo);
	return ret;
}
