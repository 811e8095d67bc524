// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: GPU provider bookkeeping (gpu.c) with a fake provider: range
 * checks, overlap, and a pinned range's life: pinned once, unpinned once
 * whatever revocations came in between, a failed pin never unpinned.
 */
#include <kunit/test.h>
#include <linux/sizes.h>

#include "dmaplane.h"
#include "gpu.h"

static void gpu_range_checks(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, dmaplane_gpu_range_ok(0, SZ_64K, SZ_64K, SZ_1M));
	KUNIT_EXPECT_TRUE(test, dmaplane_gpu_range_ok(SZ_1M - SZ_64K, SZ_64K,
						      SZ_64K, SZ_1M));
	/* Zero, unaligned start or length, past the end, wrapping. */
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_range_ok(0, 0, SZ_64K, SZ_1M));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_range_ok(SZ_4K, SZ_64K, SZ_64K,
						       SZ_1M));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_range_ok(0, SZ_64K + SZ_4K,
						       SZ_64K, SZ_1M));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_range_ok(SZ_1M, SZ_64K, SZ_64K,
						       SZ_1M));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_range_ok(U64_MAX - SZ_64K + 1,
						       SZ_128K, SZ_64K,
						       U64_MAX));
}

static void gpu_overlap(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, dmaplane_gpu_overlaps(0, 10, 9, 1));
	KUNIT_EXPECT_TRUE(test, dmaplane_gpu_overlaps(5, 1, 0, 10));
	KUNIT_EXPECT_TRUE(test, dmaplane_gpu_overlaps(0, 10, 0, 10));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_overlaps(0, 10, 10, 5));
	KUNIT_EXPECT_FALSE(test, dmaplane_gpu_overlaps(10, 5, 0, 10));
}

static int fake_pins, fake_unpins, fake_pin_error;

static int fake_pin(struct dmaplane_gpu_range *pin)
{
	if (fake_pin_error)
		return fake_pin_error;
	fake_pins++;
	pin->priv = &fake_pins;
	return 0;
}

static void fake_unpin(struct dmaplane_gpu_range *pin)
{
	fake_unpins++;
}

static const struct dmaplane_gpu_ops fake_ops = {
	.provider = DMAPLANE_GPU_SIM,
	.page_size = SZ_64K,
	.pin = fake_pin,
	.unpin = fake_unpin,
};

static void gpu_pin_lifecycle(struct kunit *test)
{
	struct dmaplane_buffer *buf;

	fake_pins = 0;
	fake_unpins = 0;
	fake_pin_error = 0;
	KUNIT_ASSERT_EQ(test, dmaplane_gpu_buffer_new(&fake_ops, 0, 0,
						      SZ_1M, 0, &buf), 0);
	KUNIT_EXPECT_EQ(test, fake_pins, 1);
	KUNIT_EXPECT_EQ(test, buf->size, (u64)SZ_1M);
	KUNIT_EXPECT_EQ(test, buf->result_flags, (u32)DMAPLANE_BUF_RES_GPU);
	/* Revoked twice (a free, then the device going): once is what counts. */
	dmaplane_gpu_revoke(buf->gpu);
	dmaplane_gpu_revoke(buf->gpu);
	KUNIT_EXPECT_TRUE(test, buf->revoked);
	KUNIT_EXPECT_EQ(test, fake_unpins, 0);
	dmaplane_buffer_put(buf);
	KUNIT_EXPECT_EQ(test, fake_unpins, 1);

	/* A pin the provider refuses: its error, nothing to unpin. */
	fake_pin_error = -ERANGE;
	KUNIT_EXPECT_EQ(test, dmaplane_gpu_buffer_new(&fake_ops, 0, 0,
						      SZ_1M, 0, &buf), -ERANGE);
	KUNIT_EXPECT_EQ(test, fake_unpins, 1);
}

static struct kunit_case gpu_cases[] = {
	KUNIT_CASE(gpu_range_checks),
	KUNIT_CASE(gpu_overlap),
	KUNIT_CASE(gpu_pin_lifecycle),
	{}
};

static struct kunit_suite gpu_suite = {
	.name = "dmaplane_gpu",
	.test_cases = gpu_cases,
};

kunit_test_suite(gpu_suite);
