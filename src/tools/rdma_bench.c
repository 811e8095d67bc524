// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl rdma-bench: RDMA WRITE through dmaplane endpoints.
 *
 *   rdma-bench --addr IP                 loopback: both ends in this process
 *   rdma-bench --serve --addr IP --port N   serve a window to one peer
 *   rdma-bench --addr PEER --port N      write into a serving peer's window
 *
 * Throughput: for each message size and queue depth, WRITEs are kept
 * in flight for --time-ms and the bytes completed per second are
 * reported. Latency: at depth 1, the time from POST to the completion
 * (the write and its acknowledgement: one round trip), as p50/p99/p99.9.
 *
 * The serving side announces its window with one SEND: struct
 * window_announce, a key and a length, never an address. The writer
 * ends the run with a SEND of its own.
 *
 * dmaplanectl submit-bench: what one operation costs to submit through
 * the batch channel (NOOPs posted and reaped in batches of 64, or one by
 * one) against one plain ioctl (ECHO).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmaplanectl.h"
#include "libdmaplane.h"

#define WINDOW_BYTES	(8u << 20)
#define CTRL_BYTES	4096u
#define WAIT_MS		30000u
#define PEER_WAIT_MS	300000u
#define ANNOUNCE_MAGIC	0x44505742u	/* "DPWB" */
#define BATCH		64u

struct window_announce {
	uint32_t magic;
	uint32_t rkey;
	uint64_t length;
};

/* One side's memory: a HUGE data buffer and a small control buffer. */
struct side {
	uint32_t ep;
	uint32_t data, data_mr;
	uint32_t ctrl, ctrl_mr;
	unsigned char *ctrl_p;
};

struct bench {
	int fd;
	struct side local;
	struct side server;	/* loopback: the other end, in this process */
	bool loopback;
	uint32_t rkey;		/* the window written into */
	uint64_t window;
	char device[64];
};

/* @s's buffers and MRs; *@rkey gets the data window's (0 without remote access). */
static int side_buffers(struct bench *b, struct side *s, uint32_t data_access,
			uint32_t *rkey)
{
	struct dmaplane_buffer_create req = {
		.size = WINDOW_BYTES, .numa_node = DMAPLANE_NUMA_ANY,
		.flags = DMAPLANE_BUF_HUGE,
	};
	int ret = dmaplane_buffer_create_req(b->fd, &req);

	if (ret)
		return ret;
	s->data = req.handle;
	req = (struct dmaplane_buffer_create){
		.size = CTRL_BYTES, .numa_node = DMAPLANE_NUMA_ANY,
	};
	ret = dmaplane_buffer_create_req(b->fd, &req);
	if (ret)
		return ret;
	s->ctrl = req.handle;
	s->ctrl_p = mmap(NULL, CTRL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			 b->fd, req.mmap_offset);
	if (s->ctrl_p == MAP_FAILED)
		return -errno;
	ret = dmaplane_mr_reg(b->fd, s->ep, s->data, 0, 0, data_access,
			      &s->data_mr, rkey);
	if (ret)
		return ret;
	return dmaplane_mr_reg(b->fd, s->ep, s->ctrl, 0, 0,
			       DMAPLANE_MR_LOCAL_WRITE, &s->ctrl_mr, NULL);
}

/* Post one operation and wait for its completion; its status. */
static int run_one(struct bench *b, uint32_t ep, const struct dmaplane_op *op)
{
	struct dmaplane_completion c;
	uint32_t got;
	int ret = dmaplane_post(b->fd, ep, op, 1, NULL);

	if (!ret)
		ret = dmaplane_reap(b->fd, ep, &c, 1, 1, WAIT_MS, &got);
	return ret ? ret : c.status;
}

static int ctrl_send(struct bench *b, struct side *s, uint32_t len)
{
	struct dmaplane_op op = {
		.opcode = DMAPLANE_OP_SEND, .mr = s->ctrl_mr, .length = len,
	};

	return run_one(b, s->ep, &op);
}

static int ctrl_recv_post(struct bench *b, struct side *s)
{
	struct dmaplane_op op = {
		.opcode = DMAPLANE_OP_RECV, .mr = s->ctrl_mr,
		.length = CTRL_BYTES,
	};

	return dmaplane_post(b->fd, s->ep, &op, 1, NULL);
}

/* Wait (up to PEER_WAIT_MS) for the RECV posted on @s. */
static int ctrl_recv_wait(struct bench *b, struct side *s, uint32_t *bytes)
{
	struct dmaplane_completion c;
	uint32_t got = 0, waited = 0;
	int ret;

	do {
		ret = dmaplane_reap(b->fd, s->ep, &c, 1, 1, WAIT_MS, &got);
		waited += WAIT_MS;
	} while (ret == -ETIMEDOUT && waited < PEER_WAIT_MS);
	if (ret)
		return ret;
	*bytes = c.bytes;
	return c.status;
}

static void device_name(struct bench *b, uint32_t ep)
{
	struct dmaplane_rdma_device dev;

	snprintf(b->device, sizeof(b->device), "%s",
		 dmaplane_ep_device(b->fd, ep, &dev) ? "?" : dev.name);
}

/* Connect to a serving peer (retrying until it listens) and learn its window. */
static int bench_connect(struct bench *b, const struct options *o)
{
	struct window_announce w;
	struct dmaplane_addr a;
	uint32_t bytes;
	int ret;

	if (dmaplane_addr_parse(o->addr, o->port, &a))
		return -EINVAL;
	ret = dmaplane_ep_dial(b->fd, NULL, &a, PEER_WAIT_MS, &b->local.ep);
	if (ret)
		return ret;
	ret = side_buffers(b, &b->local, 0, NULL);
	if (!ret)
		ret = ctrl_recv_post(b, &b->local);
	if (!ret)
		ret = ctrl_recv_wait(b, &b->local, &bytes);
	if (ret)
		return ret;
	memcpy(&w, b->local.ctrl_p, sizeof(w));
	if (bytes != sizeof(w) || w.magic != ANNOUNCE_MAGIC || !w.rkey ||
	    w.length < CTRL_BYTES || w.length > (1ull << 40)) {
		fprintf(stderr, "dmaplanectl: bad window announcement\n");
		return -EPROTO;
	}
	b->rkey = w.rkey;
	b->window = w.length;
	device_name(b, b->local.ep);
	return 0;
}

/* Serve: accept one writer, announce a window, wait for its last SEND. */
static int bench_serve(struct bench *b, const struct options *o)
{
	struct window_announce w = { .magic = ANNOUNCE_MAGIC };
	uint32_t lh, bytes;
	struct dmaplane_addr a;
	int ret;

	if (dmaplane_addr_parse(o->addr, o->port, &a))
		return -EINVAL;
	ret = dmaplane_ep_create(b->fd, NULL, &lh);
	if (!ret)
		ret = dmaplane_ep_listen(b->fd, lh, 1, &a);
	if (ret)
		return ret;
	fprintf(stderr, "rdma-bench: serving on %s port %u\n", o->addr, a.port);
	ret = dmaplane_ep_accept_wait(b->fd, lh, PEER_WAIT_MS, &b->local.ep);
	if (ret)
		return ret;
	ret = side_buffers(b, &b->local, DMAPLANE_MR_LOCAL_WRITE |
			   DMAPLANE_MR_REMOTE_WRITE, &b->rkey);
	/* Ready for the writer's last message before it can send it. */
	if (!ret)
		ret = ctrl_recv_post(b, &b->local);
	if (ret)
		return ret;
	w.rkey = b->rkey;
	w.length = WINDOW_BYTES;
	memcpy(b->local.ctrl_p, &w, sizeof(w));
	ret = ctrl_send(b, &b->local, sizeof(w));
	if (!ret)
		ret = ctrl_recv_wait(b, &b->local, &bytes);
	if (!ret)
		fprintf(stderr, "rdma-bench: the writer finished\n");
	return ret;
}

/* Both ends here: the server side's window is written into. */
static int bench_loopback(struct bench *b, const struct options *o)
{
	int ret = dmaplane_ep_loopback(b->fd, o->addr, NULL, &b->local.ep,
				       &b->server.ep);

	if (!ret)
		ret = side_buffers(b, &b->local, 0, NULL);
	if (!ret)
		ret = side_buffers(b, &b->server, DMAPLANE_MR_LOCAL_WRITE |
				   DMAPLANE_MR_REMOTE_WRITE, &b->rkey);
	b->window = WINDOW_BYTES;
	device_name(b, b->local.ep);
	return ret;
}

/* The k-th WRITE of @size: successive slots of the source and the window. */
static struct dmaplane_op write_op(const struct bench *b, uint64_t size,
				   uint64_t k)
{
	uint64_t slots = b->window / size, src_slots = WINDOW_BYTES / size;

	return (struct dmaplane_op){
		.cookie = k, .opcode = DMAPLANE_OP_WRITE, .mr = b->local.data_mr,
		.offset = (k % src_slots) * size, .length = size,
		.remote_offset = (k % slots) * size, .rkey = b->rkey,
	};
}

struct tput {
	uint64_t ops;
	double seconds;
	double mbps;
};

/* WRITEs of @size kept @depth deep for @ms; every completion must succeed. */
static int run_throughput(struct bench *b, uint64_t size, uint32_t depth,
			  uint32_t ms, struct tput *t)
{
	static struct dmaplane_completion c[DMAPLANE_POST_MAX];
	struct dmaplane_op ops[BATCH];
	uint64_t next = 0, done = 0;
	uint32_t inflight = 0;
	double start = now_ns(), end = start;
	bool stop = false;

	for (;;) {
		uint32_t n = 0, posted = 0, got = 0;
		int ret;

		stop = stop || now_ns() - start >= ms * 1e6;
		if (stop && !inflight)
			break;
		while (!stop && inflight + n < depth && n < BATCH) {
			ops[n] = write_op(b, size, next + n);
			n++;
		}
		if (n) {
			ret = dmaplane_post(b->fd, b->local.ep, ops, n, &posted);
			if (ret && ret != -EAGAIN)
				return ret;
			next += posted;
			inflight += posted;
		}
		ret = dmaplane_reap(b->fd, b->local.ep, c, DMAPLANE_POST_MAX, 1,
				    WAIT_MS, &got);
		if (ret)
			return ret;
		for (uint32_t i = 0; i < got; i++)
			if (c[i].status)
				return c[i].status;
		done += got;
		inflight -= got;
		end = now_ns();
	}
	t->ops = done;
	t->seconds = (end - start) / 1e9;
	t->mbps = t->seconds > 0 ? done * size / t->seconds / 1e6 : 0;
	return 0;
}

struct lat {
	uint32_t samples;
	double min, p50, p99, p999;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample at or above fraction @p of them. */
static double percentile(const double *v, uint32_t n, double p)
{
	uint32_t rank = (uint32_t)(p * n + 0.999999);

	return v[rank ? rank - 1 : 0];
}

/* Depth-1 WRITEs of @size: up to @max samples or @ms of them. */
static int run_latency(struct bench *b, uint64_t size, uint32_t max,
		       uint32_t ms, struct lat *l)
{
	double *v = calloc(max, sizeof(*v)), start = now_ns();
	uint32_t n = 0;
	int ret = v ? 0 : -ENOMEM;

	while (!ret && n < max && (n < 3 || now_ns() - start < ms * 1e6)) {
		struct dmaplane_op op = write_op(b, size, n);
		double t0 = now_ns();

		ret = run_one(b, b->local.ep, &op);
		v[n++] = (now_ns() - t0) / 1e3;
	}
	if (!ret) {
		qsort(v, n, sizeof(*v), cmp_double);
		*l = (struct lat){
			.samples = n, .min = v[0],
			.p50 = percentile(v, n, 0.50),
			.p99 = percentile(v, n, 0.99),
			.p999 = percentile(v, n, 0.999),
		};
	}
	free(v);
	return ret;
}

static int run_matrix(struct bench *b, const struct options *o)
{
	uint64_t sizes[16], depths[16];
	int ns = parse_list(o->sizes, true, WINDOW_BYTES, sizes, 16);
	int nd = parse_list(o->depths, false, 4096, depths, 16);
	struct tput t[16][16];
	struct lat l[16];
	int ret = 0;

	if (ns <= 0 || nd <= 0)
		return -EINVAL;
	for (int i = 0; i < ns && !ret; i++)
		for (int j = 0; j < nd && !ret; j++)
			ret = run_throughput(b, sizes[i], depths[j], o->time_ms,
					     &t[i][j]);
	for (int i = 0; i < ns && !ret; i++)
		ret = run_latency(b, sizes[i], o->iterations, o->time_ms, &l[i]);
	if (ret)
		return ret;

	if (o->js) {
		fprintf(o->js, "{\"benchmark\": \"rdma_write\", \"mode\": \"%s\", "
			"\"device\": \"%s\", \"time_ms\": %u, \"throughput\": [",
			b->loopback ? "loopback" : "pair", b->device, o->time_ms);
		for (int i = 0; i < ns; i++)
			for (int j = 0; j < nd; j++)
				fprintf(o->js, "%s{\"msg_bytes\": %llu, \"depth\": %llu, "
					"\"ops\": %llu, \"seconds\": %.3f, \"MBps\": %.1f}",
					i || j ? ", " : "",
					(unsigned long long)sizes[i],
					(unsigned long long)depths[j],
					(unsigned long long)t[i][j].ops,
					t[i][j].seconds, t[i][j].mbps);
		fprintf(o->js, "], \"latency\": [");
		for (int i = 0; i < ns; i++)
			fprintf(o->js, "%s{\"msg_bytes\": %llu, \"samples\": %u, "
				"\"min_us\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
				"\"p999_us\": %.1f}", i ? ", " : "",
				(unsigned long long)sizes[i], l[i].samples,
				l[i].min, l[i].p50, l[i].p99, l[i].p999);
		fprintf(o->js, "]");
	}
	if (o->tbl) {
		fprintf(o->tbl, "rdma-bench %s on %s: WRITE throughput, MB/s (%u ms per cell)\n%10s",
			b->loopback ? "loopback" : "pair", b->device,
			o->time_ms, "size");
		for (int j = 0; j < nd; j++)
			fprintf(o->tbl, "   qd=%-4llu", (unsigned long long)depths[j]);
		fprintf(o->tbl, "\n");
		for (int i = 0; i < ns; i++) {
			fprintf(o->tbl, "%9lluK", (unsigned long long)sizes[i] >> 10);
			for (int j = 0; j < nd; j++)
				fprintf(o->tbl, " %9.1f", t[i][j].mbps);
			fprintf(o->tbl, "\n");
		}
		fprintf(o->tbl, "WRITE latency, POST to completion at qd=1 (one round trip), us\n"
			"%10s %8s %9s %9s %9s %9s\n", "size", "samples", "min",
			"p50", "p99", "p99.9");
		for (int i = 0; i < ns; i++)
			fprintf(o->tbl, "%9lluK %8u %9.1f %9.1f %9.1f %9.1f\n",
				(unsigned long long)sizes[i] >> 10, l[i].samples,
				l[i].min, l[i].p50, l[i].p99, l[i].p999);
	}

	/* Against perftest on the same link, when the caller measured it. */
	double best = 0, p50 = 0;

	for (int i = 0; i < ns; i++) {
		for (int j = 0; j < nd; j++)
			if (sizes[i] == o->ref_bw_size && t[i][j].mbps > best)
				best = t[i][j].mbps;
		if (sizes[i] == o->ref_lat_size)
			p50 = l[i].p50;
	}
	if (o->js) {
		if (o->ref_bw > 0 && best > 0)
			fprintf(o->js, ", \"vs_ib_write_bw\": {\"msg_bytes\": %llu, "
				"\"ib_write_bw_MBps\": %.1f, \"dmaplane_MBps\": %.1f, "
				"\"ratio\": %.3f}", (unsigned long long)o->ref_bw_size,
				o->ref_bw, best, best / o->ref_bw);
		if (o->ref_lat > 0 && p50 > 0)
			fprintf(o->js, ", \"vs_ib_write_lat\": {\"msg_bytes\": %llu, "
				"\"ib_write_lat_us\": %.2f, \"dmaplane_p50_us\": %.1f, "
				"\"ratio_to_round_trip\": %.3f}",
				(unsigned long long)o->ref_lat_size, o->ref_lat, p50,
				p50 / (2 * o->ref_lat));
		fprintf(o->js, "}\n");
	}
	if (o->tbl && o->ref_bw > 0 && best > 0)
		fprintf(o->tbl, "vs ib_write_bw at %lluK: %.1f / %.1f MB/s = %.3f\n",
			(unsigned long long)o->ref_bw_size >> 10, best, o->ref_bw,
			best / o->ref_bw);
	if (o->tbl && o->ref_lat > 0 && p50 > 0)
		fprintf(o->tbl, "vs ib_write_lat at %lluK (half a round trip, so x2): "
			"%.1f / %.1f us = %.3f\n",
			(unsigned long long)o->ref_lat_size >> 10, p50,
			2 * o->ref_lat, p50 / (2 * o->ref_lat));
	return 0;
}

int cmd_rdma_bench(int fd, const struct options *o)
{
	struct bench b = { .fd = fd, .loopback = !o->port && !o->serve };
	int ret;

	if (!o->addr)
		return fail("rdma-bench: --addr", -EINVAL);
	if (o->serve)
		ret = bench_serve(&b, o);
	else if (b.loopback)
		ret = bench_loopback(&b, o);
	else
		ret = bench_connect(&b, o);
	if (ret)
		return fail("rdma-bench: setting up", ret);
	if (o->serve)
		return 0;
	ret = run_matrix(&b, o);
	if (ret)
		return fail("rdma-bench", ret);
	/* Tell a serving peer the run is over. */
	if (!b.loopback) {
		ret = ctrl_send(&b, &b.local, 8);
		if (ret)
			return fail("rdma-bench: final SEND", ret);
	}
	return 0;
}

/* ns per operation for @n NOOPs submitted @batch at a time and reaped. */
static int noop_cost(int fd, uint32_t ep, long n, uint32_t batch, double *ns)
{
	struct dmaplane_op ops[BATCH] = { 0 };
	struct dmaplane_completion c[BATCH];
	double start = now_ns();
	uint32_t got;
	int ret = 0;

	for (long done = 0; done < n && !ret; done += batch) {
		ret = dmaplane_post(fd, ep, ops, batch, NULL);
		if (!ret)
			ret = dmaplane_reap(fd, ep, c, batch, batch, WAIT_MS,
					    &got);
	}
	*ns = (now_ns() - start) / n;
	return ret;
}

int cmd_submit_bench(int fd, const struct options *o)
{
	struct dmaplane_ep_create p = { .send_depth = BATCH };
	long n = o->iterations - o->iterations % BATCH;
	double echo, single, batched, start;
	uint64_t out;
	uint32_t ep;
	int ret;

	if (n < BATCH)
		return fail("submit-bench: --iterations", -EINVAL);
	ret = dmaplane_ep_create(fd, &p, &ep);
	if (ret)
		return fail("ENDPOINT_CREATE", ret);
	start = now_ns();
	for (long i = 0; i < n && !ret; i++)
		ret = dmaplane_echo(fd, i, 0, &out);
	echo = (now_ns() - start) / n;
	if (!ret)
		ret = noop_cost(fd, ep, n, 1, &single);
	if (!ret)
		ret = noop_cost(fd, ep, n, BATCH, &batched);
	dmaplane_ep_destroy(fd, ep);
	if (ret)
		return fail("submit-bench", ret);
	if (o->js)
		fprintf(o->js, "{\"benchmark\": \"submit\", \"operations\": %ld, "
			"\"echo_ioctl_ns\": %.1f, \"noop_single_ns\": %.1f, "
			"\"noop_batch%u_ns\": %.1f, \"batch_vs_ioctl\": %.3f}\n",
			n, echo, single, BATCH, batched, batched / echo);
	if (o->tbl)
		fprintf(o->tbl, "submission cost per operation (%ld operations)\n"
			"%-34s %10s %10s\n%-34s %10.1f %10.2f\n%-34s %10.1f %10.2f\n"
			"%-34s %10.1f %10.2f\n", n, "path", "ns/op", "vs ioctl",
			"ECHO ioctl (one call per op)", echo, 1.0,
			"NOOP, POST+REAP one at a time", single, single / echo,
			"NOOP, POST+REAP in batches of 64", batched,
			batched / echo);
	return 0;
}
