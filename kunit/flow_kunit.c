// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for flow control and latency histograms: the credit state
 * machine (grant, take, replenish at the watermarks, what waits when the
 * connection ends) and percentiles from log2 buckets with known inputs.
 */
#include <kunit/test.h>
#include <linux/limits.h>

#include "rdma.h"

/* --- credits --- */

static void credit_take_until_empty(struct kunit *test)
{
	struct dmaplane_credits c = { .peer_window = 4 };
	int i;

	KUNIT_EXPECT_FALSE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 3), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 3U);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_TRUE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_FALSE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_EQ(test, c.used, 3U);
	/* Cumulative: the same count again grants nothing. */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 3), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 0U);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 7), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 4U);
}

static void credit_receive_rejects_broken_grants(struct kunit *test)
{
	struct dmaplane_credits c = { .peer_window = 4 };

	/* More than the peer's window out at once. */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 5), -EPROTO);
	KUNIT_EXPECT_EQ(test, c.peer_granted, 0U);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 4), 0);
	KUNIT_EXPECT_TRUE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 6), -EPROTO);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 5), 0);
	/* Grants only grow. */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 4), -EPROTO);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 4U);
	/* A huge jump is not a wrap. */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 0x80000005), -EPROTO);
}

static void credit_counts_wrap(struct kunit *test)
{
	struct dmaplane_credits c = {
		.peer_window = 8, .peer_granted = U32_MAX - 1,
		.used = U32_MAX - 1,
	};

	KUNIT_EXPECT_EQ(test, dmaplane_credit_receive(&c, 3), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 5U);
	KUNIT_EXPECT_TRUE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_EQ(test, c.used, U32_MAX);
	KUNIT_EXPECT_TRUE(test, dmaplane_credit_take(&c));
	KUNIT_EXPECT_EQ(test, c.used, 0U);
	KUNIT_EXPECT_EQ(test, dmaplane_credit_avail(&c), 3U);
}

/* Replenishing: at once at the low watermark, else in batches of @high. */
static void credit_due_at_watermarks(struct kunit *test)
{
	struct dmaplane_credits c = { .window = 8, .low = 2, .high = 4 };

	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 0U);
	c.posted = 3;		/* the peer has none: grant at once */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 3U);
	c.granted = 3;
	c.posted = 4;		/* it has 3 > low; 1 < high waits */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 3U);
	c.posted = 7;		/* 4 due: a batch */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 7U);
	c.granted = 7;
	c.posted = 30;		/* never more than the window out */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 7U);
	c.consumed = 4;		/* it has 3: above low, 5 due >= high */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 12U);
	c.granted = 12;
	c.consumed = 10;	/* it has 2 = low: whatever fits */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 18U);
	c.granted = 18;
	c.consumed = 18;	/* it used everything: a window more */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 26U);
	c.granted = 26;
	c.consumed = 26;
	c.posted = 26;		/* nothing posted: nothing to grant */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 26U);
	c.posted = 27;		/* one receive, and it has none: at once */
	KUNIT_EXPECT_EQ(test, dmaplane_credit_due(&c), 27U);
}

static void credit_params_defaults_and_bounds(struct kunit *test)
{
	struct dmaplane_ep_create p = { .recv_depth = 64 };

	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), 0);
	KUNIT_EXPECT_EQ(test, p.credit_window, 64U);
	KUNIT_EXPECT_EQ(test, p.credit_low, 16U);
	KUNIT_EXPECT_EQ(test, p.credit_high, 32U);
	p = (struct dmaplane_ep_create){ .recv_depth = 1 };
	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), 0);
	KUNIT_EXPECT_EQ(test, p.credit_low, 0U);
	KUNIT_EXPECT_EQ(test, p.credit_high, 1U);
	p = (struct dmaplane_ep_create){ .recv_depth = 8, .credit_window = 9 };
	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), -EINVAL);
	p = (struct dmaplane_ep_create){ .recv_depth = 8, .credit_low = 8 };
	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), -EINVAL);
	p = (struct dmaplane_ep_create){ .recv_depth = 8, .credit_high = 9 };
	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), -EINVAL);
	p = (struct dmaplane_ep_create){ .recv_depth = 8, .reserved2 = 1 };
	KUNIT_EXPECT_EQ(test, dmaplane_flow_check_params(&p), -EINVAL);
}

/* A slot of @ep's send queue for @op, as POST takes one. */
static struct dmaplane_wr *take_send_slot(struct dmaplane_ep *ep, u32 i,
					  u32 opcode)
{
	struct dmaplane_wr *wr = &ep->wrs[i];

	list_del(&wr->node);
	ep->send_busy++;
	wr->op = (struct dmaplane_op){ .cookie = i, .opcode = opcode };
	return wr;
}

static u32 free_slots(struct dmaplane_ep *ep)
{
	struct dmaplane_wr *wr;
	u32 n = 0;

	list_for_each_entry(wr, &ep->send_free, node)
		n++;
	return n;
}

/*
 * Without credits a SEND waits and so does everything behind it (or it
 * is -EAGAIN); when the connection ends what waits completes flushed, in
 * order, and its slot is free again once reaped.
 */
static void credit_queue_flushes_in_order(struct kunit *test)
{
	struct dmaplane_ep *ep = kunit_kzalloc(test, sizeof(*ep), GFP_KERNEL);
	struct dmaplane_wr *wr;

	KUNIT_ASSERT_NOT_NULL(test, ep);
	ep->params.send_depth = 4;
	ep->params.recv_depth = 4;
	KUNIT_ASSERT_EQ(test, dmaplane_ep_verbs_init(ep), 0);
	ep->credits_on = true;
	ep->credits.peer_window = 4;

	spin_lock_bh(&ep->post_lock);
	wr = take_send_slot(ep, 0, DMAPLANE_OP_SEND);
	KUNIT_EXPECT_EQ(test, dmaplane_flow_admit(ep, wr, false), 1);
	KUNIT_EXPECT_EQ(test, ep->stalls, 1ULL);
	KUNIT_EXPECT_NE(test, ep->stall_start_ns, 0ULL);
	/* A WRITE needs no credit but may not overtake. */
	wr = take_send_slot(ep, 1, DMAPLANE_OP_WRITE);
	KUNIT_EXPECT_EQ(test, dmaplane_flow_admit(ep, wr, true), -EAGAIN);
	KUNIT_EXPECT_EQ(test, dmaplane_flow_admit(ep, wr, false), 1);
	KUNIT_EXPECT_EQ(test, ep->queued, 2U);
	/* One stall, however many wait. */
	KUNIT_EXPECT_EQ(test, ep->stalls, 1ULL);

	dmaplane_flow_flush(ep);
	spin_unlock_bh(&ep->post_lock);
	KUNIT_EXPECT_EQ(test, ep->queued, 0U);
	KUNIT_EXPECT_TRUE(test, list_empty(&ep->credit_queue));
	KUNIT_ASSERT_EQ(test, ep->ring_count, 2U);
	KUNIT_EXPECT_EQ(test, ep->ring[0].cookie, 0ULL);
	KUNIT_EXPECT_EQ(test, ep->ring[1].cookie, 1ULL);
	KUNIT_EXPECT_EQ(test, ep->ring[0].status, -ECANCELED);
	KUNIT_EXPECT_EQ(test, ep->ring[1].status, -ECANCELED);
	KUNIT_EXPECT_EQ(test, ep->ring[0].wc_status, (u32)IB_WC_WR_FLUSH_ERR);
	KUNIT_EXPECT_EQ(test, ep->errors, 2ULL);
	/* Busy until reaped: the ring can hold every slot's completion. */
	KUNIT_EXPECT_EQ(test, ep->send_busy, 2U);
	KUNIT_EXPECT_EQ(test, free_slots(ep), 4U);
	dmaplane_ep_verbs_free(ep);
}

static struct kunit_case credit_cases[] = {
	KUNIT_CASE(credit_take_until_empty),
	KUNIT_CASE(credit_receive_rejects_broken_grants),
	KUNIT_CASE(credit_counts_wrap),
	KUNIT_CASE(credit_due_at_watermarks),
	KUNIT_CASE(credit_params_defaults_and_bounds),
	KUNIT_CASE(credit_queue_flushes_in_order),
	{}
};

static struct kunit_suite credit_suite = {
	.name = "dmaplane_credits",
	.test_cases = credit_cases,
};

/* --- latency histogram --- */

static void hist_buckets_are_log2(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(0), 0U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(1), 1U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(2), 2U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(3), 2U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(1023), 10U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(1024), 11U);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket(U64_MAX),
			DMAPLANE_HIST_BUCKETS - 1);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket_max(0), 0ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket_max(1), 1ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket_max(10), 1023ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_bucket_max(63), U64_MAX);
}

static void hist_add_n(struct dmaplane_hist *h, u64 value, int n)
{
	while (n--)
		dmaplane_hist_add(h, value);
}

/* 990 x 100 ns, 9 x 10 us, 1 x 1 ms: the nearest-rank bucket bounds. */
static void hist_percentiles_known_inputs(struct kunit *test)
{
	struct dmaplane_hist *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	u64 v;

	KUNIT_ASSERT_NOT_NULL(test, h);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 500000), 0ULL);
	hist_add_n(h, 100, 990);
	hist_add_n(h, 10000, 9);
	hist_add_n(h, 1000000, 1);
	KUNIT_EXPECT_EQ(test, h->count, 1000ULL);
	KUNIT_EXPECT_EQ(test, h->max, 1000000ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 500000), 127ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 990000), 127ULL);
	/* rank 991 is the first 10 us sample */
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 990001), 16383ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 999000), 16383ULL);
	/* the largest is capped at the largest sample, not its bucket's end */
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 1000000), 1000000ULL);

	/* 1..1000 ns once each */
	memset(h, 0, sizeof(*h));
	for (v = 1; v <= 1000; v++)
		dmaplane_hist_add(h, v);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 500000), 511ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 250000), 255ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 990000), 1000ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 0), 1ULL);

	/* One sample is every percentile. */
	memset(h, 0, sizeof(*h));
	dmaplane_hist_add(h, 5);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 500000), 5ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 999000), 5ULL);

	/* Counts near 2^64 do not overflow the rank. */
	memset(h, 0, sizeof(*h));
	h->bucket[3] = U64_MAX / 2;
	h->bucket[20] = U64_MAX / 2;
	h->count = U64_MAX - 1;
	h->max = 1 << 19;
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 499999), 7ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_hist_percentile(h, 999000),
			(u64)(1 << 19));
}

static struct kunit_case hist_cases[] = {
	KUNIT_CASE(hist_buckets_are_log2),
	KUNIT_CASE(hist_percentiles_known_inputs),
	{}
};

static struct kunit_suite hist_suite = {
	.name = "dmaplane_hist",
	.test_cases = hist_cases,
};

kunit_test_suites(&credit_suite, &hist_suite);
