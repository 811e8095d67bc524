// SPDX-License-Identifier: GPL-2.0
/*
 * The KV-cache manifest (wire format and validation), the chunk plan, the
 * immediate and the receive bitmap: see kv_manifest.h for the formats.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_manifest.h"

#define N_TENSORS_MAX	(2 * KV_MAX_LAYERS)

static const char *const kind_name[2] = { "K", "V" };

/* --- little-endian byte access --- */

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* --- helpers --- */

__attribute__((format(printf, 4, 5)))
static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

static const struct kv_tensor *tensor_of(const struct kv_layout *l,
					 uint32_t j)
{
	return (j & 1) ? &l->v[j / 2] : &l->k[j / 2];
}

/*
 * Bytes from the first byte of token row 0 to the last byte of token row
 * @rows - 1 of @t: (rows - 1) * token_stride + (n_heads - 1) * head_stride
 * + head_dim * elem. -EINVAL on overflow or zero dims.
 */
static int tensor_span(const struct kv_layout *l, const struct kv_tensor *t,
		       uint32_t rows, uint64_t *span)
{
	uint64_t a, b;

	if (!rows || !l->n_heads || !l->head_dim)
		return -EINVAL;
	if (__builtin_mul_overflow((uint64_t)(rows - 1), t->token_stride, &a) ||
	    __builtin_mul_overflow((uint64_t)(l->n_heads - 1), t->head_stride,
				   &b) ||
	    __builtin_add_overflow(a, b, &a) ||
	    __builtin_add_overflow(a, (uint64_t)l->head_dim *
				   kv_elem_size(l->dtype), span))
		return -EINVAL;
	return 0;
}

/*
 * The plan's arithmetic: @first[j] is tensor j's first chunk index and
 * @first[n_tensors] the total (either may be NULL via @total only). Only
 * overflow and zero sizes are checked here; kv_manifest_check() does the
 * rest. The total is u64 so a count past 2^32 is seen, not wrapped.
 */
static int plan_first(const struct kv_manifest *m, uint64_t *first,
		      uint64_t *total)
{
	const struct kv_layout *l = &m->layout;
	uint64_t sum = 0;

	if (!l->n_layers || l->n_layers > KV_MAX_LAYERS || !m->chunk_bytes ||
	    !m->tokens || m->tokens > l->max_tokens)
		return -EINVAL;
	for (uint32_t j = 0; j < 2 * l->n_layers; j++) {
		const struct kv_tensor *t = tensor_of(l, j);
		uint64_t span, end;

		if (tensor_span(l, t, m->tokens, &span) ||
		    __builtin_add_overflow(t->offset, span, &end))
			return -EINVAL;
		if (first)
			first[j] = sum;
		/* <= 256 tensors of < 2^64 / 2^12 chunks each: no overflow */
		sum += span / m->chunk_bytes + (span % m->chunk_bytes != 0);
	}
	if (first)
		first[2 * l->n_layers] = sum;
	*total = sum;
	return 0;
}

static const char *dtype_name(uint32_t dtype)
{
	return dtype == KV_F16 ? "fp16" : "fp32";
}

struct extent {
	uint64_t start, end;
	uint32_t j;
};

static int extent_cmp(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* --- manifest --- */

size_t kv_manifest_size(uint32_t n_layers)
{
	return KV_MANIFEST_HDR_LEN + (size_t)n_layers * KV_MANIFEST_LAYER_LEN;
}

int kv_manifest_check(const struct kv_manifest *m, uint64_t region_limit,
		      char *why, size_t wl)
{
	const struct kv_layout *l = &m->layout;
	struct extent ext[N_TENSORS_MAX];
	uint64_t elem, row, count;
	uint32_t n_t;

	if (why && wl)
		why[0] = '\0';
	if (l->n_layers < 1 || l->n_layers > KV_MAX_LAYERS)
		return fail(why, wl, -EINVAL, "n_layers %u is not in 1..%u",
			    l->n_layers, KV_MAX_LAYERS);
	if (l->dtype != KV_F32 && l->dtype != KV_F16)
		return fail(why, wl, -EINVAL,
			    "unknown dtype %u (1 fp32, 2 fp16)", l->dtype);
	if (!l->n_heads || !l->head_dim || !l->max_tokens)
		return fail(why, wl, -EINVAL,
			    "zero dimension: n_heads %u, head_dim %u, max_tokens %u",
			    l->n_heads, l->head_dim, l->max_tokens);
	if (!m->tokens || m->tokens > l->max_tokens)
		return fail(why, wl, -EINVAL,
			    "tokens %u is not in 1..max_tokens (%u)",
			    m->tokens, l->max_tokens);
	if (m->chunk_bytes < KV_CHUNK_MIN || m->chunk_bytes > KV_CHUNK_MAX ||
	    m->chunk_bytes % KV_CHUNK_ALIGN)
		return fail(why, wl, -EINVAL,
			    "chunk bytes %u is not a multiple of %u in %u..%u",
			    m->chunk_bytes, KV_CHUNK_ALIGN, KV_CHUNK_MIN,
			    KV_CHUNK_MAX);
	if (!m->vocab || !m->d_ff || !m->max_seq)
		return fail(why, wl, -EINVAL,
			    "zero model dimension: vocab %u, d_ff %u, max_seq %u",
			    m->vocab, m->d_ff, m->max_seq);
	if (m->first_token >= m->vocab)
		return fail(why, wl, -EINVAL,
			    "first token %u is not below vocab (%u)",
			    m->first_token, m->vocab);
	if ((uint64_t)m->tokens + m->n_generate > l->max_tokens)
		return fail(why, wl, -EINVAL,
			    "tokens %u + generate %u is past max_tokens (%u)",
			    m->tokens, m->n_generate, l->max_tokens);
	if ((uint64_t)m->tokens + m->n_generate > m->max_seq)
		return fail(why, wl, -EINVAL,
			    "tokens %u + generate %u is past the model's max_seq (%u)",
			    m->tokens, m->n_generate, m->max_seq);
	if (l->bytes > region_limit)
		return fail(why, wl, -EFBIG,
			    "region of %llu bytes is larger than the receiver's %llu",
			    (unsigned long long)l->bytes,
			    (unsigned long long)region_limit);

	elem = kv_elem_size(l->dtype);
	row = (uint64_t)l->head_dim * elem;
	n_t = 2 * l->n_layers;
	for (uint32_t j = 0; j < n_t; j++) {
		const struct kv_tensor *t = tensor_of(l, j);
		uint32_t layer = j / 2;
		const char *kind = kind_name[j & 1];
		uint64_t heads, end;

		if (t->offset % elem || t->token_stride % elem ||
		    t->head_stride % elem)
			return fail(why, wl, -EINVAL,
				    "layer %u %s offset %llu / token_stride %llu / head_stride %llu not a multiple of the %llu-byte %s element",
				    layer, kind,
				    (unsigned long long)t->offset,
				    (unsigned long long)t->token_stride,
				    (unsigned long long)t->head_stride,
				    (unsigned long long)elem,
				    dtype_name(l->dtype));
		if (t->head_stride < row)
			return fail(why, wl, -EINVAL,
				    "layer %u %s head_stride %llu is below head_dim * %llu = %llu: heads alias",
				    layer, kind,
				    (unsigned long long)t->head_stride,
				    (unsigned long long)elem,
				    (unsigned long long)row);
		if (__builtin_mul_overflow(t->head_stride,
					   (uint64_t)l->n_heads, &heads))
			return fail(why, wl, -EINVAL,
				    "layer %u %s n_heads %u * head_stride %llu overflows",
				    layer, kind, l->n_heads,
				    (unsigned long long)t->head_stride);
		if (t->token_stride < heads)
			return fail(why, wl, -EINVAL,
				    "layer %u %s token_stride %llu is below n_heads * head_stride = %llu: tokens alias",
				    layer, kind,
				    (unsigned long long)t->token_stride,
				    (unsigned long long)heads);
		if (tensor_span(l, t, l->max_tokens, &end) ||
		    __builtin_add_overflow(end, t->offset, &end))
			return fail(why, wl, -EINVAL,
				    "layer %u %s extent overflows 64 bits (offset %llu, token_stride %llu, %u tokens)",
				    layer, kind,
				    (unsigned long long)t->offset,
				    (unsigned long long)t->token_stride,
				    l->max_tokens);
		if (end > l->bytes)
			return fail(why, wl, -EINVAL,
				    "layer %u %s tensor ends at %llu, past the region (%llu bytes)",
				    layer, kind, (unsigned long long)end,
				    (unsigned long long)l->bytes);
		ext[j] = (struct extent){ t->offset, end, j };
	}

	/* Sorted by start, any overlap shows between neighbours. */
	qsort(ext, n_t, sizeof(ext[0]), extent_cmp);
	for (uint32_t i = 0; i + 1 < n_t; i++) {
		const struct extent *a = &ext[i], *b = &ext[i + 1];

		if (a->end > b->start)
			return fail(why, wl, -EINVAL,
				    "layer %u %s [%llu, %llu) overlaps layer %u %s [%llu, %llu)",
				    a->j / 2, kind_name[a->j & 1],
				    (unsigned long long)a->start,
				    (unsigned long long)a->end,
				    b->j / 2, kind_name[b->j & 1],
				    (unsigned long long)b->start,
				    (unsigned long long)b->end);
	}

	if (plan_first(m, NULL, &count))
		return fail(why, wl, -EINVAL, "chunk plan overflows");
	if (count > KV_IMM_MAX_CHUNKS)
		return fail(why, wl, -EINVAL,
			    "the plan needs %llu chunks, more than the immediate's %u",
			    (unsigned long long)count, KV_IMM_MAX_CHUNKS);
	if (count != m->n_chunks)
		return fail(why, wl, -EINVAL,
			    "manifest says %u chunks, the plan has %llu",
			    m->n_chunks, (unsigned long long)count);
	return 0;
}

int kv_manifest_encode(const struct kv_manifest *m, void *buf, size_t len)
{
	const struct kv_layout *l = &m->layout;
	unsigned char *p = buf;

	if (kv_manifest_check(m, UINT64_MAX, NULL, 0))
		return -EINVAL;
	if (len < kv_manifest_size(l->n_layers))
		return -EMSGSIZE;

	memset(p, 0, kv_manifest_size(l->n_layers));
	memcpy(p + KVM_OFF_MAGIC, KV_MANIFEST_MAGIC, 4);
	put_le32(p + KVM_OFF_VERSION, KV_MANIFEST_VERSION);
	put_le32(p + KVM_OFF_HDR_LEN, KV_MANIFEST_HDR_LEN);
	put_le32(p + KVM_OFF_DTYPE, l->dtype);
	put_le32(p + KVM_OFF_N_LAYERS, l->n_layers);
	put_le32(p + KVM_OFF_N_HEADS, l->n_heads);
	put_le32(p + KVM_OFF_HEAD_DIM, l->head_dim);
	put_le32(p + KVM_OFF_MAX_TOKENS, l->max_tokens);
	put_le32(p + KVM_OFF_TOKENS, m->tokens);
	put_le32(p + KVM_OFF_CHUNK_BYTES, m->chunk_bytes);
	put_le32(p + KVM_OFF_N_CHUNKS, m->n_chunks);
	put_le32(p + KVM_OFF_FIRST_TOKEN, m->first_token);
	put_le32(p + KVM_OFF_N_GENERATE, m->n_generate);
	put_le32(p + KVM_OFF_D_FF, m->d_ff);
	put_le32(p + KVM_OFF_VOCAB, m->vocab);
	put_le32(p + KVM_OFF_MAX_SEQ, m->max_seq);
	put_le64(p + KVM_OFF_REGION_BYTES, l->bytes);
	put_le64(p + KVM_OFF_MODEL_SEED, m->model_seed);
	put_le64(p + KVM_OFF_REQUEST_ID, m->request_id);
	/* KVM_OFF_RESERVED stays zero */
	for (uint32_t i = 0; i < l->n_layers; i++) {
		unsigned char *q = p + KV_MANIFEST_HDR_LEN +
				   (size_t)i * KV_MANIFEST_LAYER_LEN;

		put_le64(q + 0, l->k[i].offset);
		put_le64(q + 8, l->k[i].token_stride);
		put_le64(q + 16, l->k[i].head_stride);
		put_le64(q + 24, l->v[i].offset);
		put_le64(q + 32, l->v[i].token_stride);
		put_le64(q + 40, l->v[i].head_stride);
	}
	return 0;
}

int kv_manifest_decode(const void *buf, size_t len, uint64_t region_limit,
		       struct kv_manifest *m, char *why, size_t wl)
{
	const unsigned char *p = buf;
	struct kv_layout *l = &m->layout;
	uint32_t version, hdr_len, n_layers;
	uint64_t reserved;
	int ret;

	memset(m, 0, sizeof(*m));
	if (why && wl)
		why[0] = '\0';
	if (!p)
		return fail(why, wl, -EMSGSIZE, "no manifest buffer");
	if (len < KVM_OFF_HDR_LEN + 4)
		return fail(why, wl, -EMSGSIZE,
			    "manifest of %zu bytes is shorter than its %u-byte header",
			    len, KV_MANIFEST_HDR_LEN);
	if (memcmp(p + KVM_OFF_MAGIC, KV_MANIFEST_MAGIC, 4))
		return fail(why, wl, -EPROTO,
			    "bad magic %02x %02x %02x %02x (want \"%s\")",
			    p[0], p[1], p[2], p[3], KV_MANIFEST_MAGIC);
	version = get_le32(p + KVM_OFF_VERSION);
	if (version != KV_MANIFEST_VERSION)
		return fail(why, wl, -EPROTO,
			    "manifest version %u, this side speaks %u",
			    version, KV_MANIFEST_VERSION);
	hdr_len = get_le32(p + KVM_OFF_HDR_LEN);
	if (hdr_len != KV_MANIFEST_HDR_LEN)
		return fail(why, wl, -EPROTO,
			    "header length %u, version %u has %u",
			    hdr_len, KV_MANIFEST_VERSION, KV_MANIFEST_HDR_LEN);
	if (len < KV_MANIFEST_HDR_LEN)
		return fail(why, wl, -EMSGSIZE,
			    "manifest of %zu bytes is shorter than its %u-byte header",
			    len, KV_MANIFEST_HDR_LEN);
	n_layers = get_le32(p + KVM_OFF_N_LAYERS);
	if (n_layers < 1 || n_layers > KV_MAX_LAYERS)
		return fail(why, wl, -EINVAL, "n_layers %u is not in 1..%u",
			    n_layers, KV_MAX_LAYERS);
	if (len != kv_manifest_size(n_layers))
		return fail(why, wl, -EMSGSIZE,
			    "manifest is %zu bytes, %u layers need %zu",
			    len, n_layers, kv_manifest_size(n_layers));
	reserved = get_le64(p + KVM_OFF_RESERVED);
	if (reserved)
		return fail(why, wl, -EINVAL,
			    "reserved field is 0x%llx, must be zero",
			    (unsigned long long)reserved);

	l->n_layers = n_layers;
	l->dtype = get_le32(p + KVM_OFF_DTYPE);
	l->n_heads = get_le32(p + KVM_OFF_N_HEADS);
	l->head_dim = get_le32(p + KVM_OFF_HEAD_DIM);
	l->max_tokens = get_le32(p + KVM_OFF_MAX_TOKENS);
	l->bytes = get_le64(p + KVM_OFF_REGION_BYTES);
	m->tokens = get_le32(p + KVM_OFF_TOKENS);
	m->chunk_bytes = get_le32(p + KVM_OFF_CHUNK_BYTES);
	m->n_chunks = get_le32(p + KVM_OFF_N_CHUNKS);
	m->first_token = get_le32(p + KVM_OFF_FIRST_TOKEN);
	m->n_generate = get_le32(p + KVM_OFF_N_GENERATE);
	m->d_ff = get_le32(p + KVM_OFF_D_FF);
	m->vocab = get_le32(p + KVM_OFF_VOCAB);
	m->max_seq = get_le32(p + KVM_OFF_MAX_SEQ);
	m->model_seed = get_le64(p + KVM_OFF_MODEL_SEED);
	m->request_id = get_le64(p + KVM_OFF_REQUEST_ID);
	for (uint32_t i = 0; i < n_layers; i++) {
		const unsigned char *q = p + KV_MANIFEST_HDR_LEN +
					 (size_t)i * KV_MANIFEST_LAYER_LEN;

		l->k[i].offset = get_le64(q + 0);
		l->k[i].token_stride = get_le64(q + 8);
		l->k[i].head_stride = get_le64(q + 16);
		l->v[i].offset = get_le64(q + 24);
		l->v[i].token_stride = get_le64(q + 32);
		l->v[i].head_stride = get_le64(q + 40);
	}

	ret = kv_manifest_check(m, region_limit, why, wl);
	if (ret)
		memset(m, 0, sizeof(*m));
	return ret;
}

/* --- chunk plan --- */

uint32_t kv_plan_count(const struct kv_manifest *m)
{
	uint64_t total;

	if (plan_first(m, NULL, &total) || total > KV_IMM_MAX_CHUNKS)
		return 0;
	return (uint32_t)total;
}

/* Chunk @index given tensor @j whose first index is @base. */
static void make_chunk(const struct kv_manifest *m, uint32_t j, uint64_t base,
		       uint32_t index, struct kv_chunk *c)
{
	const struct kv_tensor *t = tensor_of(&m->layout, j);
	uint64_t span = 0, k = index - base, at;

	tensor_span(&m->layout, t, m->tokens, &span);	/* checked by plan */
	at = k * m->chunk_bytes;
	c->index = index;
	c->layer = j / 2;
	c->kind = j & 1;
	c->offset = t->offset + at;
	c->length = span - at < m->chunk_bytes ? span - at : m->chunk_bytes;
}

int kv_plan(const struct kv_manifest *m, struct kv_chunk *out, uint32_t max,
	    uint32_t *n)
{
	uint64_t first[N_TENSORS_MAX + 1], total;
	uint32_t idx = 0;

	if (plan_first(m, first, &total) || total > KV_IMM_MAX_CHUNKS)
		return -EINVAL;
	*n = (uint32_t)total;
	for (uint32_t j = 0; j < 2 * m->layout.n_layers && idx < max; j++)
		for (; idx < first[j + 1] && idx < max; idx++)
			make_chunk(m, j, first[j], idx, &out[idx]);
	return max < total ? -ENOSPC : 0;
}

int kv_plan_chunk(const struct kv_manifest *m, uint32_t index,
		  struct kv_chunk *c)
{
	uint64_t first[N_TENSORS_MAX + 1], total;

	if (plan_first(m, first, &total) || total > KV_IMM_MAX_CHUNKS)
		return -EINVAL;
	if (index >= total)
		return -ERANGE;
	for (uint32_t j = 0; j < 2 * m->layout.n_layers; j++) {
		if (index < first[j + 1]) {
			make_chunk(m, j, first[j], index, c);
			return 0;
		}
	}
	return -ERANGE;	/* not reached */
}

int kv_plan_layer(const struct kv_manifest *m, uint32_t layer,
		  uint32_t *first_out, uint32_t *count)
{
	uint64_t first[N_TENSORS_MAX + 1], total;

	if (plan_first(m, first, &total) || total > KV_IMM_MAX_CHUNKS)
		return -EINVAL;
	if (layer >= m->layout.n_layers)
		return -ERANGE;
	*first_out = (uint32_t)first[2 * layer];
	*count = (uint32_t)(first[2 * layer + 2] - first[2 * layer]);
	return 0;
}

/* --- immediate --- */

uint32_t kv_imm_data(uint32_t index)
{
	if (index >= KV_IMM_MAX_CHUNKS)
		return KV_IMM_INVALID;
	return (uint32_t)KV_IMM_DATA << KV_IMM_TYPE_SHIFT | index;
}

uint32_t kv_imm_final(uint32_t n_chunks)
{
	if (n_chunks > KV_IMM_MAX_CHUNKS)
		return KV_IMM_INVALID;
	return (uint32_t)KV_IMM_FINAL << KV_IMM_TYPE_SHIFT |
	       (n_chunks & KV_IMM_INDEX_MASK);
}

int kv_imm_parse(uint32_t imm, uint32_t *type, uint32_t *index)
{
	uint32_t t = imm >> KV_IMM_TYPE_SHIFT;

	if (t != KV_IMM_DATA && t != KV_IMM_FINAL)
		return -EINVAL;
	*type = t;
	*index = imm & KV_IMM_INDEX_MASK;
	return 0;
}

/* --- receive tracking --- */

int kv_rx_init(struct kv_rx *r, const struct kv_manifest *m)
{
	uint64_t first[N_TENSORS_MAX + 1], total;
	uint32_t n_t;

	memset(r, 0, sizeof(*r));
	if (plan_first(m, first, &total) || !total ||
	    total > KV_IMM_MAX_CHUNKS || total != m->n_chunks)
		return -EINVAL;
	n_t = 2 * m->layout.n_layers;
	r->bits = calloc((total + 63) / 64, sizeof(uint64_t));
	r->first = calloc(n_t + 1, sizeof(uint32_t));
	if (!r->bits || !r->first) {
		kv_rx_free(r);
		return -ENOMEM;
	}
	for (uint32_t j = 0; j <= n_t; j++)
		r->first[j] = (uint32_t)first[j];
	r->n_chunks = (uint32_t)total;
	r->n_tensors = n_t;
	return 0;
}

void kv_rx_free(struct kv_rx *r)
{
	free(r->bits);
	free(r->first);
	memset(r, 0, sizeof(*r));
}

int kv_rx_mark(struct kv_rx *r, uint32_t imm)
{
	uint32_t type, index;
	uint64_t bit;

	if (kv_imm_parse(imm, &type, &index))
		return -EINVAL;
	if (type == KV_IMM_FINAL) {
		if (r->final_seen)
			return -EEXIST;
		if (index != (r->n_chunks & KV_IMM_INDEX_MASK))
			return -EINVAL;
		r->final_seen = true;
		return 0;
	}
	if (index >= r->n_chunks)
		return -ERANGE;
	bit = (uint64_t)1 << (index % 64);
	if (r->bits[index / 64] & bit)
		return -EEXIST;
	r->bits[index / 64] |= bit;
	r->received++;
	return 0;
}

bool kv_rx_complete(const struct kv_rx *r)
{
	return r->bits && r->received == r->n_chunks && r->final_seen;
}

static bool rx_has(const struct kv_rx *r, uint32_t i)
{
	return r->bits[i / 64] >> (i % 64) & 1;
}

/* The tensor chunk @i belongs to (r->first is ascending). */
static uint32_t rx_tensor(const struct kv_rx *r, uint32_t i)
{
	uint32_t lo = 0, hi = r->n_tensors;	/* first[lo] <= i < first[hi] */

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r->first[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The next missing chunk at or after @i, or n_chunks. */
static uint32_t rx_next_missing(const struct kv_rx *r, uint32_t i)
{
	while (i < r->n_chunks) {
		if (i % 64 == 0 && r->bits[i / 64] == UINT64_MAX) {
			i += 64;
			continue;
		}
		if (!rx_has(r, i))
			return i;
		i++;
	}
	return r->n_chunks;
}

/* Append to @buf at *@pos (snprintf semantics, *@pos capped at len - 1). */
__attribute__((format(printf, 4, 5)))
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos += (size_t)n;
	if (*pos > len - 1)
		*pos = len - 1;
}

/* The most the text after the listed ranges can take. */
#define MORE_TEXT	", ... and 4294967295 more chunks"
#define FINAL_TEXT	"; final marker missing"

size_t kv_rx_missing(const struct kv_rx *r, char *buf, size_t len)
{
	uint32_t missing = r->n_chunks - r->received, listed = 0, ranges = 0;
	uint32_t i = 0;
	size_t pos = 0, tail;

	if (!len)
		return 0;
	buf[0] = '\0';
	if (!missing) {
		append(buf, len, &pos, "all %u chunks arrived%s", r->n_chunks,
		       r->final_seen ? " and the final marker" :
				       "; final marker missing");
		return strlen(buf);
	}
	append(buf, len, &pos, "missing %u of %u chunks: ", missing,
	       r->n_chunks);
	tail = strlen(MORE_TEXT) + (r->final_seen ? 0 : strlen(FINAL_TEXT));
	while ((i = rx_next_missing(r, i)) < r->n_chunks) {
		uint32_t a = i, b = i, ta, tb;
		char item[96];
		int n;

		while (b + 1 < r->n_chunks) {
			uint32_t nb = b + 1;

			if (nb % 64 == 0 && r->n_chunks - nb >= 64 &&
			    !r->bits[nb / 64]) {
				b += 64;
				continue;
			}
			if (rx_has(r, nb))
				break;
			b++;
		}
		ta = rx_tensor(r, a);
		tb = rx_tensor(r, b);
		if (a == b)
			n = snprintf(item, sizeof(item), "%u", a);
		else
			n = snprintf(item, sizeof(item), "%u-%u", a, b);
		if (ta == tb)
			n += snprintf(item + n, sizeof(item) - n,
				      " (layer %u %s)", ta / 2,
				      kind_name[ta & 1]);
		else
			n += snprintf(item + n, sizeof(item) - n,
				      " (layer %u %s to layer %u %s)",
				      ta / 2, kind_name[ta & 1], tb / 2,
				      kind_name[tb & 1]);
		if (ranges == KV_RX_MISSING_RANGES ||
		    pos + 2 + (size_t)n + tail >= len)
			break;
		append(buf, len, &pos, "%s%s", ranges ? ", " : "", item);
		listed += b - a + 1;
		ranges++;
		i = b + 1;
	}
	if (listed < missing)
		append(buf, len, &pos, "%s... and %u more chunks",
		       ranges ? ", " : "", missing - listed);
	if (!r->final_seen)
		append(buf, len, &pos, "%s", FINAL_TEXT);
	return strlen(buf);
}
