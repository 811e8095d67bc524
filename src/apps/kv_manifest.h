/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KV-cache transfer protocol's data (DESIGN.md section 6): the manifest
 * the decode side receives and validates before it touches its region, the
 * chunk plan the prefill side writes, the 32-bit immediate that names each
 * chunk, and the decode side's arrival tracking.
 *
 * Manifest wire format, version 1. Every integer is little-endian and is
 * encoded byte by byte (no host struct ever goes on the wire). The length
 * is exactly KV_MANIFEST_HDR_LEN + n_layers * KV_MANIFEST_LAYER_LEN bytes
 * (96 .. 6240).
 *
 *   off  size  field
 *     0     4  magic: the bytes 'K' 'V' 'M' '1'
 *     4     4  version: 1
 *     8     4  header length: 96 (the fixed part, before the layer table)
 *    12     4  dtype: 1 fp32, 2 fp16 (enum kv_dtype)
 *    16     4  n_layers: 1 .. KV_MAX_LAYERS (128)
 *    20     4  n_heads (> 0)
 *    24     4  head_dim (> 0), in elements
 *    28     4  max_tokens (> 0): token rows each tensor has room for
 *    32     4  tokens: filled prompt positions, 1 .. max_tokens
 *    36     4  chunk bytes: a multiple of 4096 in 64 KiB .. 4 MiB
 *    40     4  n_chunks: exactly kv_plan_count() of this manifest, <= 2^30
 *    44     4  first_token: prefill's argmax at the last prompt position,
 *              < vocab
 *    48     4  n_generate: tokens the decode side generates, first_token
 *              being the first (model_generate()'s n: all of them enter
 *              the cache, so tokens + n_generate <= max_tokens and
 *              <= max_seq); 0 asks for the transfer alone
 *    52     4  model d_ff (> 0)       \  the model the decode side must
 *    56     4  model vocab (> 0)       |  be running (it compares them,
 *    60     4  model max_seq (> 0)     |  with n_layers, n_heads and
 *                                      |  head_dim, to its own config)
 *    64     8  region bytes: the KV region the layout needs; every tensor
 *              lies inside it, and it is at most the receiver's region
 *    72     8  model seed             /
 *    80     8  request id (opaque here)
 *    88     8  reserved: zero (anything else is rejected)
 *    96    48  layer 0: K offset, K token_stride, K head_stride,
 *              V offset, V token_stride, V head_stride (8 bytes each,
 *              bytes, from the start of the region)
 *   144    48  layer 1 ... and so on for n_layers layers
 *
 * Validation (kv_manifest_check, run by both encode and decode) accepts a
 * manifest only when, for every tensor T of every layer (elem = 4 or 2):
 *   - offset, token_stride and head_stride are multiples of elem (views
 *     over the region are naturally aligned);
 *   - head_stride >= head_dim * elem and token_stride >= n_heads *
 *     head_stride: no two elements of T alias;
 *   - T's extent [offset, offset + (max_tokens - 1) * token_stride +
 *     (n_heads - 1) * head_stride + head_dim * elem), computed without
 *     overflow, ends within region bytes;
 *   - extents of all 2 * n_layers tensors are pairwise disjoint (so
 *     interleaved K/V layouts are not expressible in version 1);
 * and region bytes <= the caller's limit (-EFBIG otherwise).
 *
 * Chunk plan. Tensor j = 2 * layer + kind (K = 0, V = 1), in that order.
 * The filled prefix of a tensor is the byte span of its first @tokens token
 * rows, [offset, offset + (tokens - 1) * token_stride + (n_heads - 1) *
 * head_stride + head_dim * elem): for the packed layout that is exactly
 * tokens * token_stride bytes; where rows or heads have padding the gaps
 * inside the span travel too (they lie inside the tensor's own extent, so
 * they never touch another tensor). Each prefix is cut into pieces of
 * chunk bytes from its start, the last piece shorter. Chunks are numbered
 * 0 .. n_chunks - 1 through tensor 0's pieces, then tensor 1's, ...: one
 * layer's chunks (K then V) have consecutive indexes, so the sender can
 * write layer L as soon as it is computed (kv_plan_layer). A chunk lands
 * at the same offset in the receiver's region as in the sender's.
 *
 * Immediate (32 bits, host order as the completion reports it):
 *   bits 31..30  type: 0 data chunk, 1 final marker, 2 and 3 reserved
 *                (rejected)
 *   bits 29..0   data chunk: the chunk index (0 .. 2^30 - 1)
 *                final marker: n_chunks mod 2^30, a sanity check
 * Layer and kind are not in the immediate: both sides derive them from the
 * index through the plan, so no field bound caps layers or chunks per
 * tensor. A request may have at most KV_IMM_MAX_CHUNKS (2^30) chunks;
 * anything more is rejected when the manifest is encoded and decoded,
 * never truncated. kv_imm_data()/kv_imm_final() of a value past that give
 * KV_IMM_INVALID, whose reserved type every parser rejects.
 *
 * All functions return 0 or -errno unless said otherwise.
 */
#ifndef DMAPLANE_KV_MANIFEST_H
#define DMAPLANE_KV_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_layout.h"

#define KV_MANIFEST_MAGIC	"KVM1"
#define KV_MANIFEST_VERSION	1u
#define KV_MANIFEST_HDR_LEN	96u
#define KV_MANIFEST_LAYER_LEN	48u
#define KV_MANIFEST_MAX_LEN \
	(KV_MANIFEST_HDR_LEN + KV_MAX_LAYERS * KV_MANIFEST_LAYER_LEN)

/* Byte offsets of the header fields (see the table above). */
enum kv_manifest_off {
	KVM_OFF_MAGIC = 0,
	KVM_OFF_VERSION = 4,
	KVM_OFF_HDR_LEN = 8,
	KVM_OFF_DTYPE = 12,
	KVM_OFF_N_LAYERS = 16,
	KVM_OFF_N_HEADS = 20,
	KVM_OFF_HEAD_DIM = 24,
	KVM_OFF_MAX_TOKENS = 28,
	KVM_OFF_TOKENS = 32,
	KVM_OFF_CHUNK_BYTES = 36,
	KVM_OFF_N_CHUNKS = 40,
	KVM_OFF_FIRST_TOKEN = 44,
	KVM_OFF_N_GENERATE = 48,
	KVM_OFF_D_FF = 52,
	KVM_OFF_VOCAB = 56,
	KVM_OFF_MAX_SEQ = 60,
	KVM_OFF_REGION_BYTES = 64,
	KVM_OFF_MODEL_SEED = 72,
	KVM_OFF_REQUEST_ID = 80,
	KVM_OFF_RESERVED = 88,
};

/* Chunk bytes: a multiple of KV_CHUNK_ALIGN in [KV_CHUNK_MIN, KV_CHUNK_MAX]. */
#define KV_CHUNK_MIN		(64u << 10)
#define KV_CHUNK_MAX		(4u << 20)
#define KV_CHUNK_ALIGN		4096u

struct kv_manifest {
	/* Shapes, strides, dtype; layout.bytes is the region bytes. */
	struct kv_layout layout;
	uint32_t tokens;	/* filled prompt positions */
	uint32_t chunk_bytes;
	uint32_t n_chunks;	/* set it to kv_plan_count() before encoding */
	/* The model the decode side must match. */
	uint64_t model_seed;
	uint32_t d_ff;
	uint32_t vocab;
	uint32_t max_seq;
	/* The request. */
	uint32_t first_token;	/* argmax at the last prompt position */
	uint32_t n_generate;	/* model_generate()'s n, first_token included */
	uint64_t request_id;
};

/* Bytes of the encoded manifest for @n_layers layers. */
size_t kv_manifest_size(uint32_t n_layers);

/*
 * Check @m the way the decode side will, with @region_limit the receiver's
 * region size (UINT64_MAX: none). 0, -EINVAL (reason in @why), or -EFBIG
 * (region bytes past @region_limit). @why may be NULL.
 */
int kv_manifest_check(const struct kv_manifest *m, uint64_t region_limit,
		      char *why, size_t why_len);

/*
 * Write @m into @buf (@len >= kv_manifest_size(n_layers)). -EINVAL when
 * kv_manifest_check() rejects @m (so a sender never sends what a receiver
 * must refuse), -EMSGSIZE when @len is too small.
 */
int kv_manifest_encode(const struct kv_manifest *m, void *buf, size_t len);

/*
 * Parse and validate @len bytes of @buf into @m; nothing in @m is trusted
 * until this returns 0. @region_limit is the receiver's registered region
 * size. On failure @m is zeroed and @why holds the reason:
 *   -EMSGSIZE  @len is not the length the header's n_layers implies
 *   -EPROTO    wrong magic, version or header length
 *   -EINVAL    any field or the layout is wrong (see the header comment)
 *   -EFBIG     region bytes past @region_limit
 */
int kv_manifest_decode(const void *buf, size_t len, uint64_t region_limit,
		       struct kv_manifest *m, char *why, size_t why_len);

/* --- chunk plan --- */

enum kv_kind {
	KV_KIND_K = 0,
	KV_KIND_V = 1,
};

struct kv_chunk {
	uint32_t index;
	uint32_t layer;
	uint32_t kind;		/* enum kv_kind */
	uint64_t offset;	/* in the region, both sides */
	uint64_t length;	/* 1 .. chunk_bytes */
};

/*
 * Chunks @m's plan has (ignores m->n_chunks); 0 when the plan is not valid
 * (zero tokens or chunk bytes, arithmetic overflow, or more than
 * KV_IMM_MAX_CHUNKS chunks).
 */
uint32_t kv_plan_count(const struct kv_manifest *m);

/*
 * The whole plan: *@n = the chunk count; the first min(@max, count) chunks
 * go to @out. 0, -ENOSPC when @max < count (the first @max are written),
 * -EINVAL when the plan is not valid.
 */
int kv_plan(const struct kv_manifest *m, struct kv_chunk *out, uint32_t max,
	    uint32_t *n);

/* Chunk @index of the plan: 0, -ERANGE past the end, -EINVAL bad plan. */
int kv_plan_chunk(const struct kv_manifest *m, uint32_t index,
		  struct kv_chunk *c);

/*
 * Layer @layer's chunks (K then V) are [*first, *first + *count).
 * -ERANGE for a layer past n_layers, -EINVAL bad plan.
 */
int kv_plan_layer(const struct kv_manifest *m, uint32_t layer,
		  uint32_t *first, uint32_t *count);

/* --- immediate --- */

#define KV_IMM_TYPE_SHIFT	30
#define KV_IMM_INDEX_MASK	((1u << KV_IMM_TYPE_SHIFT) - 1)
#define KV_IMM_MAX_CHUNKS	(1u << KV_IMM_TYPE_SHIFT)
#define KV_IMM_INVALID		0xffffffffu	/* type 3: always rejected */

enum kv_imm_type {
	KV_IMM_DATA = 0,
	KV_IMM_FINAL = 1,
};

/* Data chunk @index; KV_IMM_INVALID for @index >= KV_IMM_MAX_CHUNKS. */
uint32_t kv_imm_data(uint32_t index);
/* Final marker of @n_chunks; KV_IMM_INVALID past KV_IMM_MAX_CHUNKS. */
uint32_t kv_imm_final(uint32_t n_chunks);
/* Split @imm; -EINVAL for a reserved type (outputs untouched). */
int kv_imm_parse(uint32_t imm, uint32_t *type, uint32_t *index);

/* --- receive tracking (decode side) --- */

struct kv_rx {
	uint64_t *bits;		/* one per chunk, set when it arrived */
	uint32_t n_chunks;
	uint32_t received;	/* distinct data chunks */
	bool final_seen;
	uint32_t n_tensors;	/* 2 * n_layers */
	uint32_t *first;	/* [n_tensors + 1]: tensor j's first index */
};

/*
 * Track @m's chunks (a validated manifest). -EINVAL when its plan is not
 * valid or disagrees with m->n_chunks, -ENOMEM.
 */
int kv_rx_init(struct kv_rx *r, const struct kv_manifest *m);
void kv_rx_free(struct kv_rx *r);

/*
 * Record a completion's immediate. Data: 0 new, -EEXIST duplicate, -ERANGE
 * index >= n_chunks. Final marker: 0, -EEXIST second marker, -EINVAL its
 * count disagrees (not recorded). -EINVAL for a reserved type.
 */
int kv_rx_mark(struct kv_rx *r, uint32_t imm);

/* Every chunk and the final marker arrived. */
bool kv_rx_complete(const struct kv_rx *r);

/*
 * What is missing, for a timeout error, e.g. "missing 3 of 40 chunks: 7
 * (layer 1 V), 12-13 (layer 3 K)"; a range spanning tensors reads "0-63
 * (layer 0 K to layer 31 V)"; after KV_RX_MISSING_RANGES ranges, or when
 * the buffer runs short, the list ends ", ... and N more chunks" (N chunks
 * not listed). "; final marker missing" follows when it is. Always
 * NUL-terminated when @len > 0; returns strlen(@buf).
 */
#define KV_RX_MISSING_RANGES	8
size_t kv_rx_missing(const struct kv_rx *r, char *buf, size_t len);

#endif /* DMAPLANE_KV_MANIFEST_H */
