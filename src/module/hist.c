// SPDX-License-Identifier: GPL-2.0
/*
 * Log2 latency histograms (see hist.h). A percentile is the upper bound of
 * the bucket holding the sample of that rank (the nearest-rank method),
 * capped at the largest sample seen: never below the true value, and at
 * most twice it.
 */
#include <linux/bitops.h>
#include <linux/limits.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <kunit/visibility.h>

#include "hist.h"

unsigned int dmaplane_hist_bucket(u64 value)
{
	return min_t(unsigned int, fls64(value), DMAPLANE_HIST_BUCKETS - 1);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_hist_bucket);

/* The largest value @bucket holds (the last one holds everything above). */
u64 dmaplane_hist_bucket_max(unsigned int bucket)
{
	if (bucket >= DMAPLANE_HIST_BUCKETS - 1)
		return U64_MAX;
	return (1ULL << bucket) - 1;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_hist_bucket_max);

void dmaplane_hist_add(struct dmaplane_hist *h, u64 value)
{
	h->bucket[dmaplane_hist_bucket(value)]++;
	h->count++;
	h->max = max(h->max, value);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_hist_add);

/* The @ppm-th percentile (500000: median), 0 for an empty histogram. */
u64 dmaplane_hist_percentile(const struct dmaplane_hist *h, u32 ppm)
{
	u64 rank, seen = 0;
	unsigned int b;

	if (!h->count)
		return 0;
	ppm = min(ppm, DMAPLANE_PPM);
	/* ceil(count * ppm / 10^6) without overflow; the first sample at least */
	rank = h->count - mul_u64_u32_div(h->count, DMAPLANE_PPM - ppm,
					  DMAPLANE_PPM);
	rank = max_t(u64, rank, 1);
	for (b = 0; b < DMAPLANE_HIST_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank)
			break;
	}
	return min(dmaplane_hist_bucket_max(b), h->max);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_hist_percentile);
