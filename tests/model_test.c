// SPDX-License-Identifier: GPL-2.0
/*
 * model: the demo transformer (src/apps/model.c) and the packed KV layout
 * (src/apps/kv_layout.c). Needs no kernel module. Fixtures come from
 * fixtures/models (repo_path()).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "testutil.h"
#include "kv_layout.h"
#include "model.h"

#define PAGE		4096u

static struct model *tiny;
static struct model_config tiny_conf;

static void fixture_path(char *buf, size_t len, const char *name)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "fixtures/models/%s", name);
	repo_path(buf, len, rel);
}

/* The tiny fixture model, created once. */
static struct model *get_tiny(void)
{
	char path[PATH_MAX];
	int ret;

	if (tiny)
		return tiny;
	fixture_path(path, sizeof(path), "tiny.conf");
	ret = model_config_load(path, &tiny_conf);
	KTAP_EXPECT(ret == 0, "loading %s: %s", path, ktap_errname(ret));
	if (ret)
		return NULL;
	tiny = model_create(&tiny_conf);
	KTAP_EXPECT(tiny != NULL, "model_create: %s", strerror(errno));
	return tiny;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A KV region of @bytes at page offset @pages + @skew in a fresh mapping, all 0xff (NaN). */
struct region {
	void *map;
	size_t map_len;
	void *base;
};

static void *region_get(struct region *r, uint64_t bytes, unsigned pages,
			unsigned skew)
{
	r->map_len = (size_t)bytes + (pages + 1) * PAGE + skew;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	KTAP_EXPECT(r->map != MAP_FAILED, "mmap: %s", strerror(errno));
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return NULL;
	}
	memset(r->map, 0xff, r->map_len);
	r->base = (char *)r->map + pages * PAGE + skew;
	return r->base;
}

static void region_put(struct region *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}

/* Bytes of the first @tokens rows of a tensor (packed layouts). */
static size_t rows_bytes(const struct kv_tensor *t, uint32_t tokens)
{
	return (size_t)t->token_stride * tokens;
}

static void copy_used(void *dst, const void *src, const struct kv_layout *l,
		      uint32_t tokens)
{
	for (uint32_t i = 0; i < l->n_layers; i++) {
		memcpy((char *)dst + l->k[i].offset,
		       (const char *)src + l->k[i].offset,
		       rows_bytes(&l->k[i], tokens));
		memcpy((char *)dst + l->v[i].offset,
		       (const char *)src + l->v[i].offset,
		       rows_bytes(&l->v[i], tokens));
	}
}

static bool used_equal(const void *a, const void *b, const struct kv_layout *l,
		       uint32_t tokens)
{
	for (uint32_t i = 0; i < l->n_layers; i++) {
		if (memcmp((const char *)a + l->k[i].offset,
			   (const char *)b + l->k[i].offset,
			   rows_bytes(&l->k[i], tokens)) ||
		    memcmp((const char *)a + l->v[i].offset,
			   (const char *)b + l->v[i].offset,
			   rows_bytes(&l->v[i], tokens)))
			return false;
	}
	return true;
}

static uint32_t make_prompt(uint32_t *p, uint32_t n, uint32_t vocab)
{
	static const char text[] =
		"The quick brown fox jumps over the lazy dog; "
		"pack my box with five dozen liquor jugs.";

	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)text[i % (sizeof(text) - 1)] % vocab;
	return n;
}

/* ------------------------------------------------------------ config */

static void config_loads_fixtures(void)
{
	struct model_config c;
	char path[PATH_MAX];
	uint64_t wb, tb;
	struct model *m;

	fixture_path(path, sizeof(path), "tiny.conf");
	KTAP_EXPECT_RET(model_config_load(path, &c), 0);
	KTAP_EXPECT(!strcmp(c.name, "tiny"), "name '%s'", c.name);
	KTAP_EXPECT(c.n_layers == 2 && c.n_heads == 4 && c.head_dim == 16 &&
		    c.d_ff == 128 && c.vocab == 256 && c.max_seq == 512 &&
		    c.seed == 1, "tiny: %u %u %u %u %u %u %llu", c.n_layers,
		    c.n_heads, c.head_dim, c.d_ff, c.vocab, c.max_seq,
		    (unsigned long long)c.seed);
	KTAP_EXPECT_RET(model_memory_bytes(&c, &wb, &tb), 0);
	KTAP_EXPECT(wb == 115008 * 4, "tiny weights %llu bytes",
		    (unsigned long long)wb);
	printf("# tiny: %llu weight bytes, %llu in all\n",
	       (unsigned long long)wb, (unsigned long long)tb);

	fixture_path(path, sizeof(path), "llama7b-kv.conf");
	KTAP_EXPECT_RET(model_config_load(path, &c), 0);
	KTAP_EXPECT(c.n_layers == 32 && c.n_heads == 32 && c.head_dim == 128 &&
		    c.d_ff == 11008 && c.vocab == 32000 && c.max_seq == 4096 &&
		    c.seed == 7, "llama7b-kv dims");
	KTAP_EXPECT_RET(model_memory_bytes(&c, &wb, &tb), 0);
	KTAP_EXPECT(wb > MODEL_MAX_BYTES, "llama7b-kv weights %llu",
		    (unsigned long long)wb);
	printf("# llama7b-kv: %llu weight bytes (never generated)\n",
	       (unsigned long long)wb);
	errno = 0;
	m = model_create(&c);
	KTAP_EXPECT(m == NULL && errno == EFBIG, "model_create: %p, %s",
		    (void *)m, strerror(errno));
	model_free(m);
}

/*
 * Load @text from a temp file; the loader's stderr is captured into @err.
 */
static int load_text(const char *text, struct model_config *c, char *err,
		     size_t err_len)
{
	char path[] = "/tmp/model_test_conf.XXXXXX";
	char epath[] = "/tmp/model_test_err.XXXXXX";
	int fd = mkstemp(path), efd = mkstemp(epath), saved, ret;
	ssize_t n;

	KTAP_EXPECT(fd >= 0 && efd >= 0, "mkstemp: %s", strerror(errno));
	if (fd < 0 || efd < 0)
		return -EBADF;
	KTAP_EXPECT(write(fd, text, strlen(text)) == (ssize_t)strlen(text),
		    "write");
	close(fd);
	fflush(stderr);
	saved = dup(2);
	dup2(efd, 2);
	ret = model_config_load(path, c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(efd, err, err_len - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(efd);
	unlink(epath);
	unlink(path);
	return ret;
}

static const char *const good_lines[] = {
	"name = t1\n", "layers = 2\n", "heads = 4\n", "head_dim = 16\n",
	"d_ff = 128\n", "vocab = 256\n", "max_seq = 512\n", "seed = 1\n",
};
#define N_GOOD	(sizeof(good_lines) / sizeof(good_lines[0]))

/* The good config with line @replace (or none: -1) replaced by @with. */
static void build_text(char *buf, size_t len, int replace, const char *with)
{
	buf[0] = '\0';
	for (size_t i = 0; i < N_GOOD; i++)
		strncat(buf, (int)i == replace ? with : good_lines[i],
			len - strlen(buf) - 1);
}

static void config_accepts_variants(void)
{
	struct model_config c;
	char err[1024];

	KTAP_EXPECT_RET(load_text("# comment\n\n  name=x.y-z_1  # trailing\n"
				  "layers\t=\t1\r\nheads=1\nhead_dim=2\n"
				  "d_ff=1\nvocab=2\nmax_seq=1\n"
				  "seed=18446744073709551615\n", &c, err,
				  sizeof(err)), 0);
	KTAP_EXPECT(!strcmp(c.name, "x.y-z_1") && c.n_layers == 1 &&
		    c.n_heads == 1 && c.head_dim == 2 && c.d_ff == 1 &&
		    c.vocab == 2 && c.max_seq == 1 && c.seed == UINT64_MAX,
		    "parsed '%s' %u %llu", c.name, c.n_layers,
		    (unsigned long long)c.seed);
	KTAP_EXPECT(!err[0], "unexpected message: %s", err);
	KTAP_EXPECT_RET(load_text("layers = 128\nname = big\nheads = 1\n"
				  "head_dim = 2\nd_ff = 1\nvocab = 1048576\n"
				  "max_seq = 1048576\nseed = 0\n", &c, err,
				  sizeof(err)), 0);
}

static void config_rejects_bad(void)
{
	static const struct {
		int line;		/* good_lines index replaced */
		const char *with;
		const char *says;	/* in the message */
		bool drop_next;		/* @with sets the next line's key too */
	} bad[] = {
		{ 1, "layers = 0\n", "layers", false },
		{ 1, "layers = 129\n", "layers", false },
		{ 1, "layers = -1\n", "layers", false },
		{ 1, "layers = 2x\n", "layers", false },
		{ 1, "layers = 0x10\n", "layers", false },
		{ 1, "layers =\n", "layers", false },
		{ 1, "layers = 4294967296\n", "layers", false },
		{ 2, "heads = 0\n", "heads", false },
		{ 3, "head_dim = 0\n", "head_dim", false },
		{ 3, "head_dim = 15\n", "head_dim", false },
		{ 4, "d_ff = 0\n", "d_ff", false },
		{ 5, "vocab = 1\n", "vocab", false },
		{ 5, "vocab = 1048577\n", "vocab", false },
		{ 6, "max_seq = 0\n", "max_seq", false },
		{ 6, "max_seq = 1048577\n", "max_seq", false },
		{ 7, "seed = 18446744073709551616\n", "seed", false },
		{ 7, "seed = -1\n", "seed", false },
		{ 0, "name = a b\n", "name", false },
		{ 0, "name =\n", "name", false },
		{ 0, "name = 0123456789012345678901234567890123456789"
		     "012345678901234567890123\n", "name", false },
		{ 0, "colour = blue\n", "colour", false },
		{ 0, "just some words\n", "key = value", false },
		{ 2, "heads = 4\nheads = 4\n", "already set", false },
		/* d_model overflows 32 bits */
		{ 2, "heads = 65536\nhead_dim = 65536\n", "overflow", true },
		/* d_model fits, 4 * d_model^2 does not */
		{ 2, "heads = 65535\nhead_dim = 65534\n", "overflow", true },
	};
	struct model_config c;
	char text[1024], err[1024], path[] = "/tmp/model_test_none.XXXXXX";
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int line = bad[i].line;

		text[0] = '\0';
		for (int j = 0; j < (int)N_GOOD; j++)
			if (j == line)
				strcat(text, bad[i].with);
			else if (j != line + 1 || !bad[i].drop_next)
				strcat(text, good_lines[j]);
		memset(&c, 0x5a, sizeof(c));
		KTAP_EXPECT_RET(load_text(text, &c, err, sizeof(err)), -EINVAL);
		KTAP_EXPECT(strstr(err, bad[i].says) != NULL,
			    "'%.*s': message '%s' does not name '%s'",
			    (int)strcspn(bad[i].with, "\n"), bad[i].with,
			    err, bad[i].says);
		KTAP_EXPECT(c.n_layers == 0x5a5a5a5a, "config written on error");
	}

	/* Each key missing. */
	for (size_t i = 0; i < N_GOOD; i++) {
		char key[32];

		build_text(text, sizeof(text), (int)i, "# gone\n");
		snprintf(key, sizeof(key), "'%.*s'",
			 (int)strcspn(good_lines[i], " "), good_lines[i]);
		KTAP_EXPECT_RET(load_text(text, &c, err, sizeof(err)), -EINVAL);
		KTAP_EXPECT(strstr(err, "missing") && strstr(err, key),
			    "missing %s: message '%s'", key, err);
	}

	/* The line number is named. */
	build_text(text, sizeof(text), 5, "vocab = 1\n");
	KTAP_EXPECT_RET(load_text(text, &c, err, sizeof(err)), -EINVAL);
	KTAP_EXPECT(strstr(err, ":6:") != NULL, "no line 6 in '%s'", err);

	/* A file that does not exist. */
	fd = mkstemp(path);
	KTAP_EXPECT(fd >= 0, "mkstemp");
	close(fd);
	unlink(path);
	KTAP_EXPECT_RET(model_config_load(path, &c), -ENOENT);

	/* model_config_check on hand-built configs. */
	build_text(text, sizeof(text), -1, "");
	KTAP_EXPECT_RET(load_text(text, &c, err, sizeof(err)), 0);
	KTAP_EXPECT_RET(model_config_check(&c), 0);
	c.head_dim = 7;
	KTAP_EXPECT_RET(model_config_check(&c), -EINVAL);
	errno = 0;
	KTAP_EXPECT(model_create(&c) == NULL && errno == EINVAL, "%s",
		    strerror(errno));
}

/* -------------------------------------------------------- kv_layout */

static void kv_layout_packed(void)
{
	struct kv_layout l;
	uint64_t tensor;

	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 4, 16, 512, KV_F32), 0);
	tensor = 512ull * 4 * 16 * 4;
	KTAP_EXPECT(l.n_layers == 2 && l.n_heads == 4 && l.head_dim == 16 &&
		    l.max_tokens == 512 && l.dtype == KV_F32, "dims");
	KTAP_EXPECT(l.bytes == 4 * tensor, "bytes %llu",
		    (unsigned long long)l.bytes);
	for (uint32_t i = 0; i < 2; i++) {
		KTAP_EXPECT(l.k[i].offset == 2 * i * tensor &&
			    l.v[i].offset == (2 * i + 1) * tensor,
			    "layer %u offsets %llu %llu", i,
			    (unsigned long long)l.k[i].offset,
			    (unsigned long long)l.v[i].offset);
		KTAP_EXPECT(l.k[i].head_stride == 64 &&
			    l.k[i].token_stride == 256 &&
			    l.v[i].head_stride == 64 &&
			    l.v[i].token_stride == 256, "strides");
	}
	KTAP_EXPECT(l.k[2].offset == 0 && l.k[2].token_stride == 0,
		    "unused layers not zero");
	{
		static char region[4 * 512 * 4 * 16 * 4];

		KTAP_EXPECT((char *)kv_at(region, &l.v[1], 3, 2) - region ==
			    (long)(3 * tensor + 3 * 256 + 2 * 64), "kv_at");
	}

	/* fp16, a tensor size that is not a multiple of 64: aligned offsets. */
	KTAP_EXPECT_RET(kv_layout_init(&l, 3, 3, 2, 3, KV_F16), 0);
	KTAP_EXPECT(l.k[0].head_stride == 4 && l.k[0].token_stride == 12,
		    "fp16 strides");
	for (uint32_t i = 0; i < 3; i++)
		KTAP_EXPECT(l.k[i].offset == 128 * i &&
			    l.v[i].offset == 128 * i + 64, "fp16 offsets");
	KTAP_EXPECT(l.bytes == 5 * 64 + 36, "fp16 bytes %llu",
		    (unsigned long long)l.bytes);

	/* The 7B shape: 512 KiB of fp16 KV per token, 64 MiB for 128. */
	KTAP_EXPECT_RET(kv_layout_init(&l, 32, 32, 128, 128, KV_F16), 0);
	KTAP_EXPECT(l.bytes == 64ull << 20, "7b bytes %llu",
		    (unsigned long long)l.bytes);
	KTAP_EXPECT_RET(kv_layout_init(&l, KV_MAX_LAYERS, 1, 1, 1, KV_F32), 0);
}

static void kv_layout_rejects(void)
{
	struct kv_layout l;

	KTAP_EXPECT_RET(kv_layout_init(&l, 0, 4, 16, 8, KV_F32), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 0, 16, 8, KV_F32), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 4, 0, 8, KV_F32), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 4, 16, 0, KV_F32), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, KV_MAX_LAYERS + 1, 4, 16, 8,
				       KV_F32), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 4, 16, 8, 0), -EINVAL);
	KTAP_EXPECT_RET(kv_layout_init(&l, 2, 4, 16, 8, 3), -EINVAL);
	/* One tensor overflows 64 bits. */
	KTAP_EXPECT_RET(kv_layout_init(&l, 1, UINT32_MAX, UINT32_MAX,
				       UINT32_MAX, KV_F32), -EINVAL);
	/* A tensor of 2^63 fits; K + V does not. */
	KTAP_EXPECT_RET(kv_layout_init(&l, 1, 1u << 30, 1u << 30, 2, KV_F32),
			-EINVAL);
	KTAP_EXPECT(l.bytes == 0 && l.n_layers == 0, "layout left set");
	/*
	 * A tensor of 2^64 - 4 bytes (4 * 3 * 715827883 * 2147483647) fits;
	 * rounding it up to 64 bytes does not.
	 */
	KTAP_EXPECT_RET(kv_layout_init(&l, 1, 3, 715827883u, 2147483647u,
				       KV_F32), -EINVAL);
}

/* ------------------------------------------------------------- fp16 */

static float f32_of(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint32_t bits_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static void fp16_conversion(void)
{
	static const struct {
		float f;
		uint16_t h;
	} to16[] = {
		{ 0.0f, 0x0000 }, { -0.0f, 0x8000 }, { 1.0f, 0x3c00 },
		{ -2.0f, 0xc000 }, { 0.5f, 0x3800 }, { 0.1f, 0x2e66 },
		{ 65504.0f, 0x7bff }, { 65519.99f, 0x7bff },
		{ 65520.0f, 0x7c00 }, { -65520.0f, 0xfc00 }, { 1e10f, 0x7c00 },
		{ INFINITY, 0x7c00 }, { -INFINITY, 0xfc00 },
		{ 6e-8f, 0x0001 },			/* nearest subnormal */
		{ 0x1p-24f, 0x0001 }, { 0x1p-25f, 0x0000 },	/* tie to 0 */
		{ 0x1.000002p-25f, 0x0001 }, { 0x1.8p-24f, 0x0002 },	/* tie to 2 */
		{ 0x1.4p-23f, 0x0002 },		/* 2.5 units: tie to 2 */
		{ 0x1.cp-23f, 0x0004 },		/* 3.5 units: tie to 4 */
		{ 1e-10f, 0x0000 }, { -1e-10f, 0x8000 },
		{ 0x1p-14f, 0x0400 }, { 0x1.ff8p-15f, 0x03ff },
		{ 0x1.ffcp-15f, 0x0400 },	/* tie: rounds up into normal */
		{ 1.0f + 0x1p-11f, 0x3c00 },	/* tie to even (down) */
		{ 1.0f + 0x3p-11f, 0x3c02 },	/* tie to even (up) */
		{ 1.0f + 0x1p-11f + 0x1p-20f, 0x3c01 },
		{ 2049.0f, 0x6800 }, { 2050.0f, 0x6801 }, { 2051.0f, 0x6802 },
		{ 0x1.ffep0f, 0x4000 },		/* carry into the exponent */
	};
	uint32_t bad = 0;

	for (size_t i = 0; i < sizeof(to16) / sizeof(to16[0]); i++) {
		uint16_t h = model_f32_to_f16(to16[i].f);

		KTAP_EXPECT(h == to16[i].h, "%a -> 0x%04x, want 0x%04x",
			    (double)to16[i].f, h, to16[i].h);
	}
	KTAP_EXPECT(model_f16_to_f32(0x0001) == 0x1p-24f, "subnormal back");
	KTAP_EXPECT(model_f16_to_f32(0x03ff) == 0x1.ff8p-15f, "max subnormal");
	KTAP_EXPECT(model_f16_to_f32(0x7bff) == 65504.0f, "max");
	KTAP_EXPECT(bits_of(model_f16_to_f32(0x8000)) == 0x80000000u, "-0");
	KTAP_EXPECT(model_f16_to_f32(0xfc00) == -INFINITY, "-inf");

	/* NaN stays NaN, both ways, any payload and sign. */
	KTAP_EXPECT(isnan(model_f16_to_f32(model_f32_to_f16(NAN))), "nan");
	KTAP_EXPECT((model_f32_to_f16(f32_of(0xff800001u)) & 0x7fff) > 0x7c00,
		    "low-payload nan became 0x%04x",
		    model_f32_to_f16(f32_of(0xff800001u)));
	KTAP_EXPECT(model_f32_to_f16(f32_of(0xff800001u)) & 0x8000,
		    "nan lost its sign");
	KTAP_EXPECT(isnan(model_f16_to_f32(0x7c01)) &&
		    isnan(model_f16_to_f32(0xfe00)), "f16 nans");

	/* Every non-NaN half survives f16 -> f32 -> f16 exactly. */
	for (uint32_t h = 0; h <= 0xffff; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;
		if (model_f32_to_f16(model_f16_to_f32((uint16_t)h)) != h)
			bad++;
	}
	KTAP_EXPECT(bad == 0, "%u halves do not round-trip", bad);
}

/* ------------------------------------------------------ determinism */

static uint64_t fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* model.h's algorithm, written again from the header comment. */
static uint64_t ref_state;

static float ref_u(void)
{
	uint64_t z = (ref_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (float)((int32_t)(z >> 40) - (1 << 23)) / 8388608.0f;
}

static size_t ref_matrix(float *w, size_t rows, size_t cols, size_t fan_in)
{
	float scale = fan_in ? (float)(1.0 / sqrt((double)fan_in)) : 1.0f;

	for (size_t i = 0; i < rows * cols; i++)
		w[i] = ref_u() * scale;
	return rows * cols;
}

static size_t ref_gain(float *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		w[i] = 1.0f + ref_u() * 0.125f;
	return n;
}

static void weights_deterministic(void)
{
	struct model *m = get_tiny(), *b, *c;
	struct model_config conf;
	const float *wa, *wb, *wc;
	size_t na, nb, nc, d, off = 0;
	uint64_t z;
	float *ref;

	if (!m)
		return;
	conf = tiny_conf;
	b = model_create(&conf);
	conf.seed = 2;
	c = model_create(&conf);
	KTAP_EXPECT(b && c, "model_create");
	if (!b || !c)
		goto out;
	wa = model_weights(m, &na);
	wb = model_weights(b, &nb);
	wc = model_weights(c, &nc);
	KTAP_EXPECT(na == 115008 && na == nb && na == nc, "counts %zu %zu %zu",
		    na, nb, nc);
	KTAP_EXPECT(fnv1a(wa, na * 4) == fnv1a(wb, nb * 4),
		    "same seed, different weights");
	KTAP_EXPECT(fnv1a(wa, na * 4) != fnv1a(wc, nc * 4),
		    "seeds 1 and 2 give the same weights");
	printf("# tiny seed 1 weights fnv1a64 %016llx\n",
	       (unsigned long long)fnv1a(wa, na * 4));

	/* The header's algorithm, reimplemented, gives the same bytes. */
	ref = malloc(na * sizeof(float));
	KTAP_EXPECT(ref != NULL, "malloc");
	if (!ref)
		goto out;
	d = tiny_conf.n_heads * tiny_conf.head_dim;
	ref_state = tiny_conf.seed;
	off += ref_matrix(ref + off, tiny_conf.vocab, d, 0);
	for (uint32_t l = 0; l < tiny_conf.n_layers; l++) {
		off += ref_gain(ref + off, d);
		for (int i = 0; i < 4; i++)
			off += ref_matrix(ref + off, d, d, d);
		off += ref_gain(ref + off, d);
		off += ref_matrix(ref + off, tiny_conf.d_ff, d, d);
		off += ref_matrix(ref + off, tiny_conf.d_ff, d, d);
		off += ref_matrix(ref + off, d, tiny_conf.d_ff, tiny_conf.d_ff);
	}
	off += ref_gain(ref + off, d);
	off += ref_matrix(ref + off, tiny_conf.vocab, d, d);
	KTAP_EXPECT(off == na, "reference drew %zu", off);
	KTAP_EXPECT(off == na && !memcmp(ref, wa, na * sizeof(float)),
		    "weights differ from model.h's algorithm");
	free(ref);

	/* The header's splitmix64 test vector (seed 1234567). */
	ref_state = 1234567;
	z = ref_state + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	KTAP_EXPECT(z == 6457827717110365317ull, "splitmix64 %llu",
		    (unsigned long long)z);
	model_free(c);
	conf.seed = 1234567;
	c = model_create(&conf);
	KTAP_EXPECT(c != NULL, "model_create");
	if (c) {
		wc = model_weights(c, &nc);
		KTAP_EXPECT(wc[0] == (float)((int32_t)(6457827717110365317ull >> 40) -
					     (1 << 23)) / 8388608.0f &&
			    wc[1] == (float)((int32_t)(3203168211198807973ull >> 40) -
					     (1 << 23)) / 8388608.0f,
			    "first weights of seed 1234567: %a %a",
			    (double)wc[0], (double)wc[1]);
	}
out:
	model_free(b);
	model_free(c);
}

/* ------------------------------------------------------- inference */

#define PROMPT	7
#define GEN	10

static void cache_matches_recompute(void)
{
	struct model *m = get_tiny();
	uint32_t seq[PROMPT + GEN], out[GEN], step_tok[GEN];
	static float logits[256], step[GEN][256], naive[256], last[256];
	struct region ra = { 0 }, rb = { 0 };
	uint32_t dtypes[] = { KV_F32, KV_F16 };

	if (!m)
		return;
	make_prompt(seq, PROMPT, tiny_conf.vocab);
	for (int di = 0; di < 2; di++) {
		struct kv_layout l;
		struct kv_cache kv, fresh;

		KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 32, dtypes[di], &l),
				0);
		kv = (struct kv_cache){ &l, region_get(&ra, l.bytes, 0, 0), 0 };
		fresh = (struct kv_cache){ &l, region_get(&rb, l.bytes, 0, 0),
					   0 };
		if (!kv.base || !fresh.base)
			goto next;

		/* Cached: prefill the prompt, then GEN decode steps. */
		KTAP_EXPECT_RET(model_prefill(m, &kv, seq, PROMPT, logits, NULL,
					      NULL), 0);
		out[0] = model_argmax(logits, tiny_conf.vocab);
		for (int i = 0; i < GEN; i++) {
			step_tok[i] = out[i];
			KTAP_EXPECT_RET(model_decode_step(m, &kv, out[i],
							  step[i]), 0);
			if (i + 1 < GEN)
				out[i + 1] = model_argmax(step[i],
							  tiny_conf.vocab);
		}
		KTAP_EXPECT(kv.tokens == PROMPT + GEN, "tokens %u", kv.tokens);

		/*
		 * Naive: every step recomputes the whole sequence in a fresh
		 * cache. The per-token arithmetic is the same code in the same
		 * order (model.h), so the logits are bit-identical, not close.
		 */
		for (int i = 0; i < GEN; i++) {
			seq[PROMPT + i] = step_tok[i];
			fresh.tokens = 0;
			memset(fresh.base, 0xff, l.bytes);
			KTAP_EXPECT_RET(model_prefill(m, &fresh, seq,
						      PROMPT + i + 1, naive,
						      NULL, NULL), 0);
			KTAP_EXPECT(!memcmp(naive, step[i], sizeof(naive)),
				    "dtype %u step %d: logits differ",
				    dtypes[di], i);
		}
		KTAP_EXPECT(used_equal(kv.base, fresh.base, &l, PROMPT + GEN),
			    "dtype %u: caches differ", dtypes[di]);

		/* model_generate is the same loop. */
		kv.tokens = PROMPT;
		{
			uint32_t gen[GEN];

			KTAP_EXPECT_RET(model_generate(m, &kv, out[0], GEN, gen,
						       last), 0);
			KTAP_EXPECT(!memcmp(gen, out, sizeof(gen)),
				    "generate tokens differ");
			KTAP_EXPECT(!memcmp(last, step[GEN - 1], sizeof(last)),
				    "generate logits differ");
			KTAP_EXPECT(kv.tokens == PROMPT + GEN, "tokens %u",
				    kv.tokens);
		}
		printf("# dtype %u tokens:", dtypes[di]);
		for (int i = 0; i < GEN; i++)
			printf(" %u", out[i]);
		printf("\n");
next:
		region_put(&ra);
		region_put(&rb);
	}
}

static void relocated_cache_bit_identical(void)
{
	struct model *m = get_tiny();
	uint32_t prompt[20], first;
	static float logits[256], last[3][256];
	uint32_t out[3][16];
	uint32_t dtypes[] = { KV_F32, KV_F16 };

	if (!m)
		return;
	make_prompt(prompt, 20, tiny_conf.vocab);
	for (int di = 0; di < 2; di++) {
		struct region r[3] = { { 0 } };
		struct kv_cache kv[3];
		struct kv_layout l;
		/* A at page 0; B at an odd page; C off any natural alignment. */
		static const unsigned pages[3] = { 0, 3, 5 }, skew[3] = { 0, 0, 6 };

		KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 64, dtypes[di], &l),
				0);
		for (int i = 0; i < 3; i++)
			kv[i] = (struct kv_cache){
				&l, region_get(&r[i], l.bytes, pages[i], skew[i]),
				0 };
		if (!kv[0].base || !kv[1].base || !kv[2].base)
			goto next;

		KTAP_EXPECT_RET(model_prefill(m, &kv[0], prompt, 20, logits,
					      NULL, NULL), 0);
		first = model_argmax(logits, tiny_conf.vocab);
		/* Only the filled rows travel; the rest of B and C stay NaN. */
		for (int i = 1; i < 3; i++) {
			copy_used(kv[i].base, kv[0].base, &l, 20);
			kv[i].tokens = 20;
		}
		for (int i = 0; i < 3; i++)
			KTAP_EXPECT_RET(model_generate(m, &kv[i], first, 16,
						       out[i], last[i]), 0);
		for (int i = 1; i < 3; i++) {
			KTAP_EXPECT(!memcmp(out[0], out[i], sizeof(out[0])),
				    "dtype %u region %d: tokens differ",
				    dtypes[di], i);
			KTAP_EXPECT(!memcmp(last[0], last[i], sizeof(last[0])),
				    "dtype %u region %d: logits differ",
				    dtypes[di], i);
			KTAP_EXPECT(used_equal(kv[0].base, kv[i].base, &l, 36),
				    "dtype %u region %d: caches differ",
				    dtypes[di], i);
		}
		KTAP_EXPECT(!isnan(last[0][0]), "NaN logits");
		/* For comparing builds and hosts by eye. */
		printf("# dtype %u: prompt 20, 16 generated, last token %u, logits fnv1a64 %016llx\n",
		       dtypes[di], out[0][15],
		       (unsigned long long)fnv1a(last[0], sizeof(last[0])));
next:
		for (int i = 0; i < 3; i++)
			region_put(&r[i]);
	}
}

static void fp16_cache_holds_converted(void)
{
	struct model *m = get_tiny();
	uint32_t prompt[24], out16[8], out32[8], same = 0;
	static float l32[256], l16[256];
	struct region r32 = { 0 }, r16 = { 0 };
	struct kv_layout a, b;
	struct kv_cache k32, k16;
	uint32_t per_token, n = 24, mism = 0;
	double num = 0, den = 0;

	if (!m)
		return;
	make_prompt(prompt, n, tiny_conf.vocab);
	KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 64, KV_F32, &a), 0);
	KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 64, KV_F16, &b), 0);
	k32 = (struct kv_cache){ &a, region_get(&r32, a.bytes, 0, 0), 0 };
	k16 = (struct kv_cache){ &b, region_get(&r16, b.bytes, 0, 0), 0 };
	if (!k32.base || !k16.base)
		goto out;
	KTAP_EXPECT_RET(model_prefill(m, &k32, prompt, n, l32, NULL, NULL), 0);
	KTAP_EXPECT_RET(model_prefill(m, &k16, prompt, n, l16, NULL, NULL), 0);

	/*
	 * Layer 0's K and V depend only on the embeddings, so the fp16 cache
	 * holds exactly the fp32 cache's values converted. Later layers see
	 * attention over rounded values: close, not equal.
	 */
	per_token = tiny_conf.n_heads * tiny_conf.head_dim;
	for (uint32_t layer = 0; layer < tiny_conf.n_layers; layer++) {
		for (int kind = 0; kind < 2; kind++) {
			const struct kv_tensor *t32 = kind ? &a.v[layer] : &a.k[layer];
			const struct kv_tensor *t16 = kind ? &b.v[layer] : &b.k[layer];

			for (uint32_t t = 0; t < n; t++) {
				const float *f = kv_at(k32.base, t32, t, 0);
				const uint16_t *h = kv_at(k16.base, t16, t, 0);

				for (uint32_t i = 0; i < per_token; i++) {
					float back = model_f16_to_f32(h[i]);

					if (layer == 0 &&
					    h[i] != model_f32_to_f16(f[i]))
						mism++;
					num += ((double)back - f[i]) *
					       ((double)back - f[i]);
					den += (double)f[i] * f[i];
				}
			}
		}
	}
	KTAP_EXPECT(mism == 0, "%u layer-0 elements not the converted fp32",
		    mism);
	KTAP_EXPECT(sqrt(num / den) < 2e-2, "fp16 cache relative error %g",
		    sqrt(num / den));
	printf("# fp16 vs fp32 cache: relative error %.2e\n", sqrt(num / den));

	KTAP_EXPECT_RET(model_generate(m, &k32, model_argmax(l32, 256), 8,
				       out32, l32), 0);
	KTAP_EXPECT_RET(model_generate(m, &k16, model_argmax(l16, 256), 8,
				       out16, l16), 0);
	for (int i = 0; i < 8; i++)
		same += out32[i] == out16[i];
	printf("# fp16 and fp32 caches agree on %u of 8 generated tokens\n",
	       same);
out:
	region_put(&r32);
	region_put(&r16);
}

/* ------------------------------------------------------ layer_done */

struct snap {
	const struct kv_layout *l;
	const void *base;
	uint32_t from, n;		/* positions this prefill writes */
	uint32_t calls, order[KV_MAX_LAYERS];
	unsigned char *k[KV_MAX_LAYERS], *v[KV_MAX_LAYERS];
	bool next_untouched[KV_MAX_LAYERS];
};

static bool all_ff(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0xff)
			return false;
	return true;
}

static void on_layer(void *arg, uint32_t layer)
{
	struct snap *s = arg;
	const struct kv_layout *l = s->l;
	size_t len = rows_bytes(&l->k[layer], s->n);

	if (s->calls < KV_MAX_LAYERS)
		s->order[s->calls] = layer;
	s->calls++;
	if (layer >= l->n_layers || s->k[layer])
		return;
	s->k[layer] = malloc(len);
	s->v[layer] = malloc(len);
	if (!s->k[layer] || !s->v[layer])
		return;
	memcpy(s->k[layer], kv_at((void *)s->base, &l->k[layer], s->from, 0), len);
	memcpy(s->v[layer], kv_at((void *)s->base, &l->v[layer], s->from, 0), len);
	/* Layer by layer: the next layer has not been written yet. */
	s->next_untouched[layer] = layer + 1 == l->n_layers ||
		all_ff(kv_at((void *)s->base, &l->k[layer + 1], s->from, 0), len);
}

static void layer_done_in_order(void)
{
	struct model *m = get_tiny();
	static float logits[256];
	uint32_t prompt[40];
	struct region r = { 0 };
	struct kv_layout l;
	struct kv_cache kv;

	if (!m)
		return;
	make_prompt(prompt, 40, tiny_conf.vocab);
	KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 64, KV_F16, &l), 0);
	kv = (struct kv_cache){ &l, region_get(&r, l.bytes, 0, 0), 0 };
	if (!kv.base)
		return;
	/* A first prefill of 25 tokens, then a continuation of 15. */
	for (int part = 0; part < 2; part++) {
		struct snap s = { .l = &l, .base = kv.base,
				  .from = part ? 25 : 0, .n = part ? 15 : 25 };
		size_t len = rows_bytes(&l.k[0], s.n);

		KTAP_EXPECT_RET(model_prefill(m, &kv, prompt + s.from, s.n,
					      logits, on_layer, &s), 0);
		KTAP_EXPECT(s.calls == tiny_conf.n_layers, "part %d: %u calls",
			    part, s.calls);
		for (uint32_t i = 0; i < tiny_conf.n_layers && i < s.calls; i++) {
			KTAP_EXPECT(s.order[i] == i, "call %u was layer %u", i,
				    s.order[i]);
			KTAP_EXPECT(s.k[i] && s.v[i] &&
				    !memcmp(s.k[i], kv_at(kv.base, &l.k[i], s.from, 0), len) &&
				    !memcmp(s.v[i], kv_at(kv.base, &l.v[i], s.from, 0), len),
				    "part %d layer %u changed after its callback",
				    part, i);
			KTAP_EXPECT(s.next_untouched[i],
				    "part %d: layer %u written before layer %u was done",
				    part, i + 1, i);
			free(s.k[i]);
			free(s.v[i]);
		}
	}
	KTAP_EXPECT(kv.tokens == 40, "tokens %u", kv.tokens);
	region_put(&r);
}

/* ----------------------------------------------------------- errors */

static void errors_rejected(void)
{
	struct model *m = get_tiny(), *small;
	static float logits[256];
	uint32_t prompt[32], out[8], bad[3] = { 1, 256, 2 };
	struct region r = { 0 };
	struct kv_layout l, t;
	struct kv_cache kv;
	struct model_config c;

	if (!m)
		return;
	make_prompt(prompt, 32, tiny_conf.vocab);
	KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 8, KV_F32, &l), 0);
	kv = (struct kv_cache){ &l, region_get(&r, l.bytes, 0, 0), 0 };
	if (!kv.base)
		return;

	KTAP_EXPECT_RET(model_prefill(m, &kv, bad, 3, logits, NULL, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(model_prefill(m, &kv, prompt, 0, logits, NULL, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 256, logits), -EINVAL);
	KTAP_EXPECT_RET(model_generate(m, &kv, 1000, 2, out, logits), -EINVAL);
	KTAP_EXPECT_RET(model_generate(m, &kv, 1, 0, out, logits), -EINVAL);
	KTAP_EXPECT_RET(model_prefill(m, &kv, prompt, 9, logits, NULL, NULL),
			-ENOSPC);
	KTAP_EXPECT(kv.tokens == 0 && all_ff(kv.base, l.bytes),
		    "a failed call wrote the cache");

	KTAP_EXPECT_RET(model_prefill(m, &kv, prompt, 6, logits, NULL, NULL), 0);
	KTAP_EXPECT_RET(model_generate(m, &kv, 1, 3, out, logits), -ENOSPC);
	KTAP_EXPECT(kv.tokens == 6, "generate stepped before failing");
	KTAP_EXPECT_RET(model_generate(m, &kv, 1, 2, out, logits), 0);
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -ENOSPC);
	KTAP_EXPECT(kv.tokens == 8, "tokens %u", kv.tokens);

	/* Layouts that do not match the model. */
	kv.tokens = 0;
	t = l;
	kv.layout = &t;
	t.n_heads = 2;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	t = l;
	t.head_dim = 8;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	t = l;
	t.n_layers = 1;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	t = l;
	t.dtype = 3;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	t = l;
	t.bytes--;			/* the last V runs past the region */
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	t = l;
	t.k[1].offset = UINT64_MAX - 8;	/* wraps */
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	kv.layout = NULL;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	kv.layout = &l;
	kv.base = NULL;
	KTAP_EXPECT_RET(model_decode_step(m, &kv, 1, logits), -EINVAL);
	region_put(&r);

	/* The model's max_seq bounds a cache with more room. */
	c = tiny_conf;
	c.max_seq = 16;
	small = model_create(&c);
	KTAP_EXPECT(small != NULL, "model_create");
	if (small) {
		KTAP_EXPECT_RET(model_kv_layout(&c, 32, KV_F16, &l), 0);
		kv = (struct kv_cache){ &l, region_get(&r, l.bytes, 0, 0), 0 };
		if (kv.base) {
			KTAP_EXPECT_RET(model_prefill(small, &kv, prompt, 17,
						      logits, NULL, NULL),
					-ENOSPC);
			KTAP_EXPECT_RET(model_prefill(small, &kv, prompt, 16,
						      logits, NULL, NULL), 0);
			KTAP_EXPECT_RET(model_decode_step(small, &kv, 1,
							  logits), -ENOSPC);
		}
		region_put(&r);
		model_free(small);
	}
}

/* ----------------------------------------------------------- timing */

static void tiny_timing(void)
{
	struct model *m = get_tiny();
	uint32_t prompt[64], out[32];
	static float logits[256];
	uint32_t dtypes[] = { KV_F32, KV_F16 };

	if (!m)
		return;
	make_prompt(prompt, 64, tiny_conf.vocab);
	for (int di = 0; di < 2; di++) {
		struct region r = { 0 };
		struct kv_layout l;
		struct kv_cache kv;
		double t0, t1, t2;

		KTAP_EXPECT_RET(model_kv_layout(&tiny_conf, 96, dtypes[di], &l),
				0);
		kv = (struct kv_cache){ &l, region_get(&r, l.bytes, 0, 0), 0 };
		if (!kv.base)
			return;
		t0 = now_ms();
		KTAP_EXPECT_RET(model_prefill(m, &kv, prompt, 64, logits, NULL,
					      NULL), 0);
		t1 = now_ms();
		KTAP_EXPECT_RET(model_generate(m, &kv,
					       model_argmax(logits, 256), 32,
					       out, logits), 0);
		t2 = now_ms();
		printf("# tiny %s: prefill 64 tokens %.2f ms, 32 decode steps %.2f ms (%.0f tokens/s)\n",
		       dtypes[di] == KV_F32 ? "fp32" : "fp16", t1 - t0, t2 - t1,
		       32e3 / (t2 - t1));
		region_put(&r);
	}
}

static const struct ktap_case cases[] = {
	KTAP_CASE(config_loads_fixtures),
	KTAP_CASE(config_accepts_variants),
	KTAP_CASE(config_rejects_bad),
	KTAP_CASE(kv_layout_packed),
	KTAP_CASE(kv_layout_rejects),
	KTAP_CASE(fp16_conversion),
	KTAP_CASE(weights_deterministic),
	KTAP_CASE(cache_matches_recompute),
	KTAP_CASE(relocated_cache_bit_identical),
	KTAP_CASE(fp16_cache_holds_converted),
	KTAP_CASE(layer_done_in_order),
	KTAP_CASE(errors_rejected),
	KTAP_CASE(tiny_timing),
};

int main(void)
{
	int ret = ktap_run_suite("model", cases,
				 sizeof(cases) / sizeof(cases[0]));

	model_free(tiny);
	return ret;
}
