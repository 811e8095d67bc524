// SPDX-License-Identifier: GPL-2.0
/*
 * flow suite: credit-based flow control on a loopback RC connection
 * (soft-RoCE in the sim). Credits follow the receives a peer posts and
 * its window; a SEND without a credit waits in order (or is -EAGAIN when
 * the caller says so); a slow receiver under a bursty sender produces
 * receiver-not-ready failures without credits and none with them; what
 * waits when the connection ends completes flushed; debugfs and the
 * tracepoints show each endpoint's counters and latencies.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "libdmaplane.h"
#include "testutil.h"
#include "verbsutil.h"

#define MSG_SIZE	4096
#define SLOTS		64
#define TRACEFS		"/sys/kernel/tracing"

static int dev_fd = -1;
static const char *guest_ip;

/* A connection for one case: both ends, each with a registered region. */
struct pair {
	uint32_t client, server;
	struct region cr, sr;
	uint32_t cmr, smr;	/* MRs over cr, sr */
	uint32_t srkey;
};

static bool have_rdma(void)
{
	if (guest_ip && count_rdma_devices() > 0)
		return true;
	ktap_skip("no RDMA device and guest address (guests get soft-RoCE with --rxe)");
	return false;
}

static bool pair_open(struct pair *p, const struct dmaplane_ep_create *params)
{
	const uint32_t access = DMAPLANE_MR_LOCAL_WRITE |
				DMAPLANE_MR_REMOTE_WRITE;

	memset(p, 0, sizeof(*p));
	if (!have_rdma())
		return false;
	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, params,
					     &p->client, &p->server), 0);
	if (ktap_case_failed() ||
	    !region_make(dev_fd, &p->cr, SLOTS * MSG_SIZE) ||
	    !region_make(dev_fd, &p->sr, SLOTS * MSG_SIZE))
		return false;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, p->client, p->cr.buf, 0, 0,
					access, &p->cmr, NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, p->server, p->sr.buf, 0, 0,
					access, &p->smr, &p->srkey), 0);
	return !ktap_case_failed();
}

static void pair_close(struct pair *p)
{
	if (p->cmr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p->cmr), 0);
	if (p->smr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p->smr), 0);
	region_free(dev_fd, &p->cr);
	region_free(dev_fd, &p->sr);
	if (p->client)
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, p->client), 0);
	if (p->server)
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, p->server), 0);
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0,
		    "%" PRIu64 " endpoints left", dmaplane_counter("endpoints"));
}

static struct dmaplane_ep_info info_of(uint32_t ep)
{
	struct dmaplane_ep_info info;

	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, ep, &info), 0);
	return info;
}

/* Wait until @ep holds @want credits from its peer; the last count seen. */
static uint32_t credits_reach(uint32_t ep, uint32_t want)
{
	uint32_t have = info_of(ep).credits;

	for (int i = 0; have != want && i < 400; i++) {
		usleep(50 * 1000);
		have = info_of(ep).credits;
	}
	return have;
}

static struct dmaplane_op recv_op(const struct pair *p, uint32_t seq)
{
	uint32_t slot = seq % SLOTS;

	return (struct dmaplane_op){
		.cookie = slot, .opcode = DMAPLANE_OP_RECV, .mr = p->smr,
		.offset = (uint64_t)slot * MSG_SIZE, .length = MSG_SIZE,
	};
}

/* SEND number @seq from the client's slot seq % SLOTS, stamped with @seq. */
static struct dmaplane_op send_op(const struct pair *p, uint32_t seq)
{
	uint32_t slot = seq % SLOTS;

	fill_pattern(p->cr.p + (size_t)slot * MSG_SIZE, MSG_SIZE, seq);
	return (struct dmaplane_op){
		.cookie = seq, .opcode = DMAPLANE_OP_SEND, .mr = p->cmr,
		.offset = (uint64_t)slot * MSG_SIZE, .length = MSG_SIZE,
	};
}

/* The server posts RECVs into slots @first..@first + @n - 1. */
static void post_recvs(const struct pair *p, uint32_t first, uint32_t n)
{
	struct dmaplane_op ops[SLOTS];

	for (uint32_t i = 0; i < n; i++)
		ops[i] = recv_op(p, first + i);
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, p->server, ops, n, NULL), 0);
}

/* POST one operation with @flags: the error that stopped it, or 0. */
static int post_flags(uint32_t ep, const struct dmaplane_op *op,
		      uint32_t flags)
{
	struct dmaplane_post req = {
		.endpoint = ep, .count = 1, .ops = (uintptr_t)op,
		.flags = flags,
	};

	return ioctl(dev_fd, DMAPLANE_IOC_POST, &req) ? -errno : req.error;
}

/* The client posts SENDs @first..@first + @n - 1 in one batch: all of them. */
static void post_sends(const struct pair *p, uint32_t first, uint32_t n)
{
	struct dmaplane_op ops[SLOTS];
	uint32_t posted = 0;

	for (uint32_t i = 0; i < n; i++)
		ops[i] = send_op(p, first + i);
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, p->client, ops, n, &posted), 0);
	KTAP_EXPECT(posted == n, "%u of %u SENDs posted", posted, n);
}

/*
 * The server reaps @n messages: each a success, in order from @first,
 * with the bytes sent. The number that were.
 */
static uint32_t expect_messages(const struct pair *p, uint32_t first,
				uint32_t n)
{
	struct dmaplane_completion c[SLOTS];
	uint32_t got = reap_n(dev_fd, p->server, c, n), ok = 0;

	for (uint32_t i = 0; i < got; i++) {
		uint32_t seq = first + i, slot = c[i].cookie;
		const unsigned char *data = p->sr.p + (size_t)slot * MSG_SIZE;

		KTAP_EXPECT(c[i].status == 0 && c[i].bytes == MSG_SIZE &&
			    slot == seq % SLOTS &&
			    pattern_holds(data, MSG_SIZE, seq),
			    "message %u: status %d bytes %u slot %u", seq,
			    c[i].status, c[i].bytes, slot);
		ok += !ktap_case_failed();
	}
	return ok;
}

/* The client reaps @n SEND completions, all successes in order from @first. */
static void expect_sent(const struct pair *p, uint32_t first, uint32_t n)
{
	struct dmaplane_completion c[SLOTS];
	uint32_t got = reap_n(dev_fd, p->client, c, n);

	KTAP_EXPECT(got == n, "%u of %u SENDs completed", got, n);
	for (uint32_t i = 0; i < got; i++)
		KTAP_EXPECT(c[i].status == 0 && c[i].cookie == first + i,
			    "SEND %u: cookie %llu status %d", first + i,
			    (unsigned long long)c[i].cookie, c[i].status);
}

/*
 * Credits follow the receives the server posts, never past its window;
 * a batch larger than the credits goes out as they come back.
 */
static void credits_follow_receives(void)
{
	struct dmaplane_ep_create params = {
		.send_depth = SLOTS, .recv_depth = 32, .credit_window = 8,
	};
	struct dmaplane_ep_info ci, si;
	struct pair p;

	if (!pair_open(&p, &params))
		goto out;
	ci = info_of(p.client);
	si = info_of(p.server);
	KTAP_EXPECT(ci.flags & DMAPLANE_EP_INFO_CREDITS &&
		    si.flags & DMAPLANE_EP_INFO_CREDITS && ci.credits == 0 &&
		    ci.credit_window == 8 && ci.id && si.id != ci.id,
		    "client flags 0x%x credits %u window %u ids %llu/%llu",
		    ci.flags, ci.credits, ci.credit_window,
		    (unsigned long long)ci.id, (unsigned long long)si.id);
	/* The peer has none left: the first receives are granted at once. */
	post_recvs(&p, 0, 3);
	KTAP_EXPECT(credits_reach(p.client, 3) == 3, "client credits %u, want 3",
		    info_of(p.client).credits);
	post_sends(&p, 0, 3);
	expect_sent(&p, 0, 3);
	KTAP_EXPECT(expect_messages(&p, 0, 3) == 3, "3 messages");
	/* 20 receives, but the window is 8. */
	post_recvs(&p, 3, 20);
	KTAP_EXPECT(credits_reach(p.client, 8) == 8, "client credits %u, want 8",
		    info_of(p.client).credits);
	si = info_of(p.server);
	KTAP_EXPECT(si.peer_credits == 8, "server granted %u, window 8",
		    si.peer_credits);
	/* 20 SENDs at once: 8 go, 12 wait and follow as grants come back. */
	post_sends(&p, 3, 20);
	expect_sent(&p, 3, 20);
	KTAP_EXPECT(expect_messages(&p, 3, 20) == 20, "20 messages");
	ci = info_of(p.client);
	KTAP_EXPECT(ci.queued == 0 && ci.inflight == 0 && ci.credits == 0,
		    "after: queued %u inflight %u credits %u", ci.queued,
		    ci.inflight, ci.credits);
out:
	pair_close(&p);
}

/* With no receive posted, SENDs wait (in order) and stall; receives free them. */
static void send_waits_for_credit(void)
{
	struct dmaplane_completion c;
	struct dmaplane_ep_info ci;
	uint32_t got;
	struct pair p;

	if (!pair_open(&p, NULL))
		goto out;
	post_sends(&p, 0, 4);
	ci = info_of(p.client);
	KTAP_EXPECT(ci.queued == 4 && ci.inflight == 4 && ci.stalls == 1,
		    "queued %u inflight %u stalls %llu", ci.queued, ci.inflight,
		    (unsigned long long)ci.stalls);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, p.client, &c, 1, 1, 300, &got),
			-ETIMEDOUT);
	post_recvs(&p, 0, 4);
	expect_sent(&p, 0, 4);
	KTAP_EXPECT(expect_messages(&p, 0, 4) == 4, "4 messages");
	ci = info_of(p.client);
	KTAP_EXPECT(ci.queued == 0 && ci.stalls == 1 && ci.stall_ns > 0,
		    "after: queued %u stalls %llu stall_ns %llu", ci.queued,
		    (unsigned long long)ci.stalls,
		    (unsigned long long)ci.stall_ns);
out:
	pair_close(&p);
}

/*
 * DMAPLANE_POST_NOWAIT: no credit is -EAGAIN; nothing overtakes what
 * waits; the eventfd wakes the sender when credits come back.
 */
static void nowait_is_eagain(void)
{
	struct dmaplane_op write = {
		.cookie = 100, .opcode = DMAPLANE_OP_WRITE, .length = MSG_SIZE,
	};
	struct dmaplane_completion c[3];
	struct pollfd pfd;
	uint32_t posted;
	struct pair p;
	int efd = -1;

	if (!pair_open(&p, NULL))
		goto out;
	write.mr = p.cmr;
	write.rkey = p.srkey;
	efd = eventfd(0, EFD_NONBLOCK);
	KTAP_EXPECT_RET(dmaplane_ep_eventfd(dev_fd, p.client, efd), 0);
	KTAP_EXPECT_RET(post_flags(p.client, &(struct dmaplane_op){
					   .cookie = 0,
					   .opcode = DMAPLANE_OP_SEND },
				   DMAPLANE_POST_NOWAIT), -EAGAIN);
	KTAP_EXPECT(info_of(p.client).stalls == 1 &&
		    info_of(p.client).inflight == 0, "NOWAIT SEND left a trace");
	/* A WRITE needs no credit: it goes. */
	KTAP_EXPECT_RET(dmaplane_post(dev_fd, p.client, &write, 1, &posted), 0);
	KTAP_EXPECT(reap_n(dev_fd, p.client, c, 1) == 1 && c[0].status == 0,
		    "WRITE: status %d", c[0].status);
	/* A SEND waits; then even a WRITE may not overtake it. */
	post_sends(&p, 0, 1);
	write.cookie = 101;
	KTAP_EXPECT_RET(post_flags(p.client, &write, DMAPLANE_POST_NOWAIT),
			-EAGAIN);
	KTAP_EXPECT_RET(post_flags(p.client, &write, 0), 0);
	KTAP_EXPECT(info_of(p.client).queued == 2, "queued %u, want 2",
		    info_of(p.client).queued);
	while (read(efd, &(uint64_t){0}, 8) == 8)
		;
	post_recvs(&p, 0, 1);
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	KTAP_EXPECT(poll(&pfd, 1, VERBS_WAIT_MS) == 1, "no wake-up for credits");
	KTAP_EXPECT(reap_n(dev_fd, p.client, c, 2) == 2 && c[0].cookie == 0 &&
		    c[1].cookie == 101 && !c[0].status && !c[1].status,
		    "order: %llu then %llu", (unsigned long long)c[0].cookie,
		    (unsigned long long)c[1].cookie);
	KTAP_EXPECT(expect_messages(&p, 0, 1) == 1, "the message");
out:
	if (efd >= 0)
		close(efd);
	pair_close(&p);
}

/* The slow receiver: drains a couple of messages, then sleeps. */
struct slow_receiver {
	const struct pair *p;
	uint32_t total;
	uint32_t received;	/* in order, intact */
	uint32_t failed;	/* completions with an error */
};

static void *slow_receive(void *arg)
{
	struct slow_receiver *r = arg;
	struct dmaplane_completion c[2];
	uint32_t seq = 0, got;

	while (seq < r->total) {
		if (dmaplane_reap(dev_fd, r->p->server, c, 2, 1, 5000, &got))
			break;
		for (uint32_t i = 0; i < got; i++, seq++) {
			uint32_t slot = c[i].cookie;

			if (c[i].status) {
				r->failed++;
				continue;
			}
			if (slot == seq % SLOTS &&
			    pattern_holds(r->p->sr.p + (size_t)slot * MSG_SIZE,
					  MSG_SIZE, seq))
				r->received++;
			if (seq + 8 < r->total) {
				struct dmaplane_op op = recv_op(r->p, seq + 8);

				if (dmaplane_post(dev_fd, r->p->server, &op, 1,
						  NULL))
					r->failed++;
			}
		}
		usleep(20 * 1000);
	}
	return NULL;
}

/*
 * A bursty sender (bursts of 32) against a receiver that keeps 8
 * receives posted and drains 2 every 20 ms, with 1 RNR retry allowed:
 * @credits off, messages find the receive queue empty (RNR NAKs, then
 * -ETIMEDOUT); on, none does and every message arrives in order.
 */
static void slow_receiver_run(bool credits, const char *dev)
{
	struct dmaplane_ep_create params = {
		.send_depth = SLOTS, .recv_depth = 8, .rnr_retry_count = 1,
		.flags = credits ? 0 : DMAPLANE_EP_NO_CREDITS,
	};
	struct slow_receiver r = { .total = 128 };
	struct dmaplane_completion c[32];
	uint64_t rnr0 = 0, rnr1 = 0;
	uint32_t sent = 0, send_failed = 0;
	bool counters;
	pthread_t t;
	struct pair p;

	if (!pair_open(&p, &params))
		goto out;
	r.p = &p;
	counters = !rdma_rnr_events(dev, &rnr0);
	post_recvs(&p, 0, 8);
	if (credits)
		credits_reach(p.client, 8);
	pthread_create(&t, NULL, slow_receive, &r);
	for (uint32_t burst = 0; burst < r.total / 32; burst++) {
		uint32_t got;

		post_sends(&p, burst * 32, 32);
		got = reap_n(dev_fd, p.client, c, 32);
		for (uint32_t i = 0; i < got; i++) {
			sent += !c[i].status;
			send_failed += !!c[i].status;
		}
		if (got < 32 || send_failed)
			break;
	}
	pthread_join(t, NULL);
	if (counters)
		rdma_rnr_events(dev, &rnr1);
	printf("# credits %s: %u sent, %u failed; %u received intact, %u failed; RNR events %s%" PRIu64 "\n",
	       credits ? "on" : "off", sent, send_failed, r.received, r.failed,
	       counters ? "" : "(no counters) ", rnr1 - rnr0);
	if (credits) {
		KTAP_EXPECT(sent == r.total && r.received == r.total &&
			    !send_failed && !r.failed,
			    "with credits: %u sent, %u received of %u", sent,
			    r.received, r.total);
		KTAP_EXPECT(rnr1 == rnr0, "with credits: %" PRIu64 " RNR events",
			    rnr1 - rnr0);
	} else {
		KTAP_EXPECT(send_failed || rnr1 > rnr0,
			    "without credits the slow receiver never stalled the sender");
	}
out:
	pair_close(&p);
}

static void slow_receiver_needs_credits(void)
{
	struct dmaplane_rdma_device dev;
	uint32_t a, b;

	if (!have_rdma())
		return;
	/* The device's name, for its counters. */
	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, NULL, &a, &b), 0);
	KTAP_EXPECT_RET(dmaplane_ep_device(dev_fd, a, &dev), 0);
	dmaplane_ep_destroy(dev_fd, a);
	dmaplane_ep_destroy(dev_fd, b);
	if (ktap_case_failed())
		return;
	slow_receiver_run(false, dev.name);
	slow_receiver_run(true, dev.name);
}

/*
 * What waits for a credit when the connection ends completes flushed:
 * the peer went away, or the process exited with SENDs waiting.
 */
static void teardown_flushes_waiting(void)
{
	struct dmaplane_completion c[4];
	uint32_t got;
	struct pair p;
	pid_t pid;

	if (!pair_open(&p, NULL))
		goto out;
	post_sends(&p, 0, 4);
	KTAP_EXPECT(info_of(p.client).queued == 4, "queued %u, want 4",
		    info_of(p.client).queued);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, p.smr), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, p.server), 0);
	p.smr = 0;
	p.server = 0;
	got = reap_n(dev_fd, p.client, c, 4);
	for (uint32_t i = 0; i < got; i++)
		KTAP_EXPECT(c[i].status == -ECANCELED && c[i].cookie == i,
			    "waiting SEND %u: cookie %llu status %d", i,
			    (unsigned long long)c[i].cookie, c[i].status);
	KTAP_EXPECT(got == 4 && info_of(p.client).queued == 0,
		    "%u flushed, %u still queued", got, info_of(p.client).queued);
	KTAP_EXPECT_RET(dmaplane_reap(dev_fd, p.client, c, 1, 1, VERBS_WAIT_MS,
				      &got), -ECONNRESET);
out:
	pair_close(&p);
	if (!have_rdma())
		return;
	/* A process that exits with SENDs waiting leaves nothing behind. */
	pid = fork();
	if (pid == 0) {
		int fd = dmaplane_open();
		struct dmaplane_op send = { .opcode = DMAPLANE_OP_SEND };
		uint32_t a, b;

		if (fd < 0 || dmaplane_ep_loopback(fd, guest_ip, NULL, &a, &b))
			_exit(1);
		if (dmaplane_post(fd, a, &send, 1, NULL))
			_exit(2);
		_exit(0);
	}
	child_exited_ok(pid);
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0,
		    "%" PRIu64 " endpoints left after exit",
		    dmaplane_counter("endpoints"));
}

/* The line of debugfs "endpoints" for endpoint @id, or false. */
static bool debugfs_endpoint(uint64_t id, char *line, size_t len)
{
	char want[32];
	bool found = false;
	FILE *f = fopen("/sys/kernel/debug/dmaplane/endpoints", "r");

	snprintf(want, sizeof(want), "id=%" PRIu64 " ", id);
	while (f && !found && fgets(line, len, f))
		found = !strncmp(line, want, strlen(want));
	if (f)
		fclose(f);
	return found;
}

static uint64_t field(const char *line, const char *key)
{
	char want[64];
	const char *p;

	snprintf(want, sizeof(want), " %s=", key);
	p = strstr(line, want);
	return p ? strtoull(p + strlen(want), NULL, 10) : UINT64_MAX;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fputs(text, f) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* Does the trace buffer hold a line with @a and @b? */
static bool trace_has(const char *a, const char *b)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(TRACEFS "/trace", "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	if (f)
		fclose(f);
	return found;
}

/* `dmaplanectl stats --json` lists endpoint @id with its operations. */
static void stats_lists(uint64_t id)
{
	const char *ctl = getenv("DMAPLANE_CTL");
	char cmd[512], out[16384], want[64];
	size_t n = 0;
	FILE *f;

	if (!ctl || access(ctl, X_OK)) {
		printf("# no dmaplanectl (DMAPLANE_CTL): stats not checked\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "%s stats --json", ctl);
	f = popen(cmd, "r");
	KTAP_EXPECT(f, "%s: %s", cmd, strerror(errno));
	if (!f)
		return;
	while (n < sizeof(out) - 1 && fgets(out + n, sizeof(out) - n, f))
		n += strlen(out + n);
	KTAP_EXPECT(pclose(f) == 0, "%s failed", cmd);
	snprintf(want, sizeof(want), "\"id\": %" PRIu64 ",", id);
	KTAP_EXPECT(strstr(out, "\"module\"") && strstr(out, want) &&
		    strstr(out, "\"lat_p99_ns\""),
		    "stats --json lacks endpoint %" PRIu64 ": %.300s", id, out);
}

/*
 * debugfs shows each endpoint's counters and latency percentiles, and
 * the tracepoints record submissions, completions and grants by
 * endpoint id and cookie.
 */
static void observability(void)
{
	static const char *const events[] = {
		"dmaplane_submit", "dmaplane_complete", "dmaplane_credit_grant",
		"dmaplane_credit_stall", "dmaplane_teardown",
	};
	char line[2048], ep[48], cookie[48], path[256];
	struct dmaplane_ep_info ci;
	struct pair p;

	if (!pair_open(&p, NULL))
		goto out;
	post_recvs(&p, 0, 16);
	post_sends(&p, 0, 16);
	expect_sent(&p, 0, 16);
	KTAP_EXPECT(expect_messages(&p, 0, 16) == 16, "16 messages");
	ci = info_of(p.client);
	KTAP_EXPECT(debugfs_endpoint(ci.id, line, sizeof(line)),
		    "no debugfs line for endpoint %llu",
		    (unsigned long long)ci.id);
	KTAP_EXPECT(strstr(line, " state=connected ") &&
		    strstr(line, " credits=on ") && field(line, "ops") == 16 &&
		    field(line, "bytes") == 16 * MSG_SIZE &&
		    field(line, "errors") == 0 &&
		    field(line, "lat_count") == 16 &&
		    field(line, "grants_rcvd") >= 1 &&
		    field(line, "lat_p50_ns") > 0 &&
		    field(line, "lat_p50_ns") <= field(line, "lat_p99_ns") &&
		    field(line, "lat_p99_ns") <= field(line, "lat_p999_ns") &&
		    field(line, "lat_p999_ns") <= field(line, "lat_max_ns"),
		    "endpoint line: %s", line);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		snprintf(path, sizeof(path), TRACEFS "/events/dmaplane/%s",
			 events[i]);
		KTAP_EXPECT(access(path, F_OK) == 0, "no tracepoint %s", path);
	}
	/* One SEND with the tracepoints on. */
	if (write_file(TRACEFS "/trace", "") ||
	    write_file(TRACEFS "/events/dmaplane/enable", "1")) {
		KTAP_EXPECT(0, "cannot enable the dmaplane events");
		goto out;
	}
	post_recvs(&p, 16, 1);
	post_sends(&p, 16, 1);
	expect_sent(&p, 16, 1);
	expect_messages(&p, 16, 1);
	write_file(TRACEFS "/events/dmaplane/enable", "0");
	snprintf(ep, sizeof(ep), "ep=%llu ", (unsigned long long)ci.id);
	snprintf(cookie, sizeof(cookie), "cookie=16 ");
	KTAP_EXPECT(trace_has("dmaplane_submit:", ep) &&
		    trace_has("dmaplane_submit:", cookie),
		    "no submit event for %s%s", ep, cookie);
	KTAP_EXPECT(trace_has("dmaplane_complete:", ep) &&
		    trace_has("dmaplane_complete:", cookie),
		    "no completion event for %s%s", ep, cookie);
	KTAP_EXPECT(trace_has("dmaplane_credit_grant:", "received"),
		    "no grant event");
	write_file(TRACEFS "/trace", "");
	stats_lists(ci.id);
out:
	pair_close(&p);
}

static void setup(void)
{
	struct dmaplane_info info;

	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", strerror(-dev_fd));
	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_CREDITS, "no CAP_CREDITS");
	guest_ip = getenv("DP_GUEST_IP");
	/* The tracepoints live in tracefs. */
	if (access(TRACEFS "/events", F_OK))
		if (system("mount -t tracefs nodev " TRACEFS " 2>/dev/null"))
			printf("# tracefs could not be mounted\n");
}

static const struct ktap_case cases[] = {
	KTAP_CASE(setup),
	KTAP_CASE(credits_follow_receives),
	KTAP_CASE(send_waits_for_credit),
	KTAP_CASE(nowait_is_eagain),
	KTAP_CASE(slow_receiver_needs_credits),
	KTAP_CASE(teardown_flushes_waiting),
	KTAP_CASE(observability),
};

int main(void)
{
	return ktap_run_suite("flow", cases, sizeof(cases) / sizeof(cases[0]));
}
