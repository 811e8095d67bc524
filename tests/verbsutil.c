// SPDX-License-Identifier: GPL-2.0
/* What the RDMA suites share (verbsutil.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ktap.h"
#include "testutil.h"
#include "verbsutil.h"

bool region_make(int fd, struct region *r, size_t size)
{
	struct dmaplane_buffer_create req = {
		.size = size, .numa_node = DMAPLANE_NUMA_ANY,
	};
	int ret = dmaplane_buffer_create_req(fd, &req);

	memset(r, 0, sizeof(*r));
	KTAP_EXPECT_RET(ret, 0);
	if (ret)
		return false;
	r->buf = req.handle;
	r->size = size;
	r->p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    req.mmap_offset);
	KTAP_EXPECT(r->p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (r->p == MAP_FAILED) {
		r->p = NULL;
		return false;
	}
	return true;
}

void region_free(int fd, struct region *r)
{
	if (r->p)
		munmap(r->p, r->size);
	if (r->buf)
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, r->buf), 0);
	memset(r, 0, sizeof(*r));
}

uint32_t reap_n(int fd, uint32_t ep, struct dmaplane_completion *c,
		uint32_t n)
{
	uint32_t got = 0, count;

	while (got < n) {
		uint32_t want = n - got > DMAPLANE_POST_MAX ?
				DMAPLANE_POST_MAX : n - got;
		int ret = dmaplane_reap(fd, ep, c + got, want, 1, VERBS_WAIT_MS,
					&count);

		if (ret) {
			KTAP_EXPECT_RET(ret, 0);
			break;
		}
		got += count;
	}
	return got;
}

uint64_t counter_settled(const char *key, uint64_t want)
{
	uint64_t v = dmaplane_counter(key);

	for (int i = 0; v != want && i < 300; i++) {
		usleep(100 * 1000);
		v = dmaplane_counter(key);
	}
	return v;
}
