/* SPDX-License-Identifier: GPL-2.0 */
/* dmaplanectl: what its command files share. */
#ifndef DMAPLANECTL_H
#define DMAPLANECTL_H

#include <stdbool.h>
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
	/* stream */
	int sweep;		/* every (qd, size) cell of --qds x --sizes */
	int no_credits;		/* DMAPLANE_EP_NO_CREDITS */
	uint32_t duration_s;	/* of the run, or of each sweep cell */
	uint32_t qd;		/* SENDs kept in flight */
	const char *qds;
	uint32_t recv_depth;	/* receiver: RECVs kept posted */
	uint32_t slow_us;	/* receiver: sleep between reaps */
	uint32_t connections;	/* receiver: serve this many, one by one */
	uint32_t window;	/* credit_window, 0 = the endpoint's default */
	/* gpu-bench */
	const char *provider;	/* sim | nvidia; NULL: the first ready */
	uint32_t device;	/* GPU_PIN's device */
	/* top */
	uint32_t interval_ms;
	uint32_t count;		/* refreshes, 0 = until interrupted */
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
/*
 * A comma list of sizes (@size: K/M/G suffixes) or counts, each 1..@max,
 * into @out (room for @n); how many, or -EINVAL / -ENOMEM.
 */
int parse_list(const char *s, bool size, uint64_t max, uint64_t *out, int n);

/* rdma_bench.c */
int cmd_rdma_bench(int fd, const struct options *o);
int cmd_submit_bench(int fd, const struct options *o);

/* gpu_bench.c */
int cmd_gpu_bench(int fd, const struct options *o);

/* stream.c */
int cmd_stream(int fd, const struct options *o);

/* stats.c: debugfs only, no device file needed */
int cmd_stats(const struct options *o);
int cmd_top(const struct options *o);

#endif /* DMAPLANECTL_H */
