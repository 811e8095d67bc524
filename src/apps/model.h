/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The disaggregated-inference demo's transformer: a small decoder-only
 * model in plain C with deterministic seeded weights (nothing can be
 * downloaded here), fp32 compute, and a KV cache in caller-provided memory
 * described by a struct kv_layout (fp32 or fp16).
 *
 * Architecture (d = n_heads * head_dim, per layer, pre-norm residual):
 *   x  = embed[token]
 *   x += Wo . attn(rope(Wq . rms(x)), rope(Wk . rms(x)), Wv . rms(x))
 *   x += W_down . (silu(W_gate . rms(x)) * (W_up . rms(x)))
 *   logits = W_out . rms(x)            (final RMSNorm, untied output)
 * rms(x) = (x * (1 / sqrt(mean(x^2) + 1e-5))) * gain. Attention is causal
 * multi-head (head h uses elements [h*head_dim, (h+1)*head_dim) of q, k,
 * v), scores scaled by 1/sqrt(head_dim), softmax with max subtraction.
 * RoPE (base 10000) rotates each head's pairs (2i, 2i+1) by the angle
 * pos * 10000^(-2i/head_dim): (a, b) -> (a*cos - b*sin, a*sin + b*cos).
 * K is stored in the cache after rotary; V as computed. silu(g) =
 * g / (1 + exp(-g)). Sampling is greedy (argmax, lowest index on ties).
 *
 * WEIGHT GENERATION (normative: a port, e.g. to PyTorch, must reproduce it
 * bit for bit; model_weights() exposes the result in exactly this order).
 *
 *   PRNG: splitmix64, state s = config seed, each draw:
 *       s += 0x9e3779b97f4a7c15
 *       z = s
 *       z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9      (mod 2^64)
 *       z = (z ^ (z >> 27)) * 0x94d049bb133111eb      (mod 2^64)
 *       z = z ^ (z >> 31)
 *     (seed 1234567 gives 6457827717110365317, 3203168211198807973, ...)
 *   Uniform u in [-1, 1): u = (float)((int32_t)(z >> 40) - 2^23) / 2^23,
 *     i.e. the top 24 bits of z; exact in fp32, a multiple of 2^-23.
 *   Weight values, each one fp32 operation rounded to nearest even:
 *     matrix with fan_in columns:  w = u * scale,
 *         scale = (float)(1.0 / sqrt((double)fan_in))  (computed in double,
 *         rounded once to fp32)
 *     RMSNorm gain:                w = 1.0f + u * 0.125f   ([0.875, 1.125))
 *     embedding:                   w = u                   (scale 1: every
 *         embedding row goes through RMSNorm before any use)
 *   Tensors are drawn from ONE stream in this order, each row-major over
 *   its shape ([rows][cols], cols fastest); matrices are [out][in] like
 *   torch.nn.Linear.weight (y = W x, y[o] = sum_i W[o][i] x[i]), fan_in =
 *   in:
 *       embed        [vocab][d]
 *       for layer = 0 .. n_layers-1:
 *           attn_norm    [d]
 *           wq           [d][d]
 *           wk           [d][d]
 *           wv           [d][d]
 *           wo           [d][d]
 *           mlp_norm     [d]
 *           w_gate       [d_ff][d]
 *           w_up         [d_ff][d]
 *           w_down       [d][d_ff]
 *       final_norm   [d]
 *       w_out        [vocab][d]
 *
 * DETERMINISM. Every value a token's forward pass produces is computed by
 * the same code, in the same order, whether the token is part of a
 * prefill or a decode step, and attention always reads K and V back from
 * the cache (through the fp16 conversion when the cache is fp16), also
 * for the token being computed. So decoding from a cache another process
 * filled -- its bytes copied to any address, any alignment -- gives
 * bit-identical logits to a single-process run of the same binary. The
 * math avoids libm's transcendental functions (exp, sin, cos, pow are
 * implemented in model.c in plain double arithmetic), so no result depends
 * on which CPU-specific libm variant a host dispatches to; only sqrt (IEEE
 * correctly rounded) is used. Dot products use 8 fixed accumulation lanes
 * (lane j sums the products of elements i = j mod 8 in increasing i; the
 * lanes are added as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))). Build with
 * floating-point contraction off (-std=c11 does that for GCC; never
 * -ffast-math): an FMA would change results.
 *
 * Functions return 0 or a negative errno unless said otherwise.
 */
#ifndef DMAPLANE_MODEL_H
#define DMAPLANE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kv_layout.h"

/*
 * model_create() refuses a model whose weights and scratch need more than
 * this (EFBIG): configs such as llama7b-kv.conf describe only a KV layout.
 */
#define MODEL_MAX_BYTES		(1ull << 30)
#define MODEL_NAME_MAX		64
#define MODEL_MAX_VOCAB		(1u << 20)
#define MODEL_MAX_SEQ		(1u << 20)
#define MODEL_RMS_EPS		1e-5f
#define MODEL_ROPE_BASE		10000.0

struct model_config {
	char name[MODEL_NAME_MAX];	/* [A-Za-z0-9._-], 1..63 chars */
	uint32_t n_layers;		/* 1 .. KV_MAX_LAYERS */
	uint32_t n_heads;		/* >= 1 */
	uint32_t head_dim;		/* >= 2, even (rotary pairs) */
	uint32_t d_ff;			/* >= 1 */
	uint32_t vocab;			/* 2 .. MODEL_MAX_VOCAB */
	uint32_t max_seq;		/* 1 .. MODEL_MAX_SEQ */
	uint64_t seed;
};

static inline uint32_t model_d_model(const struct model_config *c)
{
	return c->n_heads * c->head_dim;
}

/*
 * Read a config file: "key = value" lines, '#' starts a comment, blank
 * lines ignored. Keys: name, layers, heads, head_dim, d_ff, vocab,
 * max_seq, seed, each exactly once; numbers are unsigned decimal. 0,
 * -ENOENT (or another open error), -EIO, or -EINVAL with a message on
 * stderr naming the file, the line and the key.
 */
int model_config_load(const char *path, struct model_config *c);

/*
 * The ranges above, and the weight and scratch sizes computable without
 * overflow: 0 or -EINVAL. Says nothing about MODEL_MAX_BYTES.
 */
int model_config_check(const struct model_config *c);

/*
 * Bytes model_create() would allocate for @c: its weights (fp32) and its
 * scratch (sized by max_seq). -EINVAL when model_config_check() fails.
 */
int model_memory_bytes(const struct model_config *c, uint64_t *weight_bytes,
		       uint64_t *total_bytes);

struct model;

/*
 * Generate @c's weights (see above) and allocate every scratch buffer the
 * forward pass needs, once. NULL with errno EINVAL (bad config), EFBIG
 * (more than MODEL_MAX_BYTES) or ENOMEM.
 */
struct model *model_create(const struct model_config *c);
void model_free(struct model *m);

const struct model_config *model_get_config(const struct model *m);
/* All weights, in generation order; *@count of them. */
const float *model_weights(const struct model *m, size_t *count);

/*
 * A KV cache: @layout (n_layers, n_heads, head_dim equal to the model's)
 * over the region at @base; positions 0 .. tokens-1 are filled.
 */
struct kv_cache {
	struct kv_layout *layout;
	void *base;
	uint32_t tokens;
};

/* The packed layout for @c's shape (kv_layout_init). */
int model_kv_layout(const struct model_config *c, uint32_t max_tokens,
		    uint32_t dtype, struct kv_layout *l);

/*
 * Run @n prompt tokens at positions kv->tokens .. kv->tokens + n - 1,
 * layer by layer: every token through layer 0, then layer 1, ... Layer
 * L's K and V of all @n tokens are final when @layer_done(@arg, L) is
 * called (@layer_done may be NULL), so a sender can ship layer L while
 * layer L+1 computes. Then kv->tokens += n and @logits (vocab floats; NULL
 * skips the output projection) get the last position's logits. Allocates
 * nothing.
 *   -EINVAL  n == 0, a token >= vocab, or a layout that does not match
 *            the model (dims, dtype, tensors outside layout->bytes)
 *   -ENOSPC  past the layout's max_tokens or the model's max_seq
 * On error nothing was written and kv->tokens is unchanged.
 */
int model_prefill(struct model *m, struct kv_cache *kv, const uint32_t *prompt,
		  uint32_t n, float *logits,
		  void (*layer_done)(void *arg, uint32_t layer), void *arg);

/* One token at position kv->tokens: exactly model_prefill() with n = 1. */
int model_decode_step(struct model *m, struct kv_cache *kv, uint32_t token,
		      float *logits);

/* The index of the largest logit; the lowest such index on ties. */
uint32_t model_argmax(const float *logits, uint32_t vocab);

/*
 * Greedy generation of @n tokens: out[0] = @first, and for i = 0 .. n-1 a
 * decode step feeds out[i]; out[i+1] = argmax of its logits while i+1 < n.
 * So all n tokens enter the cache (kv->tokens += n) and @last_logits
 * (vocab floats, may be NULL) gets the final step's logits: the
 * prediction after out[n-1]. Checks the space for all n steps first:
 * -EINVAL (n == 0, first >= vocab, layout) or -ENOSPC before any step.
 */
int model_generate(struct model *m, struct kv_cache *kv, uint32_t first,
		   uint32_t n, uint32_t *out, float *last_logits);

/*
 * fp32 <-> IEEE binary16, portable (no _Float16): round to nearest even,
 * overflow to infinity, subnormals kept, NaN stays NaN (quiet, sign and
 * top payload bits kept). The fp16 KV cache stores and reads through
 * these.
 */
uint16_t model_f32_to_f16(float f);
float model_f16_to_f32(uint16_t h);

#endif /* DMAPLANE_MODEL_H */
