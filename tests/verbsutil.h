/* SPDX-License-Identifier: GPL-2.0 */
/* What the RDMA suites share: mapped buffers, reaping, settling counters. */
#ifndef DMAPLANE_VERBSUTIL_H
#define DMAPLANE_VERBSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libdmaplane.h"

#define VERBS_WAIT_MS	20000

/* A buffer of this file and its mapping. */
struct region {
	uint32_t buf;
	unsigned char *p;
	size_t size;
};

/* Create and map a buffer of @size; a KTAP failure and false if not. */
bool region_make(int fd, struct region *r, size_t size);
void region_free(int fd, struct region *r);
/*
 * Collect @n completions of endpoint @ep into @c, each within
 * VERBS_WAIT_MS; the number that came (a KTAP failure if fewer).
 */
uint32_t reap_n(int fd, uint32_t ep, struct dmaplane_completion *c,
		uint32_t n);
/*
 * Counter @key of debugfs dmaplane/info once it is back to @want, or its
 * value after 30 s: endpoints whose peer left finish their teardown on a
 * work queue.
 */
uint64_t counter_settled(const char *key, uint64_t want);

#endif /* DMAPLANE_VERBSUTIL_H */
