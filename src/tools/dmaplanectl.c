// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl: inspect and exercise /dev/dmaplane from the shell.
 *
 *   dmaplanectl info [--json]
 *   dmaplanectl topo [--json]
 *   dmaplanectl buffers [--json]
 *   dmaplanectl rdma [--json]
 *   dmaplanectl rdma-listen --addr IP [--port N] [--time-ms T] [--json]
 *   dmaplanectl rdma-connect --addr IP --port N [--time-ms T] [--json]
 *   dmaplanectl echo-bench [--iterations N] [--json]
 *   dmaplanectl numa-bench [--size S] [--op read|write|copy] [--passes N]
 *                          [--time-ms T] [--json]
 *   dmaplanectl huge-bench [--sizes S,S,...] [--iterations N] [--json]
 *   dmaplanectl rdma-bench --addr IP [--port N [--serve]] [--sizes S,S,...]
 *                          [--depths D,D,...] [--time-ms T] [--iterations N]
 *                          [--ref-bw MBPS@SIZE] [--ref-lat US@SIZE] [--json]
 *   dmaplanectl submit-bench [--iterations N] [--json]
 *   dmaplanectl stream --serve [--addr IP] [--port N] [--size MAX]
 *                      [--recv-depth N] [--slow-us U] [--connections N]
 *                      [--window W] [--no-credits] [--json]
 *   dmaplanectl stream --addr IP [--port N] [--duration S] [--size S] [--qd N]
 *                      [--window W] [--no-credits] [--json]
 *   dmaplanectl stream --addr IP [--port N] --sweep [--qds Q,Q,...]
 *                      [--sizes S,S,...] [--duration S] [--json]
 *   dmaplanectl gpu-bench [--provider sim|nvidia] [--device N] [--size S]
 *                         [--iterations N] [--json]
 *   dmaplanectl stats [--json]
 *   dmaplanectl top [--interval-ms N] [--count N]
 *
 * Sizes take K, M or G suffixes (powers of two). --json-out FILE makes a
 * benchmark print its table and write its JSON to FILE from the same run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmaplanectl.h"
#include "libdmaplane.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: dmaplanectl info [--json]\n"
		"       dmaplanectl topo [--json]\n"
		"       dmaplanectl buffers [--json]\n"
		"       dmaplanectl rdma [--json]\n"
		"       dmaplanectl rdma-listen --addr IP [--port N] [--time-ms T] [--json]\n"
		"       dmaplanectl rdma-connect --addr IP --port N [--time-ms T] [--json]\n"
		"       dmaplanectl echo-bench [--iterations N] [--json]\n"
		"       dmaplanectl numa-bench [--size S] [--op read|write|copy]\n"
		"                              [--passes N] [--time-ms T] [--json]\n"
		"       dmaplanectl huge-bench [--sizes S,S,...] [--iterations N] [--json]\n"
		"       dmaplanectl rdma-bench --addr IP [--port N [--serve]] [--sizes S,S,...]\n"
		"                              [--depths D,D,...] [--time-ms T] [--iterations N]\n"
		"                              [--ref-bw MBPS@SIZE] [--ref-lat US@SIZE] [--json]\n"
		"          (no --port: loopback in this guest; --serve: a window for a peer)\n"
		"       dmaplanectl submit-bench [--iterations N] [--json]\n"
		"       dmaplanectl stream --serve [--addr IP] [--port N] [--size MAX]\n"
		"                          [--recv-depth N] [--slow-us U] [--connections N]\n"
		"                          [--window W] [--no-credits] [--json]\n"
		"       dmaplanectl stream --addr IP [--port N] [--duration S] [--size S]\n"
		"                          [--qd N] [--window W] [--no-credits] [--json]\n"
		"       dmaplanectl stream --addr IP [--port N] --sweep [--qds Q,Q,...]\n"
		"                          [--sizes S,S,...] [--duration S] [--json]\n"
		"       dmaplanectl gpu-bench [--provider sim|nvidia] [--device N] [--size S]\n"
		"                             [--iterations N] [--json]\n"
		"          (GPU memory mapped write-combining and uncached against host\n"
		"           memcpy; exit 77: skipped, no usable GPU provider here;\n"
		"           nvidia memory: gpu_bench_cuda)\n"
		"       dmaplanectl stats [--json]\n"
		"       dmaplanectl top [--interval-ms N] [--count N]\n"
		"sizes take K, M or G suffixes; benchmarks take --json-out FILE\n"
		"(the table on stdout and the JSON in FILE, from one run)\n");
}

static int cmd_info(int fd, int json)
{
	struct dmaplane_info info;
	const char *sep = "";
	int ret = dmaplane_get_info(fd, &info);

	if (ret)
		return fail("GET_INFO", ret);
	if (json) {
		printf("{\"module_version\": \"%s\", \"uapi_version\": %u, "
		       "\"capabilities\": [", info.module_version,
		       info.uapi_version);
	} else {
		printf("module version     %s\n", info.module_version);
		printf("uapi version       %u\n", info.uapi_version);
		printf("capabilities      ");
	}
	for (int bit = 0; bit < 64; bit++) {
		uint64_t cap = 1ULL << bit;
		const char *name = dmaplane_cap_name(cap);
		char unknown[8];

		if (!(info.capabilities & cap))
			continue;
		if (!name) {
			snprintf(unknown, sizeof(unknown), "bit%d", bit);
			name = unknown;
		}
		printf(json ? "%s\"%s\"" : "%s %s", sep, name);
		if (json)
			sep = ", ";
	}
	if (json)
		printf("], \"numa_nodes_online\": %u, \"numa_nodes_possible\": %u, "
		       "\"rdma_devices\": %u, \"gpu_sim_devices\": %u, "
		       "\"gpu_providers\": {", info.numa_nodes_online,
		       info.numa_nodes_possible, info.rdma_devices,
		       info.gpu_sim_devices);
	else
		printf("\nnuma nodes online  %u (possible %u)\nrdma devices       %u\n"
		       "gpu providers     ", info.numa_nodes_online,
		       info.numa_nodes_possible, info.rdma_devices);
	/* Each provider: built in or not, and usable here now or not. */
	sep = "";
	for (uint32_t p = 1; p <= DMAPLANE_GPU_PROVIDER_MAX; p++) {
		const char *state = !(info.gpu_providers & 1U << p) ?
				    "not-built" : info.gpu_ready & 1U << p ?
				    "ready" : "absent";

		printf(json ? "%s\"%s\": \"%s\"" : "%s %s=%s", sep,
		       dmaplane_gpu_provider_name(p), state);
		if (json)
			sep = ", ";
	}
	printf(json ? "}}\n" : "\nsim gpus           %u\n", info.gpu_sim_devices);
	return 0;
}

double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int fail(const char *what, int ret)
{
	fprintf(stderr, "dmaplanectl: %s: %s\n", what, strerror(-ret));
	return 1;
}

/* Round trips through the dispatcher: the floor cost of any dmaplane call. */
static int cmd_echo_bench(int fd, const struct options *o)
{
	long iterations = o->iterations;
	double start, elapsed;
	uint64_t out;
	int ret;

	start = now_ns();
	for (long i = 0; i < iterations; i++) {
		ret = dmaplane_echo(fd, (uint64_t)i, 0, &out);
		if (ret)
			return fail("ECHO", ret);
		if (out != (uint64_t)i) {
			fprintf(stderr, "dmaplanectl: echo returned %llu for %ld\n",
				(unsigned long long)out, i);
			return 1;
		}
	}
	elapsed = now_ns() - start;
	if (o->js)
		fprintf(o->js, "{\"benchmark\": \"echo\", \"iterations\": %ld, "
		       "\"ns_per_call\": %.1f, \"calls_per_second\": %.0f}\n",
		       iterations, elapsed / iterations,
		       iterations / (elapsed / 1e9));
	if (o->tbl)
		fprintf(o->tbl, "%-10s %12s %12s %16s\n%-10s %12ld %12.1f %16.0f\n",
		       "benchmark", "iterations", "ns/call", "calls/s", "echo",
		       iterations, elapsed / iterations,
		       iterations / (elapsed / 1e9));
	return 0;
}

static int cmd_topo(int fd, int json)
{
	struct dmaplane_topo topo;
	int ret = dmaplane_topology(fd, &topo);

	if (ret)
		return fail("GET_TOPOLOGY", ret);
	if (json)
		printf("{\"nodes\": [");
	else
		printf("%-5s %5s %12s %12s  %-16s distances\n", "node", "cpus",
		       "total_MiB", "free_MiB", "cpu_ids");
	for (uint32_t i = 0; i < topo.nr_nodes; i++) {
		const struct dmaplane_numa_node *n = &topo.nodes[i];
		char ids[256] = "";
		size_t pos = 0;

		for (uint32_t c = 0; c < n->nr_cpus && pos < sizeof(ids) - 12; c++)
			pos += snprintf(ids + pos, sizeof(ids) - pos, "%s%u",
					c ? (json ? ", " : ",") : "",
					topo.cpus[n->cpu_index + c]);
		if (json)
			printf("%s{\"node\": %u, \"cpus\": [%s], \"mem_total\": %llu, "
			       "\"mem_free\": %llu, \"distances\": [", i ? ", " : "",
			       n->node_id, ids, (unsigned long long)n->mem_total,
			       (unsigned long long)n->mem_free);
		else
			printf("%-5u %5u %12llu %12llu  %-16s", n->node_id,
			       n->nr_cpus, (unsigned long long)(n->mem_total >> 20),
			       (unsigned long long)(n->mem_free >> 20),
			       n->nr_cpus ? ids : "-");
		for (uint32_t j = 0; j < topo.nr_nodes; j++)
			printf(json ? "%s%u" : "%s%3u", j && json ? ", " : " ",
			       topo.distances[i * topo.nr_nodes + j]);
		printf(json ? "]}" : "\n");
	}
	if (json)
		printf("]}\n");
	dmaplane_topology_free(&topo);
	return 0;
}

#define BUFFERS_DEBUGFS "/sys/kernel/debug/dmaplane/buffers"

/*
 * Every buffer module-wide, from debugfs (handles are per file, so no
 * ioctl can list another process's): kind, size, node, mappings, exports
 * and attachments. Lines there are "key=value ..." with an optional
 * trailing "revoked".
 */
static int cmd_buffers(int json)
{
	static const char *const cols[] = {
		"id", "kind", "size", "node", "pages_on_node", "mappings",
		"exports", "attachments", "flags",
	};
	static const int widths[] = { 6, -9, 12, 5, 13, 8, 7, 11, 6 };
	FILE *f = fopen(BUFFERS_DEBUGFS, "r");
	char line[512];
	int n = 0;

	if (!f)
		return fail(BUFFERS_DEBUGFS, -errno);
	if (json)
		printf("{\"buffers\": [");
	else
		for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++)
			printf("%s%*s%s", c ? " " : "", widths[c], cols[c],
			       c + 1 < sizeof(cols) / sizeof(cols[0]) ? "" : "\n");
	while (fgets(line, sizeof(line), f)) {
		bool revoked = strstr(line, " revoked") != NULL;
		char *save, *tok;
		size_t c = 0;

		printf(json ? "%s{" : "", n++ ? ", " : "");
		for (tok = strtok_r(line, " \n", &save);
		     tok && c < sizeof(cols) / sizeof(cols[0]);
		     tok = strtok_r(NULL, " \n", &save), c++) {
			const char *val = strchr(tok, '=');

			val = val ? val + 1 : "";
			if (!json)
				printf("%s%*s", c ? " " : "", widths[c], val);
			else if (c == 1 || c == 8)
				printf("%s\"%s\": \"%s\"", c ? ", " : "",
				       cols[c], val);
			else
				printf("%s\"%s\": %s", c ? ", " : "", cols[c],
				       val);
		}
		if (json)
			printf(", \"revoked\": %s}", revoked ? "true" : "false");
		else
			printf("%s\n", revoked ? " revoked" : "");
	}
	fclose(f);
	if (json)
		printf("]}\n");
	return 0;
}

/* RDMA devices as the module tracks them. */
static int cmd_rdma(int fd, int json)
{
	static const char *const link[] = { "?", "InfiniBand", "Ethernet" };
	struct dmaplane_rdma_device *devs;
	uint32_t n;
	int ret = dmaplane_rdma_devices(fd, &devs, &n);

	if (ret)
		return fail("RDMA_DEVICES", ret);
	if (json)
		printf("{\"rdma_devices\": [");
	else
		printf("%-12s %5s %16s %6s %10s %6s %10s %12s\n", "device",
		       "index", "node_guid", "state", "link", "mtu",
		       "max_qp_wr", "max_fr_pages");
	for (uint32_t i = 0; i < n; i++) {
		const struct dmaplane_rdma_device *d = &devs[i];
		const char *ll = link[d->port_link_layer < 3 ?
				      d->port_link_layer : 0];

		if (json)
			printf("%s{\"name\": \"%s\", \"index\": %u, "
			       "\"node_guid\": \"%016llx\", \"port_state\": %u, "
			       "\"link_layer\": \"%s\", \"mtu\": %u, "
			       "\"max_qp_wr\": %u, \"max_fast_reg_pages\": %u, "
			       "\"max_mr_size\": %llu}", i ? ", " : "", d->name,
			       d->index, (unsigned long long)d->node_guid,
			       d->port_state, ll, d->port_active_mtu,
			       d->max_qp_wr, d->max_fast_reg_page_list_len,
			       (unsigned long long)d->max_mr_size);
		else
			printf("%-12s %5u %016llx %6u %10s %6u %10u %12u\n",
			       d->name, d->index,
			       (unsigned long long)d->node_guid, d->port_state,
			       ll, d->port_active_mtu, d->max_qp_wr,
			       d->max_fast_reg_page_list_len);
	}
	if (json)
		printf("]}\n");
	free(devs);
	return 0;
}

static void print_ep(const char *what, const struct dmaplane_ep_info *info,
		     int json)
{
	char peer[64] = "?";

	inet_ntop(info->peer.family, info->peer.addr, peer, sizeof(peer));
	if (json)
		printf("{\"%s\": true, \"peer\": \"%s\", \"peer_port\": %u, "
		       "\"local_port\": %u, \"qp\": %u, \"device_index\": %d}\n",
		       what, peer, info->peer.port, info->local.port,
		       info->qp_num, info->device_index);
	else
		printf("%s: peer %s port %u, local port %u, qp %u, device %d\n",
		       what, peer, info->peer.port, info->local.port,
		       info->qp_num, info->device_index);
}

/*
 * Accept one connection, then wait until the peer disconnects: exit 0
 * when it did (-ECONNRESET). A two-host check of connections by address.
 */
static int cmd_rdma_listen(int fd, const struct options *o)
{
	struct dmaplane_ep_info info;
	struct dmaplane_addr a;
	uint32_t lh, ch;
	int ret;

	if (!o->addr || dmaplane_addr_parse(o->addr, o->port, &a))
		return fail("--addr", -EINVAL);
	ret = dmaplane_ep_create(fd, NULL, &lh);
	if (!ret)
		ret = dmaplane_ep_listen(fd, lh, 4, &a);
	if (ret)
		return fail("ENDPOINT_LISTEN", ret);
	fprintf(stderr, "listening on %s port %u\n", o->addr, a.port);
	ret = dmaplane_ep_accept(fd, lh, o->time_ms, &ch, NULL);
	if (!ret)
		ret = dmaplane_ep_info(fd, ch, &info);
	if (ret)
		return fail("ENDPOINT_ACCEPT", ret);
	print_ep("accepted", &info, o->json);
	for (uint32_t waited = 0; info.state == DMAPLANE_EP_CONNECTED &&
	     waited < o->time_ms; waited += 100) {
		usleep(100 * 1000);
		if (dmaplane_ep_info(fd, ch, &info))
			break;
	}
	if (info.error != -ECONNRESET)
		return fail("waiting for the peer to disconnect",
			    info.error ? info.error : -ETIMEDOUT);
	return 0;
}

/* Connect (retrying while nobody listens yet), report, disconnect. */
static int cmd_rdma_connect(int fd, const struct options *o)
{
	struct dmaplane_ep_info info;
	struct dmaplane_addr a;
	uint32_t h, waited = 0;
	int ret;

	if (!o->addr || !o->port || dmaplane_addr_parse(o->addr, o->port, &a))
		return fail("--addr/--port", -EINVAL);
	do {
		ret = dmaplane_ep_create(fd, NULL, &h);
		if (ret)
			return fail("ENDPOINT_CREATE", ret);
		ret = dmaplane_ep_connect(fd, h, &a, o->time_ms);
		if (ret == -ECONNREFUSED) {
			dmaplane_ep_destroy(fd, h);
			usleep(200 * 1000);
			waited += 200;
		}
	} while (ret == -ECONNREFUSED && waited < o->time_ms);
	if (!ret)
		ret = dmaplane_ep_info(fd, h, &info);
	if (ret)
		return fail("ENDPOINT_CONNECT", ret);
	print_ep("connected", &info, o->json);
	return dmaplane_ep_destroy(fd, h) ? 1 : 0;
}

static const char *const bench_ops[] = { "read", "write", "copy" };

static double cell_mbps(const struct dmaplane_numa_bench_cell *c)
{
	return c->status || !c->ns ? 0.0 : c->bytes / (c->ns / 1e9) / 1e6;
}

/*
 * The matrix in MB/s, rows the CPU's node, columns the memory's, and the
 * cost of being remote: average remote over average local bandwidth.
 */
static int cmd_numa_bench(int fd, const struct options *o)
{
	struct dmaplane_numa_bench_cell *cells;
	double local = 0, remote = 0;
	int nlocal = 0, nremote = 0, failed = 0;
	uint32_t n, cols = 0;
	int ret;

	ret = dmaplane_numa_bench(fd, o->size, o->op, o->passes, o->time_ms,
				  &cells, &n);
	if (ret)
		return fail("NUMA_BENCH", ret);
	while (cols < n && cells[cols].cpu_node == cells[0].cpu_node)
		cols++;
	for (uint32_t i = 0; i < n; i++) {
		if (cells[i].status) {
			failed++;
			continue;
		}
		if (cells[i].cpu_node == cells[i].mem_node) {
			local += cell_mbps(&cells[i]);
			nlocal++;
		} else {
			remote += cell_mbps(&cells[i]);
			nremote++;
		}
	}
	local = nlocal ? local / nlocal : 0;
	remote = nremote ? remote / nremote : 0;
	if (o->js) {
		fprintf(o->js, "{\"benchmark\": \"numa_bandwidth\", \"op\": \"%s\", "
		       "\"size\": %llu, \"passes\": %u, \"time_limit_ms\": %u, "
		       "\"cells\": [", bench_ops[o->op],
		       (unsigned long long)o->size, o->passes, o->time_ms);
		for (uint32_t i = 0; i < n; i++)
			fprintf(o->js, "%s{\"cpu_node\": %u, \"mem_node\": %u, "
			       "\"status\": %d, \"passes\": %u, \"bytes\": %llu, "
			       "\"ns\": %llu, \"MBps\": %.1f}", i ? ", " : "",
			       cells[i].cpu_node, cells[i].mem_node,
			       cells[i].status, cells[i].passes,
			       (unsigned long long)cells[i].bytes,
			       (unsigned long long)cells[i].ns,
			       cell_mbps(&cells[i]));
		fprintf(o->js, "], \"local_MBps\": %.1f, \"remote_MBps\": %.1f, "
		       "\"remote_over_local\": %.3f}\n", local, remote,
		       local && remote ? remote / local : 0.0);
	}
	if (o->tbl) {
		fprintf(o->tbl, "numa-bench: %s, %llu MiB buffer, MB/s (rows: CPU node, "
		       "columns: memory node)\n", bench_ops[o->op],
		       (unsigned long long)(o->size >> 20));
		fprintf(o->tbl, "%8s", "cpu\\mem");
		for (uint32_t j = 0; j < cols; j++)
			fprintf(o->tbl, " %9u", cells[j].mem_node);
		for (uint32_t i = 0; i < n; i++) {
			if (i % cols == 0)
				fprintf(o->tbl, "\n%8u", cells[i].cpu_node);
			if (cells[i].status)
				fprintf(o->tbl, " %9s", strerror(-cells[i].status));
			else
				fprintf(o->tbl, " %9.0f", cell_mbps(&cells[i]));
		}
		fprintf(o->tbl, "\nlocal %.0f MB/s", local);
		if (!nremote)
			fprintf(o->tbl, " (one node: no remote cells)");
		else
			fprintf(o->tbl, ", remote %.0f MB/s", remote);
		if (local && remote)
			fprintf(o->tbl, ", remote/local %.3f (%.1f%% %s)", remote / local,
			       100 * (remote > local ? remote / local - 1 :
				      1 - remote / local),
			       remote > local ? "faster" : "slower");
		fprintf(o->tbl, "\n");
	}
	free(cells);
	return failed ? 1 : 0;
}

struct map_result {
	int err;
	struct dmaplane_map_bench mb;
	uint64_t huge_chunks;
};

static void map_one(int fd, uint64_t size, uint32_t flags,
		    uint32_t iterations, struct map_result *r)
{
	struct dmaplane_buffer_create req = {
		.size = size, .flags = flags, .numa_node = DMAPLANE_NUMA_ANY,
	};
	struct dmaplane_buffer_info info;

	memset(r, 0, sizeof(*r));
	r->err = dmaplane_buffer_create_req(fd, &req);
	if (r->err)
		return;
	r->err = dmaplane_map_bench(fd, req.handle, iterations, &r->mb);
	if (!r->err && !dmaplane_buffer_info(fd, req.handle, &info, NULL, 0))
		r->huge_chunks = info.huge_chunks;
	dmaplane_buffer_destroy(fd, req.handle);
}

static double per_iter_us(uint64_t ns, uint32_t iterations)
{
	return ns / 1e3 / iterations;
}

static void print_map_json(FILE *js, const char *name,
			   const struct map_result *r, uint32_t iterations)
{
	if (r->err) {
		fprintf(js, "\"%s\": {\"error\": \"%s\"}", name, strerror(-r->err));
		return;
	}
	fprintf(js, "\"%s\": {\"segments\": %llu, \"huge_chunks\": %llu, "
	       "\"build_us\": %.1f, \"map_us\": %.1f, \"unmap_us\": %.1f}", name,
	       (unsigned long long)r->mb.dma_segments,
	       (unsigned long long)r->huge_chunks,
	       per_iter_us(r->mb.build_ns, iterations),
	       per_iter_us(r->mb.map_ns, iterations),
	       per_iter_us(r->mb.unmap_ns, iterations));
}

/*
 * The cost of building and DMA-mapping a buffer's scatterlist, 4 KiB pages
 * against 2 MiB chunks, per size; the ratio is pages' over huge's.
 */
static int cmd_huge_bench(int fd, const struct options *o)
{
	uint32_t iters = o->iterations;
	char *list = strdup(o->sizes), *tok, *save;
	int failed = 0, first = 1;

	if (!list)
		return fail("huge-bench", -ENOMEM);
	if (o->js)
		fprintf(o->js, "{\"benchmark\": \"hugepage_map\", \"iterations\": %u, "
			"\"results\": [", iters);
	if (o->tbl)
		fprintf(o->tbl, "%10s %10s %10s %8s %14s %14s %8s\n", "size", "4K_segs",
		       "2M_segs", "chunks", "4K_build+map", "2M_build+map",
		       "ratio");
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct map_result pages, huge;
		uint64_t size = dmaplane_parse_size(tok);
		double tp, th;

		map_one(fd, size, 0, iters, &pages);
		map_one(fd, size, DMAPLANE_BUF_HUGE, iters, &huge);
		tp = per_iter_us(pages.mb.build_ns + pages.mb.map_ns, iters);
		th = per_iter_us(huge.mb.build_ns + huge.mb.map_ns, iters);
		failed |= pages.err || huge.err;
		if (o->js) {
			fprintf(o->js, "%s{\"size\": %llu, ", first ? "" : ", ",
				(unsigned long long)size);
			print_map_json(o->js, "pages_4k", &pages, iters);
			fprintf(o->js, ", ");
			print_map_json(o->js, "huge_2m", &huge, iters);
			fprintf(o->js, ", \"ratio\": %.2f}",
				pages.err || huge.err || !th ? 0.0 : tp / th);
		}
		if (o->tbl && (pages.err || huge.err)) {
			fprintf(o->tbl, "%9lluM  %s\n", (unsigned long long)(size >> 20),
			       strerror(-(pages.err ? pages.err : huge.err)));
		} else if (o->tbl) {
			fprintf(o->tbl, "%9lluM %10llu %10llu %8llu %12.1fus %12.1fus %7.1fx\n",
			       (unsigned long long)(size >> 20),
			       (unsigned long long)pages.mb.dma_segments,
			       (unsigned long long)huge.mb.dma_segments,
			       (unsigned long long)huge.huge_chunks, tp, th,
			       th ? tp / th : 0.0);
		}
		first = 0;
	}
	if (o->js)
		fprintf(o->js, "]}\n");
	free(list);
	return failed;
}

int parse_list(const char *s, bool size, uint64_t max, uint64_t *out, int n)
{
	char *list = strdup(s), *tok, *save, *end;
	int i = 0;

	if (!list)
		return -ENOMEM;
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v = size ? dmaplane_parse_size(tok) : strtoull(tok, &end, 0);

		if (i == n || !v || v > max || (!size && *end)) {
			i = -EINVAL;
			break;
		}
		out[i++] = v;
	}
	free(list);
	return i ? i : -EINVAL;
}

static int parse_u32(const char *arg, const char *name, uint32_t min,
		     uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 0);

	if (*end || end == arg || v < min || v > UINT32_MAX) {
		fprintf(stderr, "dmaplanectl: bad %s '%s'\n", name, arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* "FIGURE@SIZE", e.g. "31.5@1M": a reference figure and its message size. */
static int parse_reference(const char *arg, double *fig, uint64_t *size)
{
	const char *at = strchr(arg, '@');
	char *end;

	*fig = strtod(arg, &end);
	if (!at || end != at || *fig < 0)
		return -1;
	*size = dmaplane_parse_size(at + 1);
	return *size ? 0 : -1;
}

/* Options that set one field of struct options. */
enum opt_kind {
	OPT_FLAG,	/* int, set to 1 */
	OPT_U32,	/* uint32_t, 1 .. UINT32_MAX */
	OPT_U32_ZERO,	/* uint32_t, 0 .. UINT32_MAX */
	OPT_SIZE,	/* uint64_t, dmaplane_parse_size() */
	OPT_STR,	/* const char * */
};

#define OPT(_name, _kind, _field) \
	{ _name, _kind, offsetof(struct options, _field) }

static const struct opt_spec {
	const char *name;
	enum opt_kind kind;
	size_t off;
} opt_specs[] = {
	OPT("--json", OPT_FLAG, json),
	OPT("--serve", OPT_FLAG, serve),
	OPT("--sweep", OPT_FLAG, sweep),
	OPT("--no-credits", OPT_FLAG, no_credits),
	OPT("--size", OPT_SIZE, size),
	OPT("--sizes", OPT_STR, sizes),
	OPT("--depths", OPT_STR, depths),
	OPT("--qds", OPT_STR, qds),
	OPT("--json-out", OPT_STR, json_out),
	OPT("--addr", OPT_STR, addr),
	OPT("--passes", OPT_U32, passes),
	OPT("--time-ms", OPT_U32, time_ms),
	OPT("--duration", OPT_U32, duration_s),
	OPT("--qd", OPT_U32, qd),
	OPT("--recv-depth", OPT_U32, recv_depth),
	OPT("--slow-us", OPT_U32, slow_us),
	OPT("--connections", OPT_U32, connections),
	OPT("--window", OPT_U32, window),
	OPT("--interval-ms", OPT_U32, interval_ms),
	OPT("--count", OPT_U32_ZERO, count),
	OPT("--provider", OPT_STR, provider),
	OPT("--device", OPT_U32_ZERO, device),
};

static const struct opt_spec *opt_find(const char *name)
{
	for (size_t i = 0; i < sizeof(opt_specs) / sizeof(opt_specs[0]); i++)
		if (!strcmp(opt_specs[i].name, name))
			return &opt_specs[i];
	return NULL;
}

static int opt_set(const struct opt_spec *spec, const char *val,
		   struct options *o)
{
	void *field = (char *)o + spec->off;

	switch (spec->kind) {
	case OPT_FLAG:
		*(int *)field = 1;
		return 0;
	case OPT_U32:
	case OPT_U32_ZERO:
		return parse_u32(val, spec->name, spec->kind == OPT_U32,
				 field);
	case OPT_SIZE:
		*(uint64_t *)field = dmaplane_parse_size(val);
		return *(uint64_t *)field ? 0 : -1;
	case OPT_STR:
		*(const char **)field = val;
		return 0;
	}
	return -1;
}

/* Options with a value that is not just one field. */
static int opt_special(const char *opt, const char *val, struct options *o)
{
	uint32_t v;

	if (!strcmp(opt, "--iterations")) {
		if (parse_u32(val, opt, 1, &v))
			return -1;
		o->iterations = v;
	} else if (!strcmp(opt, "--ref-bw")) {
		return parse_reference(val, &o->ref_bw, &o->ref_bw_size);
	} else if (!strcmp(opt, "--ref-lat")) {
		return parse_reference(val, &o->ref_lat, &o->ref_lat_size);
	} else if (!strcmp(opt, "--port")) {
		return parse_u32(val, opt, 1, &o->port) || o->port > 65535 ?
		       -1 : 0;
	} else if (!strcmp(opt, "--op")) {
		for (o->op = 0; o->op < DMAPLANE_BENCH_NR_OPS; o->op++)
			if (!strcmp(val, bench_ops[o->op]))
				return 0;
		return -1;
	} else {
		return -1;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 2; i < argc; i++) {
		const struct opt_spec *spec = opt_find(argv[i]);
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (spec && spec->kind == OPT_FLAG) {
			opt_set(spec, NULL, o);
			continue;
		}
		if (!val)
			return -1;
		i++;
		if (spec ? opt_set(spec, val, o) : opt_special(argv[i - 1], val, o))
			return -1;
	}
	return 0;
}

/* stream's defaults: 1 MiB messages, 16 in flight, 10 s (3 s a sweep cell). */
static void stream_defaults(struct options *o)
{
	if (!o->size)
		o->size = 1ULL << 20;
	if (!o->qd)
		o->qd = 16;
	if (!o->qds)
		o->qds = "1,4,16,64";
	if (!o->sizes)
		o->sizes = "4K,64K,1M";
	if (!o->duration_s)
		o->duration_s = o->sweep ? 3 : 10;
	if (!o->recv_depth)
		o->recv_depth = 64;
	if (!o->connections)
		o->connections = 1;
}

/* Commands that read debugfs only: no device file, module may be absent. */
static int run_debugfs_cmd(const char *cmd, struct options *o, int *ret)
{
	if (!strcmp(cmd, "stats")) {
		*ret = cmd_stats(o);
	} else if (!strcmp(cmd, "top")) {
		if (!o->interval_ms)
			o->interval_ms = 1000;
		*ret = cmd_top(o);
	} else {
		return 0;
	}
	return 1;
}

/* Commands that work on /dev/dmaplane. */
static int run_device_cmd(const char *cmd, struct options *o)
{
	int fd = dmaplane_open(), ret;

	if (fd < 0)
		return fail(DMAPLANE_DEV_PATH, fd);
	if (!strcmp(cmd, "info")) {
		ret = cmd_info(fd, o->json);
	} else if (!strcmp(cmd, "topo")) {
		ret = cmd_topo(fd, o->json);
	} else if (!strcmp(cmd, "buffers")) {
		ret = cmd_buffers(o->json);
	} else if (!strcmp(cmd, "rdma")) {
		ret = cmd_rdma(fd, o->json);
	} else if (!strcmp(cmd, "rdma-listen")) {
		ret = cmd_rdma_listen(fd, o);
	} else if (!strcmp(cmd, "rdma-connect")) {
		ret = cmd_rdma_connect(fd, o);
	} else if (!strcmp(cmd, "echo-bench")) {
		if (!o->iterations)
			o->iterations = 100000;
		ret = cmd_echo_bench(fd, o);
	} else if (!strcmp(cmd, "numa-bench")) {
		if (!o->size)
			o->size = 64ULL << 20;
		ret = cmd_numa_bench(fd, o);
	} else if (!strcmp(cmd, "huge-bench")) {
		if (!o->iterations)
			o->iterations = 5;
		if (!o->sizes)
			o->sizes = "16M,64M,256M,1G";
		ret = cmd_huge_bench(fd, o);
	} else if (!strcmp(cmd, "rdma-bench")) {
		if (!o->iterations)
			o->iterations = 1000;
		if (!o->sizes)
			o->sizes = "4K,64K,1M,4M";
		if (!o->depths)
			o->depths = "1,8,64";
		ret = cmd_rdma_bench(fd, o);
	} else if (!strcmp(cmd, "submit-bench")) {
		if (!o->iterations)
			o->iterations = 64000;
		ret = cmd_submit_bench(fd, o);
	} else if (!strcmp(cmd, "gpu-bench")) {
		if (!o->iterations)
			o->iterations = 5;
		if (!o->size)
			o->size = 16ULL << 20;
		ret = cmd_gpu_bench(fd, o);
	} else if (!strcmp(cmd, "stream")) {
		stream_defaults(o);
		ret = cmd_stream(fd, o);
	} else {
		usage(stderr);
		ret = 2;
	}
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o = {
		.iterations = 0,
		.op = DMAPLANE_BENCH_COPY,
		.passes = 5,
		.time_ms = 2000,
	};
	const char *cmd;
	int ret;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (parse_options(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}

	o.tbl = o.json ? NULL : stdout;
	o.js = o.json ? stdout : NULL;
	if (o.json_out && !o.json) {
		o.js = fopen(o.json_out, "w");
		if (!o.js)
			return fail(o.json_out, -errno);
	}

	if (!run_debugfs_cmd(cmd, &o, &ret))
		ret = run_device_cmd(cmd, &o);
	if (o.js && o.js != stdout && fclose(o.js))
		ret = fail(o.json_out, -errno);
	return ret;
}
