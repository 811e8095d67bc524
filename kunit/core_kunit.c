// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for dmaplane.ko internals: the ioctl table lookup, the
 * per-file handle table, the buffer size/charge rules, dma-buf export,
 * endpoint parameters and the verbs' checks (flow control and histograms:
 * flow_kunit.c). The functions
 * under test are exported to this module only (EXPORT_SYMBOL_IF_KUNIT).
 */
#include <kunit/test.h>
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/highmem.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ioctl.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "rdma.h"

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
MODULE_IMPORT_NS(DMA_BUF);

/* --- ioctl table --- */

static const unsigned int known_cmds[] = {
	DMAPLANE_IOC_GET_INFO,
	DMAPLANE_IOC_ECHO,
	DMAPLANE_IOC_BUFFER_CREATE,
	DMAPLANE_IOC_BUFFER_DESTROY,
	DMAPLANE_IOC_BUFFER_INFO,
	DMAPLANE_IOC_GET_TOPOLOGY,
	DMAPLANE_IOC_NUMA_BENCH,
	DMAPLANE_IOC_MAP_BENCH,
	DMAPLANE_IOC_EXPORT_DMABUF,
	DMAPLANE_IOC_IMPORT_DMABUF,
	DMAPLANE_IOC_BUFFER_REVOKE,
	DMAPLANE_IOC_RDMA_DEVICES,
	DMAPLANE_IOC_ENDPOINT_CREATE,
	DMAPLANE_IOC_ENDPOINT_DESTROY,
	DMAPLANE_IOC_ENDPOINT_LISTEN,
	DMAPLANE_IOC_ENDPOINT_CONNECT,
	DMAPLANE_IOC_ENDPOINT_ACCEPT,
	DMAPLANE_IOC_ENDPOINT_INFO,
	DMAPLANE_IOC_MR_REG,
	DMAPLANE_IOC_MR_DEREG,
	DMAPLANE_IOC_POST,
	DMAPLANE_IOC_REAP,
	DMAPLANE_IOC_ENDPOINT_EVENTFD,
	DMAPLANE_IOC_GPU_PIN,
	DMAPLANE_IOC_GPU_SIM_FREE,
};

#define IOWR_SIZED(nr, size) \
	_IOC(_IOC_READ | _IOC_WRITE, DMAPLANE_IOC_MAGIC, (nr), (size))

/* 0 when @cmd resolves to a table entry, its errno otherwise. */
static long lookup_err(unsigned int cmd)
{
	return PTR_ERR_OR_ZERO(dmaplane_ioctl_lookup(cmd));
}

static void lookup_finds_every_command(struct kunit *test)
{
	const struct dmaplane_ioctl_desc *desc;
	int i;

	for (i = 0; i < ARRAY_SIZE(known_cmds); i++) {
		desc = dmaplane_ioctl_lookup(known_cmds[i]);
		KUNIT_ASSERT_FALSE(test, IS_ERR(desc));
		KUNIT_EXPECT_EQ(test, desc->cmd, known_cmds[i]);
		KUNIT_EXPECT_NOT_NULL(test, desc->fn);
		/* The first version is never longer than the current one. */
		KUNIT_EXPECT_LE(test, desc->min_size, _IOC_SIZE(desc->cmd));
		KUNIT_EXPECT_GT(test, desc->min_size, 0U);
	}
}

static void lookup_foreign_magic_enotty(struct kunit *test)
{
	unsigned int foreign = _IOWR('x', 0, struct dmaplane_info);

	KUNIT_EXPECT_EQ(test, lookup_err(foreign), -ENOTTY);
	KUNIT_EXPECT_EQ(test, lookup_err(0), -ENOTTY);
}

static void lookup_unknown_number_enotty(struct kunit *test)
{
	unsigned int past_table = IOWR_SIZED(ARRAY_SIZE(known_cmds), 8);

	KUNIT_EXPECT_EQ(test, lookup_err(past_table), -ENOTTY);
	KUNIT_EXPECT_EQ(test, lookup_err(IOWR_SIZED(0xff, 8)), -ENOTTY);
}

static void lookup_wrong_direction_enotty(struct kunit *test)
{
	unsigned int size = sizeof(struct dmaplane_echo);

	KUNIT_EXPECT_EQ(test, lookup_err(_IOC(_IOC_READ, DMAPLANE_IOC_MAGIC,
					      1, size)), -ENOTTY);
	KUNIT_EXPECT_EQ(test, lookup_err(_IOC(_IOC_WRITE, DMAPLANE_IOC_MAGIC,
					      1, size)), -ENOTTY);
	KUNIT_EXPECT_EQ(test, lookup_err(_IO(DMAPLANE_IOC_MAGIC, 1)), -ENOTTY);
}

static void lookup_short_argument_einval(struct kunit *test)
{
	unsigned int size = sizeof(struct dmaplane_echo);

	KUNIT_EXPECT_EQ(test, lookup_err(IOWR_SIZED(1, size - 1)), -EINVAL);
	KUNIT_EXPECT_EQ(test, lookup_err(IOWR_SIZED(0, 0)), -EINVAL);
}

static void lookup_longer_argument_accepted(struct kunit *test)
{
	const struct dmaplane_ioctl_desc *desc;

	/* A newer caller's struct: the dispatcher checks its tail later. */
	desc = dmaplane_ioctl_lookup(IOWR_SIZED(1, 256));
	KUNIT_ASSERT_FALSE(test, IS_ERR(desc));
	KUNIT_EXPECT_EQ(test, desc->cmd, DMAPLANE_IOC_ECHO);
}

static struct kunit_case ioctl_cases[] = {
	KUNIT_CASE(lookup_finds_every_command),
	KUNIT_CASE(lookup_foreign_magic_enotty),
	KUNIT_CASE(lookup_unknown_number_enotty),
	KUNIT_CASE(lookup_wrong_direction_enotty),
	KUNIT_CASE(lookup_short_argument_einval),
	KUNIT_CASE(lookup_longer_argument_accepted),
	{}
};

static struct kunit_suite ioctl_suite = {
	.name = "dmaplane_ioctl",
	.test_cases = ioctl_cases,
};

/* --- handle table --- */

struct fake_obj {
	struct dmaplane_obj obj;
	int *released;
};

static void fake_release(struct dmaplane_obj *obj)
{
	struct fake_obj *f = container_of(obj, struct fake_obj, obj);

	(*f->released)++;
	kfree(f);
}

static const struct dmaplane_obj_ops fake_ops = { .release = fake_release };

static struct dmaplane_obj *fake_new(struct kunit *test, int *released)
{
	struct fake_obj *f = kzalloc(sizeof(*f), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	f->released = released;
	dmaplane_obj_init(&f->obj, DMAPLANE_OBJ_BUFFER, &fake_ops);
	return &f->obj;
}

/* A published object in @ctx; returns its handle. */
static u32 fake_publish(struct kunit *test, struct dmaplane_ctx *ctx,
			int *released)
{
	struct dmaplane_obj *obj = fake_new(test, released);

	KUNIT_ASSERT_EQ(test, dmaplane_ctx_reserve(ctx, obj), 0);
	dmaplane_ctx_publish(ctx, obj);
	return obj->handle;
}

/*
 * Objects outlive the case function (handles_exit() destroys the table),
 * so what they count into lives in test-managed memory, not on the stack.
 */
struct handles_fixture {
	struct dmaplane_ctx *ctx;
	int released;
};

static int handles_init(struct kunit *test)
{
	struct handles_fixture *fx = kunit_kzalloc(test, sizeof(*fx),
						   GFP_KERNEL);

	if (!fx)
		return -ENOMEM;
	fx->ctx = dmaplane_ctx_create();
	if (!fx->ctx)
		return -ENOMEM;
	test->priv = fx;
	return 0;
}

static void handles_exit(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;

	dmaplane_ctx_destroy(fx->ctx);
}

static void handles_start_at_one(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;

	KUNIT_EXPECT_EQ(test, fake_publish(test, fx->ctx, &fx->released), 1U);
	KUNIT_EXPECT_EQ(test, fake_publish(test, fx->ctx, &fx->released), 2U);
}

static void reserved_handle_is_invisible(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	struct dmaplane_obj *obj;

	obj = fake_new(test, &fx->released);
	KUNIT_ASSERT_EQ(test, dmaplane_ctx_reserve(ctx, obj), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, obj->handle,
						  DMAPLANE_OBJ_BUFFER), -ENOENT);
	dmaplane_ctx_publish(ctx, obj);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, obj->handle,
						  DMAPLANE_OBJ_BUFFER), 0);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
}

static void remove_releases_once(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	u32 h = fake_publish(test, ctx, &fx->released);

	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, h, DMAPLANE_OBJ_BUFFER),
			0);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, h, DMAPLANE_OBJ_BUFFER),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
}

static void remove_wrong_type_enoent(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	u32 h = fake_publish(test, ctx, &fx->released);

	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, h,
						  DMAPLANE_OBJ_BUFFER + 1),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, fx->released, 0);
}

static void remove_unknown_handles_enoent(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;

	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, 0, DMAPLANE_OBJ_BUFFER),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, 1, DMAPLANE_OBJ_BUFFER),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, U32_MAX,
						  DMAPLANE_OBJ_BUFFER),
			-ENOENT);
}

static void abort_releases_and_frees_slot(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	struct dmaplane_obj *obj;

	ctx->max_handles = 1;
	obj = fake_new(test, &fx->released);
	KUNIT_ASSERT_EQ(test, dmaplane_ctx_reserve(ctx, obj), 0);
	dmaplane_ctx_abort(ctx, obj);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
	/* The only slot is free again. */
	obj = fake_new(test, &fx->released);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_reserve(ctx, obj), 0);
	dmaplane_ctx_abort(ctx, obj);
}

static void handles_not_reused_at_once(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	u32 a, b;

	a = fake_publish(test, ctx, &fx->released);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, a, DMAPLANE_OBJ_BUFFER),
			0);
	b = fake_publish(test, ctx, &fx->released);
	KUNIT_EXPECT_NE(test, a, b);
}

static void handle_limit_emfile(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	struct dmaplane_obj *obj;
	int i;

	ctx->max_handles = 3;
	for (i = 0; i < 3; i++)
		fake_publish(test, ctx, &fx->released);
	obj = fake_new(test, &fx->released);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_reserve(ctx, obj), -EMFILE);
	dmaplane_obj_put(obj);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
}

static void destroy_releases_everything(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = dmaplane_ctx_create();
	int i;

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	for (i = 0; i < 5; i++)
		fake_publish(test, ctx, &fx->released);
	dmaplane_ctx_remove(ctx, 3, DMAPLANE_OBJ_BUFFER);
	dmaplane_ctx_destroy(ctx);
	KUNIT_EXPECT_EQ(test, fx->released, 5);
}

static void files_have_separate_handles(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *other = dmaplane_ctx_create();
	u32 h;

	KUNIT_ASSERT_NOT_NULL(test, other);
	h = fake_publish(test, fx->ctx, &fx->released);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(other, h,
						  DMAPLANE_OBJ_BUFFER),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, fake_publish(test, other, &fx->released), h);
	dmaplane_ctx_destroy(other);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(fx->ctx, h,
						  DMAPLANE_OBJ_BUFFER), 0);
}

static void charge_per_file_edquot(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	struct dmaplane_obj *a = fake_new(test, &fx->released);
	struct dmaplane_obj *b = fake_new(test, &fx->released);

	ctx->max_bytes = 1000;
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_charge(ctx, a, 600), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_charge(ctx, b, 401), -EDQUOT);
	KUNIT_EXPECT_EQ(test, b->file_bytes, 0ULL);
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_charge(ctx, b, 400), 0);
	KUNIT_ASSERT_EQ(test, dmaplane_ctx_reserve(ctx, a), 0);
	dmaplane_ctx_publish(ctx, a);
	/* Removing the handle gives its bytes back to the file. */
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, a->handle,
						  DMAPLANE_OBJ_BUFFER), 0);
	KUNIT_EXPECT_EQ(test, atomic64_read(&ctx->bytes), 400LL);
	dmaplane_ctx_uncharge(ctx, b);
	KUNIT_EXPECT_EQ(test, atomic64_read(&ctx->bytes), 0LL);
	dmaplane_obj_put(b);
}

static void lookup_takes_reference(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	u32 h = fake_publish(test, ctx, &fx->released);
	struct dmaplane_obj *obj;

	KUNIT_EXPECT_NULL(test, dmaplane_ctx_lookup(ctx, h,
						    DMAPLANE_OBJ_BUFFER + 1));
	KUNIT_EXPECT_NULL(test, dmaplane_ctx_lookup(ctx, h + 1,
						    DMAPLANE_OBJ_BUFFER));
	obj = dmaplane_ctx_lookup(ctx, h, DMAPLANE_OBJ_BUFFER);
	KUNIT_ASSERT_NOT_NULL(test, obj);
	/* The handle goes, the object stays until the lookup's put. */
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, h, DMAPLANE_OBJ_BUFFER),
			0);
	KUNIT_EXPECT_EQ(test, fx->released, 0);
	dmaplane_obj_put(obj);
	KUNIT_EXPECT_EQ(test, fx->released, 1);
}

static bool always_busy(struct dmaplane_obj *obj)
{
	return true;
}

static const struct dmaplane_obj_ops busy_ops = {
	.release = fake_release,
	.busy = always_busy,
};

static void remove_busy_ebusy(struct kunit *test)
{
	struct handles_fixture *fx = test->priv;
	struct dmaplane_ctx *ctx = fx->ctx;
	u32 h = fake_publish(test, ctx, &fx->released);
	struct dmaplane_obj *obj = dmaplane_ctx_lookup(ctx, h,
						       DMAPLANE_OBJ_BUFFER);

	KUNIT_ASSERT_NOT_NULL(test, obj);
	obj->ops = &busy_ops;
	KUNIT_EXPECT_EQ(test, dmaplane_ctx_remove(ctx, h, DMAPLANE_OBJ_BUFFER),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, fx->released, 0);
	/* Closing the file releases it all the same. */
	obj->ops = &fake_ops;
	dmaplane_obj_put(obj);
}

static struct kunit_case handle_cases[] = {
	KUNIT_CASE(charge_per_file_edquot),
	KUNIT_CASE(lookup_takes_reference),
	KUNIT_CASE(remove_busy_ebusy),
	KUNIT_CASE(handles_start_at_one),
	KUNIT_CASE(reserved_handle_is_invisible),
	KUNIT_CASE(remove_releases_once),
	KUNIT_CASE(remove_wrong_type_enoent),
	KUNIT_CASE(remove_unknown_handles_enoent),
	KUNIT_CASE(abort_releases_and_frees_slot),
	KUNIT_CASE(handles_not_reused_at_once),
	KUNIT_CASE(handle_limit_emfile),
	KUNIT_CASE(destroy_releases_everything),
	KUNIT_CASE(files_have_separate_handles),
	{}
};

static struct kunit_suite handle_suite = {
	.name = "dmaplane_handles",
	.init = handles_init,
	.exit = handles_exit,
	.test_cases = handle_cases,
};

/* --- buffer size and charge rules --- */

static void size_zero_einval(struct kunit *test)
{
	u64 r;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(0, SZ_1G, PAGE_SIZE, &r),
			-EINVAL);
}

static void size_rounds_up_to_pages(struct kunit *test)
{
	u64 r = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(1, SZ_1G, PAGE_SIZE, &r), 0);
	KUNIT_EXPECT_EQ(test, r, (u64)PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE, SZ_1G, PAGE_SIZE,
						   &r), 0);
	KUNIT_EXPECT_EQ(test, r, (u64)PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE + 1, SZ_1G,
						   PAGE_SIZE, &r),
			0);
	KUNIT_EXPECT_EQ(test, r, 2 * (u64)PAGE_SIZE);
}

static void size_at_and_above_max(struct kunit *test)
{
	u64 r;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_1G, SZ_1G, PAGE_SIZE, &r), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_1G + 1ULL, SZ_1G,
						   PAGE_SIZE, &r),
			-EFBIG);
}

static void size_rounding_past_max_efbig(struct kunit *test)
{
	u64 r;

	/* A limit that is not page aligned: rounding up crosses it. */
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE + 1,
						   PAGE_SIZE + 100, PAGE_SIZE, &r),
			-EFBIG);
}

static void size_near_u64_max_efbig(struct kunit *test)
{
	u64 r;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(U64_MAX, U64_MAX, PAGE_SIZE,
						   &r),
			-EFBIG);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(U64_MAX - PAGE_SIZE + 2,
						   U64_MAX, PAGE_SIZE, &r), -EFBIG);
}

static void charge_up_to_limit(struct kunit *test)
{
	atomic64_t total = ATOMIC64_INIT(0);

	KUNIT_EXPECT_EQ(test, dmaplane_charge(&total, 600, 1000), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_charge(&total, 400, 1000), 0);
	KUNIT_EXPECT_EQ(test, atomic64_read(&total), 1000LL);
	KUNIT_EXPECT_EQ(test, dmaplane_charge(&total, 1, 1000), -ENOSPC);
	KUNIT_EXPECT_EQ(test, atomic64_read(&total), 1000LL);
}

static void charge_above_limit_does_not_wrap(struct kunit *test)
{
	atomic64_t total = ATOMIC64_INIT(10);

	KUNIT_EXPECT_EQ(test, dmaplane_charge(&total, 1001, 1000), -ENOSPC);
	KUNIT_EXPECT_EQ(test, dmaplane_charge(&total, U64_MAX, 1000), -ENOSPC);
	KUNIT_EXPECT_EQ(test, atomic64_read(&total), 10LL);
}

static void size_rounds_to_huge_chunks(struct kunit *test)
{
	u64 r = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(1, SZ_1G, SZ_2M, &r), 0);
	KUNIT_EXPECT_EQ(test, r, (u64)SZ_2M);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_2M + 1, SZ_1G, SZ_2M, &r),
			0);
	KUNIT_EXPECT_EQ(test, r, (u64)SZ_4M);
	/* Rounding to a chunk may cross the limit. */
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_2M + 1, SZ_2M + SZ_1M,
						   SZ_2M, &r), -EFBIG);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(U64_MAX - SZ_2M + 2,
						   U64_MAX, SZ_2M, &r), -EFBIG);
}

static void pin_charge_within_limit(struct kunit *test)
{
	atomic64_t pinned = ATOMIC64_INIT(0);

	KUNIT_EXPECT_EQ(test, dmaplane_pin_charge(&pinned, 10, 16, false), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_pin_charge(&pinned, 6, 16, false), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_pin_charge(&pinned, 1, 16, false),
			-ENOMEM);
	KUNIT_EXPECT_EQ(test, atomic64_read(&pinned), 16LL);
}

static void pin_charge_unlimited_and_wrap(struct kunit *test)
{
	atomic64_t pinned = ATOMIC64_INIT(5);

	/* CAP_IPC_LOCK: no limit, but still counted. */
	KUNIT_EXPECT_EQ(test, dmaplane_pin_charge(&pinned, 100, 0, true), 0);
	KUNIT_EXPECT_EQ(test, atomic64_read(&pinned), 105LL);
	/* A count that would wrap is refused, not wrapped. */
	KUNIT_EXPECT_EQ(test, dmaplane_pin_charge(&pinned, U64_MAX - 50,
						  U64_MAX, false), -ENOMEM);
	KUNIT_EXPECT_EQ(test, atomic64_read(&pinned), 105LL);
}

static struct kunit_case buffer_cases[] = {
	KUNIT_CASE(size_zero_einval),
	KUNIT_CASE(size_rounds_to_huge_chunks),
	KUNIT_CASE(pin_charge_within_limit),
	KUNIT_CASE(pin_charge_unlimited_and_wrap),
	KUNIT_CASE(size_rounds_up_to_pages),
	KUNIT_CASE(size_at_and_above_max),
	KUNIT_CASE(size_rounding_past_max_efbig),
	KUNIT_CASE(size_near_u64_max_efbig),
	KUNIT_CASE(charge_up_to_limit),
	KUNIT_CASE(charge_above_limit_does_not_wrap),
	{}
};

static struct kunit_suite buffer_suite = {
	.name = "dmaplane_buffer_limits",
	.test_cases = buffer_cases,
};

/* --- placement verdicts and mmap windows --- */

static void placement_complete_is_clean(struct kunit *test)
{
	u32 flags = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_placement_verdict(8, 8, true, &flags), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_placement_verdict(8, 8, false, &flags),
			0);
	KUNIT_EXPECT_EQ(test, flags, 0U);
}

static void placement_partial_strict_exdev(struct kunit *test)
{
	u32 flags = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_placement_verdict(7, 8, true, &flags),
			-EXDEV);
	KUNIT_EXPECT_EQ(test, dmaplane_placement_verdict(0, 8, true, &flags),
			-EXDEV);
	KUNIT_EXPECT_EQ(test, flags, 0U);
}

static void placement_partial_preferred_flags(struct kunit *test)
{
	u32 flags = DMAPLANE_BUF_RES_HUGE_PARTIAL;

	KUNIT_EXPECT_EQ(test, dmaplane_placement_verdict(0, 8, false, &flags),
			0);
	KUNIT_EXPECT_EQ(test, flags, DMAPLANE_BUF_RES_HUGE_PARTIAL |
			DMAPLANE_BUF_RES_NUMA_FALLBACK);
}

#define MMAP_PGSHIFT (DMAPLANE_MMAP_SHIFT - PAGE_SHIFT)

static void mmap_window_decodes_handle(struct kunit *test)
{
	unsigned long first = 99;
	u32 handle = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window(7UL << MMAP_PGSHIFT, 4,
						   &handle, &first), 0);
	KUNIT_EXPECT_EQ(test, handle, 7U);
	KUNIT_EXPECT_EQ(test, first, 0UL);
	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window((3UL << MMAP_PGSHIFT) + 5,
						   1, &handle, &first), 0);
	KUNIT_EXPECT_EQ(test, handle, 3U);
	KUNIT_EXPECT_EQ(test, first, 5UL);
}

static void mmap_window_rejects_bad(struct kunit *test)
{
	unsigned long first, last = (1UL << MMAP_PGSHIFT) - 1;
	u32 handle;

	/* Handle 0 names nothing. */
	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window(5, 1, &handle, &first),
			-EINVAL);
	/* A window running into the next handle's range. */
	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window((1UL << MMAP_PGSHIFT) + last,
						   2, &handle, &first),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window((1UL << MMAP_PGSHIFT) + last,
						   1, &handle, &first), 0);
	/* A handle past 32 bits. */
	KUNIT_EXPECT_EQ(test, dmaplane_mmap_window((1UL << 32) << MMAP_PGSHIFT,
						   1, &handle, &first),
			-EINVAL);
}

static struct kunit_case placement_cases[] = {
	KUNIT_CASE(placement_complete_is_clean),
	KUNIT_CASE(placement_partial_strict_exdev),
	KUNIT_CASE(placement_partial_preferred_flags),
	KUNIT_CASE(mmap_window_decodes_handle),
	KUNIT_CASE(mmap_window_rejects_bad),
	{}
};

static struct kunit_suite placement_suite = {
	.name = "dmaplane_placement",
	.test_cases = placement_cases,
};

/* --- dma-buf export: attachment bookkeeping, syncs, vmap, revoke --- */

struct export_fixture {
	struct dmaplane_buffer *buf;
	struct dma_buf *dmabuf;
	struct sg_table *notified_sgt;	/* a dynamic importer's mapping */
	int move_notify_calls;
};

static int export_init(struct kunit *test)
{
	struct dmaplane_buffer_create req = {
		.size = SZ_64K, .numa_node = DMAPLANE_NUMA_ANY,
	};
	struct export_fixture *fx = kunit_kzalloc(test, sizeof(*fx),
						  GFP_KERNEL);
	int ret;

	if (!fx)
		return -ENOMEM;
	ret = dmaplane_buffer_alloc(&req, NULL, &fx->buf);
	if (ret)
		return ret;
	fx->dmabuf = dmaplane_export(fx->buf, false);
	if (IS_ERR(fx->dmabuf)) {
		dmaplane_buffer_put(fx->buf);
		return PTR_ERR(fx->dmabuf);
	}
	test->priv = fx;
	return 0;
}

static void export_exit(struct kunit *test)
{
	struct export_fixture *fx = test->priv;

	dma_buf_put(fx->dmabuf);
	dmaplane_buffer_put(fx->buf);
}

static struct device *kunit_dma_dev(void)
{
	return dmaplane_dma_dev(NUMA_NO_NODE);
}

static void export_holds_buffer(struct kunit *test)
{
	struct export_fixture *fx = test->priv;

	KUNIT_EXPECT_EQ(test, atomic_read(&fx->buf->exports), 1);
	/* The fixture's reference and the export's. */
	KUNIT_EXPECT_EQ(test, kref_read(&fx->buf->obj.ref), 2U);
	KUNIT_EXPECT_EQ(test, fx->dmabuf->size, (size_t)SZ_64K);
}

/* A static importer: pinned and mapped at attach, never revocable. */
static void static_attach_counts_and_blocks_revoke(struct kunit *test)
{
	struct export_fixture *fx = test->priv;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
	u32 revoked = 9;

	attach = dma_buf_attach(fx->dmabuf, kunit_dma_dev());
	KUNIT_ASSERT_FALSE(test, IS_ERR(attach));
	KUNIT_EXPECT_EQ(test, atomic_read(&fx->buf->attachments), 1);
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(sgt));
	KUNIT_EXPECT_GE(test, sgt->nents, 1U);
	KUNIT_EXPECT_EQ(test, dmaplane_revoke(fx->buf, &revoked), -EBUSY);
	KUNIT_EXPECT_EQ(test, revoked, 0U);
	/* CPU access syncs the attachment's mapping and the buffer's own. */
	KUNIT_EXPECT_EQ(test, dma_buf_begin_cpu_access(fx->dmabuf,
						       DMA_BIDIRECTIONAL), 0);
	KUNIT_EXPECT_EQ(test, dma_buf_end_cpu_access(fx->dmabuf,
						     DMA_BIDIRECTIONAL), 0);
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
	dma_buf_detach(fx->dmabuf, attach);
	KUNIT_EXPECT_EQ(test, atomic_read(&fx->buf->attachments), 0);
}

static void kunit_move_notify(struct dma_buf_attachment *attach)
{
	struct export_fixture *fx = attach->importer_priv;

	fx->move_notify_calls++;
	if (fx->notified_sgt)
		dma_buf_unmap_attachment(attach, fx->notified_sgt,
					 DMA_BIDIRECTIONAL);
	fx->notified_sgt = NULL;
}

static const struct dma_buf_attach_ops kunit_importer_ops = {
	.move_notify = kunit_move_notify,
};

static struct sg_table *map_locked(struct dma_buf_attachment *attach)
{
	struct sg_table *sgt;

	dma_resv_lock(attach->dmabuf->resv, NULL);
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
	dma_resv_unlock(attach->dmabuf->resv);
	return sgt;
}

/* A dynamic importer is told once, then nothing maps or attaches again. */
static void revoke_notifies_dynamic_importer(struct kunit *test)
{
	struct export_fixture *fx = test->priv;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
	u32 revoked = 0;

	attach = dma_buf_dynamic_attach(fx->dmabuf, kunit_dma_dev(),
					&kunit_importer_ops, fx);
	KUNIT_ASSERT_FALSE(test, IS_ERR(attach));
	sgt = map_locked(attach);
	KUNIT_ASSERT_FALSE(test, IS_ERR(sgt));
	fx->notified_sgt = sgt;
	/* One live mapping per attachment. */
	KUNIT_EXPECT_EQ(test, PTR_ERR(map_locked(attach)), -EBUSY);

	KUNIT_EXPECT_EQ(test, dmaplane_revoke(fx->buf, &revoked), 0);
	KUNIT_EXPECT_EQ(test, revoked, 1U);
	KUNIT_EXPECT_EQ(test, fx->move_notify_calls, 1);
	KUNIT_EXPECT_NULL(test, fx->notified_sgt);
	KUNIT_EXPECT_EQ(test, PTR_ERR(map_locked(attach)), -ENODEV);
	KUNIT_EXPECT_EQ(test, PTR_ERR(dma_buf_attach(fx->dmabuf,
						     kunit_dma_dev())),
			-ENODEV);
	/* Already revoked: nothing more to tell. */
	KUNIT_EXPECT_EQ(test, dmaplane_revoke(fx->buf, &revoked), 0);
	KUNIT_EXPECT_EQ(test, revoked, 0U);
	KUNIT_EXPECT_EQ(test, fx->move_notify_calls, 1);
	dma_buf_detach(fx->dmabuf, attach);
	KUNIT_EXPECT_EQ(test, atomic_read(&fx->buf->attachments), 0);
}

static void vmap_sees_the_pages(struct kunit *test)
{
	struct export_fixture *fx = test->priv;
	struct iosys_map map;
	u8 *page;

	KUNIT_ASSERT_EQ(test, dma_buf_vmap(fx->dmabuf, &map), 0);
	KUNIT_ASSERT_FALSE(test, map.is_iomem);
	memset(map.vaddr + PAGE_SIZE, 0x5a, 16);
	page = kmap_local_page(fx->buf->pages[1]);
	KUNIT_EXPECT_EQ(test, page[0], 0x5a);
	KUNIT_EXPECT_EQ(test, page[15], 0x5a);
	kunmap_local(page);
	dma_buf_vunmap(fx->dmabuf, &map);
}

static void narrow_dev_release(struct device *dev)
{
	kfree(dev);
}

/*
 * An importer whose segments are shorter than a HUGE buffer's 2 MiB
 * chunks gets none longer than it takes (DMA-API debug checks it too).
 * The device is never added: dma-direct and DMA-API debug need only
 * its name, masks and parameters.
 */
static void importer_segment_limit_kept(struct kunit *test)
{
	struct dmaplane_buffer_create req = {
		.size = SZ_4M, .flags = DMAPLANE_BUF_HUGE,
		.numa_node = DMAPLANE_NUMA_ANY,
	};
	static struct device_dma_parameters parms;
	struct dma_buf_attachment *attach;
	struct dmaplane_buffer *buf;
	struct scatterlist *sg;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	struct device *dev;
	u64 cpu_len = 0, dma_len = 0;
	int i;

	KUNIT_ASSERT_EQ(test, dmaplane_buffer_alloc(&req, NULL, &buf), 0);
	if (!buf->huge_chunks) {
		dmaplane_buffer_put(buf);
		kunit_skip(test, "no free 2 MiB block for a HUGE buffer");
	}
	dmabuf = dmaplane_export(buf, false);
	KUNIT_ASSERT_FALSE(test, IS_ERR(dmabuf));
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dev);
	device_initialize(dev);
	dev->release = narrow_dev_release;
	KUNIT_EXPECT_EQ(test, dev_set_name(dev, "dmaplane_kunit_64k"), 0);
	dev->dma_parms = &parms;
	dma_set_max_seg_size(dev, SZ_64K);
	dev->dma_mask = &dev->coherent_dma_mask;
	KUNIT_EXPECT_EQ(test, dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64)),
			0);

	attach = dma_buf_attach(dmabuf, dev);
	KUNIT_ASSERT_FALSE(test, IS_ERR(attach));
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(sgt));
	for_each_sgtable_sg(sgt, sg, i) {
		KUNIT_EXPECT_LE(test, sg->length, (unsigned int)SZ_64K);
		cpu_len += sg->length;
	}
	for_each_sgtable_dma_sg(sgt, sg, i) {
		KUNIT_EXPECT_LE(test, sg_dma_len(sg), (unsigned int)SZ_64K);
		dma_len += sg_dma_len(sg);
	}
	KUNIT_EXPECT_EQ(test, cpu_len, (u64)SZ_4M);
	KUNIT_EXPECT_EQ(test, dma_len, (u64)SZ_4M);
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
	dma_buf_detach(dmabuf, attach);
	put_device(dev);
	dma_buf_put(dmabuf);
	dmaplane_buffer_put(buf);
}

static struct kunit_case export_cases[] = {
	KUNIT_CASE(export_holds_buffer),
	KUNIT_CASE(static_attach_counts_and_blocks_revoke),
	KUNIT_CASE(revoke_notifies_dynamic_importer),
	KUNIT_CASE(vmap_sees_the_pages),
	KUNIT_CASE(importer_segment_limit_kept),
	{}
};

static struct kunit_suite export_suite = {
	.name = "dmaplane_dmabuf_export",
	.init = export_init,
	.exit = export_exit,
	.test_cases = export_cases,
};

/* --- RDMA endpoints: parameters and addresses --- */

static void ep_params_defaults(struct kunit *test)
{
	struct dmaplane_ep_create p = {};

	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), 0);
	KUNIT_EXPECT_EQ(test, p.send_depth, (u32)DMAPLANE_EP_DEPTH_DEFAULT);
	KUNIT_EXPECT_EQ(test, p.recv_depth, (u32)DMAPLANE_EP_DEPTH_DEFAULT);
	KUNIT_EXPECT_EQ(test, p.timeout_ms, (u32)DMAPLANE_EP_TIMEOUT_DEFAULT_MS);
	KUNIT_EXPECT_EQ(test, p.retry_count, DMAPLANE_EP_RETRY_DEFAULT);
	KUNIT_EXPECT_EQ(test, p.rnr_retry_count, 7);
	KUNIT_EXPECT_EQ(test, p.ack_timeout, 0);
}

static void ep_params_bounds(struct kunit *test)
{
	struct dmaplane_ep_create p = {
		.send_depth = DMAPLANE_EP_DEPTH_MAX,
		.recv_depth = 1,
		.timeout_ms = DMAPLANE_EP_TIMEOUT_MAX_MS,
		.retry_count = 3,
		.rnr_retry_count = 6,
	};

	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), 0);
	KUNIT_EXPECT_EQ(test, p.recv_depth, 1U);
	KUNIT_EXPECT_EQ(test, p.retry_count, 3);
	p.send_depth = DMAPLANE_EP_DEPTH_MAX + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), -EINVAL);
	p.send_depth = 1;
	p.rnr_retry_count = 8;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), -EINVAL);
	p.rnr_retry_count = 1;
	p.ack_timeout = DMAPLANE_EP_ACK_TIMEOUT_MAX;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), 0);
	p.ack_timeout = DMAPLANE_EP_ACK_TIMEOUT_MAX + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), -EINVAL);
	p.ack_timeout = 0;
	p.flags = (u32)~DMAPLANE_EP_CREATE_VALID_FLAGS;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), -EINVAL);
	/* Flow control is checked there too (flow_kunit.c has the rules). */
	p.flags = DMAPLANE_EP_NO_CREDITS;
	p.credit_window = p.recv_depth + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_ep_check_params(&p), -EINVAL);
}

static void addr_round_trips(struct kunit *test)
{
	struct dmaplane_addr v4 = { .family = AF_INET, .port = 18515,
				    .addr = { 10, 77, 0, 1 } };
	struct dmaplane_addr v6 = { .family = AF_INET6, .port = 1,
				    .scope_id = 2, .addr = { 0xfe, 0x80 } };
	struct sockaddr_storage ss;
	struct dmaplane_addr back;

	KUNIT_ASSERT_EQ(test, dmaplane_addr_to_sockaddr(&v4, &ss), 0);
	KUNIT_EXPECT_EQ(test, ((struct sockaddr_in *)&ss)->sin_port,
			htons(18515));
	dmaplane_sockaddr_to_addr((struct sockaddr *)&ss, &back);
	KUNIT_EXPECT_EQ(test, memcmp(&back, &v4, sizeof(back)), 0);
	KUNIT_ASSERT_EQ(test, dmaplane_addr_to_sockaddr(&v6, &ss), 0);
	dmaplane_sockaddr_to_addr((struct sockaddr *)&ss, &back);
	KUNIT_EXPECT_EQ(test, memcmp(&back, &v6, sizeof(back)), 0);
}

static void addr_bad_family(struct kunit *test)
{
	struct dmaplane_addr a = { .family = AF_UNIX };
	struct sockaddr_storage ss = { .ss_family = AF_UNIX };
	struct dmaplane_addr back;

	KUNIT_EXPECT_EQ(test, dmaplane_addr_to_sockaddr(&a, &ss), -EINVAL);
	/* An address of no known family comes back all zero. */
	memset(&back, 0xff, sizeof(back));
	dmaplane_sockaddr_to_addr((struct sockaddr *)&ss, &back);
	KUNIT_EXPECT_EQ(test, back.family, 0);
	KUNIT_EXPECT_EQ(test, back.port, 0);
}

static struct kunit_case ep_cases[] = {
	KUNIT_CASE(ep_params_defaults),
	KUNIT_CASE(ep_params_bounds),
	KUNIT_CASE(addr_round_trips),
	KUNIT_CASE(addr_bad_family),
	{}
};

static struct kunit_suite ep_suite = {
	.name = "dmaplane_rdma_endpoint",
	.test_cases = ep_cases,
};

/* Fill @sgl with @n DMA entries of (address, length) pairs in @v. */
static void sg_dma_fill(struct scatterlist *sgl, unsigned int n, const u64 *v)
{
	unsigned int i;

	sg_init_table(sgl, n);
	for (i = 0; i < n; i++) {
		sg_dma_address(&sgl[i]) = v[2 * i];
		sg_dma_len(&sgl[i]) = v[2 * i + 1];
	}
}

static void mr_page_size_largest_that_fits(struct kunit *test)
{
	struct scatterlist sgl[3];
	u32 npages = 0;
	/* Two 2 MiB chunks and a 4 KiB tail: 2 MiB pages, 3 of them. */
	const u64 huge[] = { SZ_4M, SZ_2M, SZ_8M, SZ_2M, SZ_16M, SZ_4K };
	/* A 4 KiB-aligned start forces 4 KiB pages. */
	const u64 small[] = { SZ_4M + SZ_4K, SZ_64K, SZ_8M, SZ_64K };
	/* A middle entry that is not a whole page: nothing fits. */
	const u64 ragged[] = { SZ_4M, 100, SZ_8M, SZ_4K };

	sg_dma_fill(sgl, 3, huge);
	KUNIT_EXPECT_EQ(test, dmaplane_mr_page_size(sgl, 3, ~0ULL << 12, 512,
						    &npages), 21);
	KUNIT_EXPECT_EQ(test, npages, 3);
	/* A device without 2 MiB pages gets 1 MiB ones. */
	KUNIT_EXPECT_EQ(test, dmaplane_mr_page_size(sgl, 3,
						    (~0ULL << 12) & ~(u64)SZ_2M,
						    512, &npages), 20);
	KUNIT_EXPECT_EQ(test, npages, 5);
	sg_dma_fill(sgl, 2, small);
	KUNIT_EXPECT_EQ(test, dmaplane_mr_page_size(sgl, 2, ~0ULL << 12, 512,
						    &npages), 12);
	KUNIT_EXPECT_EQ(test, npages, 32);
	/* More pages than the device registers at once. */
	KUNIT_EXPECT_EQ(test, dmaplane_mr_page_size(sgl, 2, ~0ULL << 12, 31,
						    &npages), -EMSGSIZE);
	sg_dma_fill(sgl, 2, ragged);
	KUNIT_EXPECT_EQ(test, dmaplane_mr_page_size(sgl, 2, ~0ULL << 12, 512,
						    &npages), -EINVAL);
}

/* An import's window: the exporter's DMA segments cut to [offset, end). */
static void mr_copy_window_cuts_segments(struct kunit *test)
{
	const u64 segs[] = { 0x100000, SZ_64K, 0x400000, SZ_64K, 0x800000, SZ_64K };
	struct dmaplane_mr mr = { .offset = SZ_32K, .length = SZ_64K + SZ_4K };
	struct sg_table from;
	struct scatterlist *sg;

	KUNIT_ASSERT_EQ(test, sg_alloc_table(&from, 3, GFP_KERNEL), 0);
	sg_dma_fill(from.sgl, 3, segs);
	KUNIT_ASSERT_EQ(test, dmaplane_mr_copy_window(&mr, &from), 0);
	KUNIT_EXPECT_EQ(test, mr.sgt.nents, 2);
	sg = mr.sgt.sgl;
	KUNIT_EXPECT_EQ(test, sg_dma_address(sg), 0x100000 + SZ_32K);
	KUNIT_EXPECT_EQ(test, sg_dma_len(sg), SZ_32K);
	sg = sg_next(sg);
	KUNIT_EXPECT_EQ(test, sg_dma_address(sg), 0x400000);
	KUNIT_EXPECT_EQ(test, sg_dma_len(sg), SZ_32K + SZ_4K);
	sg_free_table(&mr.sgt);
	/* Past every segment, or past the mapping's end: not registrable. */
	mr.offset = 3 * SZ_64K;
	KUNIT_EXPECT_EQ(test, dmaplane_mr_copy_window(&mr, &from), -EINVAL);
	mr.offset = 3 * SZ_64K - SZ_4K;
	KUNIT_EXPECT_EQ(test, dmaplane_mr_copy_window(&mr, &from), -EINVAL);
	sg_free_table(&from);
}

static void op_check_bounds_and_access(struct kunit *test)
{
	const u64 len = SZ_1M;
	const u32 rw = DMAPLANE_MR_LOCAL_WRITE;
	struct dmaplane_op op = {
		.opcode = DMAPLANE_OP_WRITE, .length = SZ_4K, .rkey = 1,
	};

	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), 0);
	op.offset = len - SZ_4K;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), 0);
	op.offset = len - SZ_4K + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), -ERANGE);
	op.offset = U64_MAX;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), -ERANGE);
	op.offset = 0;
	op.remote_offset = U64_MAX - SZ_4K;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), 0);
	op.remote_offset++;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), -ERANGE);
	op.remote_offset = 0;
	op.length = (u64)DMAPLANE_OP_MAX_LENGTH + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, U64_MAX, 0), -EMSGSIZE);
	op.length = SZ_4K;
	op.opcode = DMAPLANE_OP_READ;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), -EACCES);
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, rw), 0);
	op.opcode = DMAPLANE_OP_RECV;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, rw), -EINVAL);
	op.rkey = 0;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, rw), 0);
	op.opcode = DMAPLANE_OP_READ + 1;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, rw), -EINVAL);
	/* Messages without data name nothing local. */
	op = (struct dmaplane_op){ .opcode = DMAPLANE_OP_WRITE_IMM, .imm = 7 };
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, 0, 0), 0);
	op.offset = 1;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, 0, 0), -EINVAL);
	op = (struct dmaplane_op){ .opcode = DMAPLANE_OP_WRITE };
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, len, 0), -EINVAL);
	op = (struct dmaplane_op){ .opcode = DMAPLANE_OP_NOOP, .cookie = 9 };
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, 0, 0), 0);
	op.imm = 1;
	KUNIT_EXPECT_EQ(test, dmaplane_op_check(&op, 0, 0), -EINVAL);
}

static void wc_status_errno(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_SUCCESS), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_WR_FLUSH_ERR), -ECANCELED);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_REM_ACCESS_ERR), -EACCES);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_REM_OP_ERR), -EREMOTEIO);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_RETRY_EXC_ERR),
			-ETIMEDOUT);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_LOC_LEN_ERR), -EMSGSIZE);
	KUNIT_EXPECT_EQ(test, dmaplane_wc_errno(IB_WC_FATAL_ERR), -EIO);
}

static struct kunit_case verbs_cases[] = {
	KUNIT_CASE(mr_page_size_largest_that_fits),
	KUNIT_CASE(mr_copy_window_cuts_segments),
	KUNIT_CASE(op_check_bounds_and_access),
	KUNIT_CASE(wc_status_errno),
	{}
};

static struct kunit_suite verbs_suite = {
	.name = "dmaplane_verbs",
	.test_cases = verbs_cases,
};

kunit_test_suites(&ioctl_suite, &handle_suite, &buffer_suite,
		  &placement_suite, &export_suite, &ep_suite, &verbs_suite);

MODULE_DESCRIPTION("KUnit suites for dmaplane internals");
MODULE_LICENSE("GPL");
