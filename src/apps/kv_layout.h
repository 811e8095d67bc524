/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a KV cache lives in one contiguous region: per layer a K and a V
 * tensor of [max_tokens][n_heads][head_dim] elements (fp32 or fp16), each
 * at a byte offset with byte strides. The model writes and reads through
 * it (model.c), the manifest describes it on the wire (kv_manifest.c), and
 * the decode side builds its views from it over the registered region.
 */
#ifndef DMAPLANE_KV_LAYOUT_H
#define DMAPLANE_KV_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define KV_MAX_LAYERS	128

enum kv_dtype {
	KV_F32 = 1,
	KV_F16 = 2,
};

/* One tensor: element (t, h, d) is at offset + t * token_stride + h * head_stride + d * elem. */
struct kv_tensor {
	uint64_t offset;
	uint64_t token_stride;
	uint64_t head_stride;
};

struct kv_layout {
	uint32_t n_layers;
	uint32_t n_heads;
	uint32_t head_dim;
	uint32_t max_tokens;
	uint32_t dtype;			/* enum kv_dtype */
	uint64_t bytes;			/* the region it needs */
	struct kv_tensor k[KV_MAX_LAYERS];
	struct kv_tensor v[KV_MAX_LAYERS];
};

static inline size_t kv_elem_size(uint32_t dtype)
{
	return dtype == KV_F16 ? 2 : 4;
}

/*
 * The packed layout: layer 0 K, layer 0 V, layer 1 K, ... each
 * [max_tokens][n_heads][head_dim]. 0, or -EINVAL for zero or too many
 * layers, an unknown dtype, or a size that overflows.
 */
int kv_layout_init(struct kv_layout *l, uint32_t n_layers, uint32_t n_heads,
		   uint32_t head_dim, uint32_t max_tokens, uint32_t dtype);

/* The first element of head @h of token @t in @tensor, in a region at @base. */
static inline void *kv_at(void *base, const struct kv_tensor *tensor,
			  uint32_t t, uint32_t h)
{
	return (char *)base + tensor->offset + t * tensor->token_stride +
	       h * tensor->head_stride;
}

#endif /* DMAPLANE_KV_LAYOUT_H */
