/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Latency histograms with log2 buckets: bucket 0 holds 0, bucket k
 * (1..63) holds [2^(k-1), 2^k - 1]. Adding is a few instructions, so it
 * runs on every completion; percentiles are read from the buckets.
 */
#ifndef _DMAPLANE_HIST_H
#define _DMAPLANE_HIST_H

#include <linux/types.h>

#define DMAPLANE_HIST_BUCKETS	64
#define DMAPLANE_PPM		1000000U	/* percentiles in parts per million */

struct dmaplane_hist {
	u64 count;
	u64 max;
	u64 bucket[DMAPLANE_HIST_BUCKETS];
};

unsigned int dmaplane_hist_bucket(u64 value);
u64 dmaplane_hist_bucket_max(unsigned int bucket);
void dmaplane_hist_add(struct dmaplane_hist *h, u64 value);
u64 dmaplane_hist_percentile(const struct dmaplane_hist *h, u32 ppm);

#endif /* _DMAPLANE_HIST_H */
