// SPDX-License-Identifier: GPL-2.0
/*
 * verbs suite: memory registration and operations on a loopback RC
 * connection (soft-RoCE in the sim): data integrity of SEND/RECV, WRITE,
 * WRITE_WITH_IMM and READ, every bad input of MR_REG, POST and REAP,
 * remote-access errors, eventfd wake-ups, and what happens to operations
 * in flight when a peer dies or a process exits.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ktap.h"
#include "libdmaplane.h"
#include "testutil.h"
#include "verbsutil.h"

#define REGION_SIZE	(1024 * 1024)
#define WAIT_MS		VERBS_WAIT_MS

static int dev_fd = -1;
static const char *guest_ip;
static uint32_t client, server;	/* the two ends of the loopback connection */
static bool connected;

/* Post one operation and reap its completion; the completion's status. */
static int run_op(uint32_t ep, const struct dmaplane_op *op,
		  struct dmaplane_completion *c)
{
	int ret = dmaplane_post(dev_fd, ep, op, 1, NULL);

	if (ret)
		return ret;
	if (reap_n(dev_fd, ep, c, 1) != 1)
		return -ETIME;
	KTAP_EXPECT(c->cookie == op->cookie && c->opcode == op->opcode,
		    "completion cookie %llu opcode %u for %llu/%u",
		    (unsigned long long)c->cookie, c->opcode,
		    (unsigned long long)op->cookie, op->opcode);
	return c->status;
}

static uint64_t counter(const char *key)
{
	return dmaplane_counter(key);
}

/* The suite's connection: both ends in this file. */
static void loopback_pair(void)
{
	struct dmaplane_info info;

	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", strerror(-dev_fd));
	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_VERBS, "no CAP_VERBS");
	guest_ip = getenv("DP_GUEST_IP");
	if (!guest_ip || count_rdma_devices() <= 0) {
		ktap_skip("no RDMA device and guest address (guests get soft-RoCE with --rxe)");
		return;
	}
	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, NULL, &client,
					     &server), 0);
	connected = !ktap_case_failed();
}

static bool need_pair(void)
{
	if (!connected)
		ktap_skip("no loopback connection (no RDMA device)");
	return connected;
}

static long mr_ioctl(struct dmaplane_mr_reg *req)
{
	return ioctl(dev_fd, DMAPLANE_IOC_MR_REG, req) ? -errno : 0;
}

/*
 * A window of 4 KiB pages longer than the device's fast-registration
 * page list: -EMSGSIZE, and nothing is left behind.
 */
static void mr_too_many_pages(void)
{
	struct dmaplane_rdma_device dev;
	uint64_t size;
	uint32_t h, buf;
	int ret;

	KTAP_EXPECT_RET(dmaplane_ep_device(dev_fd, server, &dev), 0);
	size = (uint64_t)dev.max_fast_reg_page_list_len * 4096 + 4096;
	if (ktap_case_failed() || size > 64 << 20) {
		printf("# the device registers long page lists: no -EMSGSIZE case\n");
		return;
	}
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, size, DMAPLANE_NUMA_ANY,
					       0, &buf, NULL), 0);
	/*
	 * Unless the allocator happened to hand out physically contiguous
	 * runs (then larger device pages fit, and it registers).
	 */
	ret = dmaplane_mr_reg(dev_fd, server, buf, 0, 0, 0, &h, NULL);
	KTAP_EXPECT(ret == -EMSGSIZE || ret == 0, "MR_REG of %llu bytes: %s",
		    (unsigned long long)size, ktap_errname(ret));
	if (!ret) {
		printf("# %llu bytes of pages came in runs: registered\n",
		       (unsigned long long)size);
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h), 0);
	}
	KTAP_EXPECT(counter("mrs") == 0, "%llu MRs left",
		    (unsigned long long)counter("mrs"));
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, buf), 0);
}

/* A valid MR_REG of buffer @buf on the server end, for the bad cases. */
static struct dmaplane_mr_reg mr_base(uint32_t buf)
{
	struct dmaplane_mr_reg req = {
		.endpoint = server, .buffer = buf,
		.access = DMAPLANE_MR_LOCAL_WRITE,
	};

	return req;
}

/* MR_REG of mr_base() changed by @change (statements on req): @want. */
#define MR_REG_EXPECT(want, change)					\
	do {								\
		req = mr_base(r.buf);					\
		change;							\
		KTAP_EXPECT_RET(mr_ioctl(&req), want);			\
	} while (0)

static void mr_reg_rejects_bad_input(void)
{
	struct dmaplane_mr_reg req;
	struct region r;
	uint32_t idle, h;

	if (!need_pair() || !region_make(dev_fd, &r, REGION_SIZE))
		return;
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &idle), 0);
	MR_REG_EXPECT(-EINVAL, req.access = 1U << 7);
	MR_REG_EXPECT(-EINVAL, req.access = DMAPLANE_MR_REMOTE_WRITE);
	MR_REG_EXPECT(-EINVAL, req.reserved = 1);
	MR_REG_EXPECT(-EINVAL, req.offset = 100);
	MR_REG_EXPECT(-EINVAL, req.offset = REGION_SIZE);
	MR_REG_EXPECT(-EINVAL, req.offset = 4096; req.length = REGION_SIZE);
	MR_REG_EXPECT(-EINVAL, req.length = REGION_SIZE + 1);
	MR_REG_EXPECT(-EINVAL, req.offset = 4096; req.length = UINT64_MAX);
	MR_REG_EXPECT(-EINVAL, req.offset = UINT64_MAX & ~4095ULL);
	MR_REG_EXPECT(-ENOENT, req.endpoint = 0xfffff);
	MR_REG_EXPECT(-ENOENT, req.buffer = 0xfffff);
	/* Handles are typed: a buffer is not an endpoint. */
	MR_REG_EXPECT(-ENOENT, req.endpoint = r.buf);
	MR_REG_EXPECT(-ENOTCONN, req.endpoint = idle);
	KTAP_EXPECT(counter("mrs") == 0, "%llu MRs after failures",
		    (unsigned long long)counter("mrs"));
	/* The last byte alone is a valid window. */
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, r.buf,
					REGION_SIZE - 4096, 1, 0, &h, NULL), 0);
	{
		struct dmaplane_handle_op op = { .handle = h, .flags = 1 };

		KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_MR_DEREG, &op) ?
				-errno : 0, -EINVAL);
	}
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h), 0);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, r.buf), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, idle), 0);
	region_free(dev_fd, &r);
	mr_too_many_pages();
}

/* rkeys only with remote access, a fresh one per registration; the buffer stays. */
static void mr_keys_and_lifetime(void)
{
	struct dmaplane_buffer_info info;
	uint32_t h1, h2, h3, k1, k2, k3;
	uint64_t no_inv = counter("mr_dereg_no_inv");
	struct region r;

	if (!need_pair() || !region_make(dev_fd, &r, REGION_SIZE))
		return;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, r.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE, &h1, &k1), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, r.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, &h2, &k2), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, r.buf, 8192, 4096,
					DMAPLANE_MR_REMOTE_READ, &h3, &k3), 0);
	KTAP_EXPECT(k1 == 0 && k2 != 0 && k3 != 0 && k2 != k3,
		    "rkeys %#x %#x %#x", k1, k2, k3);
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, r.buf, &info, NULL, 0), 0);
	KTAP_EXPECT(info.mrs == 3, "buffer reports %u MRs", info.mrs);
	KTAP_EXPECT(counter("mrs") == 3, "debugfs mrs %llu",
		    (unsigned long long)counter("mrs"));
	/* Not while a NIC may reach it, nor the endpoint it is registered on. */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, r.buf), -EBUSY);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, server), -EBUSY);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h1), 0);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h2), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, r.buf), -EBUSY);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, h3), 0);
	KTAP_EXPECT(counter("mrs") == 0, "debugfs mrs %llu",
		    (unsigned long long)counter("mrs"));
	KTAP_EXPECT(counter("mr_dereg_no_inv") == no_inv,
		    "%llu MRs went without LOCAL_INV on a live QP",
		    (unsigned long long)(counter("mr_dereg_no_inv") - no_inv));
	region_free(dev_fd, &r);
}

/* A registered pair: client source @src/@smr, server target @dst/@dmr. */
struct pair {
	struct region src, dst;
	uint32_t smr, dmr, rkey;
};

static bool pair_make(struct pair *p, uint32_t src_access, uint32_t dst_access)
{
	memset(p, 0, sizeof(*p));
	if (!region_make(dev_fd, &p->src, REGION_SIZE) ||
	    !region_make(dev_fd, &p->dst, REGION_SIZE))
		return false;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, client, p->src.buf, 0, 0,
					src_access, &p->smr, NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, p->dst.buf, 0, 0,
					dst_access, &p->dmr, &p->rkey), 0);
	return !ktap_case_failed();
}

static void pair_free(struct pair *p)
{
	if (p->smr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p->smr), 0);
	if (p->dmr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p->dmr), 0);
	region_free(dev_fd, &p->src);
	region_free(dev_fd, &p->dst);
}

/* (offset, length) cases: page-crossing, unaligned, tiny, the whole window. */
static const struct {
	uint64_t off, len;
} spans[] = {
	{ 0, 1 }, { 0, 4096 }, { 123, 4000 }, { 4095, 2 }, { 65536 + 7, 200000 },
	{ 0, REGION_SIZE },
};

static void write_integrity(void)
{
	struct dmaplane_completion c;
	struct pair p;

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_LOCAL_WRITE |
				       DMAPLANE_MR_REMOTE_WRITE))
		goto out;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		/* Data at src offset off lands at dst offset REGION - off - len. */
		uint64_t off = spans[i].off, len = spans[i].len;
		uint64_t roff = REGION_SIZE - off - len;
		struct dmaplane_op op = {
			.cookie = 1000 + i, .opcode = DMAPLANE_OP_WRITE,
			.mr = p.smr, .offset = off, .length = len,
			.remote_offset = roff, .rkey = p.rkey,
		};

		fill_pattern(p.src.p, REGION_SIZE, i + 1);
		memset(p.dst.p, 0, REGION_SIZE);
		KTAP_EXPECT_RET(run_op(client, &op, &c), 0);
		KTAP_EXPECT(c.bytes == len, "bytes %u for %llu", c.bytes,
			    (unsigned long long)len);
		KTAP_EXPECT(!memcmp(p.dst.p + roff, p.src.p + off, len),
			    "span %zu: data differs", i);
		KTAP_EXPECT((roff == 0 || p.dst.p[roff - 1] == 0) &&
			    (roff + len == REGION_SIZE || p.dst.p[roff + len] == 0),
			    "span %zu: bytes around the target changed", i);
	}
out:
	pair_free(&p);
}

static void read_integrity(void)
{
	struct dmaplane_completion c;
	struct pair p;

	/* The client reads the server's window into its own. */
	if (!need_pair() || !pair_make(&p, DMAPLANE_MR_LOCAL_WRITE,
				       DMAPLANE_MR_REMOTE_READ))
		goto out;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		uint64_t off = spans[i].off, len = spans[i].len;
		struct dmaplane_op op = {
			.cookie = i, .opcode = DMAPLANE_OP_READ, .mr = p.smr,
			.offset = off, .length = len,
			.remote_offset = REGION_SIZE - off - len,
			.rkey = p.rkey,
		};

		fill_pattern(p.dst.p, REGION_SIZE, i + 7);
		memset(p.src.p, 0, REGION_SIZE);
		KTAP_EXPECT_RET(run_op(client, &op, &c), 0);
		KTAP_EXPECT(!memcmp(p.src.p + off, p.dst.p + op.remote_offset,
				    len), "span %zu: data differs", i);
	}
out:
	pair_free(&p);
}

static void send_recv_integrity(void)
{
	struct dmaplane_completion c;
	struct pair p;

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_LOCAL_WRITE))
		goto out;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		uint64_t off = spans[i].off, len = spans[i].len;
		struct dmaplane_op recv = {
			.cookie = 77, .opcode = DMAPLANE_OP_RECV, .mr = p.dmr,
			.offset = REGION_SIZE - off - len, .length = len,
		};
		struct dmaplane_op send = {
			.cookie = 78, .opcode = DMAPLANE_OP_SEND, .mr = p.smr,
			.offset = off, .length = len,
		};

		fill_pattern(p.src.p, REGION_SIZE, i + 3);
		memset(p.dst.p, 0, REGION_SIZE);
		KTAP_EXPECT_RET(dmaplane_post(dev_fd, server, &recv, 1, NULL),
				0);
		KTAP_EXPECT_RET(run_op(client, &send, &c), 0);
		KTAP_EXPECT(reap_n(dev_fd, server, &c, 1) == 1, "no RECV");
		KTAP_EXPECT(c.cookie == 77 && c.opcode == DMAPLANE_OP_RECV &&
			    c.status == 0 && c.bytes == len && !c.flags,
			    "recv: cookie %llu status %d bytes %u flags %#x",
			    (unsigned long long)c.cookie, c.status, c.bytes,
			    c.flags);
		KTAP_EXPECT(!memcmp(p.dst.p + recv.offset, p.src.p + off, len),
			    "span %zu: data differs", i);
	}
	/* A message without data matches a receive without a buffer. */
	{
		struct dmaplane_op recv = { .cookie = 5,
					    .opcode = DMAPLANE_OP_RECV };
		struct dmaplane_op send = { .cookie = 6,
					    .opcode = DMAPLANE_OP_SEND };

		KTAP_EXPECT_RET(dmaplane_post(dev_fd, server, &recv, 1, NULL),
				0);
		KTAP_EXPECT_RET(run_op(client, &send, &c), 0);
		KTAP_EXPECT(reap_n(dev_fd, server, &c, 1) == 1 && c.status == 0 &&
			    c.bytes == 0, "empty message: status %d bytes %u",
			    c.status, c.bytes);
	}
out:
	pair_free(&p);
}

static void write_imm_integrity(void)
{
	struct dmaplane_completion c;
	struct pair p;

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_LOCAL_WRITE |
				       DMAPLANE_MR_REMOTE_WRITE))
		goto out;
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t imm = 0xdeadbe00u | i;
		struct dmaplane_op recv = { .cookie = 900 + i,
					    .opcode = DMAPLANE_OP_RECV };
		struct dmaplane_op op = {
			.cookie = i, .opcode = DMAPLANE_OP_WRITE_IMM,
			.mr = i ? p.smr : 0, .imm = imm,
			.offset = i * 4096, .length = i ? 65536 : 0,
			.remote_offset = i * 65536, .rkey = p.rkey,
		};

		fill_pattern(p.src.p, REGION_SIZE, 40 + i);
		KTAP_EXPECT_RET(dmaplane_post(dev_fd, server, &recv, 1, NULL),
				0);
		KTAP_EXPECT_RET(run_op(client, &op, &c), 0);
		KTAP_EXPECT(reap_n(dev_fd, server, &c, 1) == 1, "no RECV");
		KTAP_EXPECT(c.cookie == recv.cookie && c.status == 0 &&
			    c.imm == imm && c.bytes == op.length &&
			    c.flags == (DMAPLANE_COMP_IMM | DMAPLANE_COMP_WRITE_IMM),
			    "imm %#x bytes %u flags %#x status %d", c.imm,
			    c.bytes, c.flags, c.status);
		KTAP_EXPECT(!op.length || !memcmp(p.dst.p + op.remote_offset,
						  p.src.p + op.offset,
						  op.length),
			    "write %u: data differs", i);
	}
out:
	pair_free(&p);
}

/*
 * An imported dma-buf (here one exported by dmaplane itself) registers
 * like a buffer: a WRITE into a window of the import lands in the
 * exporter's memory. Once the exporter revokes it, it cannot be
 * registered again.
 */
static void import_registers(void)
{
	struct dmaplane_import_dmabuf imp;
	struct dmaplane_completion c;
	uint32_t smr, imr, rkey, revoked, extra;
	struct region src, exp;
	int dfd = -1, ret;

	if (!need_pair() || !region_make(dev_fd, &src, REGION_SIZE) ||
	    !region_make(dev_fd, &exp, REGION_SIZE))
		goto out;
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, exp.buf, 0, &dfd), 0);
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, dfd, &imp), 0);
	if (ktap_case_failed())
		goto out;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, client, src.buf, 0, 0, 0, &smr,
					NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, imp.handle, 65536,
					262144, DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, &imr, &rkey),
			0);
	fill_pattern(src.p, REGION_SIZE, 21);
	memset(exp.p, 0, REGION_SIZE);
	struct dmaplane_op w = {
		.cookie = 5, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
		.offset = 4096, .length = 262144 - 8192,
		.remote_offset = 8192, .rkey = rkey,
	};
	KTAP_EXPECT_RET(run_op(client, &w, &c), 0);
	KTAP_EXPECT(!memcmp(exp.p + 65536 + 8192, src.p + 4096, w.length),
		    "the exporter's memory does not hold the written data");
	KTAP_EXPECT(exp.p[65536 + 8191] == 0 && exp.p[65536 + 8192 + w.length] == 0,
		    "bytes around the window changed");
	/* Past the import's end, like any buffer. */
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, imp.handle, 0,
					REGION_SIZE + 4096, 0, &extra, NULL),
			-EINVAL);
	/* Revoked (soft-RoCE maps through the kernel mapping, so it can be). */
	ret = dmaplane_buffer_revoke(dev_fd, exp.buf, &revoked);
	KTAP_EXPECT(ret == 0 || ret == -EBUSY, "revoke: %s", ktap_errname(ret));
	if (!ret) {
		uint32_t again;

		KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, imp.handle, 0, 0,
						0, &again, NULL), -ENODEV);
	}
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, imr), 0);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, smr), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
out:
	if (dfd >= 0)
		close(dfd);
	region_free(dev_fd, &src);
	region_free(dev_fd, &exp);
}

/* The queue kept full: every operation completes once, with its cookie. */
static void pipelined_writes(void)
{
	enum { N = 1024, CHUNK = 1024 };
	static struct dmaplane_completion c[DMAPLANE_POST_MAX];
	struct dmaplane_op ops[64];
	uint8_t seen[N] = { 0 };
	uint32_t next = 0, done = 0, inflight = 0, dups = 0, bad = 0;
	struct pair p;

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_LOCAL_WRITE |
				       DMAPLANE_MR_REMOTE_WRITE))
		goto out;
	fill_pattern(p.src.p, REGION_SIZE, 99);
	memset(p.dst.p, 0, REGION_SIZE);
	while (done < N && !ktap_case_failed()) {
		uint32_t n = 0, posted = 0, got = 0;

		while (next + n < N && inflight + n < 64) {
			uint32_t k = next + n;

			ops[n++] = (struct dmaplane_op){
				.cookie = k, .opcode = DMAPLANE_OP_WRITE,
				.mr = p.smr, .offset = (uint64_t)k * CHUNK,
				.length = CHUNK,
				.remote_offset = (uint64_t)k * CHUNK,
				.rkey = p.rkey,
			};
		}
		if (n) {
			int ret = dmaplane_post(dev_fd, client, ops, n, &posted);

			KTAP_EXPECT(ret == 0 || ret == -EAGAIN, "post: %d", ret);
			next += posted;
			inflight += posted;
		}
		KTAP_EXPECT_RET(dmaplane_reap(dev_fd, client, c,
					      DMAPLANE_POST_MAX, 1, WAIT_MS,
					      &got), 0);
		for (uint32_t i = 0; i < got; i++) {
			if (c[i].cookie >= N || c[i].status)
				bad++;
			else if (seen[c[i].cookie]++)
				dups++;
		}
		done += got;
		inflight -= got;
	}
	KTAP_EXPECT(done == N && !bad && !dups, "%u done, %u bad, %u duplicated",
		    done, bad, dups);
	KTAP_EXPECT(!memcmp(p.src.p, p.dst.p, (size_t)N * CHUNK),
		    "pipelined data differs");
out:
	pair_free(&p);
}

static long post_ioctl(struct dmaplane_post *req)
{
	return ioctl(dev_fd, DMAPLANE_IOC_POST, req) ? -errno : 0;
}

/* One bad operation: rejected with @want, nothing posted. */
static void expect_op(uint32_t ep, struct dmaplane_op op, int want,
		      const char *what)
{
	uint32_t posted = 99;
	int ret = dmaplane_post(dev_fd, ep, &op, 1, &posted);

	KTAP_EXPECT(ret == want && posted == 0, "%s: got %d (%s), want %d",
		    what, ret, ktap_errname(ret), want);
}

static void post_rejects_bad_input(void)
{
	struct dmaplane_post req;
	struct dmaplane_op ops[3];
	struct pair p;
	uint32_t idle, other_ep = 0, other_srv, other_mr = 0, posted, got;
	struct dmaplane_completion c[4];
	int fd2 = -1;
	struct region r2 = { 0 };

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_REMOTE_READ))
		goto out;
	struct dmaplane_op w = {
		.opcode = DMAPLANE_OP_WRITE, .mr = p.smr, .length = 4096,
		.rkey = p.rkey,
	};
	struct dmaplane_op op;

	op = w; op.opcode = 6;
	expect_op(client, op, -EINVAL, "opcode");
	op = w; op.flags = 1;
	expect_op(client, op, -EINVAL, "flags");
	op = w; op.reserved = 1;
	expect_op(client, op, -EINVAL, "reserved");
	op = w; op.imm = 1;
	expect_op(client, op, -EINVAL, "imm on WRITE");
	op = w; op.length = 0;
	expect_op(client, op, -EINVAL, "WRITE without data");
	op = w; op.opcode = DMAPLANE_OP_READ; op.length = 0;
	expect_op(client, op, -EINVAL, "READ without data");
	op = w; op.opcode = DMAPLANE_OP_SEND; op.rkey = 0; op.remote_offset = 8;
	expect_op(client, op, -EINVAL, "remote offset on SEND");
	op = w; op.opcode = DMAPLANE_OP_RECV; op.mr = 0; op.length = 0;
	op.offset = 4; op.rkey = 0;
	expect_op(client, op, -EINVAL, "offset without MR");
	op = w; op.offset = REGION_SIZE - 4095;
	expect_op(client, op, -ERANGE, "past the MR's end");
	op = w; op.offset = REGION_SIZE + 1; op.length = 1;
	expect_op(client, op, -ERANGE, "offset past the MR");
	op = w; op.offset = UINT64_MAX; op.length = 2;
	expect_op(client, op, -ERANGE, "offset + length wraps");
	op = w; op.remote_offset = UINT64_MAX - 100;
	expect_op(client, op, -ERANGE, "remote offset + length wraps");
	op = w; op.length = (uint64_t)DMAPLANE_OP_MAX_LENGTH + 1;
	expect_op(client, op, -EMSGSIZE, "over the largest message");
	op = w; op.opcode = DMAPLANE_OP_RECV; op.rkey = 0;
	expect_op(client, op, -EACCES, "RECV into an MR without local write");
	op = w; op.opcode = DMAPLANE_OP_READ;
	expect_op(client, op, -EACCES, "READ into an MR without local write");
	op = w; op.mr = 0xfffff;
	expect_op(client, op, -ENOENT, "no such MR");
	op = w; op.mr = p.src.buf;
	expect_op(client, op, -ENOENT, "a buffer handle as MR");
	op = w; op.mr = p.dmr;
	expect_op(client, op, -EXDEV, "the other endpoint's MR");
	op = (struct dmaplane_op){ .opcode = DMAPLANE_OP_NOOP, .length = 1 };
	expect_op(client, op, -EINVAL, "NOOP with data");
	/* Another file's endpoint and MR handles name nothing here. */
	fd2 = dmaplane_open();
	KTAP_EXPECT_RET(dmaplane_ep_loopback(fd2, guest_ip, NULL, &other_ep,
					     &other_srv), 0);
	if (region_make(fd2, &r2, 4096))
		KTAP_EXPECT_RET(dmaplane_mr_reg(fd2, other_ep, r2.buf, 0, 0, 0,
						&other_mr, NULL), 0);
	/* (Handles are never reused, so this one names nothing in ours.) */
	KTAP_EXPECT(dmaplane_mr_dereg(dev_fd, other_mr) == -ENOENT,
		    "handle %u exists in both files", other_mr);
	op = w; op.mr = other_mr;
	expect_op(client, op, -ENOENT, "another file's MR");
	KTAP_EXPECT_RET(dmaplane_mr_dereg(fd2, other_mr), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &idle), 0);
	expect_op(idle, w, -EXDEV, "MR of another endpoint (idle)");
	op = w; op.mr = 0; op.opcode = DMAPLANE_OP_SEND; op.length = 0;
	op.rkey = 0;
	expect_op(idle, op, -ENOTCONN, "unconnected endpoint");
	expect_op(0xfffff, w, -ENOENT, "no such endpoint");

	/* The batch: bounds, and a bad op in the middle stops it there. */
	req = (struct dmaplane_post){ .endpoint = client, .count = 0,
				      .ops = (uintptr_t)ops };
	KTAP_EXPECT_RET(post_ioctl(&req), -EINVAL);
	req.count = DMAPLANE_POST_MAX + 1;
	KTAP_EXPECT_RET(post_ioctl(&req), -EINVAL);
	req.count = 1;
	req.flags = (uint32_t)~DMAPLANE_POST_VALID_FLAGS;
	KTAP_EXPECT_RET(post_ioctl(&req), -EINVAL);
	req.flags = 0;
	req.reserved = 1;
	KTAP_EXPECT_RET(post_ioctl(&req), -EINVAL);
	req.reserved = 0;
	req.ops = 16;
	KTAP_EXPECT_RET(post_ioctl(&req), -EFAULT);
	ops[0] = (struct dmaplane_op){ .cookie = 1 };
	ops[1] = w;
	ops[1].offset = REGION_SIZE;
	ops[2] = (struct dmaplane_op){ .cookie = 3 };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, client, ops, 3, &posted), -ERANGE);
	KTAP_EXPECT(posted == 1, "%u posted before the bad op", posted);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, client, c, 4, 1, WAIT_MS, &got),
			0);
	KTAP_EXPECT(got == 1 && c[0].cookie == 1 &&
		    c[0].opcode == DMAPLANE_OP_NOOP && c[0].status == 0,
		    "%u completions, first cookie %llu", got,
		    (unsigned long long)c[0].cookie);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, idle), 0);
out:
	region_free(fd2, &r2);
	if (fd2 >= 0)
		close(fd2);
	pair_free(&p);
}

static long reap_ioctl(struct dmaplane_reap *req)
{
	return ioctl(dev_fd, DMAPLANE_IOC_REAP, req) ? -errno : 0;
}

static struct dmaplane_reap reap_base(struct dmaplane_completion *c)
{
	struct dmaplane_reap req = {
		.endpoint = client, .max = 2, .entries = (uintptr_t)c,
	};

	return req;
}

/* REAP of reap_base() changed by @change (statements on req): @want. */
#define REAP_EXPECT(want, change)					\
	do {								\
		req = reap_base(c);					\
		change;							\
		KTAP_EXPECT_RET(reap_ioctl(&req), want);		\
	} while (0)

static void reap_rejects_bad_input(void)
{
	struct dmaplane_completion c[2];
	struct dmaplane_reap req;
	struct dmaplane_op noop = { .cookie = 42 };
	uint32_t got;

	if (!need_pair())
		return;
	REAP_EXPECT(-EINVAL, req.max = 0);
	REAP_EXPECT(-EINVAL, req.max = DMAPLANE_POST_MAX + 1);
	REAP_EXPECT(-EINVAL, req.min = 3);
	REAP_EXPECT(-EINVAL, req.reserved = 1);
	REAP_EXPECT(-EINVAL, req.timeout_ms = DMAPLANE_EP_TIMEOUT_MAX_MS + 1);
	REAP_EXPECT(-ENOENT, req.endpoint = 0xfffff);
	/* Nothing ready: no wait returns none; a wait times out. */
	REAP_EXPECT(0, req.min = 0);
	KTAP_EXPECT(req.count == 0, "%u completions from nowhere", req.count);
	REAP_EXPECT(-ETIMEDOUT, req.min = 1; req.timeout_ms = 50);
	/* A completion that cannot be copied out stays for the next reap. */
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, client, &noop, 1, NULL), 0);
	REAP_EXPECT(-EFAULT, req.min = 1; req.timeout_ms = 100; req.entries = 16);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, client, c, 2, 1, WAIT_MS, &got),
			0);
	KTAP_EXPECT(got == 1 && c[0].cookie == 42, "%u completions, cookie %llu",
		    got, (unsigned long long)c[0].cookie);
}

/*
 * A full queue is -EAGAIN until its completions are reaped; NOOPs fill
 * the send side, RECVs the receive side.
 */
static void full_queues_are_eagain(void)
{
	struct dmaplane_ep_create params = { .send_depth = 8, .recv_depth = 4 };
	struct dmaplane_op ops[16];
	struct dmaplane_completion c[16];
	uint32_t a, b, posted, got;

	if (!need_pair())
		return;
	struct dmaplane_ep_info info;

	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, &params, &a, &b),
			0);
	if (ktap_case_failed())
		return;
	/* Each side learned the other's depths in the handshake. */
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, a, &info), 0);
	KTAP_EXPECT(info.peer_send_depth == 8 && info.peer_recv_depth == 4,
		    "peer depths %u/%u", info.peer_send_depth,
		    info.peer_recv_depth);
	for (int i = 0; i < 16; i++)
		ops[i] = (struct dmaplane_op){ .cookie = i };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, a, ops, 16, &posted), -EAGAIN);
	KTAP_EXPECT(posted == 8, "%u NOOPs posted on a depth-8 queue", posted);
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, a, ops, 1, NULL), -EAGAIN);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, a, c, 3, 3, WAIT_MS, &got), 0);
	KTAP_EXPECT(got == 3, "%u reaped", got);
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, a, ops, 16, &posted), -EAGAIN);
	KTAP_EXPECT(posted == 3, "%u posted after reaping 3", posted);
	for (int i = 0; i < 16; i++)
		ops[i] = (struct dmaplane_op){ .cookie = i,
					       .opcode = DMAPLANE_OP_RECV };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, b, ops, 16, &posted), -EAGAIN);
	KTAP_EXPECT(posted == 4, "%u RECVs posted on a depth-4 queue", posted);
	/* Destroying with everything in flight flushes and frees it all. */
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, b), 0);
}

/*
 * The peer's device checks the window: a wrong rkey, a range past the
 * window or an access it was not granted fail the operation and break the
 * connection; the local side reports it and refuses further posts.
 */
static void remote_access_errors(void)
{
	static const char *const what[] = {
		"wrong rkey", "past the window", "write to a read-only window",
	};

	if (!need_pair())
		return;
	for (int k = 0; k < 3; k++) {
		struct dmaplane_completion c;
		struct dmaplane_ep_info info;
		uint32_t a, b, smr, dmr, rkey;
		struct region src, dst;
		int status;

		if (dmaplane_ep_loopback(dev_fd, guest_ip, NULL, &a, &b)) {
			KTAP_EXPECT(0, "loopback %d", k);
			return;
		}
		region_make(dev_fd, &src, 65536);
		region_make(dev_fd, &dst, 65536);
		KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, a, src.buf, 0, 0, 0, &smr,
						NULL), 0);
		KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, b, dst.buf, 0, 0,
						k == 2 ? DMAPLANE_MR_REMOTE_READ :
						DMAPLANE_MR_LOCAL_WRITE |
						DMAPLANE_MR_REMOTE_WRITE,
						&dmr, &rkey), 0);
		memset(dst.p, 0x5a, dst.size);
		struct dmaplane_op op = {
			.cookie = 7, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
			.length = 4096, .rkey = k == 0 ? rkey ^ 0x100 : rkey,
			.remote_offset = k == 1 ? 65536 - 2048 : 0,
		};
		status = run_op(a, &op, &c);
		KTAP_EXPECT(status == -EACCES || status == -EREMOTEIO,
			    "%s: status %d (%s), wc %u", what[k], status,
			    ktap_errname(status), c.wc_status);
		size_t changed = 0;

		for (size_t i = 0; i < dst.size; i++)
			changed += dst.p[i] != 0x5a;
		KTAP_EXPECT(changed == 0, "%s: %zu bytes of the window changed",
			    what[k], changed);
		KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, a, &info), 0);
		KTAP_EXPECT(info.state == DMAPLANE_EP_ERROR && info.error == status,
			    "%s: endpoint state %u error %d", what[k],
			    info.state, info.error);
		op.rkey = rkey;
		expect_op(a, op, status, "post after a remote error");
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, smr), 0);
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, dmr), 0);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, a), 0);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, b), 0);
		region_free(dev_fd, &src);
		region_free(dev_fd, &dst);
	}
}

/* Completions and failures signal the endpoint's eventfd. */
static void eventfd_signals_completions(void)
{
	struct dmaplane_op noop = { .cookie = 3 };
	struct dmaplane_completion c;
	struct pollfd pfd;
	uint64_t v = 0;
	uint32_t got;
	int efd;

	if (!need_pair())
		return;
	efd = eventfd(0, EFD_NONBLOCK);
	KTAP_EXPECT(efd >= 0, "eventfd: %s", strerror(errno));
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, client, -2), -EBADF);
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, client, dev_fd), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, 0xfffff, efd), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, client, efd), 0);
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	KTAP_EXPECT(poll(&pfd, 1, 0) == 0, "eventfd ready before anything");
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, client, &noop, 1, NULL), 0);
	KTAP_EXPECT(poll(&pfd, 1, WAIT_MS) == 1 && pfd.revents & POLLIN,
		    "no wake-up for a completion");
	KTAP_EXPECT(read(efd, &v, sizeof(v)) == sizeof(v) && v >= 1,
		    "eventfd count %llu", (unsigned long long)v);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, client, &c, 1, 1, WAIT_MS, &got),
			0);
	/* Unhooked: no more signals. */
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, client, -1), 0);
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, client, &noop, 1, NULL), 0);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, client, &c, 1, 1, WAIT_MS, &got),
			0);
	KTAP_EXPECT(poll(&pfd, 1, 0) == 0, "signalled after -1");
	close(efd);
}

/* An MR with operations in flight keeps its handle. */
static void dereg_busy_while_in_flight(void)
{
	struct dmaplane_op recv;
	struct dmaplane_op send = { .cookie = 2, .opcode = DMAPLANE_OP_SEND };
	struct dmaplane_completion c;
	struct pair p;

	if (!need_pair() || !pair_make(&p, 0, DMAPLANE_MR_LOCAL_WRITE))
		goto out;
	recv = (struct dmaplane_op){ .cookie = 1, .opcode = DMAPLANE_OP_RECV,
				     .mr = p.dmr, .length = 4096 };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, server, &recv, 1, NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p.dmr), -EBUSY);
	KTAP_EXPECT_RET(run_op(client, &send, &c), 0);
	KTAP_EXPECT(reap_n(dev_fd, server, &c, 1) == 1 && c.status == 0,
		    "recv status %d", c.status);
out:
	pair_free(&p);
}

/*
 * A process with a connection, MRs and operations in flight exits (or is
 * killed): everything it held is released.
 */
static void exit_with_ops_in_flight(void)
{
	uint64_t endpoints = counter("endpoints");

	if (!need_pair())
		return;
	for (int kill_it = 0; kill_it < 2; kill_it++) {
		int ready[2];
		char ch;
		pid_t pid;

		KTAP_EXPECT_RET(pipe(ready), 0);
		pid = fork();
		if (pid == 0) {
			struct dmaplane_op ops[32];
			struct region r;
			uint32_t a, b, mr_a, mr_b, rkey;
			int fd = dmaplane_open();

			close(dev_fd);
			if (fd < 0 ||
			    dmaplane_ep_loopback(fd, guest_ip, NULL, &a, &b) ||
			    !region_make(fd, &r, REGION_SIZE) ||
			    dmaplane_mr_reg(fd, a, r.buf, 0, 0,
					    DMAPLANE_MR_LOCAL_WRITE, &mr_a, NULL) ||
			    dmaplane_mr_reg(fd, b, r.buf, 0, 0,
					    DMAPLANE_MR_LOCAL_WRITE |
					    DMAPLANE_MR_REMOTE_WRITE, &mr_b,
					    &rkey))
				_exit(2);
			/* Receives that never complete, writes in flight. */
			for (int i = 0; i < 32; i++)
				ops[i] = (struct dmaplane_op){
					.opcode = DMAPLANE_OP_RECV, .mr = mr_a,
					.offset = i * 4096, .length = 4096 };
			if (dmaplane_post(fd, a, ops, 32, NULL))
				_exit(3);
			for (int i = 0; i < 32; i++)
				ops[i] = (struct dmaplane_op){
					.opcode = DMAPLANE_OP_WRITE, .mr = mr_a,
					.length = REGION_SIZE, .rkey = rkey };
			if (dmaplane_post(fd, a, ops, 32, NULL))
				_exit(4);
			if (write(ready[1], "r", 1) != 1)
				_exit(5);
			if (kill_it)
				pause();
			_exit(0);
		}
		KTAP_EXPECT(read(ready[0], &ch, 1) == 1, "child never got ready");
		if (kill_it)
			kill(pid, SIGKILL);
		if (!kill_it)
			child_exited_ok(pid);
		else
			waitpid(pid, NULL, 0);
		close(ready[0]);
		close(ready[1]);
	}
	KTAP_EXPECT(counter_settled("mrs", 0) == 0 &&
		    counter_settled("endpoints", endpoints) == endpoints,
		    "left behind: %llu MRs, %llu endpoints (%llu before)",
		    (unsigned long long)counter("mrs"),
		    (unsigned long long)counter("endpoints"),
		    (unsigned long long)endpoints);
}

/*
 * The peer process dies with our receives posted: they complete flushed
 * and the endpoint reports the disconnect; nothing waits forever.
 */
static void peer_death_flushes(void)
{
	struct dmaplane_completion c[8];
	struct dmaplane_ep_info info;
	struct dmaplane_addr a;
	struct dmaplane_op ops[8];
	uint32_t lh, h = 0, got;
	struct region r;
	int ready[2];
	pid_t pid;
	char ch;

	if (!need_pair() || !region_make(dev_fd, &r, 65536))
		return;
	KTAP_EXPECT_RET(dmaplane_addr_parse(guest_ip, 0, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &lh), 0);
	KTAP_EXPECT_RET(dmaplane_ep_listen(dev_fd, lh, 1, &a), 0);
	KTAP_EXPECT_RET(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		int fd = dmaplane_open();
		uint32_t e;

		close(dev_fd);
		if (fd < 0 || dmaplane_ep_create(fd, NULL, &e) ||
		    dmaplane_ep_connect(fd, e, &a, WAIT_MS))
			_exit(2);
		if (write(ready[1], "c", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, WAIT_MS, &h, NULL), 0);
	KTAP_EXPECT(read(ready[0], &ch, 1) == 1, "peer did not connect");
	uint32_t mr;

	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, h, r.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE, &mr, NULL), 0);
	for (int i = 0; i < 8; i++)
		ops[i] = (struct dmaplane_op){ .cookie = i,
					       .opcode = DMAPLANE_OP_RECV,
					       .mr = mr, .offset = i * 4096,
					       .length = 4096 };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, h, ops, 8, NULL), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Receives come back flushed once the disconnect arrives. */
	got = reap_n(dev_fd, h, c, 8);
	KTAP_EXPECT(got == 8, "%u of 8 receives came back", got);
	for (uint32_t i = 0; i < got; i++)
		KTAP_EXPECT(c[i].status == -ECANCELED && c[i].bytes == 0,
			    "receive %llu: status %d",
			    (unsigned long long)c[i].cookie, c[i].status);
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, h, &info), 0);
	KTAP_EXPECT(info.error == -ECONNRESET, "endpoint error %d", info.error);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, h, c, 1, 1, WAIT_MS, &got),
			-ECONNRESET);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, mr), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);
	close(ready[0]);
	close(ready[1]);
	region_free(dev_fd, &r);
}

/* The soft-RoCE device under @ep into @name; false (skip) for any other. */
static bool rxe_under(uint32_t ep, char *name, size_t len)
{
	struct dmaplane_rdma_device dev;

	name[0] = '\0';
	if (!dmaplane_ep_device(dev_fd, ep, &dev) &&
	    !strncmp(dev.name, "rxe", 3))
		snprintf(name, len, "%s", dev.name);
	if (!name[0])
		ktap_skip("not a soft-RoCE device: lab NICs are not removed");
	return name[0];
}

/*
 * The RDMA device goes away with WRITEs and receives in flight: every
 * operation comes back exactly once, the endpoints end with an error, the
 * MRs deregister and nothing leaks. The
 * device is added back for whatever runs next.
 */
static void device_removal_mid_transfer(void)
{
	/*
	 * Soft-RoCE runs a QP's whole send queue in one softirq: keep what
	 * is queued small enough for the debug kernel's RCU stall detector.
	 */
	enum { WRITES = 128, RECVS = 32, WRITE_LEN = 256 * 1024 };
	struct dmaplane_ep_create params = { .send_depth = WRITES };
	static struct dmaplane_completion c[WRITES];
	static struct dmaplane_op ops[WRITES];
	char name[64], netdev[64], cmd[160];
	uint32_t a, b, smr, dmr, rkey, got;
	struct dmaplane_ep_info info;
	struct region src, dst;
	int ok = 0, flushed = 0, failed = 0;

	if (!need_pair() || !rxe_under(server, name, sizeof(name)))
		return;
	KTAP_EXPECT_RET(rdma_netdev_of(name, netdev, sizeof(netdev)), 0);
	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, &params, &a, &b),
			0);
	if (ktap_case_failed() || !region_make(dev_fd, &src, REGION_SIZE) ||
	    !region_make(dev_fd, &dst, REGION_SIZE))
		return;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, a, src.buf, 0, 0, 0, &smr,
					NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, b, dst.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, &dmr, &rkey), 0);
	for (int i = 0; i < RECVS; i++)
		ops[i] = (struct dmaplane_op){
			.cookie = i, .opcode = DMAPLANE_OP_RECV, .mr = dmr,
			.offset = i * 4096, .length = 4096 };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, b, ops, RECVS, NULL), 0);
	/* WRITEs still going when it goes, on a slow enough guest. */
	for (int i = 0; i < WRITES; i++)
		ops[i] = (struct dmaplane_op){
			.cookie = 100 + i, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
			.length = WRITE_LEN, .rkey = rkey };
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, a, ops, WRITES, NULL), 0);
	snprintf(cmd, sizeof(cmd), "rdma link delete %s", name);
	KTAP_EXPECT(system(cmd) == 0, "%s failed", cmd);
	/*
	 * Every operation comes back, once: done, flushed, or failed by the
	 * removal (soft-RoCE may fail the one on the wire with a fatal
	 * status); none is lost and none waits forever.
	 */
	got = reap_n(dev_fd, a, c, WRITES);
	KTAP_EXPECT(got == WRITES, "%u of %d WRITEs came back", got, WRITES);
	for (uint32_t i = 0; i < got; i++) {
		ok += c[i].status == 0;
		flushed += c[i].status == -ECANCELED;
		if (c[i].status && c[i].status != -ECANCELED && !failed++)
			printf("# WRITE %llu: %s (wc status %u)\n",
			       (unsigned long long)c[i].cookie,
			       ktap_errname(c[i].status), c[i].wc_status);
	}
	got = reap_n(dev_fd, b, c, RECVS);
	KTAP_EXPECT(got == RECVS, "%u of %d receives came back", got, RECVS);
	for (uint32_t i = 0; i < got; i++)
		flushed += c[i].status == -ECANCELED;
	KTAP_EXPECT(ok + flushed + failed == WRITES + RECVS,
		    "%d done, %d flushed, %d failed of %d", ok, flushed, failed,
		    WRITES + RECVS);
	printf("# %s removed mid-transfer: %d WRITEs done, %d operations flushed, %d failed\n",
	       name, ok, flushed, failed);
	for (int i = 1; i >= 0; i--) {
		KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, i ? b : a, &info), 0);
		KTAP_EXPECT(info.state == DMAPLANE_EP_ERROR ||
			    info.state == DMAPLANE_EP_DISCONNECTED,
			    "endpoint %d: state %u error %d", i, info.state,
			    info.error);
		KTAP_EXPECT(info.error < 0, "endpoint %d: error %d", i,
			    info.error);
	}
	expect_op(a, ops[0], info.error, "post after removal");
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, smr), 0);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, dmr), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, b), 0);
	region_free(dev_fd, &src);
	region_free(dev_fd, &dst);
	KTAP_EXPECT(counter("mrs") == 0, "%llu MRs left",
		    (unsigned long long)counter("mrs"));
	/* The suite's own connection was on it too. */
	connected = false;
	KTAP_EXPECT_RET(rxe_link_add(name, netdev), 0);
}

static void close_releases_everything(void)
{
	if (dev_fd < 0) {
		ktap_skip("the device did not open");
		return;
	}
	KTAP_EXPECT(counter("mrs") == 0, "%llu MRs before close",
		    (unsigned long long)counter("mrs"));
	close(dev_fd);
	dev_fd = -1;
	connected = false;
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0 && counter("buffers") == 0,
		    "after close: %llu endpoints, %llu buffers",
		    (unsigned long long)counter("endpoints"),
		    (unsigned long long)counter("buffers"));
}

static const struct ktap_case cases[] = {
	KTAP_CASE(loopback_pair),
	KTAP_CASE(mr_reg_rejects_bad_input),
	KTAP_CASE(mr_keys_and_lifetime),
	KTAP_CASE(write_integrity),
	KTAP_CASE(read_integrity),
	KTAP_CASE(send_recv_integrity),
	KTAP_CASE(write_imm_integrity),
	KTAP_CASE(import_registers),
	KTAP_CASE(pipelined_writes),
	KTAP_CASE(post_rejects_bad_input),
	KTAP_CASE(reap_rejects_bad_input),
	KTAP_CASE(full_queues_are_eagain),
	KTAP_CASE(remote_access_errors),
	KTAP_CASE(eventfd_signals_completions),
	KTAP_CASE(dereg_busy_while_in_flight),
	KTAP_CASE(exit_with_ops_in_flight),
	KTAP_CASE(peer_death_flushes),
	KTAP_CASE(device_removal_mid_transfer),
	KTAP_CASE(close_releases_everything),
};

int main(void)
{
	return ktap_run_suite("verbs", cases, sizeof(cases) / sizeof(cases[0]));
}
