// SPDX-License-Identifier: GPL-2.0
/*
 * kv_manifest: the KV-cache manifest's wire format and validation, the
 * chunk plan, the immediate and the receive bitmap (src/apps/kv_manifest.h).
 * Pure userspace: needs no module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_layout.h"
#include "kv_manifest.h"
#include "ktap.h"

#define MiB (1ull << 20)
#define KiB (1ull << 10)

/* Offset of a layer table field: kind 0 K / 1 V, field 0 offset,
 * 1 token_stride, 2 head_stride. */
#define LOFF(layer, kind, field) \
	(KV_MANIFEST_HDR_LEN + (layer) * KV_MANIFEST_LAYER_LEN + \
	 (kind) * 24 + (field) * 8)

static void w32(unsigned char *p, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[off + i] = (unsigned char)(v >> (8 * i));
}

static void w64(unsigned char *p, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[off + i] = (unsigned char)(v >> (8 * i));
}

/*
 * The documented wire format written independently of the library, with
 * no validation: lets the test put any hostile value on the wire.
 */
static size_t raw_encode(const struct kv_manifest *m, unsigned char *p)
{
	const struct kv_layout *l = &m->layout;
	size_t n = KV_MANIFEST_HDR_LEN +
		   (size_t)l->n_layers * KV_MANIFEST_LAYER_LEN;

	memset(p, 0, n);
	memcpy(p, "KVM1", 4);
	w32(p, 4, 1);
	w32(p, 8, 96);
	w32(p, 12, l->dtype);
	w32(p, 16, l->n_layers);
	w32(p, 20, l->n_heads);
	w32(p, 24, l->head_dim);
	w32(p, 28, l->max_tokens);
	w32(p, 32, m->tokens);
	w32(p, 36, m->chunk_bytes);
	w32(p, 40, m->n_chunks);
	w32(p, 44, m->first_token);
	w32(p, 48, m->n_generate);
	w32(p, 52, m->d_ff);
	w32(p, 56, m->vocab);
	w32(p, 60, m->max_seq);
	w64(p, 64, l->bytes);
	w64(p, 72, m->model_seed);
	w64(p, 80, m->request_id);
	for (uint32_t i = 0; i < l->n_layers; i++) {
		w64(p, LOFF(i, 0, 0), l->k[i].offset);
		w64(p, LOFF(i, 0, 1), l->k[i].token_stride);
		w64(p, LOFF(i, 0, 2), l->k[i].head_stride);
		w64(p, LOFF(i, 1, 0), l->v[i].offset);
		w64(p, LOFF(i, 1, 1), l->v[i].token_stride);
		w64(p, LOFF(i, 1, 2), l->v[i].head_stride);
	}
	return n;
}

static void model_fields(struct kv_manifest *m)
{
	m->model_seed = 0x0123456789abcdefull;
	m->d_ff = 172;
	m->vocab = 256;
	m->max_seq = 8192;
	m->first_token = 42;
	m->n_generate = 8;
	m->request_id = 0xfeedfacecafebeefull;
}

/* 2 layers, 4 heads, head_dim 16, 64 token rows. */
static int tiny(struct kv_manifest *m, uint32_t dtype, uint32_t tokens)
{
	int ret;

	memset(m, 0, sizeof(*m));
	ret = kv_layout_init(&m->layout, 2, 4, 16, 64, dtype);
	m->tokens = tokens;
	m->chunk_bytes = 64 * KiB;
	model_fields(m);
	m->n_chunks = kv_plan_count(m);
	return ret;
}

/* 32 layers, 32 heads, head_dim 128, fp16: a 7B model's KV layout. */
static int shape7b(struct kv_manifest *m, uint32_t tokens,
		   uint32_t max_tokens, uint32_t chunk)
{
	int ret;

	memset(m, 0, sizeof(*m));
	ret = kv_layout_init(&m->layout, 32, 32, 128, max_tokens, KV_F16);
	m->tokens = tokens;
	m->chunk_bytes = chunk;
	model_fields(m);
	m->n_chunks = kv_plan_count(m);
	return ret;
}

static bool manifests_equal(const struct kv_manifest *a,
			    const struct kv_manifest *b, char *what,
			    size_t len)
{
	const struct kv_layout *x = &a->layout, *y = &b->layout;

#define SAME(f) do { if (a->f != b->f) { \
		snprintf(what, len, "%s: %llu != %llu", #f, \
			 (unsigned long long)a->f, (unsigned long long)b->f); \
		return false; } } while (0)
	SAME(layout.n_layers);
	SAME(layout.n_heads);
	SAME(layout.head_dim);
	SAME(layout.max_tokens);
	SAME(layout.dtype);
	SAME(layout.bytes);
	SAME(tokens);
	SAME(chunk_bytes);
	SAME(n_chunks);
	SAME(model_seed);
	SAME(d_ff);
	SAME(vocab);
	SAME(max_seq);
	SAME(first_token);
	SAME(n_generate);
	SAME(request_id);
#undef SAME
	for (uint32_t i = 0; i < x->n_layers; i++) {
		if (memcmp(&x->k[i], &y->k[i], sizeof(x->k[i])) ||
		    memcmp(&x->v[i], &y->v[i], sizeof(x->v[i]))) {
			snprintf(what, len, "layer %u tensors differ", i);
			return false;
		}
	}
	return true;
}

/* Filled prefix of tensor j, computed here from the definition. */
static uint64_t prefix_bytes(const struct kv_manifest *m, uint32_t j)
{
	const struct kv_layout *l = &m->layout;
	const struct kv_tensor *t = (j & 1) ? &l->v[j / 2] : &l->k[j / 2];

	return (uint64_t)(m->tokens - 1) * t->token_stride +
	       (uint64_t)(l->n_heads - 1) * t->head_stride +
	       (uint64_t)l->head_dim * kv_elem_size(l->dtype);
}

/*
 * The plan tiles each tensor's filled prefix exactly: chunks in index
 * order walk tensor 0, 1, ... (K then V per layer), each tensor's chunks
 * abut from its offset, all full but the last, and the lengths add up.
 * Returns the bytes planned (0 after a failed check).
 */
static uint64_t check_tiling(const struct kv_manifest *m)
{
	uint32_t n = 0, count = kv_plan_count(m), idx = 0;
	struct kv_chunk *c;
	uint64_t total = 0;

	KTAP_EXPECT(count > 0 && count == m->n_chunks, "count %u, n_chunks %u",
		    count, m->n_chunks);
	c = calloc(count ? count : 1, sizeof(*c));
	if (!c)
		return 0;
	KTAP_EXPECT_RET(kv_plan(m, c, count, &n), 0);
	KTAP_EXPECT(n == count, "kv_plan n %u, count %u", n, count);
	for (uint32_t j = 0; j < 2 * m->layout.n_layers && n == count; j++) {
		const struct kv_tensor *t = (j & 1) ? &m->layout.v[j / 2] :
						      &m->layout.k[j / 2];
		uint64_t want = prefix_bytes(m, j), at = t->offset, got = 0;
		uint32_t lfirst, lcount;

		while (idx < n && c[idx].layer == j / 2 &&
		       c[idx].kind == (j & 1)) {
			KTAP_EXPECT(c[idx].index == idx, "chunk %u index %u",
				    idx, c[idx].index);
			KTAP_EXPECT(c[idx].offset == at,
				    "chunk %u at %llu, want %llu (gap/overlap)",
				    idx, (unsigned long long)c[idx].offset,
				    (unsigned long long)at);
			KTAP_EXPECT(c[idx].length > 0 &&
				    c[idx].length <= m->chunk_bytes,
				    "chunk %u length %llu", idx,
				    (unsigned long long)c[idx].length);
			if (got + c[idx].length < want)
				KTAP_EXPECT(c[idx].length == m->chunk_bytes,
					    "short chunk %u before the end",
					    idx);
			at += c[idx].length;
			got += c[idx].length;
			idx++;
		}
		KTAP_EXPECT(got == want, "tensor %u planned %llu of %llu bytes",
			    j, (unsigned long long)got,
			    (unsigned long long)want);
		total += got;
		if (j & 1) {
			KTAP_EXPECT_RET(kv_plan_layer(m, j / 2, &lfirst,
						      &lcount), 0);
			KTAP_EXPECT(lfirst + lcount == idx,
				    "layer %u chunks [%u, +%u) end at %u",
				    j / 2, lfirst, lcount, idx);
		}
	}
	KTAP_EXPECT(idx == n, "%u of %u chunks attributed to tensors", idx, n);
	/* Spot-check kv_plan_chunk against the array. */
	for (uint32_t i = 0; i < n; i += 1 + n / 17) {
		struct kv_chunk one;

		KTAP_EXPECT_RET(kv_plan_chunk(m, i, &one), 0);
		KTAP_EXPECT(one.index == c[i].index &&
			    one.layer == c[i].layer && one.kind == c[i].kind &&
			    one.offset == c[i].offset &&
			    one.length == c[i].length,
			    "kv_plan_chunk(%u) differs from kv_plan", i);
	}
	free(c);
	return ktap_case_failed() ? 0 : total;
}

static void round_trip(const struct kv_manifest *m)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], raw[KV_MANIFEST_MAX_LEN];
	size_t len = kv_manifest_size(m->layout.n_layers);
	struct kv_manifest d;
	char why[256], what[128];

	KTAP_EXPECT_RET(kv_manifest_encode(m, buf, sizeof(buf)), 0);
	KTAP_EXPECT(raw_encode(m, raw) == len, "size");
	KTAP_EXPECT(!memcmp(buf, raw, len),
		    "encoding differs from the documented table");
	KTAP_EXPECT_RET(kv_manifest_decode(buf, len, m->layout.bytes, &d, why,
					   sizeof(why)), 0);
	KTAP_EXPECT(why[0] == '\0', "why on success: %s", why);
	KTAP_EXPECT(manifests_equal(m, &d, what, sizeof(what)), "%s", what);
}

static void round_trip_tiny_fp32(void)
{
	struct kv_manifest m;

	KTAP_EXPECT_RET(tiny(&m, KV_F32, 64), 0);
	m.n_generate = 0;
	round_trip(&m);
	KTAP_EXPECT(check_tiling(&m) == 2ull * 2 * 64 * 4 * 16 * 4,
		    "tiny fp32 filled bytes");
	KTAP_EXPECT_RET(tiny(&m, KV_F32, 37), 0);
	m.n_generate = 64 - 37;
	round_trip(&m);
	KTAP_EXPECT(check_tiling(&m) == 2ull * 2 * 37 * 4 * 16 * 4,
		    "tiny fp32 37 tokens");
	KTAP_EXPECT(m.n_chunks == 4, "%u chunks", m.n_chunks);
}

static void round_trip_tiny_fp16(void)
{
	struct kv_manifest m;

	KTAP_EXPECT_RET(tiny(&m, KV_F16, 64), 0);
	m.n_generate = 0;
	round_trip(&m);
	KTAP_EXPECT(check_tiling(&m) == 2ull * 2 * 64 * 4 * 16 * 2,
		    "tiny fp16 filled bytes");
	KTAP_EXPECT_RET(tiny(&m, KV_F16, 1), 0);
	round_trip(&m);
	check_tiling(&m);
}

static void round_trip_7b_shape(void)
{
	struct kv_manifest m;
	uint64_t bytes;

	/* 128 tokens of fp16: 1 MiB per tensor, 64 MiB in all. */
	KTAP_EXPECT_RET(shape7b(&m, 128, 128, 1 * MiB), 0);
	m.n_generate = 0;
	m.max_seq = 128;
	round_trip(&m);
	KTAP_EXPECT(m.n_chunks == 64, "%u chunks", m.n_chunks);
	bytes = check_tiling(&m);
	KTAP_EXPECT(bytes == 64 * MiB, "%llu bytes planned",
		    (unsigned long long)bytes);
	printf("# 7B shape: %llu MiB in %u chunks of 1 MiB, manifest %zu bytes\n",
	       (unsigned long long)(bytes / MiB), m.n_chunks,
	       kv_manifest_size(m.layout.n_layers));

	/* Room for 4096 tokens, 100 filled, 192 KiB chunks (not 2^n). */
	KTAP_EXPECT_RET(shape7b(&m, 100, 4096, 192 * KiB), 0);
	round_trip(&m);
	KTAP_EXPECT(m.n_chunks == 64 * 5, "%u chunks", m.n_chunks);
	KTAP_EXPECT(check_tiling(&m) == 64ull * 100 * 8192, "filled bytes");

	/* 4 MiB chunks: one per tensor, shorter than the chunk. */
	KTAP_EXPECT_RET(shape7b(&m, 130, 256, 4 * MiB), 0);
	round_trip(&m);
	KTAP_EXPECT(m.n_chunks == 64, "%u chunks", m.n_chunks);
	check_tiling(&m);
}

/*
 * A layout with padding between heads and between token rows, tensors
 * apart: the prefix runs from token 0's first byte to token tokens-1's
 * last, and agrees with kv_at().
 */
static void strided_layout(struct kv_manifest *m)
{
	struct kv_layout *l = &m->layout;
	uint64_t off = 4096;

	memset(m, 0, sizeof(*m));
	l->n_layers = 2;
	l->n_heads = 3;
	l->head_dim = 8;
	l->max_tokens = 64;
	l->dtype = KV_F32;
	for (uint32_t i = 0; i < 2; i++) {
		struct kv_tensor *t[2] = { &l->k[i], &l->v[i] };

		for (int k = 0; k < 2; k++) {
			t[k]->offset = off;
			t[k]->head_stride = 48;		/* 32 used */
			t[k]->token_stride = 4096;	/* 144 used */
			off += 63 * 4096 + 2 * 48 + 32 + 4096 + 64;
		}
	}
	l->bytes = off + 100;
	m->tokens = 40;
	m->chunk_bytes = 64 * KiB;
	model_fields(m);
	m->n_chunks = kv_plan_count(m);
}

static void strided_layout_plan(void)
{
	struct kv_manifest m;
	struct kv_chunk c[16];
	unsigned char *region;
	uint32_t n;
	char why[256];

	strided_layout(&m);
	KTAP_EXPECT_RET(kv_manifest_check(&m, UINT64_MAX, why, sizeof(why)), 0);
	KTAP_EXPECT(why[0] == '\0', "%s", why);
	round_trip(&m);
	/* 39 * 4096 + 2 * 48 + 32 = 159872: 64 KiB + 64 KiB + 28800 */
	KTAP_EXPECT(m.n_chunks == 4 * 3, "%u chunks", m.n_chunks);
	KTAP_EXPECT_RET(kv_plan(&m, c, 16, &n), 0);
	KTAP_EXPECT(c[2].length == 28800 && c[3].offset == m.layout.v[0].offset,
		    "chunk 2 length %llu", (unsigned long long)c[2].length);
	check_tiling(&m);

	region = malloc(m.layout.bytes);
	KTAP_EXPECT(region != NULL, "malloc");
	if (!region)
		return;
	for (uint32_t j = 0; j < 4; j++) {
		const struct kv_tensor *t = (j & 1) ? &m.layout.v[j / 2] :
						      &m.layout.k[j / 2];
		const struct kv_chunk *last = &c[3 * j + 2];
		char *first = kv_at(region, t, 0, 0);
		char *end = (char *)kv_at(region, t, m.tokens - 1, 2) + 32;

		KTAP_EXPECT(first == (char *)region + c[3 * j].offset,
			    "tensor %u starts off the plan", j);
		KTAP_EXPECT(end == (char *)region + last->offset + last->length,
			    "tensor %u's last filled byte is not the plan's",
			    j);
	}
	free(region);
}

static void plan_api(void)
{
	struct kv_manifest m, bad;
	struct kv_chunk c[8], one;
	uint32_t n = 0, first, count;

	KTAP_EXPECT_RET(shape7b(&m, 100, 128, 256 * KiB), 0);
	/* 819200 bytes per tensor: 4 chunks each, 8 per layer */
	KTAP_EXPECT(m.n_chunks == 256, "%u", m.n_chunks);
	KTAP_EXPECT_RET(kv_plan(&m, c, 8, &n), -ENOSPC);
	KTAP_EXPECT(n == 256, "n %u", n);
	KTAP_EXPECT(c[7].layer == 0 && c[7].kind == KV_KIND_V &&
		    c[7].length == 819200 - 3 * 256 * KiB,
		    "chunk 7: layer %u kind %u length %llu", c[7].layer,
		    c[7].kind, (unsigned long long)c[7].length);
	KTAP_EXPECT_RET(kv_plan_chunk(&m, 255, &one), 0);
	KTAP_EXPECT(one.layer == 31 && one.kind == KV_KIND_V, "last chunk");
	KTAP_EXPECT_RET(kv_plan_chunk(&m, 256, &one), -ERANGE);
	KTAP_EXPECT_RET(kv_plan_layer(&m, 5, &first, &count), 0);
	KTAP_EXPECT(first == 40 && count == 8, "layer 5: %u +%u", first, count);
	KTAP_EXPECT_RET(kv_plan_layer(&m, 32, &first, &count), -ERANGE);

	bad = m;
	bad.tokens = 0;
	KTAP_EXPECT(kv_plan_count(&bad) == 0, "zero tokens");
	KTAP_EXPECT_RET(kv_plan(&bad, c, 8, &n), -EINVAL);
	bad = m;
	bad.chunk_bytes = 0;
	KTAP_EXPECT(kv_plan_count(&bad) == 0, "zero chunk");
	bad = m;
	bad.layout.k[3].token_stride = UINT64_MAX / 2;
	KTAP_EXPECT(kv_plan_count(&bad) == 0, "overflowing stride");
	KTAP_EXPECT_RET(kv_plan_chunk(&bad, 0, &one), -EINVAL);
}

/* --- rejection --- */

static void reject_at(int line, const void *buf, size_t len, uint64_t limit,
		      int want, const char *substr)
{
	struct kv_manifest d;
	char why[256];
	int ret;

	memset(why, 'x', sizeof(why));
	ret = kv_manifest_decode(buf, len, limit, &d, why, sizeof(why));
	if (ret != want)
		ktap_fail(__FILE__, line, "decode: got %d (%s), want %d (%s): %s",
			  ret, ktap_errname(ret), want, ktap_errname(want),
			  ret ? why : "accepted");
	if (ret && (!memchr(why, '\0', sizeof(why)) || !why[0]))
		ktap_fail(__FILE__, line, "no reason given");
	else if (ret && substr && !strstr(why, substr))
		ktap_fail(__FILE__, line, "reason \"%s\" lacks \"%s\"", why,
			  substr);
	if (ret)
		printf("# %s: %s\n", ktap_errname(ret), why);
}

#define EXPECT_REJECT(buf, len, limit, want, substr) \
	reject_at(__LINE__, buf, len, limit, want, substr)

/* A valid tiny fp32 manifest (2 layers, 37 tokens) on the wire. */
static size_t valid_buf(unsigned char *buf, struct kv_manifest *m)
{
	tiny(m, KV_F32, 37);
	return raw_encode(m, buf);
}

static void rejects_truncated_and_oversized(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN + 64];
	struct kv_manifest m, d;
	size_t len = valid_buf(buf, &m);

	KTAP_EXPECT(len == 192, "len %zu", len);
	KTAP_EXPECT(kv_manifest_size(1) == 144 && kv_manifest_size(128) == 6240,
		    "sizes");
	for (size_t l = 0; l < len; l++) {
		char why[128] = "";

		KTAP_EXPECT_RET(kv_manifest_decode(buf, l, UINT64_MAX, &d, why,
						   sizeof(why)), -EMSGSIZE);
		KTAP_EXPECT(why[0], "no reason at %zu bytes", l);
	}
	EXPECT_REJECT(buf, 0, UINT64_MAX, -EMSGSIZE, "shorter");
	EXPECT_REJECT(buf, 95, UINT64_MAX, -EMSGSIZE, "shorter");
	EXPECT_REJECT(buf, len - 1, UINT64_MAX, -EMSGSIZE, "2 layers need 192");
	EXPECT_REJECT(buf, len + 1, UINT64_MAX, -EMSGSIZE, "2 layers need 192");
	EXPECT_REJECT(NULL, len, UINT64_MAX, -EMSGSIZE, "no manifest");
	/* why may be NULL */
	KTAP_EXPECT_RET(kv_manifest_decode(buf, 10, UINT64_MAX, &d, NULL, 0),
			-EMSGSIZE);
	KTAP_EXPECT_RET(kv_manifest_decode(buf, len, UINT64_MAX, &d, NULL, 0), 0);
}

static void rejects_magic_version(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	memcpy(b, buf, len);
	b[3] = '2';
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "magic");
	memcpy(b, buf, len);
	memcpy(b, "kvm1", 4);
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "magic");
	memcpy(b, buf, len);
	w32(b, KVM_OFF_VERSION, 2);
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "version 2");
	w32(b, KVM_OFF_VERSION, 0);
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "version 0");
	w32(b, KVM_OFF_VERSION, 1u << 24);	/* a big-endian writer's 1 */
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "version");
	memcpy(b, buf, len);
	w32(b, KVM_OFF_HDR_LEN, 104);
	EXPECT_REJECT(b, len, UINT64_MAX, -EPROTO, "header length 104");
	memcpy(b, buf, len);
	w64(b, KVM_OFF_RESERVED, 1);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "reserved");
}

static void rejects_n_layers(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN + KV_MANIFEST_LAYER_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	w32(buf, KVM_OFF_N_LAYERS, 0);
	EXPECT_REJECT(buf, KV_MANIFEST_HDR_LEN, UINT64_MAX, -EINVAL,
		      "n_layers 0");
	EXPECT_REJECT(buf, len, UINT64_MAX, -EINVAL, "n_layers 0");
	memset(buf + len, 0, sizeof(buf) - len);
	w32(buf, KVM_OFF_N_LAYERS, 129);
	EXPECT_REJECT(buf, kv_manifest_size(129), UINT64_MAX, -EINVAL,
		      "n_layers 129");
	w32(buf, KVM_OFF_N_LAYERS, UINT32_MAX);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EINVAL, "n_layers 4294967295");
	w32(buf, KVM_OFF_N_LAYERS, 3);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EMSGSIZE, "3 layers need 240");
	w32(buf, KVM_OFF_N_LAYERS, 1);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EMSGSIZE, "1 layers need 144");
}

static void rejects_bad_fields(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);
	static const struct {
		size_t off;
		uint32_t val;
		const char *why;
	} cases[] = {
		{ KVM_OFF_DTYPE, 0, "dtype 0" },
		{ KVM_OFF_DTYPE, 3, "dtype 3" },
		{ KVM_OFF_N_HEADS, 0, "zero dimension" },
		{ KVM_OFF_HEAD_DIM, 0, "zero dimension" },
		{ KVM_OFF_MAX_TOKENS, 0, "zero dimension" },
		{ KVM_OFF_TOKENS, 0, "tokens 0" },
		{ KVM_OFF_TOKENS, 65, "tokens 65 is not in 1..max_tokens (64)" },
		{ KVM_OFF_TOKENS, UINT32_MAX, "tokens 4294967295" },
		{ KVM_OFF_VOCAB, 0, "vocab 0" },
		{ KVM_OFF_D_FF, 0, "d_ff 0" },
		{ KVM_OFF_MAX_SEQ, 0, "max_seq 0" },
		{ KVM_OFF_FIRST_TOKEN, 256, "first token 256" },
		{ KVM_OFF_FIRST_TOKEN, UINT32_MAX, "first token" },
		{ KVM_OFF_N_GENERATE, 28, "past max_tokens (64)" },
		{ KVM_OFF_N_GENERATE, UINT32_MAX, "past max_tokens" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, buf, len);
		w32(b, cases[i].off, cases[i].val);
		EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, cases[i].why);
	}
	/* Generating past the model's max_seq with room in the region. */
	memcpy(b, buf, len);
	w32(b, KVM_OFF_MAX_SEQ, 40);
	w32(b, KVM_OFF_N_GENERATE, 4);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "past the model's max_seq");
	w32(b, KVM_OFF_N_GENERATE, 3);
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
	/* The boundary cases are accepted. */
	memcpy(b, buf, len);
	w32(b, KVM_OFF_FIRST_TOKEN, 255);
	w32(b, KVM_OFF_N_GENERATE, 27);
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
}

static void rejects_tensor_past_region(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);
	uint64_t tensor = 64 * 4 * 16 * 4;	/* 16 KiB */

	KTAP_EXPECT(m.layout.bytes == 4 * tensor, "packed tiny is %llu",
		    (unsigned long long)m.layout.bytes);
	/* Region one byte short of layer 1 V. */
	memcpy(b, buf, len);
	w64(b, KVM_OFF_REGION_BYTES, 4 * tensor - 4);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL,
		      "layer 1 V tensor ends at 65536, past the region (65532 bytes)");
	/* Layer 1 V moved past the end. */
	memcpy(b, buf, len);
	w64(b, LOFF(1, 1, 0), 4 * tensor);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "layer 1 V tensor ends at");
	/* Far past. */
	w64(b, LOFF(1, 1, 0), 1ull << 62);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "past the region");
	/* Token rows that reach past the region. */
	memcpy(b, buf, len);
	w64(b, LOFF(0, 0, 1), 4096);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "past the region");
	/* A bigger region with room is fine. */
	memcpy(b, buf, len);
	w64(b, KVM_OFF_REGION_BYTES, 1ull << 40);
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
}

static void rejects_overlap(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);
	uint64_t tensor = 64 * 4 * 16 * 4;

	/* V on top of K */
	memcpy(b, buf, len);
	w64(b, LOFF(0, 1, 0), 0);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overlaps");
	/* V starting 4 bytes before K ends */
	w64(b, LOFF(0, 1, 0), tensor - 4);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL,
		      "layer 0 K [0, 16384) overlaps layer 0 V [16380, 32764)");
	/* Layer 1 K == layer 0 V: equal starts */
	memcpy(b, buf, len);
	w64(b, LOFF(1, 0, 0), tensor);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overlaps");
	/* K and V swapped is fine: any order, no overlap */
	memcpy(b, buf, len);
	w64(b, LOFF(0, 0, 0), 3 * tensor);
	w64(b, LOFF(1, 1, 0), 0);
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
}

static void rejects_aliasing_strides(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	/* heads of 64 bytes at a 60-byte stride */
	memcpy(b, buf, len);
	w64(b, LOFF(1, 0, 2), 60);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL,
		      "layer 1 K head_stride 60 is below head_dim * 4 = 64");
	w64(b, LOFF(1, 0, 2), 0);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "heads alias");
	/* tokens of 4 heads * 64 at a 128-byte stride */
	memcpy(b, buf, len);
	w64(b, LOFF(0, 1, 1), 128);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL,
		      "layer 0 V token_stride 128 is below n_heads * head_stride = 256");
	w64(b, LOFF(0, 1, 1), 0);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "tokens alias");
	/* misaligned for fp32 */
	memcpy(b, buf, len);
	w64(b, LOFF(0, 1, 0), 16384 + 2);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "not a multiple of the 4-byte");
	memcpy(b, buf, len);
	w64(b, LOFF(0, 0, 2), 66);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "not a multiple");
}

static void rejects_overflow(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	memcpy(b, buf, len);
	w64(b, KVM_OFF_REGION_BYTES, UINT64_MAX);
	w64(b, LOFF(1, 1, 0), UINT64_MAX - 127);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overflows");
	w64(b, LOFF(1, 1, 0), UINT64_MAX - 16383);	/* just past 2^64 */
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overflows");
	w64(b, LOFF(1, 1, 0), UINT64_MAX - 16384 + 1 - 4); /* ends at 2^64-4 */
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
	memcpy(b, buf, len);
	w64(b, KVM_OFF_REGION_BYTES, UINT64_MAX);
	w64(b, LOFF(0, 0, 1), 1ull << 60);	/* 63 * 2^60 overflows */
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overflows");
	memcpy(b, buf, len);
	w64(b, LOFF(0, 0, 2), 1ull << 62);	/* 4 heads * 2^62 */
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "overflows");
	memcpy(b, buf, len);
	w64(b, LOFF(1, 0, 1), UINT64_MAX - 3);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, NULL);
}

static void rejects_chunk_size(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	static const uint32_t bad[] = { 0, 1, 4096, 60 * 1024,
					64 * 1024 + 1, 64 * 1024 + 512,
					4 * 1024 * 1024 + 4096, 8u << 20,
					UINT32_MAX };
	static const uint32_t good[] = { 64 * 1024, 68 * 1024, 192 * 1024,
					 1u << 20, 4u << 20 };
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(b, buf, len);
		w32(b, KVM_OFF_CHUNK_BYTES, bad[i]);
		EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "chunk bytes");
	}
	/* tiny's tensors are smaller than any chunk: the count stays 4 */
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memcpy(b, buf, len);
		w32(b, KVM_OFF_CHUNK_BYTES, good[i]);
		EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);
	}
}

static void rejects_chunk_count(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len;

	shape7b(&m, 100, 128, 256 * KiB);
	len = raw_encode(&m, buf);
	EXPECT_REJECT(buf, len, UINT64_MAX, 0, NULL);
	memcpy(b, buf, len);
	w32(b, KVM_OFF_N_CHUNKS, 255);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL,
		      "manifest says 255 chunks, the plan has 256");
	w32(b, KVM_OFF_N_CHUNKS, 257);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "the plan has 256");
	w32(b, KVM_OFF_N_CHUNKS, 0);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "the plan has 256");
	w32(b, KVM_OFF_N_CHUNKS, UINT32_MAX);
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "the plan has 256");
	/* fewer tokens change the plan: the count must follow */
	memcpy(b, buf, len);
	w32(b, KVM_OFF_TOKENS, 99);
	EXPECT_REJECT(b, len, UINT64_MAX, 0, NULL);	/* 4 per tensor still */
	w32(b, KVM_OFF_TOKENS, 96);			/* 3 per tensor */
	EXPECT_REJECT(b, len, UINT64_MAX, -EINVAL, "the plan has 192");
}

/*
 * One layer, one head of 16 fp32 (64 bytes) per 64 KiB token row: each
 * token is one 64 KiB chunk. @rows rows per tensor give 2 * rows chunks.
 */
static void huge_plan(struct kv_manifest *m, uint32_t rows)
{
	struct kv_layout *l = &m->layout;

	memset(m, 0, sizeof(*m));
	l->n_layers = 1;
	l->n_heads = 1;
	l->head_dim = 16;
	l->max_tokens = rows;
	l->dtype = KV_F32;
	l->k[0] = (struct kv_tensor){ 0, 64 * KiB, 64 };
	l->v[0] = (struct kv_tensor){ 1ull << 46, 64 * KiB, 64 };
	l->bytes = 1ull << 47;
	m->tokens = rows;
	m->chunk_bytes = 64 * KiB;
	model_fields(m);
	m->n_generate = 0;
	m->max_seq = rows;
	m->n_chunks = (uint32_t)(2ull * rows);
}

static void rejects_too_many_chunks(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], out[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	struct kv_rx rx;
	size_t len;

	/* 2^30 + 2 chunks: one past the immediate's index space */
	huge_plan(&m, (1u << 29) + 1);
	KTAP_EXPECT(kv_plan_count(&m) == 0, "kv_plan_count %u",
		    kv_plan_count(&m));
	KTAP_EXPECT_RET(kv_manifest_encode(&m, out, sizeof(out)), -EINVAL);
	KTAP_EXPECT_RET(kv_rx_init(&rx, &m), -EINVAL);
	len = raw_encode(&m, buf);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EINVAL,
		      "the plan needs 1073741826 chunks, more than the immediate's 1073741824");
	/* and with the count wrapped to what fits in 32 bits */
	w32(buf, KVM_OFF_N_CHUNKS, 2);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EINVAL, "more than the immediate");
	/* way past 2^32: 2^31 rows per tensor */
	huge_plan(&m, 1u << 31);
	m.layout.v[0].offset = 1ull << 47;
	m.layout.bytes = 1ull << 48;
	len = raw_encode(&m, buf);
	EXPECT_REJECT(buf, len, UINT64_MAX, -EINVAL, "the plan needs 4294967296");
}

static void rejects_region_over_limit(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len = valid_buf(buf, &m);

	EXPECT_REJECT(buf, len, m.layout.bytes, 0, NULL);
	EXPECT_REJECT(buf, len, m.layout.bytes - 1, -EFBIG,
		      "region of 65536 bytes is larger than the receiver's 65535");
	EXPECT_REJECT(buf, len, 0, -EFBIG, "larger than the receiver's 0");
	w64(buf, KVM_OFF_REGION_BYTES, UINT64_MAX);
	EXPECT_REJECT(buf, len, 1ull << 30, -EFBIG, "larger");
	EXPECT_REJECT(buf, len, UINT64_MAX, 0, NULL);
}

static void encode_checks(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m, bad;
	char why[256];

	tiny(&m, KV_F16, 10);
	KTAP_EXPECT_RET(kv_manifest_encode(&m, buf, 191), -EMSGSIZE);
	KTAP_EXPECT_RET(kv_manifest_encode(&m, buf, 192), 0);
	KTAP_EXPECT(!memcmp(buf, "KVM1\x01\0\0\0\x60\0\0\0\x02\0\0\0", 16),
		    "header bytes");
	bad = m;
	bad.n_chunks++;
	KTAP_EXPECT_RET(kv_manifest_encode(&bad, buf, sizeof(buf)), -EINVAL);
	KTAP_EXPECT_RET(kv_manifest_check(&bad, UINT64_MAX, why, sizeof(why)),
			-EINVAL);
	KTAP_EXPECT(strstr(why, "chunks") != NULL, "%s", why);
	bad = m;
	bad.layout.n_layers = 0;
	KTAP_EXPECT_RET(kv_manifest_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad.layout.n_layers = 129;
	KTAP_EXPECT_RET(kv_manifest_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad = m;
	bad.layout.v[1].offset = bad.layout.k[1].offset;
	KTAP_EXPECT_RET(kv_manifest_encode(&bad, buf, sizeof(buf)), -EINVAL);
	KTAP_EXPECT_RET(kv_manifest_check(&m, m.layout.bytes - 1, why,
					  sizeof(why)), -EFBIG);
	KTAP_EXPECT_RET(kv_manifest_check(&m, m.layout.bytes, NULL, 0), 0);
}

/* --- corruption fuzz --- */

static int fuzz_ok, fuzz_rejected;

/*
 * @b failed or passed decoding sensibly: a known errno with a reason, or
 * a manifest that re-validates, re-encodes to exactly @b and plans.
 */
static void fuzz_one(const unsigned char *b, size_t len, uint64_t limit,
		     const char *what, size_t at)
{
	unsigned char again[KV_MANIFEST_MAX_LEN];
	struct kv_manifest d;
	char why[256];
	int ret;

	why[0] = 'x';
	why[1] = '\0';
	ret = kv_manifest_decode(b, len, limit, &d, why, sizeof(why));
	if (ret) {
		fuzz_rejected++;
		KTAP_EXPECT(ret == -EINVAL || ret == -EMSGSIZE ||
			    ret == -EPROTO || ret == -EFBIG,
			    "%s %zu: %d", what, at, ret);
		KTAP_EXPECT(why[0] && why[0] != 'x' &&
			    memchr(why, '\0', sizeof(why)),
			    "%s %zu: no reason", what, at);
		return;
	}
	fuzz_ok++;
	KTAP_EXPECT(!why[0], "%s %zu: reason on success", what, at);
	KTAP_EXPECT_RET(kv_manifest_check(&d, limit, NULL, 0), 0);
	KTAP_EXPECT_RET(kv_manifest_encode(&d, again, sizeof(again)), 0);
	KTAP_EXPECT(!memcmp(again, b, len), "%s %zu: not canonical", what, at);
	KTAP_EXPECT(d.n_chunks && kv_plan_count(&d) == d.n_chunks,
		    "%s %zu: plan", what, at);
}

static void fuzz_buffer(const struct kv_manifest *m, const char *name,
			size_t bits_limit)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	size_t len = raw_encode(m, buf);
	uint64_t limit = m->layout.bytes;

	if (bits_limit > len)
		bits_limit = len;
	for (size_t i = 0; i < bits_limit * 8 && !ktap_case_failed(); i++) {
		memcpy(b, buf, len);
		b[i / 8] ^= (unsigned char)(1u << (i % 8));
		fuzz_one(b, len, limit, name, i);
	}
	for (size_t i = 0; i < len && !ktap_case_failed(); i++) {
		memcpy(b, buf, len);
		b[i] ^= 0xff;
		fuzz_one(b, len, limit, name, i);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void corrupt_manifests_never_trusted(void)
{
	static const uint64_t interesting[] = {
		0, 1, 2, 3, 4, 63, 64, 65, 127, 128, 129, 4096, 65536,
		1u << 20, 4u << 20, 1u << 30, 1ull << 31, UINT32_MAX,
		1ull << 32, 1ull << 62, 1ull << 63, UINT64_MAX - 127,
		UINT64_MAX - 1, UINT64_MAX,
	};
	unsigned char buf[KV_MANIFEST_MAX_LEN], b[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m;
	size_t len;

	fuzz_ok = fuzz_rejected = 0;
	tiny(&m, KV_F16, 37);
	fuzz_buffer(&m, "tiny fp16 bit", SIZE_MAX);
	tiny(&m, KV_F32, 64);
	m.n_generate = 0;
	fuzz_buffer(&m, "tiny fp32 bit", SIZE_MAX);
	strided_layout(&m);
	fuzz_buffer(&m, "strided bit", SIZE_MAX);
	shape7b(&m, 100, 128, 256 * KiB);
	fuzz_buffer(&m, "7B bit", SIZE_MAX);

	/* Random fields set to edge values, 1..4 at a time. */
	tiny(&m, KV_F32, 37);
	len = raw_encode(&m, buf);
	for (int it = 0; it < 20000 && !ktap_case_failed(); it++) {
		int n = 1 + (int)(rng() % 4);

		memcpy(b, buf, len);
		for (int k = 0; k < n; k++) {
			size_t off = (size_t)(rng() % (len / 4)) * 4;
			uint64_t v = interesting[rng() %
				(sizeof(interesting) / sizeof(interesting[0]))];

			if (off >= KVM_OFF_REGION_BYTES) {
				off &= ~(size_t)7;
				w64(b, off, v);
			} else {
				w32(b, off, (uint32_t)v);
			}
		}
		fuzz_one(b, len, rng() & 1 ? UINT64_MAX : m.layout.bytes,
			 "random fields", (size_t)it);
	}
	/* Random bytes anywhere. */
	for (int it = 0; it < 20000 && !ktap_case_failed(); it++) {
		memcpy(b, buf, len);
		for (int k = 0; k < 3; k++)
			b[rng() % len] = (unsigned char)rng();
		fuzz_one(b, len, m.layout.bytes, "random bytes", (size_t)it);
	}
	printf("# fuzz: %d decoded to valid manifests, %d rejected\n",
	       fuzz_ok, fuzz_rejected);
	KTAP_EXPECT(fuzz_ok > 0 && fuzz_rejected > fuzz_ok,
		    "ok %d rejected %d", fuzz_ok, fuzz_rejected);
}

/* --- immediate --- */

static void immediate_encoding(void)
{
	uint32_t type = 99, index = 99;

	KTAP_EXPECT(kv_imm_data(0) == 0, "data 0");
	KTAP_EXPECT(kv_imm_data(5) == 5, "data 5");
	KTAP_EXPECT(kv_imm_data((1u << 30) - 1) == 0x3fffffff, "last index");
	KTAP_EXPECT(kv_imm_data(1u << 30) == KV_IMM_INVALID, "2^30");
	KTAP_EXPECT(kv_imm_data(UINT32_MAX) == KV_IMM_INVALID, "max");
	KTAP_EXPECT(kv_imm_final(40) == 0x40000028, "final 40: %#x",
		    kv_imm_final(40));
	KTAP_EXPECT(kv_imm_final(1u << 30) == 0x40000000, "final 2^30");
	KTAP_EXPECT(kv_imm_final((1u << 30) + 1) == KV_IMM_INVALID,
		    "final 2^30+1");

	KTAP_EXPECT_RET(kv_imm_parse(kv_imm_data(12345), &type, &index), 0);
	KTAP_EXPECT(type == KV_IMM_DATA && index == 12345, "%u %u", type,
		    index);
	KTAP_EXPECT_RET(kv_imm_parse(kv_imm_data((1u << 30) - 1), &type,
				     &index), 0);
	KTAP_EXPECT(type == KV_IMM_DATA && index == (1u << 30) - 1, "%u %u",
		    type, index);
	KTAP_EXPECT_RET(kv_imm_parse(kv_imm_final(77), &type, &index), 0);
	KTAP_EXPECT(type == KV_IMM_FINAL && index == 77, "%u %u", type,
		    index);
	type = index = 99;
	KTAP_EXPECT_RET(kv_imm_parse(0x80000000, &type, &index), -EINVAL);
	KTAP_EXPECT_RET(kv_imm_parse(0xbfffffff, &type, &index), -EINVAL);
	KTAP_EXPECT_RET(kv_imm_parse(0xc0000000, &type, &index), -EINVAL);
	KTAP_EXPECT_RET(kv_imm_parse(KV_IMM_INVALID, &type, &index), -EINVAL);
	KTAP_EXPECT(type == 99 && index == 99, "outputs touched on error");
	/* Every data index round-trips at the edges of each bit. */
	for (uint32_t b = 0; b < 30; b++) {
		uint32_t i = 1u << b;

		KTAP_EXPECT_RET(kv_imm_parse(kv_imm_data(i), &type, &index), 0);
		KTAP_EXPECT(type == KV_IMM_DATA && index == i, "bit %u", b);
	}
}

/* --- receive tracking --- */

/* 7B shape, 100 tokens, 256 KiB: 4 chunks per tensor, 256 in all. */
static int rx_setup(struct kv_rx *rx, struct kv_manifest *m)
{
	shape7b(m, 100, 128, 256 * KiB);
	return kv_rx_init(rx, m);
}

static void rx_marks(void)
{
	struct kv_manifest m;
	struct kv_rx rx;

	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	KTAP_EXPECT(rx.n_chunks == 256, "%u", rx.n_chunks);
	KTAP_EXPECT(!kv_rx_complete(&rx), "complete when empty");
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(0)), 0);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(0)), -EEXIST);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(255)), 0);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(256)), -ERANGE);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data((1u << 30) - 1)), -ERANGE);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(1u << 30)), -EINVAL);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, 0x80000001), -EINVAL);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, 0xc0000001), -EINVAL);
	KTAP_EXPECT(rx.received == 2, "received %u", rx.received);
	/* marker: count must match, once */
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(255)), -EINVAL);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(0)), -EINVAL);
	KTAP_EXPECT(!rx.final_seen, "a wrong marker was recorded");
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(256)), 0);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(256)), -EEXIST);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(255)), -EEXIST);
	KTAP_EXPECT(!kv_rx_complete(&rx), "complete with 2 chunks");
	for (uint32_t i = 1; i < 255; i++) {
		KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(i)), 0);
		if (i < 254)
			KTAP_EXPECT(!kv_rx_complete(&rx), "complete at %u", i);
	}
	KTAP_EXPECT(kv_rx_complete(&rx), "not complete with all + marker");
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(17)), -EEXIST);
	KTAP_EXPECT(kv_rx_complete(&rx), "duplicate undid completion");
	kv_rx_free(&rx);
	KTAP_EXPECT(rx.bits == NULL && !kv_rx_complete(&rx), "freed");
	kv_rx_free(&rx);	/* twice is harmless */

	/* all chunks first, then the marker */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	for (uint32_t i = 256; i-- > 0;)
		KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(i)), 0);
	KTAP_EXPECT(!kv_rx_complete(&rx), "complete without the marker");
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(256)), 0);
	KTAP_EXPECT(kv_rx_complete(&rx), "not complete");
	kv_rx_free(&rx);

	/* a manifest whose count disagrees with its plan */
	m.n_chunks = 255;
	KTAP_EXPECT_RET(kv_rx_init(&rx, &m), -EINVAL);
}

static void expect_text(int line, const struct kv_rx *rx, const char *want)
{
	char buf[512];
	size_t n = kv_rx_missing(rx, buf, sizeof(buf));

	if (strcmp(buf, want))
		ktap_fail(__FILE__, line, "got \"%s\"\n#   want \"%s\"", buf,
			  want);
	if (n != strlen(buf))
		ktap_fail(__FILE__, line, "returned %zu for %zu", n,
			  strlen(buf));
}

#define EXPECT_TEXT(rx, want) expect_text(__LINE__, rx, want)

static void mark_all_but(struct kv_rx *rx, const uint32_t *skip, size_t n)
{
	for (uint32_t i = 0; i < rx->n_chunks; i++) {
		bool s = false;

		for (size_t k = 0; k < n; k++)
			s |= skip[k] == i;
		if (!s)
			kv_rx_mark(rx, kv_imm_data(i));
	}
}

static void rx_missing_text(void)
{
	struct kv_manifest m;
	struct kv_rx rx;
	char buf[512], small[100];
	size_t n;

	/* nothing arrived */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	EXPECT_TEXT(&rx, "missing 256 of 256 chunks: 0-255 (layer 0 K to layer 31 V); final marker missing");
	kv_rx_free(&rx);

	/* one chunk missing */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	mark_all_but(&rx, (const uint32_t[]){ 13 }, 1);
	kv_rx_mark(&rx, kv_imm_final(256));
	EXPECT_TEXT(&rx, "missing 1 of 256 chunks: 13 (layer 1 V)");
	kv_rx_free(&rx);

	/* a single and a range, marker missing too */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	mark_all_but(&rx, (const uint32_t[]){ 13, 24, 25 }, 3);
	EXPECT_TEXT(&rx, "missing 3 of 256 chunks: 13 (layer 1 V), 24-25 (layer 3 K); final marker missing");
	kv_rx_free(&rx);

	/* a range across tensors, and the last chunk */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	mark_all_but(&rx, (const uint32_t[]){ 6, 7, 8, 9, 255 }, 5);
	kv_rx_mark(&rx, kv_imm_final(256));
	EXPECT_TEXT(&rx, "missing 5 of 256 chunks: 6-9 (layer 0 V to layer 1 K), 255 (layer 31 V)");
	kv_rx_free(&rx);

	/* every other chunk: truncated after KV_RX_MISSING_RANGES ranges */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	for (uint32_t i = 1; i < 256; i += 2)
		kv_rx_mark(&rx, kv_imm_data(i));
	kv_rx_mark(&rx, kv_imm_final(256));
	EXPECT_TEXT(&rx, "missing 128 of 256 chunks: 0 (layer 0 K), 2 (layer 0 K), 4 (layer 0 V), 6 (layer 0 V), 8 (layer 1 K), 10 (layer 1 K), 12 (layer 1 V), 14 (layer 1 V), ... and 120 more chunks");
	/* a short buffer: fewer ranges, still the count, NUL-terminated */
	memset(small, 'x', sizeof(small));
	n = kv_rx_missing(&rx, small, sizeof(small));
	KTAP_EXPECT(n < sizeof(small) && small[n] == '\0', "n %zu", n);
	KTAP_EXPECT(!strcmp(small, "missing 128 of 256 chunks: 0 (layer 0 K), 2 (layer 0 K), ... and 126 more chunks"),
		    "in %zu bytes: %s", sizeof(small), small);
	n = kv_rx_missing(&rx, buf, 1);
	KTAP_EXPECT(n == 0 && buf[0] == '\0', "len 1");
	buf[0] = 'x';
	KTAP_EXPECT(kv_rx_missing(&rx, buf, 0) == 0 && buf[0] == 'x', "len 0");
	for (size_t l = 1; l < 200; l++) {
		memset(buf, 'x', sizeof(buf));
		n = kv_rx_missing(&rx, buf, l);
		KTAP_EXPECT(n < l && buf[n] == '\0' && buf[l] == 'x',
			    "len %zu: n %zu", l, n);
	}
	kv_rx_free(&rx);

	/* everything but the marker; then complete */
	KTAP_EXPECT_RET(rx_setup(&rx, &m), 0);
	mark_all_but(&rx, NULL, 0);
	EXPECT_TEXT(&rx, "all 256 chunks arrived; final marker missing");
	kv_rx_mark(&rx, kv_imm_final(256));
	EXPECT_TEXT(&rx, "all 256 chunks arrived and the final marker");
	kv_rx_free(&rx);
}

/* Exactly 2^30 chunks: the most a request can have. */
static void rx_max_chunks(void)
{
	unsigned char buf[KV_MANIFEST_MAX_LEN];
	struct kv_manifest m, d;
	struct kv_chunk c;
	struct kv_rx rx;
	uint32_t first, count;
	char why[256];

	huge_plan(&m, 1u << 29);
	KTAP_EXPECT(kv_plan_count(&m) == 1u << 30, "count %u",
		    kv_plan_count(&m));
	KTAP_EXPECT_RET(kv_manifest_encode(&m, buf, sizeof(buf)), 0);
	KTAP_EXPECT_RET(kv_manifest_decode(buf, kv_manifest_size(1), UINT64_MAX,
					   &d, why, sizeof(why)), 0);
	KTAP_EXPECT(d.n_chunks == 1u << 30, "%u", d.n_chunks);
	KTAP_EXPECT_RET(kv_plan_chunk(&d, (1u << 30) - 1, &c), 0);
	KTAP_EXPECT(c.layer == 0 && c.kind == KV_KIND_V &&
		    c.offset == (1ull << 46) + ((1ull << 29) - 1) * 65536 &&
		    c.length == 64, "last chunk at %llu, %llu bytes",
		    (unsigned long long)c.offset,
		    (unsigned long long)c.length);
	KTAP_EXPECT_RET(kv_plan_layer(&d, 0, &first, &count), 0);
	KTAP_EXPECT(first == 0 && count == 1u << 30, "%u +%u", first, count);

	KTAP_EXPECT_RET(kv_rx_init(&rx, &d), 0);
	if (ktap_case_failed())
		return;
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data((1u << 30) - 1)), 0);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_data(1u << 29)), 0);
	KTAP_EXPECT_RET(kv_rx_mark(&rx, kv_imm_final(1u << 30)), 0);
	EXPECT_TEXT(&rx, "missing 1073741822 of 1073741824 chunks: 0-536870911 (layer 0 K), 536870913-1073741822 (layer 0 V)");
	kv_rx_free(&rx);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(round_trip_tiny_fp32),
	KTAP_CASE(round_trip_tiny_fp16),
	KTAP_CASE(round_trip_7b_shape),
	KTAP_CASE(strided_layout_plan),
	KTAP_CASE(plan_api),
	KTAP_CASE(rejects_truncated_and_oversized),
	KTAP_CASE(rejects_magic_version),
	KTAP_CASE(rejects_n_layers),
	KTAP_CASE(rejects_bad_fields),
	KTAP_CASE(rejects_tensor_past_region),
	KTAP_CASE(rejects_overlap),
	KTAP_CASE(rejects_aliasing_strides),
	KTAP_CASE(rejects_overflow),
	KTAP_CASE(rejects_chunk_size),
	KTAP_CASE(rejects_chunk_count),
	KTAP_CASE(rejects_too_many_chunks),
	KTAP_CASE(rejects_region_over_limit),
	KTAP_CASE(encode_checks),
	KTAP_CASE(corrupt_manifests_never_trusted),
	KTAP_CASE(immediate_encoding),
	KTAP_CASE(rx_marks),
	KTAP_CASE(rx_missing_text),
	KTAP_CASE(rx_max_chunks),
};

int main(void)
{
	return ktap_run_suite("kv_manifest", cases,
			      sizeof(cases) / sizeof(cases[0]));
}
