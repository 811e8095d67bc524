// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for dmaplane.ko internals: the ioctl table lookup, the
 * per-file handle table and the buffer size/charge rules. The functions
 * under test are exported to this module only (EXPORT_SYMBOL_IF_KUNIT).
 */
#include <kunit/test.h>
#include <linux/ioctl.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "dmaplane.h"

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

/* --- ioctl table --- */

static const unsigned int known_cmds[] = {
	DMAPLANE_IOC_GET_INFO,
	DMAPLANE_IOC_ECHO,
	DMAPLANE_IOC_BUFFER_CREATE,
	DMAPLANE_IOC_BUFFER_DESTROY,
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

static struct kunit_case handle_cases[] = {
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

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(0, SZ_1G, &r), -EINVAL);
}

static void size_rounds_up_to_pages(struct kunit *test)
{
	u64 r = 0;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(1, SZ_1G, &r), 0);
	KUNIT_EXPECT_EQ(test, r, (u64)PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE, SZ_1G, &r), 0);
	KUNIT_EXPECT_EQ(test, r, (u64)PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE + 1, SZ_1G, &r),
			0);
	KUNIT_EXPECT_EQ(test, r, 2 * (u64)PAGE_SIZE);
}

static void size_at_and_above_max(struct kunit *test)
{
	u64 r;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_1G, SZ_1G, &r), 0);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(SZ_1G + 1ULL, SZ_1G, &r),
			-EFBIG);
}

static void size_rounding_past_max_efbig(struct kunit *test)
{
	u64 r;

	/* A limit that is not page aligned: rounding up crosses it. */
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(PAGE_SIZE + 1,
						   PAGE_SIZE + 100, &r),
			-EFBIG);
}

static void size_near_u64_max_efbig(struct kunit *test)
{
	u64 r;

	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(U64_MAX, U64_MAX, &r),
			-EFBIG);
	KUNIT_EXPECT_EQ(test, dmaplane_buffer_size(U64_MAX - PAGE_SIZE + 2,
						   U64_MAX, &r), -EFBIG);
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

static struct kunit_case buffer_cases[] = {
	KUNIT_CASE(size_zero_einval),
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

kunit_test_suites(&ioctl_suite, &handle_suite, &buffer_suite);

MODULE_DESCRIPTION("KUnit suites for dmaplane internals");
MODULE_LICENSE("GPL");
