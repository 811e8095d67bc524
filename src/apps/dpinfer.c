// SPDX-License-Identifier: GPL-2.0
/*
 * dpinfer: disaggregated inference over dmaplane. A prefill host runs the
 * prompt through the model and writes the KV cache into a decode host's
 * registered region with RDMA WRITE_WITH_IMM, layer by layer while the
 * next layer computes; the decode host checks every chunk arrived, builds
 * its KV views in place over the region (no copy) and generates.
 *
 *   dpinfer local   --model CONF [--prompt TEXT | --prompt-len N]
 *                   [--generate N] [--kv fp32|fp16]
 *   dpinfer decode  --addr IP [--port N] --model CONF [--region BYTES]
 *                   [--requests N] [--connections N] [--recv-depth N]
 *                   [--window N] [--timeout-ms T]
 *   dpinfer prefill --addr PEER [--port N] --model CONF [--prompt TEXT |
 *                   --prompt-len N] [--generate N] [--kv fp32|fp16]
 *                   [--chunk BYTES] [--requests N]
 *                   [--no-overlap] [--synthetic]
 *   every command: [--json-out FILE]
 *   for tests (prefill): [--drop-chunk I] [--pause-after N]
 *                        [--hostile KIND]
 *
 * The split: prefill computes the KV of prompt positions 0 .. n-2 and
 * sends it; decode feeds the last prompt token as its first step (its
 * logits give the first generated token) and generates on. `local` makes
 * the same calls in one process, so the tokens and final logits of a
 * decode must be bit-identical to it.
 *
 * One request on a connection (decode accepts, prefill connects; both
 * with dmaplane's credits, so nothing is sent before the receive for it
 * is posted):
 *   1. prefill SENDs the manifest (kv_manifest.h);
 *   2. decode validates it against its region and model, posts a
 *      zero-length RECV per chunk and one for the final marker (as many
 *      at a time as its receive depth allows: they are the credits), and
 *      SENDs an ACK with the region's rkey (or the reason it refused);
 *   3. prefill WRITE_IMMs every chunk (immediate: kv_imm_data(index))
 *      and the final marker (kv_imm_final(n_chunks));
 *   4. decode, with every chunk and the marker in, posts the receive for
 *      the next manifest, generates, and SENDs the RESULT.
 * --synthetic sends a deterministic pattern instead of computed KV (for
 * layouts whose model is too big to run here, e.g. llama7b-kv.conf) and
 * decode checks the pattern instead of generating.
 *
 * ACK and RESULT are little-endian like the manifest.
 *
 * decode --connections N (default 1) serves N connections one after
 * another on one listener, each with its own message and KV regions,
 * released before the next is accepted. A connection is ok when it served
 * --requests requests; one whose peer misbehaves (a manifest refused, an
 * immediate that names no chunk or one already in, a message where a
 * chunk was due, a timeout, the peer gone) is logged with its number and
 * reason, and the next one is served. With N > 1 the decode ends with
 * "served N connections: A ok, B refused" and exits 0 only when all were
 * ok.
 *
 * --hostile KIND makes prefill speak the protocol until KIND's point, then
 * misbehave, wait for the decode's answer and exit 1:
 *   manifest-huge-region  region bytes 2^62, the rest consistent
 *   manifest-many-chunks  n_chunks 0x3fffffff
 *   manifest-short        the manifest sent one byte short
 *   imm-past-end          after the ACK, chunk 0 as chunk n_chunks
 *   imm-duplicate         after the ACK, chunk 0 twice
 *   imm-reserved          after the ACK, chunk 0 with type 2 (reserved)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kv_manifest.h"
#include "libdmaplane.h"
#include "model.h"

#define PORT_DEFAULT	18600
#define SLOT		8192u		/* one control message */
#define MSG_SLOTS	3		/* manifest, ACK, RESULT */
#define ACK_MAGIC	0x4b41564bu	/* "KVAK" */
#define RESULT_MAGIC	0x5352564bu	/* "KVRS" */
#define REASON_LEN	160
#define MAX_GENERATE	1024
#define WAIT_MS		60000u
#define HIST_BUCKETS	64

/* --hostile: where a test's prefill breaks the protocol (header comment). */
enum hostile {
	HOSTILE_NONE,
	HOSTILE_MANIFEST_HUGE_REGION,
	HOSTILE_MANIFEST_MANY_CHUNKS,
	HOSTILE_MANIFEST_SHORT,
	HOSTILE_IMM_PAST_END,
	HOSTILE_IMM_DUPLICATE,
	HOSTILE_IMM_RESERVED,
	HOSTILE_KINDS
};

static const char *const hostile_names[HOSTILE_KINDS] = {
	[HOSTILE_MANIFEST_HUGE_REGION] = "manifest-huge-region",
	[HOSTILE_MANIFEST_MANY_CHUNKS] = "manifest-many-chunks",
	[HOSTILE_MANIFEST_SHORT] = "manifest-short",
	[HOSTILE_IMM_PAST_END] = "imm-past-end",
	[HOSTILE_IMM_DUPLICATE] = "imm-duplicate",
	[HOSTILE_IMM_RESERVED] = "imm-reserved",
};

struct options {
	const char *cmd;
	const char *addr;
	uint32_t port;
	const char *model;
	const char *prompt;
	uint32_t prompt_len;
	uint32_t generate;
	uint32_t dtype;
	uint64_t region;
	uint32_t requests;
	uint32_t connections;
	uint32_t recv_depth;
	uint32_t timeout_ms;
	uint64_t chunk;
	uint32_t window;
	bool overlap;
	bool synthetic;
	const char *json_out;
	/* Failures, for the tests: never send chunk drop_chunk - 1, pause
	 * (sleep 10 s) after pause_after chunks, misbehave as @hostile says. */
	uint32_t drop_chunk;
	uint32_t pause_after;
	enum hostile hostile;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "dpinfer: %s: %s\n", what, strerror(-err));
	return 1;
}

/* --- little-endian message fields --- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* FNV-1a over @len bytes: how both sides name a logits vector. */
static uint64_t fnv64(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* --- per-chunk latency: log2 buckets, nearest-rank percentiles --- */

struct hist {
	uint64_t n, max, bucket[HIST_BUCKETS];
};

static void hist_add(struct hist *h, uint64_t v)
{
	unsigned int b = v ? 64 - __builtin_clzll(v) : 0;

	h->bucket[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* The upper bound of the bucket holding the sample of rank ceil(q * n). */
static uint64_t hist_pct(const struct hist *h, double q)
{
	uint64_t rank = (uint64_t)(q * h->n + 0.999999), seen = 0;

	if (!h->n)
		return 0;
	rank = rank ? rank : 1;
	for (unsigned int b = 0; b < HIST_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			uint64_t top = b ? (b >= 63 ? UINT64_MAX :
					    (1ull << b) - 1) : 0;

			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

/* --- the prompt --- */

/* Token ids: the prompt's bytes (mod vocab), or --prompt-len generated ones. */
static uint32_t *prompt_tokens(const struct options *o, uint32_t vocab,
			       uint32_t *n)
{
	uint32_t len = o->prompt ? strlen(o->prompt) : o->prompt_len;
	uint32_t *t = calloc(len ? len : 1, sizeof(*t));

	for (uint32_t i = 0; t && i < len; i++)
		t[i] = o->prompt ? (unsigned char)o->prompt[i] % vocab :
		       (i * 131 + 7) % vocab;
	*n = len;
	return t;
}

/* --- a mapped, registered dmaplane buffer --- */

struct region {
	uint32_t buf, mr, rkey;
	unsigned char *p;
	uint64_t len;
};

static int region_open(int fd, uint32_t ep, uint64_t bytes, uint32_t access,
		       struct region *r)
{
	struct dmaplane_buffer_create req = {
		.size = bytes, .numa_node = DMAPLANE_NUMA_ANY,
		.flags = DMAPLANE_BUF_HUGE,
	};
	void *p;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = dmaplane_buffer_create_req(fd, &req);
	if (ret)
		return ret;
	r->buf = req.handle;
	p = mmap(NULL, req.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 req.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	r->p = p;
	r->len = req.alloc_size;
	return dmaplane_mr_reg(fd, ep, r->buf, 0, 0, access, &r->mr, &r->rkey);
}

static void region_close(int fd, struct region *r)
{
	if (r->mr)
		dmaplane_mr_dereg(fd, r->mr);
	if (r->p)
		munmap(r->p, r->len);
	if (r->buf)
		dmaplane_buffer_destroy(fd, r->buf);
	memset(r, 0, sizeof(*r));
}

/* --- one side of the connection --- */

struct side {
	int fd;
	uint32_t ep;
	struct region msg;	/* MSG_SLOTS control slots */
	struct region kv;
	/*
	 * A message received while this side reaped for something else (the
	 * RESULT in one batch with the marker's completion, the next manifest
	 * with the RESULT's send): its byte count, by slot, for wait_cookie().
	 */
	bool early[MSG_SLOTS];
	uint32_t early_bytes[MSG_SLOTS];
};

static int post1(struct side *s, struct dmaplane_op op)
{
	return dmaplane_post(s->fd, s->ep, &op, 1, NULL);
}

static int post_msg(struct side *s, uint32_t opcode, uint32_t slot,
		    uint32_t len)
{
	return post1(s, (struct dmaplane_op){
		.cookie = 1000 + slot, .opcode = opcode, .mr = s->msg.mr,
		.offset = (uint64_t)slot * SLOT, .length = len,
	});
}

/* Keep @c if it is a message's receive: true when it was one. */
static bool side_note(struct side *s, const struct dmaplane_completion *c)
{
	uint64_t slot = c->cookie - 1000;

	if (c->opcode != DMAPLANE_OP_RECV || c->status || c->cookie < 1000 ||
	    slot >= MSG_SLOTS)
		return false;
	s->early[slot] = true;
	s->early_bytes[slot] = c->bytes;
	return true;
}

/* One completion that is not the one waited for: noted, or to @other. */
static int side_other(struct side *s, const struct dmaplane_completion *c,
		      int (*other)(void *arg,
				   const struct dmaplane_completion *c),
		      void *arg)
{
	if (c->status)
		return c->status;
	if (side_note(s, c) || !other)
		return 0;
	return other(arg, c);
}

/*
 * Reap until the completion with @cookie arrived (or had, see side_note());
 * others go to @other (may be NULL: they are only checked for errors).
 * 0 or -errno.
 */
static int wait_cookie(struct side *s, uint64_t cookie, uint32_t *bytes,
		       int (*other)(void *arg, const struct dmaplane_completion *c),
		       void *arg)
{
	struct dmaplane_completion c[32];
	uint64_t slot = cookie - 1000;
	uint32_t got;

	if (cookie >= 1000 && slot < MSG_SLOTS && s->early[slot]) {
		s->early[slot] = false;
		if (bytes)
			*bytes = s->early_bytes[slot];
		return 0;
	}
	for (;;) {
		int ret = dmaplane_reap(s->fd, s->ep, c, 32, 1, WAIT_MS, &got);

		if (ret)
			return ret;
		for (uint32_t i = 0; i < got; i++) {
			if (c[i].status)
				return c[i].status;
			if (c[i].cookie == cookie) {
				if (bytes)
					*bytes = c[i].bytes;
				/*
				 * Later ones of this batch, the same way; a
				 * failure among them (the peer closing after
				 * its answer) comes back from the next call.
				 */
				for (uint32_t j = i + 1; j < got; j++)
					side_other(s, &c[j], other, arg);
				return 0;
			}
			ret = side_other(s, &c[i], other, arg);
			if (ret)
				return ret;
		}
	}
}

/* A listener on --addr and --port, for every connection the decode serves. */
static int side_listen(int fd, const struct dmaplane_ep_create *p,
		       const struct options *o, uint32_t *listener)
{
	struct dmaplane_addr a;
	int ret = dmaplane_addr_parse(o->addr, o->port, &a);

	if (!ret)
		ret = dmaplane_ep_create(fd, p, listener);
	if (!ret)
		ret = dmaplane_ep_listen(fd, *listener, 4, &a);
	return ret;
}

/*
 * One connection on @fd: accepted on @listener (it has the endpoint's
 * parameters), or with @p dialled to --addr when @listener is 0; then its
 * message region. After a failed accept s->ep is 0: no connection came.
 */
static int side_open(struct side *s, int fd, const struct dmaplane_ep_create *p,
		     const struct options *o, uint32_t listener)
{
	struct dmaplane_addr a;
	int ret;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	if (listener) {
		/* A peer that gave up before its turn: the next one. */
		do {
			ret = dmaplane_ep_accept_wait(fd, listener,
						      10 * WAIT_MS, &s->ep);
		} while (ret == -ECONNABORTED);
	} else {
		ret = dmaplane_addr_parse(o->addr, o->port, &a);
		if (!ret)
			ret = dmaplane_ep_dial(fd, p, &a, 10 * WAIT_MS,
					       &s->ep);
	}
	if (!ret)
		ret = region_open(fd, s->ep, MSG_SLOTS * SLOT,
				  DMAPLANE_MR_LOCAL_WRITE, &s->msg);
	return ret;
}

/* Everything of the connection; the file (and a listener on it) stays. */
static void side_close(struct side *s)
{
	region_close(s->fd, &s->kv);
	region_close(s->fd, &s->msg);
	if (s->ep)
		dmaplane_ep_destroy(s->fd, s->ep);
}

/* --- what a request produces --- */

struct result {
	int status;
	char reason[REASON_LEN];
	uint32_t n_tokens;
	uint32_t tokens[MAX_GENERATE];
	uint64_t logits_hash;
	uint64_t decode_first_ns;	/* the first step: first token out */
	uint64_t decode_ns;		/* every step */
	uint64_t transfer_ns;		/* first chunk in .. marker in */
};

#define RESULT_LEN	(48 + REASON_LEN + 4 * MAX_GENERATE)

static void result_encode(const struct result *r, unsigned char *p)
{
	put32(p, RESULT_MAGIC);
	put32(p + 4, (uint32_t)r->status);
	put32(p + 8, r->n_tokens);
	put64(p + 16, r->logits_hash);
	put64(p + 24, r->decode_first_ns);
	put64(p + 32, r->decode_ns);
	put64(p + 40, r->transfer_ns);
	memcpy(p + 48, r->reason, REASON_LEN);
	for (uint32_t i = 0; i < r->n_tokens; i++)
		put32(p + 48 + REASON_LEN + 4 * i, r->tokens[i]);
}

static int result_decode(const unsigned char *p, uint32_t len,
			 struct result *r)
{
	if (len != RESULT_LEN || get32(p) != RESULT_MAGIC)
		return -EPROTO;
	r->status = (int32_t)get32(p + 4);
	r->n_tokens = get32(p + 8);
	if (r->n_tokens > MAX_GENERATE)
		return -EPROTO;
	r->logits_hash = get64(p + 16);
	r->decode_first_ns = get64(p + 24);
	r->decode_ns = get64(p + 32);
	r->transfer_ns = get64(p + 40);
	memcpy(r->reason, p + 48, REASON_LEN);
	r->reason[REASON_LEN - 1] = 0;
	for (uint32_t i = 0; i < r->n_tokens; i++)
		r->tokens[i] = get32(p + 48 + REASON_LEN + 4 * i);
	return 0;
}

/*
 * Generate @g tokens after the KV in @kv (prompt positions 0 .. n-2) with
 * @last, the last prompt token, as the first step: tokens and the final
 * logits' hash into @r.
 */
static int generate(struct model *m, struct kv_cache *kv, uint32_t last,
		    uint32_t g, struct result *r)
{
	uint32_t vocab = model_get_config(m)->vocab;
	float *logits = malloc(vocab * sizeof(*logits));
	uint32_t *out = malloc((g + 1) * sizeof(*out));
	double t0 = now_ns(), t1;
	int ret = logits && out ? 0 : -ENOMEM;

	/* The first step alone: what the time to first token includes. */
	if (!ret)
		ret = model_generate(m, kv, last, 1, out, logits);
	t1 = now_ns();
	r->decode_first_ns = t1 - t0;
	r->n_tokens = 0;
	if (!ret && g > 1)
		ret = model_generate(m, kv, model_argmax(logits, vocab), g - 1,
				     out + 1, logits);
	if (!ret) {
		/* out[1..g-1] were fed; the last logits name the g-th. */
		for (uint32_t i = 1; i < g; i++)
			r->tokens[r->n_tokens++] = out[i];
		r->tokens[r->n_tokens++] = model_argmax(logits, vocab);
		r->logits_hash = fnv64(logits, vocab * sizeof(*logits));
	}
	r->decode_ns = now_ns() - t0;
	free(logits);
	free(out);
	return ret;
}

static void print_tokens(FILE *f, const struct result *r)
{
	for (uint32_t i = 0; i < r->n_tokens; i++)
		fprintf(f, "%s%u", i ? (f == stdout ? " " : ", ") : "",
			r->tokens[i]);
}

static FILE *json_open(const struct options *o)
{
	return o->json_out ? fopen(o->json_out, "w") : NULL;
}

/* --- local: the single-process reference --- */

static int cmd_local(const struct options *o)
{
	struct model_config cfg;
	struct kv_layout layout;
	struct result r = { 0 };
	struct kv_cache kv = { .layout = &layout };
	struct model *m;
	uint32_t n, *prompt;
	double t0;
	FILE *js;
	int ret;

	ret = model_config_load(o->model, &cfg);
	if (ret)
		return fail(o->model, ret);
	m = model_create(&cfg);
	if (!m)
		return fail("model_create", -errno);
	prompt = prompt_tokens(o, cfg.vocab, &n);
	if (n < 2)
		return fail("the prompt needs two tokens or more", -EINVAL);
	ret = model_kv_layout(&cfg, n + o->generate, o->dtype, &layout);
	kv.base = ret ? NULL : calloc(1, layout.bytes);
	if (!ret && !kv.base)
		ret = -ENOMEM;
	t0 = now_ns();
	if (!ret)
		ret = model_prefill(m, &kv, prompt, n - 1, NULL, NULL, NULL);
	if (!ret)
		printf("prefill: %u positions in %.1f ms\n", n - 1,
		       (now_ns() - t0) / 1e6);
	if (!ret)
		ret = generate(m, &kv, prompt[n - 1], o->generate, &r);
	if (ret)
		return fail("local run", ret);
	printf("tokens: ");
	print_tokens(stdout, &r);
	printf("\nlogits: %016" PRIx64 "\n", r.logits_hash);
	js = json_open(o);
	if (js) {
		fprintf(js, "{\"mode\": \"local\", \"model\": \"%s\", \"kv\": \"%s\", \"prompt_tokens\": %u, \"tokens\": [",
			cfg.name, o->dtype == KV_F16 ? "fp16" : "fp32", n);
		print_tokens(js, &r);
		fprintf(js, "], \"logits_fnv64\": \"%016" PRIx64 "\"}\n",
			r.logits_hash);
		fclose(js);
	}
	free(kv.base);
	free(prompt);
	model_free(m);
	return 0;
}

/* --- synthetic KV: a pattern both sides compute --- */

static uint64_t pattern_word(uint64_t request, uint64_t off)
{
	uint64_t x = (off / 8 + 1) * 0x9e3779b97f4a7c15ull ^ request;

	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ull;
}

/* Fill (or, with @check, verify) every chunk's bytes: the first bad offset or -1. */
static int64_t pattern(const struct kv_manifest *m, unsigned char *base,
		       bool check)
{
	struct kv_chunk c;

	for (uint32_t i = 0; i < m->n_chunks; i++) {
		if (kv_plan_chunk(m, i, &c))
			return 0;
		for (uint64_t o = c.offset; o < c.offset + c.length; o += 8) {
			uint64_t w = pattern_word(m->request_id, o), have;
			size_t n = c.offset + c.length - o < 8 ?
				   c.offset + c.length - o : 8;

			if (!check) {
				memcpy(base + o, &w, n);
				continue;
			}
			have = 0;
			memcpy(&have, base + o, n);
			if (memcmp(&have, &w, n))
				return o;
		}
	}
	return -1;
}

/* --- decode --- */

struct decoder {
	struct side s;
	const struct options *o;
	struct model_config cfg;
	struct model *m;	/* NULL: transfer only (the model is too big) */
	struct kv_manifest man;
	struct kv_rx rx;
	uint32_t zposted, zwant;	/* zero-length receives: posted, needed */
	double first_ns, last_ns;
	char why[REASON_LEN];
};

/* Keep the chunks' zero-length receives posted, up to the receive depth. */
static int dec_post_receives(struct decoder *d, uint32_t room)
{
	struct dmaplane_op ops[DMAPLANE_POST_MAX];
	uint32_t n = d->zwant - d->zposted;

	n = n < room ? n : room;
	while (n) {
		uint32_t k = n < DMAPLANE_POST_MAX ? n : DMAPLANE_POST_MAX;
		int ret;

		for (uint32_t i = 0; i < k; i++)
			ops[i] = (struct dmaplane_op){
				.cookie = 1, .opcode = DMAPLANE_OP_RECV };
		ret = dmaplane_post(d->s.fd, d->s.ep, ops, k, NULL);
		if (ret)
			return ret;
		d->zposted += k;
		n -= k;
	}
	return 0;
}

/* A chunk (or the final marker) arrived: mark it, post a receive again. */
static int dec_arrival(void *arg, const struct dmaplane_completion *c)
{
	struct decoder *d = arg;
	int ret;

	if (c->opcode != DMAPLANE_OP_RECV || side_note(&d->s, c))
		return 0;	/* our ACK went out, or the next manifest came */
	/* (bytes is the length written, on soft-RoCE: not checked) */
	if (!(c->flags & DMAPLANE_COMP_WRITE_IMM)) {
		snprintf(d->why, sizeof(d->why),
			 "a message where a chunk was expected");
		return -EPROTO;
	}
	if (!d->first_ns)
		d->first_ns = now_ns();
	d->last_ns = now_ns();
	ret = kv_rx_mark(&d->rx, c->imm);
	if (ret) {
		snprintf(d->why, sizeof(d->why), "immediate 0x%08x: %s",
			 c->imm, ret == -EEXIST ? "a duplicate" :
			 ret == -ERANGE ? "no such chunk" :
			 "not a chunk or a marker");
		return -EPROTO;
	}
	return dec_post_receives(d, 1);
}

static int dec_reply(struct decoder *d, const struct result *r, bool ack,
		     int status)
{
	uint32_t slot = ack ? 1 : 2, len = RESULT_LEN;
	unsigned char *p = d->s.msg.p + slot * SLOT;
	int ret;

	if (ack) {
		memset(p, 0, SLOT);
		put32(p, ACK_MAGIC);
		put32(p + 4, (uint32_t)status);
		put32(p + 8, d->s.kv.rkey);
		put64(p + 16, d->s.kv.len);
		memcpy(p + 24, d->why, REASON_LEN);
		len = 24 + REASON_LEN;
	} else {
		result_encode(r, p);
	}
	ret = post_msg(&d->s, DMAPLANE_OP_SEND, slot, len);
	/*
	 * A RESULT or a refusal may be the connection's last message: see it
	 * out before the connection closes. After a failure, what else
	 * arrives no longer counts (nor may it replace the reason).
	 */
	if (!ret && (!ack || status))
		ret = wait_cookie(&d->s, 1000 + slot, NULL,
				  status ? NULL : dec_arrival, d);
	return ret;
}

/* The manifest's model must be ours (a transfer-only one needs none). */
static int dec_check_model(struct decoder *d)
{
	const struct kv_manifest *m = &d->man;
	const struct kv_layout *l = &m->layout;

	if (l->n_layers != d->cfg.n_layers || l->n_heads != d->cfg.n_heads ||
	    l->head_dim != d->cfg.head_dim || m->model_seed != d->cfg.seed ||
	    m->vocab != d->cfg.vocab || m->d_ff != d->cfg.d_ff ||
	    m->max_seq != d->cfg.max_seq) {
		snprintf(d->why, sizeof(d->why),
			 "the manifest's model is not %s", d->cfg.name);
		return -EINVAL;
	}
	if (m->n_generate && !d->m) {
		snprintf(d->why, sizeof(d->why),
			 "%s is too big to run here: transfer only",
			 d->cfg.name);
		return -EFBIG;
	}
	if (m->n_generate > MAX_GENERATE) {
		snprintf(d->why, sizeof(d->why), "more than %u tokens",
			 MAX_GENERATE);
		return -EINVAL;
	}
	return 0;
}

/*
 * Every K and V view of @kv starts inside @r's mapping, where the NIC
 * wrote: the decode reads the received bytes in place, never a copy.
 */
static bool views_in_region(const struct kv_cache *kv, const struct region *r)
{
	const struct kv_layout *l = kv->layout;

	for (uint32_t i = 0; i < l->n_layers; i++) {
		unsigned char *k = kv_at(kv->base, &l->k[i], 0, 0);
		unsigned char *v = kv_at(kv->base, &l->v[i], 0, 0);

		if (k < r->p || k >= r->p + r->len || v < r->p ||
		    v >= r->p + r->len)
			return false;
	}
	printf("views: K and V of %u layers at the region's mapping (layer 0 K at +%" PRIu64 ", last V at +%" PRIu64 "): no copy\n",
	       l->n_layers, l->k[0].offset, l->v[l->n_layers - 1].offset);
	return true;
}

/*
 * One request: the manifest is in slot 0 (@len bytes). Any failure ends
 * the connection, with d->why saying why where there is more to say than
 * the error.
 */
static int dec_request(struct decoder *d, uint32_t len, bool more)
{
	struct result r = { 0 };
	struct kv_cache kv;
	uint32_t got;
	int ret;

	d->why[0] = 0;
	ret = kv_manifest_decode(d->s.msg.p, len, d->s.kv.len, &d->man, d->why,
				 sizeof(d->why));
	if (!ret)
		ret = dec_check_model(d);
	if (ret) {
		fprintf(stderr, "dpinfer: manifest refused: %s\n", d->why);
		return dec_reply(d, NULL, true, ret) ?: ret;
	}
	ret = kv_rx_init(&d->rx, &d->man);
	if (ret)
		return ret;
	d->zposted = 0;
	d->zwant = d->man.n_chunks + 1;
	d->first_ns = d->last_ns = 0;
	ret = dec_post_receives(d, d->o->recv_depth);
	if (!ret)
		ret = dec_reply(d, NULL, true, 0);
	while (!ret && !kv_rx_complete(&d->rx)) {
		struct dmaplane_completion c[64];

		ret = dmaplane_reap(d->s.fd, d->s.ep, c, 64, 1,
				    d->o->timeout_ms, &got);
		for (uint32_t i = 0; !ret && i < got; i++)
			ret = c[i].status ?: dec_arrival(d, &c[i]);
	}
	if (ret && !d->why[0]) {
		int n = ret == -ETIMEDOUT ?
			snprintf(d->why, sizeof(d->why),
				 "timed out after %u ms: ", d->o->timeout_ms) :
			snprintf(d->why, sizeof(d->why), "%s: ",
				 strerror(-ret));

		kv_rx_missing(&d->rx, d->why + n, sizeof(d->why) - n);
	}
	if (ret) {
		fprintf(stderr, "dpinfer: transfer failed: %s\n", d->why);
		kv_rx_free(&d->rx);
		r.status = ret;
		memcpy(r.reason, d->why, REASON_LEN);
		dec_reply(d, &r, false, ret);
		return ret;
	}
	kv_rx_free(&d->rx);
	r.transfer_ns = d->last_ns - d->first_ns;
	/* The next manifest may come while this one decodes. */
	if (more)
		ret = post_msg(&d->s, DMAPLANE_OP_RECV, 0, SLOT);
	/* The views: the manifest's layout over the registered region. */
	kv = (struct kv_cache){ .layout = &d->man.layout, .base = d->s.kv.p,
				.tokens = d->man.tokens };
	if (!ret && !views_in_region(&kv, &d->s.kv))
		ret = -EFAULT;
	if (!ret && d->man.n_generate) {
		ret = generate(d->m, &kv, d->man.first_token,
			       d->man.n_generate, &r);
	} else if (!ret) {
		int64_t bad = pattern(&d->man, d->s.kv.p, true);

		if (bad >= 0) {
			snprintf(d->why, sizeof(d->why),
				 "byte %" PRId64 " of the region is wrong", bad);
			ret = -EILSEQ;
		}
	}
	r.status = ret;
	memcpy(r.reason, d->why, REASON_LEN);
	printf("request %" PRIu64 ": %u chunks in %.1f ms%s%s\n",
	       d->man.request_id, d->man.n_chunks, r.transfer_ns / 1e6,
	       ret ? ", failed: " : "", ret ? strerror(-ret) : "");
	return dec_reply(d, &r, false, ret) ?: ret;
}

/*
 * One connection: accept it, serve up to --requests requests, release
 * everything it had. *@accepted: whether a peer came at all.
 */
static int dec_connection(struct decoder *d, int fd, uint32_t listener,
			  bool *accepted)
{
	uint32_t len;
	int ret = side_open(&d->s, fd, NULL, d->o, listener);

	*accepted = d->s.ep;
	d->why[0] = 0;
	if (!ret)
		ret = region_open(fd, d->s.ep, d->o->region,
				  DMAPLANE_MR_LOCAL_WRITE |
				  DMAPLANE_MR_REMOTE_WRITE, &d->s.kv);
	if (!ret)
		ret = post_msg(&d->s, DMAPLANE_OP_RECV, 0, SLOT);
	for (uint32_t i = 0; !ret && i < d->o->requests; i++) {
		ret = wait_cookie(&d->s, 1000, &len, NULL, NULL);
		if (!ret)
			ret = dec_request(d, len, i + 1 < d->o->requests);
	}
	side_close(&d->s);
	return ret;
}

static int cmd_decode(const struct options *o)
{
	/* The credit window: how many chunks may be on their way at once. */
	struct dmaplane_ep_create p = {
		.send_depth = 16, .recv_depth = o->recv_depth,
		.credit_window = o->window,
	};
	struct decoder d = { .o = o };
	uint32_t listener = 0, ok = 0, refused = 0;
	bool server = o->connections > 1;
	int fd, ret;

	ret = model_config_load(o->model, &d.cfg);
	if (ret)
		return fail(o->model, ret);
	d.m = model_create(&d.cfg);
	if (!d.m && errno != EFBIG)
		return fail("model_create", -errno);
	printf("decode: %s on %s port %u, region %" PRIu64 " bytes%s\n",
	       d.cfg.name, o->addr, o->port, o->region,
	       d.m ? "" : " (transfer only: the model is too big to run)");
	fd = dmaplane_open();
	ret = fd < 0 ? fd : side_listen(fd, &p, o, &listener);
	while (!ret && ok + refused < o->connections) {
		bool accepted;
		int err = dec_connection(&d, fd, listener, &accepted);

		if (!err) {
			ok++;
		} else if (!server || !accepted) {
			/* The only connection failed, or none came: the end. */
			ret = err;
		} else {
			fprintf(stderr, "dpinfer: connection %u: refused: %s\n",
				ok + refused + 1, d.why[0] ? d.why :
				strerror(-err));
			refused++;
		}
	}
	if (ret)
		fail("decode failed", ret);
	if (server)
		printf("served %u connections: %u ok, %u refused\n",
		       ok + refused, ok, refused);
	if (listener)
		dmaplane_ep_destroy(fd, listener);
	if (fd >= 0)
		close(fd);
	model_free(d.m);
	return ret || refused ? 1 : 0;
}

/* --- prefill --- */

struct prefiller {
	struct side s;
	const struct options *o;
	struct model_config cfg;
	struct model *m;	/* NULL with --synthetic */
	struct kv_layout layout;
	struct kv_manifest man;
	uint32_t *prompt, n;
	uint32_t rkey;
	double *posted_ns;	/* per chunk */
	uint32_t done;		/* chunks completed */
	bool marker_done;
	double compute_end_ns, first_post_ns, marker_ns;
	struct hist lat;
	int err;
};

/* A chunk's WRITE_IMM (or the marker) completed. */
static int pre_completion(void *arg, const struct dmaplane_completion *c)
{
	struct prefiller *p = arg;

	if (c->status)
		return c->status;
	if (side_note(&p->s, c))
		return 0;	/* the RESULT, before the marker's completion */
	/* (a --drop-chunk chunk goes as a plain WRITE) */
	if (c->opcode != DMAPLANE_OP_WRITE_IMM &&
	    c->opcode != DMAPLANE_OP_WRITE)
		return 0;
	if (c->cookie == UINT64_MAX) {
		p->marker_done = true;
		p->marker_ns = now_ns();
	} else if (c->cookie < p->man.n_chunks) {
		hist_add(&p->lat, now_ns() - p->posted_ns[c->cookie]);
		p->done++;
	}
	return 0;
}

/* Collect completions: what is in (@min 0), or wait for @min of them. */
static int pre_reap(struct prefiller *p, uint32_t min)
{
	struct dmaplane_completion c[64];
	uint32_t got;
	int ret = dmaplane_reap(p->s.fd, p->s.ep, c, 64, min, min ? WAIT_MS : 0,
				&got);

	for (uint32_t i = 0; !ret && i < got; i++)
		ret = pre_completion(p, &c[i]);
	return ret;
}

/* Post @n operations, reaping completions while the send queue is full. */
static int pre_post(struct prefiller *p, struct dmaplane_op *ops, uint32_t n)
{
	while (n) {
		uint32_t k = n < DMAPLANE_POST_MAX ? n : DMAPLANE_POST_MAX;
		uint32_t posted = 0;
		int ret = dmaplane_post(p->s.fd, p->s.ep, ops, k, &posted);

		ops += posted;
		n -= posted;
		if (ret == -EAGAIN)
			ret = pre_reap(p, 1);
		if (ret)
			return ret;
	}
	return 0;
}

/* The WRITE_IMM of chunk @index into the peer's region; its post time. */
static struct dmaplane_op pre_chunk_op(struct prefiller *p, uint32_t index)
{
	struct kv_chunk c;

	kv_plan_chunk(&p->man, index, &c);
	p->posted_ns[index] = now_ns();
	return (struct dmaplane_op){
		.cookie = index, .opcode = DMAPLANE_OP_WRITE_IMM,
		.mr = p->s.kv.mr, .offset = c.offset, .length = c.length,
		.rkey = p->rkey, .remote_offset = c.offset,
		.imm = kv_imm_data(index),
	};
}

/* WRITE_IMM chunks [first, first + count) into the peer's region. */
static int pre_send_chunks(struct prefiller *p, uint32_t first, uint32_t count)
{
	struct dmaplane_op ops[DMAPLANE_POST_MAX];

	if (!p->first_post_ns)
		p->first_post_ns = now_ns();
	while (count) {
		uint32_t k = count < DMAPLANE_POST_MAX ? count : DMAPLANE_POST_MAX;
		uint32_t pause = p->o->pause_after;

		if (pause && pause == first) {
			/* Those before it are in the peer's region by now. */
			while (!p->err && p->done < pause)
				p->err = pre_reap(p, 1);
			fprintf(stderr, "dpinfer: pausing after %u chunks\n", pause);
			sleep(10);
		} else if (pause > first && pause < first + k) {
			k = pause - first;
		}
		for (uint32_t i = 0; i < k; i++) {
			ops[i] = pre_chunk_op(p, first + i);
			/* A lost chunk: write it with the next one's identity. */
			if (p->o->drop_chunk == first + i + 1) {
				ops[i].opcode = DMAPLANE_OP_WRITE;
				ops[i].imm = 0;
			}
		}
		if ((p->err = pre_post(p, ops, k)))
			return p->err;
		first += k;
		count -= k;
	}
	return 0;
}

/* Layer @layer is computed: ship it while the next one computes. */
static void pre_layer_done(void *arg, uint32_t layer)
{
	struct prefiller *p = arg;
	uint32_t first, count;

	if (p->err || kv_plan_layer(&p->man, layer, &first, &count))
		return;
	if (!pre_send_chunks(p, first, count))
		p->err = pre_reap(p, 0);
}

/* The manifest of request @id: the KV of prompt positions 0 .. n-2. */
static int pre_manifest(struct prefiller *p, uint64_t id)
{
	struct kv_manifest *m = &p->man;
	char why[REASON_LEN];
	int ret;

	memset(m, 0, sizeof(*m));
	m->layout = p->layout;
	m->tokens = p->n - 1;
	m->chunk_bytes = p->o->chunk;
	m->model_seed = p->cfg.seed;
	m->d_ff = p->cfg.d_ff;
	m->vocab = p->cfg.vocab;
	m->max_seq = p->cfg.max_seq;
	m->first_token = p->prompt[p->n - 1];
	m->n_generate = p->m ? p->o->generate : 0;
	m->request_id = id;
	m->n_chunks = kv_plan_count(m);
	ret = kv_manifest_check(m, UINT64_MAX, why, sizeof(why));
	if (ret)
		fprintf(stderr, "dpinfer: %s\n", why);
	return ret;
}

/* --hostile manifest-*: spoil the encoded manifest; the length to send. */
static uint32_t pre_spoil_manifest(struct prefiller *p, uint32_t len)
{
	unsigned char *m = p->s.msg.p;

	switch (p->o->hostile) {
	case HOSTILE_MANIFEST_HUGE_REGION:
		put64(m + KVM_OFF_REGION_BYTES, 1ull << 62);
		break;
	case HOSTILE_MANIFEST_MANY_CHUNKS:
		put32(m + KVM_OFF_N_CHUNKS, 0x3fffffff);
		break;
	case HOSTILE_MANIFEST_SHORT:
		return len - 1;
	default:
		break;
	}
	return len;
}

/*
 * --hostile imm-*, after the ACK: chunk 0 with an immediate the decode
 * must refuse. A manifest kind gets here only when its manifest was taken.
 */
static int pre_misbehave(struct prefiller *p)
{
	struct dmaplane_op ops[2];
	uint32_t n = 1;

	ops[0] = ops[1] = pre_chunk_op(p, 0);
	switch (p->o->hostile) {
	case HOSTILE_IMM_PAST_END:
		ops[0].imm = kv_imm_data(p->man.n_chunks);
		break;
	case HOSTILE_IMM_DUPLICATE:
		n = 2;
		break;
	case HOSTILE_IMM_RESERVED:
		ops[0].imm = 2u << KV_IMM_TYPE_SHIFT;
		break;
	default:
		fprintf(stderr, "dpinfer: decode took the %s manifest\n",
			hostile_names[p->o->hostile]);
		return -EPROTO;
	}
	return pre_post(p, ops, n);
}

/* The decode's RESULT into @r: 0, or why the request failed there. */
static int pre_result(struct prefiller *p, struct result *r)
{
	uint32_t len;
	int ret = wait_cookie(&p->s, 1002, &len, pre_completion, p);

	if (!ret)
		ret = result_decode(p->s.msg.p + 2 * SLOT, len, r);
	if (!ret && r->status) {
		fprintf(stderr, "dpinfer: decode failed: %s: %s\n",
			strerror(-r->status), r->reason);
		ret = r->status;
	}
	return ret;
}

struct report {
	double setup_ns, compute_ns, transfer_ns, exposed_ns;
	uint64_t bytes;
	uint64_t stalls;
	struct result r;
	bool identical;
};

/* One request: manifest, ACK, compute and send, marker, RESULT. */
static int pre_request(struct prefiller *p, uint64_t id, struct report *rep)
{
	struct dmaplane_ep_info before, after;
	struct kv_cache kv = { .layout = &p->layout, .base = p->s.kv.p };
	unsigned char *ack = p->s.msg.p + SLOT;
	uint32_t len;
	double t0;
	int ret;

	ret = pre_manifest(p, id);
	p->done = 0;
	p->marker_done = false;
	p->first_post_ns = 0;
	p->err = 0;
	memset(&p->lat, 0, sizeof(p->lat));
	dmaplane_ep_info(p->s.fd, p->s.ep, &before);
	if (!ret)
		ret = post_msg(&p->s, DMAPLANE_OP_RECV, 1, SLOT);
	if (!ret)
		ret = post_msg(&p->s, DMAPLANE_OP_RECV, 2, SLOT);
	if (!ret)
		ret = kv_manifest_encode(&p->man, p->s.msg.p, SLOT);
	if (!ret)
		ret = post_msg(&p->s, DMAPLANE_OP_SEND, 0,
			       pre_spoil_manifest(p, kv_manifest_size(
					p->layout.n_layers)));
	if (!ret)
		ret = wait_cookie(&p->s, 1001, &len, pre_completion, p);
	if (ret)
		return ret;
	if (get32(ack) != ACK_MAGIC)
		return -EPROTO;
	if (get32(ack + 4)) {
		ack[24 + REASON_LEN - 1] = 0;
		fprintf(stderr, "dpinfer: decode refused the request: %s\n",
			(char *)ack + 24);
		return (int32_t)get32(ack + 4);
	}
	p->rkey = get32(ack + 8);
	/* A hostile peer never does better than the decode's refusal. */
	if (p->o->hostile)
		return pre_misbehave(p) ?: pre_result(p, &rep->r) ?: -EPROTO;
	t0 = now_ns();
	if (!p->m) {
		pattern(&p->man, p->s.kv.p, false);
		p->compute_end_ns = now_ns();
		ret = pre_send_chunks(p, 0, p->man.n_chunks);
	} else {
		ret = model_prefill(p->m, &kv, p->prompt, p->n - 1, NULL,
				    p->o->overlap ? pre_layer_done : NULL, p);
		p->compute_end_ns = now_ns();
		if (!ret && !p->o->overlap)
			ret = pre_send_chunks(p, 0, p->man.n_chunks);
		ret = ret ?: p->err;
	}
	if (!ret) {
		struct dmaplane_op marker = {
			.cookie = UINT64_MAX, .opcode = DMAPLANE_OP_WRITE_IMM,
			.rkey = p->rkey, .imm = kv_imm_final(p->man.n_chunks),
		};

		ret = pre_post(p, &marker, 1);
	}
	while (!ret && (!p->marker_done || p->done < p->man.n_chunks))
		ret = pre_reap(p, 1);
	if (!ret)
		ret = pre_result(p, &rep->r);
	if (ret)
		return ret;
	dmaplane_ep_info(p->s.fd, p->s.ep, &after);
	rep->compute_ns = p->compute_end_ns - t0;
	rep->transfer_ns = p->marker_ns - p->first_post_ns;
	rep->exposed_ns = p->marker_ns > p->compute_end_ns ?
			  p->marker_ns - p->compute_end_ns : 0;
	rep->stalls = after.stalls - before.stalls;
	rep->bytes = 0;
	for (uint32_t i = 0; i < p->man.n_chunks; i++) {
		struct kv_chunk c;

		kv_plan_chunk(&p->man, i, &c);
		rep->bytes += c.length;
	}
	return 0;
}

/* The single-process run of the same calls: is the decode bit-identical? */
static bool pre_identical(struct prefiller *p, const struct result *got)
{
	struct kv_cache kv = { .layout = &p->layout, .base = p->s.kv.p,
			       .tokens = p->n - 1 };
	struct result want = { 0 };

	if (generate(p->m, &kv, p->prompt[p->n - 1], p->o->generate, &want))
		return false;
	return want.n_tokens == got->n_tokens &&
	       !memcmp(want.tokens, got->tokens,
		       want.n_tokens * sizeof(want.tokens[0])) &&
	       want.logits_hash == got->logits_hash;
}

static void report_print(const struct prefiller *p, const struct report *rep,
			 uint32_t i, FILE *js)
{
	const struct result *r = &rep->r;
	/* With overlap the span includes compute: no rate. */
	bool rated = (!p->m || !p->o->overlap) && rep->transfer_ns;
	double mbps = rated ? rep->bytes / (rep->transfer_ns / 1e3) : 0;
	char mbps_js[32] = "null";
	double hidden = rep->transfer_ns && rep->exposed_ns < rep->transfer_ns ?
			1 - rep->exposed_ns / rep->transfer_ns : 0;
	double ttft = rep->compute_ns + rep->exposed_ns + r->decode_first_ns;
	double tps = r->decode_ns ? r->n_tokens / (r->decode_ns / 1e9) : 0;

	printf("request %u: %s, prompt %u tokens, %u generated, %s KV\n", i + 1,
	       p->cfg.name, p->n, r->n_tokens,
	       p->layout.dtype == KV_F16 ? "fp16" : "fp32");
	printf("  KV bytes       %" PRIu64 " (%u positions), %u chunks of %" PRIu64 " KiB\n",
	       rep->bytes, p->man.tokens, p->man.n_chunks, p->o->chunk >> 10);
	if (p->m && p->o->overlap)
		printf("  transfer       %.2f ms from the first layer's chunks to the marker, alongside compute\n",
		       rep->transfer_ns / 1e6);
	else
		printf("  transfer       %.2f ms, %.1f MB/s\n",
		       rep->transfer_ns / 1e6, mbps);
	printf("  per chunk      POST to completion p50 %.0f us, p99 %.0f us\n",
	       hist_pct(&p->lat, 0.5) / 1e3, hist_pct(&p->lat, 0.99) / 1e3);
	printf("  overlap        compute %.2f ms, exposed transfer %.2f ms (%.0f%% of the transfer hidden)\n",
	       rep->compute_ns / 1e6, rep->exposed_ns / 1e6, 100 * hidden);
	printf("  TTFT           %.2f ms = prefill %.2f + transfer %.2f + first decode step %.2f\n",
	       ttft / 1e6, rep->compute_ns / 1e6, rep->exposed_ns / 1e6,
	       r->decode_first_ns / 1e6);
	printf("  decode         %.1f tokens/s; stalls %" PRIu64 "\n", tps,
	       rep->stalls);
	if (p->m)
		printf("  bit-identical  %s\n", rep->identical ? "yes" : "NO");
	else
		printf("  integrity      ok (every byte checked by decode)\n");
	if (i == 0)
		printf("  setup          %.2f ms (connect, register): paid once, reused after\n",
		       rep->setup_ns / 1e6);
	if (!js)
		return;
	if (rated)
		snprintf(mbps_js, sizeof(mbps_js), "%.1f", mbps);
	fprintf(js, "%s{\"request\": %u, \"model\": \"%s\", \"kv\": \"%s\", \"prompt_tokens\": %u, \"kv_bytes\": %" PRIu64 ", \"chunks\": %u, \"chunk_bytes\": %" PRIu64 ", \"transfer_ms\": %.3f, \"MBps\": %s, \"chunk_p50_us\": %.1f, \"chunk_p99_us\": %.1f, \"prefill_ms\": %.3f, \"exposed_transfer_ms\": %.3f, \"hidden\": %.3f, \"first_decode_ms\": %.3f, \"ttft_ms\": %.3f, \"decode_tokens_per_s\": %.1f, \"stalls\": %" PRIu64 ", \"setup_ms\": %.3f, \"generated\": %u, \"bit_identical\": %s}",
		i ? ", " : "[", i + 1, p->cfg.name,
		p->layout.dtype == KV_F16 ? "fp16" : "fp32", p->n, rep->bytes,
		p->man.n_chunks, p->o->chunk, rep->transfer_ns / 1e6, mbps_js,
		hist_pct(&p->lat, 0.5) / 1e3, hist_pct(&p->lat, 0.99) / 1e3,
		rep->compute_ns / 1e6, rep->exposed_ns / 1e6, hidden,
		r->decode_first_ns / 1e6, ttft / 1e6, tps, rep->stalls,
		i ? 0.0 : rep->setup_ns / 1e6, r->n_tokens,
		p->m ? (rep->identical ? "true" : "false") : "null");
}

static int cmd_prefill(const struct options *o)
{
	struct prefiller p = { .o = o };
	struct dmaplane_ep_create params = { .recv_depth = 4 };
	struct report rep;
	uint32_t max_tokens;
	bool all_identical = true;
	FILE *js;
	double t0;
	int fd, ret;

	ret = model_config_load(o->model, &p.cfg);
	if (ret)
		return fail(o->model, ret);
	if (!o->synthetic) {
		p.m = model_create(&p.cfg);
		if (!p.m)
			return fail("model_create (--synthetic for transfer only)",
				    -errno);
	}
	p.prompt = prompt_tokens(o, p.cfg.vocab, &p.n);
	if (p.n < 2)
		return fail("the prompt needs two tokens or more", -EINVAL);
	max_tokens = p.n + (p.m ? o->generate : 0);
	ret = model_kv_layout(&p.cfg, max_tokens, o->dtype, &p.layout);
	if (!ret)
		ret = pre_manifest(&p, 0);
	if (ret)
		return fail("manifest", ret);
	p.posted_ns = calloc(p.man.n_chunks, sizeof(*p.posted_ns));
	/* Every chunk may be posted at once: credits hold them back. */
	params.send_depth = p.man.n_chunks + 8 < DMAPLANE_EP_DEPTH_MAX ?
			    p.man.n_chunks + 8 : DMAPLANE_EP_DEPTH_MAX;
	t0 = now_ns();
	fd = dmaplane_open();
	ret = fd < 0 ? fd : side_open(&p.s, fd, &params, o, 0);
	if (!ret)
		ret = region_open(p.s.fd, p.s.ep, p.layout.bytes,
				  DMAPLANE_MR_LOCAL_WRITE, &p.s.kv);
	if (ret)
		return fail("connect", ret);
	rep.setup_ns = now_ns() - t0;
	js = json_open(o);
	for (uint32_t i = 0; !ret && i < o->requests; i++) {
		double setup = rep.setup_ns;

		memset(&rep, 0, sizeof(rep));
		rep.setup_ns = setup;
		ret = pre_request(&p, i + 1, &rep);
		if (ret)
			break;
		rep.identical = p.m && pre_identical(&p, &rep.r);
		all_identical &= !p.m || rep.identical;
		report_print(&p, &rep, i, js);
	}
	if (js) {
		fprintf(js, "]\n");
		fclose(js);
	}
	if (ret)
		fail("prefill failed", ret);
	else if (p.m)
		printf("verdict: %s\n", all_identical ?
		       "bit-identical to the single-process run" :
		       "NOT bit-identical");
	side_close(&p.s);
	close(fd);
	free(p.posted_ns);
	free(p.prompt);
	model_free(p.m);
	return ret || !all_identical ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpinfer local   --model CONF [--prompt TEXT | --prompt-len N] [--generate N] [--kv fp32|fp16]\n"
		"       dpinfer decode  --addr IP [--port N] --model CONF [--region BYTES] [--requests N]\n"
		"                       [--connections N] [--recv-depth N] [--window N] [--timeout-ms T]\n"
		"       dpinfer prefill --addr PEER [--port N] --model CONF [--prompt TEXT | --prompt-len N]\n"
		"                       [--generate N] [--kv fp32|fp16] [--chunk BYTES] [--requests N]\n"
		"                       [--no-overlap] [--synthetic]\n"
		"       every command: [--json-out FILE]\n"
		"       tests, prefill: [--drop-chunk I] [--pause-after N] [--hostile KIND]\n"
		"                       KIND: manifest-huge-region, manifest-many-chunks, manifest-short,\n"
		"                             imm-past-end, imm-duplicate, imm-reserved\n");
}

/* --hostile's KIND; HOSTILE_KINDS when it names none. */
static enum hostile hostile_kind(const char *name)
{
	enum hostile k = HOSTILE_NONE + 1;

	while (k < HOSTILE_KINDS && strcmp(name, hostile_names[k]))
		k++;
	return k;
}

static int parse(int argc, char **argv, struct options *o)
{
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-overlap")) {
			o->overlap = false;
			continue;
		}
		if (!strcmp(a, "--synthetic")) {
			o->synthetic = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--addr"))
			o->addr = v;
		else if (!strcmp(a, "--port"))
			o->port = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--model"))
			o->model = v;
		else if (!strcmp(a, "--prompt"))
			o->prompt = v;
		else if (!strcmp(a, "--prompt-len"))
			o->prompt_len = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--generate"))
			o->generate = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--kv") && (!strcmp(v, "fp32") || !strcmp(v, "fp16")))
			o->dtype = strcmp(v, "fp16") ? KV_F32 : KV_F16;
		else if (!strcmp(a, "--region"))
			o->region = dmaplane_parse_size(v);
		else if (!strcmp(a, "--requests"))
			o->requests = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--connections"))
			o->connections = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--recv-depth"))
			o->recv_depth = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--window"))
			o->window = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--timeout-ms"))
			o->timeout_ms = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--chunk"))
			o->chunk = dmaplane_parse_size(v);
		else if (!strcmp(a, "--json-out"))
			o->json_out = v;
		else if (!strcmp(a, "--drop-chunk"))
			o->drop_chunk = strtoul(v, NULL, 0) + 1;
		else if (!strcmp(a, "--pause-after"))
			o->pause_after = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--hostile"))
			o->hostile = hostile_kind(v);
		else
			return -1;
	}
	if (!o->model || o->port > 65535 || !o->requests || !o->connections ||
	    o->hostile == HOSTILE_KINDS || !o->recv_depth ||
	    !o->timeout_ms || !o->region || !o->chunk ||
	    o->generate > MAX_GENERATE || (!o->prompt && !o->prompt_len))
		return -1;
	if (strcmp(o->cmd, "local") && !o->addr)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
		.port = PORT_DEFAULT, .generate = 16, .dtype = KV_F32,
		.region = 64ull << 20, .requests = 1, .connections = 1,
		.recv_depth = 256,
		.timeout_ms = 30000, .chunk = 256 << 10, .overlap = true,
		.prompt_len = 64,
	};

	if (argc < 2 || parse(argc, argv, (o.cmd = argv[1], &o))) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(o.cmd, "local"))
		return cmd_local(&o);
	if (!strcmp(o.cmd, "decode"))
		return cmd_decode(&o);
	if (!strcmp(o.cmd, "prefill"))
		return cmd_prefill(&o);
	usage(stderr);
	return 2;
}
