// SPDX-License-Identifier: GPL-2.0
/*
 * The packed KV-cache layout (kv_layout.h): layer 0 K, layer 0 V, layer 1
 * K, ... each tensor [max_tokens][n_heads][head_dim] of kv_elem_size()
 * bytes, elements of one head contiguous, heads of one token contiguous.
 * Every tensor starts at a multiple of KV_ALIGN bytes (no padding at all
 * when a tensor's size is already a multiple, as for every fixture); bytes
 * is the end of the last V tensor.
 */
#include <errno.h>
#include <string.h>

#include "kv_layout.h"

#define KV_ALIGN	64u

int kv_layout_init(struct kv_layout *l, uint32_t n_layers, uint32_t n_heads,
		   uint32_t head_dim, uint32_t max_tokens, uint32_t dtype)
{
	uint64_t head_stride, token_stride, tensor, padded, off = 0;

	memset(l, 0, sizeof(*l));
	if (!n_layers || !n_heads || !head_dim || !max_tokens)
		return -EINVAL;
	if (n_layers > KV_MAX_LAYERS)
		return -EINVAL;
	if (dtype != KV_F32 && dtype != KV_F16)
		return -EINVAL;

	head_stride = (uint64_t)head_dim * kv_elem_size(dtype);
	if (__builtin_mul_overflow(head_stride, (uint64_t)n_heads,
				   &token_stride) ||
	    __builtin_mul_overflow(token_stride, (uint64_t)max_tokens,
				   &tensor) ||
	    __builtin_add_overflow(tensor, (uint64_t)KV_ALIGN - 1, &padded))
		return -EINVAL;
	padded &= ~(uint64_t)(KV_ALIGN - 1);

	for (uint32_t i = 0; i < n_layers; i++) {
		struct kv_tensor *t[2] = { &l->k[i], &l->v[i] };

		for (int j = 0; j < 2; j++) {
			t[j]->offset = off;
			t[j]->token_stride = token_stride;
			t[j]->head_stride = head_stride;
			/* The last tensor ends unpadded. */
			if (__builtin_add_overflow(off,
					(i + 1 == n_layers && j == 1) ?
					tensor : padded, &off)) {
				memset(l, 0, sizeof(*l));
				return -EINVAL;
			}
		}
	}

	l->n_layers = n_layers;
	l->n_heads = n_heads;
	l->head_dim = head_dim;
	l->max_tokens = max_tokens;
	l->dtype = dtype;
	l->bytes = off;
	return 0;
}
