// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl: inspect and exercise /dev/dmaplane from the shell.
 *
 *   dmaplanectl info [--json]
 *   dmaplanectl echo-bench [--iterations N] [--json]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libdmaplane.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: dmaplanectl info [--json]\n"
		"       dmaplanectl echo-bench [--iterations N] [--json]\n");
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "dmaplanectl: %s: %s\n", what, strerror(-ret));
	return 1;
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
		       "\"rdma_devices\": %u}\n", info.numa_nodes_online,
		       info.numa_nodes_possible, info.rdma_devices);
	else
		printf("\nnuma nodes online  %u (possible %u)\nrdma devices       %u\n",
		       info.numa_nodes_online, info.numa_nodes_possible,
		       info.rdma_devices);
	return 0;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Round trips through the dispatcher: the floor cost of any dmaplane call. */
static int cmd_echo_bench(int fd, long iterations, int json)
{
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
	if (json)
		printf("{\"benchmark\": \"echo\", \"iterations\": %ld, "
		       "\"ns_per_call\": %.1f, \"calls_per_second\": %.0f}\n",
		       iterations, elapsed / iterations,
		       iterations / (elapsed / 1e9));
	else
		printf("%-10s %12s %12s %16s\n%-10s %12ld %12.1f %16.0f\n",
		       "benchmark", "iterations", "ns/call", "calls/s", "echo",
		       iterations, elapsed / iterations,
		       iterations / (elapsed / 1e9));
	return 0;
}

int main(int argc, char **argv)
{
	long iterations = 100000;
	const char *cmd;
	int json = 0;
	int fd, ret;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
			char *end;

			iterations = strtol(argv[++i], &end, 0);
			if (*end || iterations <= 0) {
				fprintf(stderr, "dmaplanectl: bad --iterations\n");
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}

	fd = dmaplane_open();
	if (fd < 0)
		return fail(DMAPLANE_DEV_PATH, fd);
	if (!strcmp(cmd, "info")) {
		ret = cmd_info(fd, json);
	} else if (!strcmp(cmd, "echo-bench")) {
		ret = cmd_echo_bench(fd, iterations, json);
	} else {
		usage(stderr);
		ret = 2;
	}
	close(fd);
	return ret;
}
