// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl stream: sustained, checksummed SENDs over one dmaplane RC
 * connection. A proof that flow control loses and overruns nothing, and
 * a benchmark of it.
 *
 *   stream --serve [--addr IP] [--port N] [--size MAX] [--recv-depth N]
 *          [--slow-us U] [--connections N] [--window W] [--no-credits]
 *   stream --addr IP [--port N] [--duration S] [--size S] [--qd N]
 *          [--window W] [--no-credits]
 *   stream --addr IP [--port N] --sweep [--qds 1,4,16,64]
 *          [--sizes 4K,64K,1M] [--duration S]
 *
 * The receiver keeps --recv-depth RECVs of MAX bytes posted, one per
 * slot, and re-posts a slot once its message is checked. With --slow-us
 * it sleeps between reaps and takes at most SLOW_BATCH completions each
 * time, so a sender outruns it and must wait for credits (or, with
 * --no-credits, for the device's receiver-not-ready retries). Endpoints
 * accepted by the receiver get the listener's depths and window; the
 * credit mode is the connecting side's.
 *
 * The sender keeps --qd SENDs in flight for --duration seconds (for each
 * cell of a sweep, one after the other on one connection; sequence
 * numbers run on), then sends a FIN whose seq is the number of data
 * messages sent. The receiver answers with its tally (a SUMMARY) and
 * both print a verdict: "integrity: ok" needs every message received
 * once, intact and in order, and no failed completion.
 *
 * Every message starts with struct stream_hdr, 32 bytes in host byte
 * order (both ends must share it). A data message's payload is
 * xorshift64 output seeded by its seq, and the checksum is FNV-1a over
 * the payload taken 64 bits at a time (the tail byte by byte). A message
 * is bad when its magic, length or checksum is wrong, or its first
 * payload word is not its seq's (which ties the header to the data); a
 * duplicate when its seq was seen; reordered when it arrives after a
 * later one; lost when the FIN counts it and it never came.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmaplanectl.h"
#include "libdmaplane.h"

#define STREAM_PORT	18515
#define STREAM_MAGIC	0x44505354u	/* "DPST" */
#define STREAM_FIN	(1u << 0)	/* end of stream: seq = messages sent */
#define STREAM_SUMMARY	(1u << 1)	/* a struct stream_tally follows */
#define HDR		((uint32_t)sizeof(struct stream_hdr))
#define MSG_MIN		64u		/* a header and some payload */
#define CTRL_BYTES	4096u		/* FIN and SUMMARY, past the data slots */
#define FIN_COOKIE	UINT64_MAX
#define SUMMARY_COOKIE	(UINT64_MAX - 1)
#define REAP_MS		1000u
#define PEER_WAIT_MS	60000u		/* nothing moved this long: peer gone */
#define ACCEPT_WAIT_MS	300000u		/* for a sender to connect */
#define DRAIN_MS	30000u		/* for the peer to disconnect */
#define TEARDOWN_MS	5000u		/* for a broken connection's flush */
#define SLOW_BATCH	4u
#define SWEEP_MAX	16
#define RNR_MAX		16

struct stream_hdr {
	uint32_t magic;
	uint32_t flags;		/* STREAM_FIN, STREAM_SUMMARY or 0 (data) */
	uint64_t seq;		/* data: 0, 1, ...; FIN, SUMMARY: messages sent */
	uint32_t len;		/* the whole message, header included */
	uint32_t reserved;	/* 0 */
	uint64_t checksum;	/* of the len - HDR bytes after the header */
};

_Static_assert(sizeof(struct stream_hdr) == 32, "stream_hdr is on the wire");

/* What a receiver saw; the payload of its SUMMARY. */
struct stream_tally {
	uint64_t received;	/* distinct intact data messages */
	uint64_t lost;
	uint64_t dup;
	uint64_t bad;
	uint64_t reordered;
	uint64_t bytes;		/* of the received ones, headers included */
};

/* ---- payload ---- */

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static uint64_t fnv(uint64_t h, uint64_t v)
{
	return (h ^ v) * FNV_PRIME;
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = FNV_OFFSET, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = fnv(h, w);
	}
	for (; i < n; i++)
		h = fnv(h, p[i]);
	return h;
}

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t seed(uint64_t seq)
{
	return (seq + 1) * 0x9e3779b97f4a7c15ULL | 1;
}

/* Message @seq's @n payload bytes into @p; their checksum. */
static uint64_t fill_payload(unsigned char *p, size_t n, uint64_t seq)
{
	uint64_t s = seed(seq), h = FNV_OFFSET, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		w = xorshift64(&s);
		memcpy(p + i, &w, 8);
		h = fnv(h, w);
	}
	for (w = xorshift64(&s); i < n; i++, w >>= 8) {
		p[i] = (unsigned char)w;
		h = fnv(h, p[i]);
	}
	return h;
}

static void put_msg(unsigned char *p, uint32_t flags, uint64_t seq,
		    uint32_t len, uint64_t sum)
{
	struct stream_hdr h = {
		.magic = STREAM_MAGIC, .flags = flags, .seq = seq, .len = len,
		.checksum = sum,
	};

	memcpy(p, &h, sizeof(h));
}

static void put_data(unsigned char *p, uint64_t seq, uint32_t len)
{
	put_msg(p, 0, seq, len, fill_payload(p + HDR, len - HDR, seq));
}

/* The header of a received message if magic, length and checksum hold. */
static bool get_msg(const unsigned char *p, uint32_t bytes,
		    struct stream_hdr *h)
{
	if (bytes < HDR)
		return false;
	memcpy(h, p, sizeof(*h));
	return h->magic == STREAM_MAGIC && h->len == bytes && !h->reserved &&
	       checksum(p + HDR, bytes - HDR) == h->checksum;
}

/* Whether a data message's first payload word is its seq's. */
static bool payload_is_seq(const unsigned char *p, uint64_t seq)
{
	uint64_t s = seed(seq), w;

	memcpy(&w, p + HDR, 8);
	return w == xorshift64(&s);
}

/* ---- reports: errno names, counters, tallies ---- */

static const char *errname(int err)
{
	const char *name = strerrorname_np(-err);

	return name ? name : "E?";
}

/* "dmaplanectl: stream: @what (ENAME): strerror"; 1. */
static int stream_fail(const char *what, int err)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "stream: %s (%s)", what, errname(err));
	return fail(buf, err);
}

static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* Completions that failed, by status. */
struct errs {
	int n;
	int status[8];
	uint64_t count[8];
	uint64_t total;
	int cause;		/* the first that was not a flush, else a flush */
};

static void errs_add(struct errs *e, int status)
{
	int i;

	if (!e->total++ || e->cause == -ECANCELED)
		e->cause = status;
	for (i = 0; i < e->n && e->status[i] != status; i++)
		;
	if (i == e->n && e->n == 8)
		return;
	e->n += i == e->n;
	e->status[i] = status;
	e->count[i]++;
}

static void errs_print(const struct errs *e, FILE *tbl, FILE *js)
{
	if (tbl)
		fprintf(tbl, "%-17s%s", "completion errors", e->n ? "" : " none");
	if (js)
		fprintf(js, ", \"completion_errors\": [");
	for (int i = 0; i < e->n; i++) {
		if (tbl)
			fprintf(tbl, " %s x%" PRIu64, errname(e->status[i]),
				e->count[i]);
		if (js)
			fprintf(js, "%s{\"status\": %d, \"name\": \"%s\", "
				"\"count\": %" PRIu64 "}", i ? ", " : "",
				e->status[i], errname(e->status[i]),
				e->count[i]);
	}
	if (tbl)
		fprintf(tbl, "\n");
	if (js)
		fprintf(js, "]");
}

/*
 * The RDMA device's receiver-not-ready counters (and mlx5's
 * out_of_buffer), read from sysfs before and after a run.
 */
struct rnr {
	char dir[160];
	int n;			/* -1: no hw_counters directory */
	char name[RNR_MAX][48];
	uint64_t start[RNR_MAX], delta[RNR_MAX];
	bool ok[RNR_MAX];
};

static int read_counter(const struct rnr *r, int i, uint64_t *v)
{
	char path[256];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", r->dir, r->name[i]);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ok = fscanf(f, "%" SCNu64, v) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void rnr_begin(struct rnr *r, const char *device)
{
	struct dirent *e;
	DIR *d;

	snprintf(r->dir, sizeof(r->dir),
		 "/sys/class/infiniband/%s/ports/1/hw_counters", device);
	r->n = -1;
	d = opendir(r->dir);
	if (!d)
		return;
	for (r->n = 0; (e = readdir(d)) && r->n < RNR_MAX;) {
		size_t len = strlen(e->d_name);

		if ((strstr(e->d_name, "rnr") ||
		     !strcmp(e->d_name, "out_of_buffer")) &&
		    len < sizeof(r->name[0]))
			memcpy(r->name[r->n++], e->d_name, len + 1);
	}
	closedir(d);
	qsort(r->name, r->n, sizeof(r->name[0]), cmp_name);
	for (int i = 0; i < r->n; i++)
		r->ok[i] = !read_counter(r, i, &r->start[i]);
}

static void rnr_end(struct rnr *r)
{
	uint64_t v;

	for (int i = 0; i < r->n; i++) {
		r->ok[i] = r->ok[i] && !read_counter(r, i, &v);
		r->delta[i] = r->ok[i] ? v - r->start[i] : 0;
	}
}

static void rnr_print(const struct rnr *r, const char *device, FILE *tbl,
		      FILE *js)
{
	char label[DMAPLANE_RDMA_NAME_LEN + 8];

	snprintf(label, sizeof(label), "rnr (%s)", device);
	if (tbl && r->n < 0)
		fprintf(tbl, "%-17s unavailable (no %s)\n", "rnr", r->dir);
	else if (tbl)
		fprintf(tbl, "%-17s", label);
	if (js)
		fprintf(js, ", \"rnr\": {\"device\": \"%s\", \"available\": %s, "
			"\"counters\": {", device, r->n < 0 ? "false" : "true");
	for (int i = 0; i < r->n; i++) {
		if (tbl && r->ok[i])
			fprintf(tbl, " %s +%" PRIu64, r->name[i], r->delta[i]);
		else if (tbl)
			fprintf(tbl, " %s ?", r->name[i]);
		if (js && r->ok[i])
			fprintf(js, "%s\"%s\": %" PRIu64, i ? ", " : "",
				r->name[i], r->delta[i]);
		else if (js)
			fprintf(js, "%s\"%s\": null", i ? ", " : "", r->name[i]);
	}
	if (tbl && r->n >= 0)
		fprintf(tbl, "%s\n", r->n ? "" : " no rnr counters");
	if (js)
		fprintf(js, "}}");
}

/* The receiver's tally; @fin: whether the FIN told how many were sent. */
static void tally_print(const struct stream_tally *t, bool fin, uint64_t sent,
			FILE *tbl, FILE *js)
{
	char of[32] = " (no FIN)";

	if (fin)
		snprintf(of, sizeof(of), " of %" PRIu64, sent);
	if (tbl)
		fprintf(tbl, "receiver          received %" PRIu64 "%s, lost %"
			PRIu64 ", dup %" PRIu64 ", bad %" PRIu64 ", reordered %"
			PRIu64 ", %" PRIu64 " bytes\n", t->received, of, t->lost,
			t->dup, t->bad, t->reordered, t->bytes);
	if (js && fin)
		snprintf(of, sizeof(of), "%" PRIu64, sent);
	if (js)
		fprintf(js, ", \"receiver\": {\"received\": %" PRIu64
			", \"sent\": %s, \"lost\": %" PRIu64 ", \"dup\": %" PRIu64
			", \"bad\": %" PRIu64 ", \"reordered\": %" PRIu64
			", \"bytes\": %" PRIu64 "}", t->received,
			fin ? of : "null", t->lost, t->dup, t->bad,
			t->reordered, t->bytes);
}

/*
 * The verdict: intact when the tally is there (@have; else @missing
 * says what is not), counts @sent messages received once each, intact
 * and in order, no completion failed and the run did not (@err). @why
 * says what failed.
 */
static bool verdict(const struct stream_tally *t, bool have,
		    const char *missing, uint64_t sent, uint64_t failed,
		    int err, char *why, size_t len)
{
	why[0] = '\0';
	if (err)
		appendf(why, len, ", run: %s", errname(err));
	if (!have)
		appendf(why, len, ", %s", missing);
	if (failed)
		appendf(why, len, ", %" PRIu64 " failed completions", failed);
	if (have && t->received != sent)
		appendf(why, len, ", received %" PRIu64 " of %" PRIu64,
			t->received, sent);
	if (have && t->lost)
		appendf(why, len, ", lost %" PRIu64, t->lost);
	if (have && t->dup)
		appendf(why, len, ", dup %" PRIu64, t->dup);
	if (have && t->bad)
		appendf(why, len, ", bad %" PRIu64, t->bad);
	if (have && t->reordered)
		appendf(why, len, ", reordered %" PRIu64, t->reordered);
	return !why[0];
}

static void verdict_print(bool ok, const char *why, FILE *tbl, FILE *js)
{
	if (tbl && ok)
		fprintf(tbl, "integrity: ok\n");
	else if (tbl)
		fprintf(tbl, "integrity: FAILED (%s)\n", why + 2);
	if (js)
		fprintf(js, ", \"integrity\": \"%s\", \"integrity_detail\": "
			"\"%s\"}\n", ok ? "ok" : "failed", ok ? "" : why + 2);
}

/* "1M", "64K" or "100" (bytes). */
static const char *size_str(uint64_t size, char *buf, size_t len)
{
	if (size >= 1 << 20 && !(size & ((1 << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 "M", size >> 20);
	else if (size >= 1 << 10 && !(size & ((1 << 10) - 1)))
		snprintf(buf, len, "%" PRIu64 "K", size >> 10);
	else
		snprintf(buf, len, "%" PRIu64, size);
	return buf;
}

/* ---- one side of a connection ---- */

/* An endpoint and one HUGE buffer, mmapped and registered on it. */
struct conn {
	int fd;
	uint32_t ep, buf, mr;		/* 0: none */
	unsigned char *p;
	uint64_t len;
	bool credits;			/* flow control on */
	uint32_t window;		/* credits it grants its peer at most */
	uint32_t peer_recv_depth;	/* from the peer's handshake */
	char peer[INET6_ADDRSTRLEN];
	uint16_t peer_port;
	char device[DMAPLANE_RDMA_NAME_LEN];
	struct rnr rnr;
};

/* Learn the connection's facts and start counting RNR events. */
static int conn_learn(struct conn *c)
{
	struct dmaplane_rdma_device dev;
	struct dmaplane_ep_info info;
	int ret = dmaplane_ep_info(c->fd, c->ep, &info);

	if (ret)
		return ret;
	c->credits = info.flags & DMAPLANE_EP_INFO_CREDITS;
	c->window = info.credit_window;
	c->peer_recv_depth = info.peer_recv_depth;
	c->peer_port = info.peer.port;
	if (!inet_ntop(info.peer.family, info.peer.addr, c->peer,
		       sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "?");
	snprintf(c->device, sizeof(c->device), "%s",
		 dmaplane_ep_device(c->fd, c->ep, &dev) ? "?" : dev.name);
	rnr_begin(&c->rnr, c->device);
	return 0;
}

static int conn_mem(struct conn *c, uint64_t bytes)
{
	struct dmaplane_buffer_create req = {
		.size = bytes, .numa_node = DMAPLANE_NUMA_ANY,
		.flags = DMAPLANE_BUF_HUGE,
	};
	void *p;
	int ret = dmaplane_buffer_create_req(c->fd, &req);

	if (ret)
		return ret;
	c->buf = req.handle;
	p = mmap(NULL, req.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 c->fd, req.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	c->p = p;
	c->len = req.alloc_size;
	return dmaplane_mr_reg(c->fd, c->ep, c->buf, 0, 0,
			       DMAPLANE_MR_LOCAL_WRITE, &c->mr, NULL);
}

/*
 * A connection where nothing moves: its credit state, and (as root, with
 * debugfs) the module's counters for it, to tell a grant that was never
 * sent from one that never arrived.
 */
static void stall_report(const struct dmaplane_ep_info *info)
{
	char line[2048], key[32];
	FILE *f;

	fprintf(stderr, "dmaplanectl: stream: endpoint %llu: credits %u, peer credits %u, queued %u, in flight %u, stalls %llu\n",
		(unsigned long long)info->id, info->credits,
		info->peer_credits, info->queued, info->inflight,
		(unsigned long long)info->stalls);
	f = fopen("/sys/kernel/debug/dmaplane/endpoints", "r");
	if (!f)
		return;
	snprintf(key, sizeof(key), "id=%llu ", (unsigned long long)info->id);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			fprintf(stderr, "dmaplanectl: stream: %s", line);
	fclose(f);
}

/*
 * After a REAP found nothing: 0 while the connection is up and something
 * moved in the last PEER_WAIT_MS, else why it is over.
 */
static int peer_alive(const struct conn *c, double moved)
{
	struct dmaplane_ep_info info;
	int ret = dmaplane_ep_info(c->fd, c->ep, &info);

	if (ret)
		return ret;
	if (info.state != DMAPLANE_EP_CONNECTED)
		return info.error ? info.error : -ENOTCONN;
	if (now_ns() - moved <= PEER_WAIT_MS * 1e6)
		return 0;
	fprintf(stderr, "dmaplanectl: stream: nothing completed in %u s\n",
		PEER_WAIT_MS / 1000);
	stall_report(&info);
	return -ETIMEDOUT;
}

/*
 * Why a completion failed: for a flush (-ECANCELED), the error that
 * ended the connection, when the endpoint knows it.
 */
static int conn_error(const struct conn *c, int status)
{
	struct dmaplane_ep_info info;

	if (status == -ECANCELED && !dmaplane_ep_info(c->fd, c->ep, &info) &&
	    info.error)
		return info.error;
	return status;
}

/*
 * Wait up to @ms for @outstanding operations to complete or be flushed
 * (the peer disconnecting flushes posted RECVs): until then they keep
 * the MR.
 */
static void conn_drain(const struct conn *c, uint32_t outstanding,
		       uint32_t ms)
{
	struct dmaplane_completion comp[DMAPLANE_POST_MAX];
	double end = now_ns() + ms * 1e6;

	while (outstanding && now_ns() < end) {
		uint32_t got;
		int ret = dmaplane_reap(c->fd, c->ep, comp, DMAPLANE_POST_MAX,
					1, REAP_MS, &got);

		/* A dead peer's error is -ETIMEDOUT too: ask the endpoint. */
		if (ret == -ETIMEDOUT)
			ret = peer_alive(c, now_ns());
		if (ret)
			return;
		outstanding -= got < outstanding ? got : outstanding;
	}
}

/*
 * Free everything, once @outstanding operations are done (see
 * conn_drain). What is still busy after that goes when the file closes.
 */
static void conn_close(struct conn *c, uint32_t outstanding, uint32_t ms)
{
	int ret = 0;

	if (c->mr)
		conn_drain(c, outstanding, ms);
	if (c->mr)
		ret = dmaplane_mr_dereg(c->fd, c->mr);
	if (c->p)
		munmap(c->p, c->len);
	if (!ret && c->buf)
		ret = dmaplane_buffer_destroy(c->fd, c->buf);
	if (!ret && c->ep)
		ret = dmaplane_ep_destroy(c->fd, c->ep);
	if (ret)
		fprintf(stderr, "dmaplanectl: stream: cleanup: %s (%s); the "
			"rest goes when the file closes\n", strerror(-ret),
			errname(ret));
	*c = (struct conn){ .fd = c->fd };
}

/* ---- receiver ---- */

struct rx {
	struct conn c;
	uint64_t max;		/* slot bytes: the largest message taken */
	uint32_t depth;		/* slots */
	uint32_t posted;	/* RECVs outstanding */
	uint64_t expected;	/* the seq that would be in order next */
	uint64_t sent;		/* the FIN's count */
	bool fin;
	uint64_t *seen;		/* bitmap of seqs received */
	size_t seen_words;
	struct stream_tally t;
	double start, end;
};

/* Mark @seq seen; *@dup says whether it was already. */
static int rx_mark(struct rx *r, uint64_t seq, bool *dup)
{
	size_t w = seq / 64, n = r->seen_words ? r->seen_words : 1024;
	uint64_t *more;

	if (w >= r->seen_words) {
		while (n <= w && n < SIZE_MAX / 2 / sizeof(*more))
			n *= 2;
		more = n > w ? realloc(r->seen, n * sizeof(*more)) : NULL;
		if (!more)
			return -ENOMEM;
		memset(more + r->seen_words, 0,
		       (n - r->seen_words) * sizeof(*more));
		r->seen = more;
		r->seen_words = n;
	}
	*dup = r->seen[w] >> (seq % 64) & 1;
	r->seen[w] |= 1ULL << (seq % 64);
	return 0;
}

/* Check and count one message of @bytes in @p. */
static int rx_message(struct rx *r, const unsigned char *p, uint32_t bytes)
{
	struct stream_hdr h;
	bool dup = false;
	int ret;

	if (!get_msg(p, bytes, &h)) {
		r->t.bad++;
		return 0;
	}
	if (h.flags == STREAM_FIN) {	/* after every data message (RC) */
		r->fin = true;
		r->sent = h.seq;
		r->t.lost = h.seq > r->t.received ? h.seq - r->t.received : 0;
		return 0;
	}
	if (h.flags || bytes < MSG_MIN || !payload_is_seq(p, h.seq)) {
		r->t.bad++;
		return 0;
	}
	ret = rx_mark(r, h.seq, &dup);
	if (ret || dup) {
		r->t.dup += dup;
		return ret;
	}
	r->t.received++;
	r->t.bytes += bytes;
	if (h.seq < r->expected)
		r->t.reordered++;
	else
		r->expected = h.seq + 1;
	return 0;
}

/* Post a RECV for each of @n @slots, in one POST. */
static int rx_post(struct rx *r, const uint64_t *slots, uint32_t n)
{
	struct dmaplane_op ops[DMAPLANE_POST_MAX];
	uint32_t posted;
	int ret;

	for (uint32_t i = 0; i < n; i++)
		ops[i] = (struct dmaplane_op){
			.cookie = slots[i], .opcode = DMAPLANE_OP_RECV,
			.mr = r->c.mr, .offset = slots[i] * r->max,
			.length = r->max,
		};
	ret = dmaplane_post(r->c.fd, r->c.ep, ops, n, &posted);
	r->posted += posted;
	return ret;
}

static int rx_setup(struct rx *r)
{
	uint64_t slots[DMAPLANE_POST_MAX];
	int ret = conn_learn(&r->c);

	if (!ret)
		ret = conn_mem(&r->c, r->depth * r->max + CTRL_BYTES);
	for (uint32_t s = 0; !ret && s < r->depth; s += DMAPLANE_POST_MAX) {
		uint32_t n = r->depth - s < DMAPLANE_POST_MAX ?
			     r->depth - s : DMAPLANE_POST_MAX;

		for (uint32_t i = 0; i < n; i++)
			slots[i] = s + i;
		ret = rx_post(r, slots, n);
	}
	r->start = now_ns();
	return ret;
}

static int rx_completion(struct rx *r, const struct dmaplane_completion *c)
{
	r->posted--;
	if (c->status == -EMSGSIZE)
		fprintf(stderr, "dmaplanectl: stream: a message larger than "
			"--size %" PRIu64 " arrived\n", r->max);
	if (c->status)
		return conn_error(&r->c, c->status);
	if (c->opcode != DMAPLANE_OP_RECV || c->cookie >= r->depth)
		return -EPROTO;
	return rx_message(r, r->c.p + c->cookie * r->max, c->bytes);
}

/* Reap, check and re-post until the FIN. */
static int rx_stream(struct rx *r, const struct options *o)
{
	static struct dmaplane_completion c[DMAPLANE_POST_MAX];
	uint32_t batch = o->slow_us ? SLOW_BATCH : DMAPLANE_POST_MAX;
	uint64_t slots[DMAPLANE_POST_MAX];
	double moved = now_ns();
	int ret = 0;

	while (!ret && !r->fin) {
		uint32_t got, n = 0;

		ret = dmaplane_reap(r->c.fd, r->c.ep, c, batch, 1, REAP_MS,
				    &got);
		if (ret == -ETIMEDOUT) {
			ret = peer_alive(&r->c, moved);
			continue;
		}
		moved = now_ns();
		for (uint32_t i = 0; i < got && !ret; i++) {
			ret = rx_completion(r, &c[i]);
			if (!ret && !r->fin)
				slots[n++] = c[i].cookie;
		}
		if (!ret && n)
			ret = rx_post(r, slots, n);
		if (!ret && o->slow_us)
			usleep(o->slow_us);
	}
	r->end = now_ns();
	return ret;
}

/*
 * A RECV completing after the FIN: nothing may arrive then, but the
 * sender disconnecting once it has the tally flushes the rest, maybe
 * before the tally's SEND completion is reaped.
 */
static int rx_after_fin(struct rx *r, const struct dmaplane_completion *c)
{
	r->posted--;
	if (!c->status)
		return -EPROTO;
	return c->status == -ECANCELED ? 0 : conn_error(&r->c, c->status);
}

/* SEND the tally back and wait for that SEND to complete. */
static int rx_reply(struct rx *r)
{
	uint64_t off = r->depth * r->max;
	unsigned char *p = r->c.p + off;
	struct dmaplane_op op = {
		.cookie = SUMMARY_COOKIE, .opcode = DMAPLANE_OP_SEND,
		.mr = r->c.mr, .offset = off, .length = HDR + sizeof(r->t),
	};
	struct dmaplane_completion c;
	double moved = now_ns();
	uint32_t got;
	int ret;

	memcpy(p + HDR, &r->t, sizeof(r->t));
	put_msg(p, STREAM_SUMMARY, r->sent, op.length,
		checksum(p + HDR, sizeof(r->t)));
	ret = dmaplane_post(r->c.fd, r->c.ep, &op, 1, NULL);
	for (c.cookie = 0; !ret && c.cookie != SUMMARY_COOKIE;) {
		ret = dmaplane_reap(r->c.fd, r->c.ep, &c, 1, 1, REAP_MS, &got);
		if (ret == -ETIMEDOUT)
			ret = peer_alive(&r->c, moved);
		else if (!ret && c.cookie != SUMMARY_COOKIE)
			ret = rx_after_fin(r, &c);
	}
	return ret ? ret : conn_error(&r->c, c.status);
}

/* Print the receiver's figures and verdict; whether the stream was intact. */
static bool rx_report(const struct rx *r, const struct options *o, int err)
{
	double secs = (r->end - r->start) / 1e9;
	FILE *tbl = o->tbl, *js = o->js;
	char why[256], sz[32];
	bool ok = verdict(&r->t, r->fin, "no FIN", r->sent, 0, err, why,
			  sizeof(why));

	if (tbl)
		fprintf(tbl, "stream from %s port %u on %s: credits %s (window "
			"%u), %u slots of %s%s\nduration          %.2f s\n"
			"throughput        %.1f MB/s\n", r->c.peer,
			r->c.peer_port, r->c.device, r->c.credits ? "on" : "off",
			r->c.window, r->depth, size_str(r->max, sz, sizeof(sz)),
			o->slow_us ? ", slow" : "", secs,
			secs > 0 ? r->t.bytes / secs / 1e6 : 0);
	if (js)
		fprintf(js, "{\"benchmark\": \"stream\", \"side\": \"receiver\", "
			"\"peer\": \"%s\", \"device\": \"%s\", \"credits\": %s, "
			"\"credit_window\": %u, \"recv_depth\": %u, "
			"\"max_bytes\": %" PRIu64 ", \"slow_us\": %u, "
			"\"seconds\": %.3f, \"MBps\": %.1f", r->c.peer,
			r->c.device, r->c.credits ? "true" : "false",
			r->c.window, r->depth, r->max, o->slow_us, secs,
			secs > 0 ? r->t.bytes / secs / 1e6 : 0);
	tally_print(&r->t, r->fin, r->sent, tbl, js);
	rnr_print(&r->c.rnr, r->c.device, tbl, js);
	verdict_print(ok, why, tbl, js);
	if (tbl)
		fflush(tbl);
	return ok;
}

/* One connection, start to end. 0: intact, 1: not, <0: it failed. */
static int rx_connection(int fd, uint32_t listener, const struct options *o)
{
	struct rx r = {
		.c.fd = fd, .max = o->size, .depth = o->recv_depth,
	};
	bool ok;
	int ret = dmaplane_ep_accept_wait(fd, listener, ACCEPT_WAIT_MS,
					  &r.c.ep);

	if (ret) {
		stream_fail("ENDPOINT_ACCEPT", ret);
		return ret;
	}
	ret = rx_setup(&r);
	if (!ret)
		ret = rx_stream(&r, o);
	if (!ret)
		ret = rx_reply(&r);
	if (ret)
		stream_fail("the connection failed", ret);
	rnr_end(&r.c.rnr);
	ok = rx_report(&r, o, ret);
	conn_close(&r.c, r.posted, ret ? TEARDOWN_MS : DRAIN_MS);
	free(r.seen);
	return ret ? ret : !ok;
}

static int stream_serve(int fd, const struct options *o)
{
	struct dmaplane_ep_create p = {
		.recv_depth = o->recv_depth, .credit_window = o->window,
		.flags = o->no_credits ? DMAPLANE_EP_NO_CREDITS : 0,
	};
	struct dmaplane_addr a;
	uint32_t listener;
	int ret = 0, failed = 0;

	if (o->size < MSG_MIN || o->size > DMAPLANE_OP_MAX_LENGTH)
		return stream_fail("--size", -EINVAL);
	if (dmaplane_addr_parse(o->addr ? o->addr : "0.0.0.0",
				o->port ? o->port : STREAM_PORT, &a))
		return stream_fail("--addr", -EINVAL);
	ret = dmaplane_ep_create(fd, &p, &listener);
	if (ret)
		return stream_fail("ENDPOINT_CREATE", ret);
	ret = dmaplane_ep_listen(fd, listener, 1, &a);
	if (ret) {
		dmaplane_ep_destroy(fd, listener);
		return stream_fail("ENDPOINT_LISTEN", ret);
	}
	fprintf(stderr, "stream: listening on %s port %u\n",
		o->addr ? o->addr : "any address", a.port);
	for (uint32_t i = 0; i < o->connections && ret >= 0; i++) {
		ret = rx_connection(fd, listener, o);
		failed |= ret != 0;
	}
	dmaplane_ep_destroy(fd, listener);
	return failed;
}

/* ---- sender ---- */

/* One second of a run (the last one may be shorter). */
struct second {
	double secs;
	uint64_t msgs, bytes;
	uint32_t cmin, cmax;	/* credits held; cmin > cmax: no sample */
};

/* One (qd, size) run: the whole run, or one cell of a sweep. */
struct cell {
	uint32_t qd;
	uint64_t size;
	double secs;
	uint64_t msgs, bytes, stalls;
};

struct tx {
	struct conn c;
	uint32_t qd;		/* the current cell's */
	uint64_t size;
	uint64_t ctrl_off;
	unsigned char *busy;	/* slot i has a SEND in flight */
	uint64_t seq;		/* next data message; runs on across cells */
	uint64_t sent, bytes;	/* data SENDs completed */
	uint32_t inflight;	/* SENDs posted and not reaped */
	bool summary_posted, fin_done, have_tally;
	uint64_t tally_sent;	/* the count the receiver's tally is about */
	struct stream_tally tally;
	struct errs errs;
	struct dmaplane_ep_info info;	/* the latest sample */
	uint64_t stalls0, stall_ns0;
	uint32_t cmin, cmax;	/* credits held over the run */
	double moved;		/* a completion last arrived */
	double secs;		/* of data cells, together */
	struct second *per_sec;
	uint32_t nr_secs, cap_secs;
};

static void credits_note(uint32_t *min, uint32_t *max, uint32_t v)
{
	*min = v < *min ? v : *min;
	*max = v > *max ? v : *max;
}

/* ENDPOINT_INFO, once per round: credits held now into @sec and the run. */
static int tx_sample(struct tx *t, struct second *sec)
{
	int ret = dmaplane_ep_info(t->c.fd, t->c.ep, &t->info);

	if (ret || !t->c.credits)
		return ret;
	credits_note(&t->cmin, &t->cmax, t->info.credits);
	if (sec)
		credits_note(&sec->cmin, &sec->cmax, t->info.credits);
	return 0;
}

/* The tally the receiver SENT back, if it holds together. */
static void tx_tally(struct tx *t, uint32_t bytes)
{
	const unsigned char *p = t->c.p + t->ctrl_off;
	struct stream_hdr h;

	if (bytes != HDR + sizeof(t->tally) || !get_msg(p, bytes, &h) ||
	    h.flags != STREAM_SUMMARY) {
		fprintf(stderr, "dmaplanectl: stream: bad tally from the "
			"receiver\n");
		return;
	}
	memcpy(&t->tally, p + HDR, sizeof(t->tally));
	t->tally_sent = h.seq;
	t->have_tally = true;
}

static void tx_complete(struct tx *t, const struct dmaplane_completion *c,
			struct second *sec)
{
	if (c->status)
		errs_add(&t->errs, c->status);
	if (c->opcode == DMAPLANE_OP_RECV) {
		t->summary_posted = false;
		if (!c->status)
			tx_tally(t, c->bytes);
		return;
	}
	t->inflight--;
	if (c->cookie == FIN_COOKIE) {
		t->fin_done = !c->status;
		return;
	}
	t->busy[c->cookie % t->qd] = 0;
	if (c->status)
		return;
	t->sent++;
	t->bytes += t->size;
	if (sec) {
		sec->msgs++;
		sec->bytes += t->size;
	}
}

/* One REAP: whatever completed, or why the connection is over. */
static int tx_reap(struct tx *t, struct second *sec)
{
	static struct dmaplane_completion c[DMAPLANE_POST_MAX];
	uint32_t got;
	int ret = dmaplane_reap(t->c.fd, t->c.ep, c, DMAPLANE_POST_MAX, 1,
				REAP_MS, &got);

	if (ret == -ETIMEDOUT)
		return peer_alive(&t->c, t->moved);
	if (ret)
		return ret;
	t->moved = now_ns();
	for (uint32_t i = 0; i < got; i++)
		tx_complete(t, &c[i], sec);
	return 0;
}

/* Fill every slot whose last SEND completed and post them, one POST. */
static int tx_post(struct tx *t)
{
	struct dmaplane_op ops[DMAPLANE_POST_MAX];
	uint32_t n = 0, posted;
	int ret;

	while (n < DMAPLANE_POST_MAX && !t->busy[t->seq % t->qd]) {
		uint64_t slot = t->seq % t->qd;

		put_data(t->c.p + slot * t->size, t->seq, t->size);
		ops[n++] = (struct dmaplane_op){
			.cookie = t->seq, .opcode = DMAPLANE_OP_SEND,
			.mr = t->c.mr, .offset = slot * t->size,
			.length = t->size,
		};
		t->busy[slot] = 1;
		t->seq++;
	}
	if (!n)
		return 0;
	ret = dmaplane_post(t->c.fd, t->c.ep, ops, n, &posted);
	t->inflight += posted;
	/* What was not posted is sent again, from the same seq. */
	for (uint32_t i = posted; i < n; i++)
		t->busy[ops[i].cookie % t->qd] = 0;
	t->seq -= n - posted;
	return ret == -EAGAIN ? 0 : ret;
}

/* Close second @sec; into the per-second array and onto @tbl (if any). */
static int tx_second(struct tx *t, struct second *sec, double secs, FILE *tbl)
{
	struct second *more;

	sec->secs = secs;
	if (t->nr_secs == t->cap_secs) {
		t->cap_secs = t->cap_secs ? 2 * t->cap_secs : 64;
		more = realloc(t->per_sec, t->cap_secs * sizeof(*more));
		if (!more)
			return -ENOMEM;
		t->per_sec = more;
	}
	t->per_sec[t->nr_secs++] = *sec;
	if (tbl && sec->cmin <= sec->cmax)
		fprintf(tbl, "%6u %10.1f %9" PRIu64 " %6u-%u\n", t->nr_secs,
			sec->bytes / secs / 1e6, sec->msgs, sec->cmin,
			sec->cmax);
	else if (tbl)
		fprintf(tbl, "%6u %10.1f %9" PRIu64 " %8s\n", t->nr_secs,
			sec->bytes / secs / 1e6, sec->msgs, "-");
	if (tbl)
		fflush(tbl);
	*sec = (struct second){ .cmin = UINT32_MAX };
	return 0;
}

/*
 * Keep @c->qd SENDs of @c->size in flight for @c->secs seconds, then
 * let them complete. Per-second figures (@per_second) go to @tbl.
 */
static int tx_cell(struct tx *t, struct cell *c, bool per_second, FILE *tbl)
{
	struct second sec = { .cmin = UINT32_MAX };
	uint64_t sent = t->sent, bytes = t->bytes;
	double start = now_ns(), tick = start + 1e9, end = start + c->secs * 1e9;
	uint64_t stalls;
	int ret = tx_sample(t, NULL);

	stalls = t->info.stalls;
	t->qd = c->qd;
	t->size = c->size;
	while (!ret) {
		double now = now_ns();

		if (per_second && now >= tick) {
			ret = tx_second(t, &sec, (now - tick) / 1e9 + 1, tbl);
			tick = now + 1e9;
		}
		if (!ret && (t->errs.total || now >= end)) {
			if (!t->inflight)
				break;
		} else if (!ret) {
			ret = tx_post(t);
		}
		if (!ret)
			ret = tx_sample(t, &sec);
		if (!ret)
			ret = tx_reap(t, &sec);
	}
	if (!ret && per_second && sec.msgs)
		ret = tx_second(t, &sec, (now_ns() - tick) / 1e9 + 1, tbl);
	c->secs = (now_ns() - start) / 1e9;
	c->msgs = t->sent - sent;
	c->bytes = t->bytes - bytes;
	c->stalls = t->info.stalls - stalls;
	t->secs += c->secs;
	return ret ? ret : t->errs.total ? conn_error(&t->c, t->errs.cause) : 0;
}

/* FIN with the count sent; wait for it and for the receiver's tally. */
static int tx_finish(struct tx *t)
{
	struct dmaplane_op op = {
		.cookie = FIN_COOKIE, .opcode = DMAPLANE_OP_SEND,
		.mr = t->c.mr, .offset = t->ctrl_off + CTRL_BYTES / 2,
		.length = HDR,
	};
	int ret;

	put_msg(t->c.p + op.offset, STREAM_FIN, t->sent, HDR, FNV_OFFSET);
	ret = dmaplane_post(t->c.fd, t->c.ep, &op, 1, NULL);
	t->inflight += !ret;
	while (!ret && !t->errs.total && (t->inflight || t->summary_posted))
		ret = tx_reap(t, NULL);
	if (!ret && t->errs.total)
		ret = conn_error(&t->c, t->errs.cause);
	return ret;
}

/*
 * After a failure: reap what is still in flight (a broken connection
 * flushes it), so the report counts it and the MR can go.
 */
static void tx_drain(struct tx *t)
{
	double end = now_ns() + TEARDOWN_MS * 1e6;

	while ((t->inflight || t->summary_posted) && now_ns() < end &&
	       !tx_reap(t, NULL))
		;
}

/* Dial with the credit options; memory, RNR counters, the tally's RECV. */
static int tx_open(struct tx *t, const struct options *o, uint32_t max_qd,
		   uint64_t max_size)
{
	struct dmaplane_ep_create p = {
		.send_depth = max_qd,
		.recv_depth = o->window > DMAPLANE_EP_DEPTH_DEFAULT ?
			      o->window : 0,
		.credit_window = o->window,
		.flags = o->no_credits ? DMAPLANE_EP_NO_CREDITS : 0,
	};
	struct dmaplane_op recv = {
		.cookie = SUMMARY_COOKIE, .opcode = DMAPLANE_OP_RECV,
		.length = CTRL_BYTES / 2,
	};
	struct dmaplane_addr a;
	int ret;

	if (dmaplane_addr_parse(o->addr, o->port ? o->port : STREAM_PORT, &a))
		return -EINVAL;
	ret = dmaplane_ep_dial(t->c.fd, &p, &a, ACCEPT_WAIT_MS, &t->c.ep);
	if (ret) {
		t->c.ep = 0;	/* dial destroyed it */
		return ret;
	}
	t->busy = calloc(max_qd, 1);
	t->ctrl_off = max_qd * max_size;
	ret = t->busy ? conn_learn(&t->c) : -ENOMEM;
	if (!ret)
		ret = conn_mem(&t->c, t->ctrl_off + CTRL_BYTES);
	recv.mr = t->c.mr;
	recv.offset = t->ctrl_off;
	if (!ret)
		ret = dmaplane_post(t->c.fd, t->c.ep, &recv, 1, NULL);
	t->summary_posted = !ret;
	if (!ret)
		ret = tx_sample(t, NULL);
	t->stalls0 = t->info.stalls;
	t->stall_ns0 = t->info.stall_ns;
	t->moved = now_ns();
	return ret;
}

static void tx_report_head(const struct tx *t, const struct options *o,
			   FILE *tbl)
{
	char sz[32];

	fprintf(tbl, "stream to %s port %u on %s: credits %s, receiver depth "
		"%u, ", t->c.peer, t->c.peer_port, t->c.device,
		t->c.credits ? "on" : "off", t->c.peer_recv_depth);
	if (o->sweep)
		fprintf(tbl, "sweep, %u s per cell\n", o->duration_s);
	else
		fprintf(tbl, "qd %u, %s messages, %u s\n%6s %10s %9s %8s\n",
			o->qd, size_str(o->size, sz, sizeof(sz)),
			o->duration_s, "second", "MB/s", "messages", "credits");
	fflush(tbl);
}

/* The sweep's MB/s table: rows qd, columns size. */
static void sweep_table(const struct cell *cells, int nq, int ns, FILE *tbl)
{
	char sz[32];

	fprintf(tbl, "MB/s (rows: qd, columns: message size)\n%6s", "qd");
	for (int j = 0; j < ns; j++)
		fprintf(tbl, " %10s", size_str(cells[j].size, sz, sizeof(sz)));
	for (int i = 0; i < nq * ns; i++) {
		if (i % ns == 0)
			fprintf(tbl, "\n%6u", cells[i].qd);
		fprintf(tbl, " %10.1f", cells[i].secs > 0 ?
			cells[i].bytes / cells[i].secs / 1e6 : 0);
	}
	fprintf(tbl, "\n");
}

static void sweep_json(const struct cell *cells, int n, FILE *js)
{
	fprintf(js, ", \"cells\": [");
	for (int i = 0; i < n; i++)
		fprintf(js, "%s{\"qd\": %u, \"size\": %" PRIu64 ", \"seconds\": "
			"%.3f, \"MBps\": %.1f, \"messages\": %" PRIu64
			", \"bytes\": %" PRIu64 ", \"stalls\": %" PRIu64 "}",
			i ? ", " : "", cells[i].qd, cells[i].size,
			cells[i].secs, cells[i].secs > 0 ?
			cells[i].bytes / cells[i].secs / 1e6 : 0,
			cells[i].msgs, cells[i].bytes, cells[i].stalls);
	fprintf(js, "]");
}

static void per_second_json(const struct tx *t, FILE *js)
{
	fprintf(js, ", \"per_second\": [");
	for (uint32_t i = 0; i < t->nr_secs; i++) {
		const struct second *s = &t->per_sec[i];

		fprintf(js, "%s{\"second\": %u, \"seconds\": %.3f, \"MBps\": %.1f, "
			"\"messages\": %" PRIu64, i ? ", " : "", i + 1, s->secs,
			s->bytes / s->secs / 1e6, s->msgs);
		if (s->cmin <= s->cmax)
			fprintf(js, ", \"credits_min\": %u, \"credits_max\": %u}",
				s->cmin, s->cmax);
		else
			fprintf(js, ", \"credits_min\": null, \"credits_max\": null}");
	}
	fprintf(js, "]");
}

/*
 * Totals, flow control, errors, RNR counters, the tally and the verdict;
 * whether the stream was intact.
 */
static bool tx_report(const struct tx *t, const struct options *o,
		      const struct cell *cells, int nq, int ns, int err)
{
	uint64_t stalls = t->info.stalls - t->stalls0;
	double stall_ms = (t->info.stall_ns - t->stall_ns0) / 1e6;
	double mbps = t->secs > 0 ? t->bytes / t->secs / 1e6 : 0;
	bool credits = t->c.credits && t->cmin <= t->cmax;
	FILE *tbl = o->tbl, *js = o->js;
	char why[256];
	bool ok = verdict(&t->tally, t->have_tally, "no tally from the receiver",
			  t->sent, t->errs.total, err, why, sizeof(why));

	if (tbl && o->sweep)
		sweep_table(cells, nq, ns, tbl);
	if (tbl) {
		fprintf(tbl, "duration          %.2f s\nmessages          %"
			PRIu64 " (%" PRIu64 " bytes)\nthroughput        %.1f MB/s\n",
			t->secs, t->sent, t->bytes, mbps);
		if (credits)
			fprintf(tbl, "credits held      min %u, max %u\n",
				t->cmin, t->cmax);
		else
			fprintf(tbl, "credits held      -\n");
		fprintf(tbl, "stalls            %" PRIu64 " (%.3f ms)\n", stalls,
			stall_ms);
	}
	if (js) {
		fprintf(js, "{\"benchmark\": \"stream\", \"side\": \"sender\", "
			"\"mode\": \"%s\", \"peer\": \"%s\", \"device\": \"%s\", "
			"\"credits\": %s, \"credit_window\": %u, "
			"\"peer_recv_depth\": %u, ", o->sweep ? "sweep" : "single",
			t->c.peer, t->c.device, t->c.credits ? "true" : "false",
			t->c.window, t->c.peer_recv_depth);
		if (!o->sweep)
			fprintf(js, "\"qd\": %u, \"size\": %" PRIu64 ", ", o->qd,
				o->size);
		fprintf(js, "\"seconds\": %.3f, \"messages\": %" PRIu64
			", \"bytes\": %" PRIu64 ", \"MBps\": %.1f, ", t->secs,
			t->sent, t->bytes, mbps);
		if (credits)
			fprintf(js, "\"credits_min\": %u, \"credits_max\": %u",
				t->cmin, t->cmax);
		else
			fprintf(js, "\"credits_min\": null, \"credits_max\": null");
		fprintf(js, ", \"stalls\": %" PRIu64 ", \"stall_ns\": %" PRIu64,
			stalls, (uint64_t)(t->info.stall_ns - t->stall_ns0));
	}
	errs_print(&t->errs, tbl, js);
	rnr_print(&t->c.rnr, t->c.device, tbl, js);
	if (t->have_tally)
		tally_print(&t->tally, true, t->tally_sent, tbl, js);
	else if (tbl)
		fprintf(tbl, "receiver          no tally\n");
	if (js && o->sweep)
		sweep_json(cells, nq * ns, js);
	else if (js)
		per_second_json(t, js);
	verdict_print(ok, why, tbl, js);
	return ok;
}

/* The cells to run: --qd x --size, or --qds x --sizes with --sweep. */
static int tx_cells(const struct options *o, struct cell *cells, int *nq,
		    int *ns)
{
	uint64_t qds[SWEEP_MAX], sizes[SWEEP_MAX];

	*nq = o->sweep ? parse_list(o->qds, false, DMAPLANE_EP_DEPTH_MAX,
				    qds, SWEEP_MAX) : 1;
	*ns = o->sweep ? parse_list(o->sizes, true, DMAPLANE_OP_MAX_LENGTH,
				    sizes, SWEEP_MAX) : 1;
	if (*nq < 0 || *ns < 0)
		return -EINVAL;
	if (!o->sweep) {
		qds[0] = o->qd;
		sizes[0] = o->size;
	}
	for (int i = 0; i < *nq * *ns; i++) {
		cells[i] = (struct cell){
			.qd = qds[i / *ns], .size = sizes[i % *ns],
			.secs = o->duration_s,
		};
		if (cells[i].size < MSG_MIN || cells[i].size >
		    DMAPLANE_OP_MAX_LENGTH || cells[i].qd >
		    DMAPLANE_EP_DEPTH_MAX)
			return -EINVAL;
	}
	return 0;
}

static void tx_sweep_progress(const struct cell *c)
{
	char sz[32];

	fprintf(stderr, "stream: qd %u, %s: %.1f MB/s\n", c->qd,
		size_str(c->size, sz, sizeof(sz)),
		c->secs > 0 ? c->bytes / c->secs / 1e6 : 0);
}

static int stream_send(int fd, const struct options *o)
{
	struct cell cells[SWEEP_MAX * SWEEP_MAX];
	struct tx t = { .c.fd = fd, .cmin = UINT32_MAX };
	uint32_t max_qd = 0;
	uint64_t max_size = 0;
	int nq, ns, ret;
	bool ok;

	if (!o->addr)
		return stream_fail("--addr is needed", -EINVAL);
	if (tx_cells(o, cells, &nq, &ns))
		return stream_fail("--qd/--qds (1..4096) or --size/--sizes "
				   "(64 bytes..2G)", -EINVAL);
	for (int i = 0; i < nq * ns; i++) {
		max_qd = cells[i].qd > max_qd ? cells[i].qd : max_qd;
		max_size = cells[i].size > max_size ? cells[i].size : max_size;
	}
	ret = tx_open(&t, o, max_qd, max_size);
	if (ret) {
		stream_fail("connecting", ret);
		conn_close(&t.c, t.summary_posted, 0);
		free(t.busy);
		return 1;
	}
	if (o->tbl)
		tx_report_head(&t, o, o->tbl);
	for (int i = 0; !ret && i < nq * ns; i++) {
		ret = tx_cell(&t, &cells[i], !o->sweep, o->tbl);
		if (o->sweep)
			tx_sweep_progress(&cells[i]);
	}
	if (!ret)
		ret = tx_finish(&t);
	if (ret == -EREMOTEIO)
		fprintf(stderr, "dmaplanectl: stream: the receiver refused a "
			"message: is its --size at least the largest sent?\n");
	if (ret) {
		stream_fail("the connection failed", ret);
		tx_drain(&t);
	}
	rnr_end(&t.c.rnr);
	ok = tx_report(&t, o, cells, nq, ns, ret);
	conn_close(&t.c, t.inflight + t.summary_posted, 0);
	free(t.busy);
	free(t.per_sec);
	return !ok;
}

int cmd_stream(int fd, const struct options *o)
{
	return o->serve ? stream_serve(fd, o) : stream_send(fd, o);
}
