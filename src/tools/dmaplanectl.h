/* SPDX-License-Identifier: GPL-2.0 */
/* dmaplanectl: what its command files share. */
#ifndef DMAPLANECTL_H
#define DMAPLANECTL_H

#include <stdint.h>
#include <stdio.h>

struct options {
	int json;
	long iterations;
	uint64_t size;
	uint32_t op;
	uint32_t passes;
	uint32_t time_ms;
	const char *sizes;
	const char *depths;
	const char *addr;
	uint32_t port;
	int serve;		/* rdma-bench: serve a window to a peer */
	double ref_bw;		/* rdma-bench: reference MB/s (perftest) */
	uint64_t ref_bw_size;
	double ref_lat;		/* rdma-bench: reference latency, us */
	uint64_t ref_lat_size;
	/*
	 * Where a benchmark writes: the table (stdout unless --json) and the
	 * JSON (stdout with --json, or the --json-out file), both from one run.
	 */
	FILE *tbl;
	FILE *js;
	const char *json_out;
};

/* Print "dmaplanectl: @what: strerror(-@ret)"; returns 1 (exit status). */
int fail(const char *what, int ret);
double now_ns(void);
/* A size with an optional K/M/G suffix; 0 when it is not one. */
uint64_t parse_size(const char *arg);

/* rdma_bench.c */
int cmd_rdma_bench(int fd, const struct options *o);
int cmd_submit_bench(int fd, const struct options *o);

#endif /* DMAPLANECTL_H */
