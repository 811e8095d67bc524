// SPDX-License-Identifier: GPL-2.0
/*
 * The demo transformer (model.h has the architecture, the normative weight
 * generation and the determinism rules this file keeps).
 *
 * Forward pass: a prefill of n tokens keeps their residual vectors in
 * m->x and runs layer_token() for every token of layer 0, then of layer 1,
 * ...; a decode step is the same with n = 1. layer_token() is the only
 * code that computes a token's layer, and it reads every K/V row --
 * including the one it just stored -- back through the cache, so where a
 * cache's bytes came from never changes a result.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "model.h"

/*
 * No a*b+c fused into an FMA: it would change results (model.h). GCC
 * contracts nothing under -std=c11 and warns about this pragma.
 */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

struct layer_w {
	float *attn_norm, *wq, *wk, *wv, *wo;
	float *mlp_norm, *w_gate, *w_up, *w_down;
};

struct model {
	struct model_config c;
	uint32_t d;			/* d_model */
	float *weights;			/* n_weights, generation order */
	size_t n_weights;
	float *embed, *final_norm, *w_out;
	struct layer_w layer[KV_MAX_LAYERS];
	/* Scratch, one block, sized by max_seq at create time. */
	float *scratch;
	float *x;			/* [max_seq][d] residual stream */
	float *rope;			/* [max_seq][head_dim]: cos, sin pairs */
	float *xn, *q, *k, *v, *att, *tmp;	/* [d] */
	float *gate, *up;		/* [d_ff] */
	float *scores;			/* [max_seq] */
	float *row;			/* [head_dim]: one K or V row */
	float *logits;			/* [vocab] */
	double *inv_freq;		/* [head_dim / 2] */
	float attn_scale;		/* 1 / sqrt(head_dim) */
};

/* ---------------------------------------------------------------- fp16 */

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

uint16_t model_f32_to_f16(float f)
{
	uint32_t x = f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t a = x & 0x7fffffff;
	uint32_t exp = a >> 23, mant, shift, q, rem, half;

	if (a > 0x7f800000)			/* NaN: quiet, top payload */
		return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
	if (a >= 0x477ff000)			/* >= 65520 rounds to inf */
		return sign | 0x7c00;
	if (a >= 0x38800000) {			/* normal in fp16 */
		uint32_t h = ((exp - 112) << 10) | ((a >> 13) & 0x3ff);

		rem = a & 0x1fff;
		if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
			h++;			/* may carry into the exponent */
		return sign | (uint16_t)h;
	}
	if (a <= 0x33000000)			/* <= 2^-25: ties to +-0 */
		return sign;
	/* Subnormal: a * 2^24 units of 2^-24, i.e. mant >> (126 - exp). */
	mant = (a & 0x7fffff) | 0x800000;
	shift = 126 - exp;			/* 14 .. 24 */
	q = mant >> shift;
	rem = mant & ((1u << shift) - 1);
	half = 1u << (shift - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;				/* 0x400 is the smallest normal */
	return sign | (uint16_t)q;
}

float model_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	int e;

	if (exp == 0x1f)
		return bits_f32(sign | 0x7f800000 | (mant << 13));
	if (exp)
		return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
	if (!mant)
		return bits_f32(sign);
	/* Subnormal mant * 2^-24: normalise. */
	e = -14;
	while (!(mant & 0x400)) {
		mant <<= 1;
		e--;
	}
	return bits_f32(sign | ((uint32_t)(e + 127) << 23) |
			((mant & 0x3ff) << 13));
}

/* ------------------------------------------------- deterministic math */

/*
 * exp, sin and cos in plain double arithmetic (only floor, ldexp and
 * IEEE +-*, all exact or correctly rounded), so no result depends on the
 * libm build or the CPU features libm dispatches on. Accuracy is far
 * below fp32's; determinism is the point.
 */
static double det_exp(double x)
{
	static const double ln2_hi = 6.93147180369123816490e-01;
	static const double ln2_lo = 1.90821492927058770002e-10;
	static const double inv_ln2 = 1.44269504088896338700e+00;
	double k, r, p;

	if (x != x)
		return x;
	if (x > 709.0)
		return HUGE_VAL;
	if (x < -746.0)
		return 0.0;
	k = floor(x * inv_ln2 + 0.5);
	/* ln2_hi has 32 low zero bits: k * ln2_hi is exact. |r| <= 0.35. */
	r = (x - k * ln2_hi) - k * ln2_lo;
	/* Taylor to r^13 (truncation < 1e-17), Horner. */
	p = 1.0 / 6227020800.0;
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	return ldexp(p, (int)k);
}

/* sin and cos of 0 <= a < 2^21 (rotary angles: pos < 2^20, freq <= 1). */
static void det_sincos(double a, double *s, double *c)
{
	static const double two_over_pi = 6.36619772367581382433e-01;
	/* pi/2 in 33 + 33 bits and a tail (fdlibm's pio2_1, pio2_2, pio2_2t). */
	static const double pio2_1 = 1.57079632673412561417e+00;
	static const double pio2_2 = 6.07710050630396597660e-11;
	static const double pio2_2t = 2.02226624879595063154e-21;
	double k = floor(a * two_over_pi + 0.5);
	double r = ((a - k * pio2_1) - k * pio2_2) - k * pio2_2t;
	double z = r * r, sp, cp;

	/* |r| <= pi/4: Taylor to r^19 / r^18. */
	sp = -1.0 / 121645100408832000.0;
	sp = sp * z + 1.0 / 355687428096000.0;
	sp = sp * z - 1.0 / 1307674368000.0;
	sp = sp * z + 1.0 / 6227020800.0;
	sp = sp * z - 1.0 / 39916800.0;
	sp = sp * z + 1.0 / 362880.0;
	sp = sp * z - 1.0 / 5040.0;
	sp = sp * z + 1.0 / 120.0;
	sp = sp * z - 1.0 / 6.0;
	sp = r + r * z * sp;
	cp = 1.0 / 6402373705728000.0;
	cp = cp * z - 1.0 / 20922789888000.0;
	cp = cp * z + 1.0 / 87178291200.0;
	cp = cp * z - 1.0 / 479001600.0;
	cp = cp * z + 1.0 / 3628800.0;
	cp = cp * z - 1.0 / 40320.0;
	cp = cp * z + 1.0 / 720.0;
	cp = cp * z - 1.0 / 24.0;
	cp = cp * z + 0.5;
	cp = 1.0 - z * cp;
	switch ((uint64_t)k & 3) {
	case 0: *s = sp; *c = cp; break;
	case 1: *s = cp; *c = -sp; break;
	case 2: *s = -sp; *c = -cp; break;
	default: *s = -cp; *c = sp; break;
	}
}

/* See model.h: 8 lanes, fixed order, independent of addresses. */
static float dot(const float *a, const float *b, uint32_t n)
{
	float l[8] = { 0 };
	uint32_t i = 0;

	for (; i + 8 <= n; i += 8)
		for (uint32_t j = 0; j < 8; j++)
			l[j] += a[i + j] * b[i + j];
	for (uint32_t j = 0; i < n; i++, j++)
		l[j] += a[i] * b[i];
	return ((l[0] + l[1]) + (l[2] + l[3])) +
	       ((l[4] + l[5]) + (l[6] + l[7]));
}

/* y[o] = W[o][:] . x, W [rows][cols]. */
static void matvec(float *y, const float *w, const float *x, uint32_t rows,
		   uint32_t cols)
{
	for (uint32_t o = 0; o < rows; o++)
		y[o] = dot(w + (size_t)o * cols, x, cols);
}

static void rmsnorm(float *y, const float *x, const float *gain, uint32_t n)
{
	float ms = dot(x, x, n) / (float)n;
	float inv = 1.0f / sqrtf(ms + MODEL_RMS_EPS);

	for (uint32_t i = 0; i < n; i++)
		y[i] = (x[i] * inv) * gain[i];
}

static void softmax(float *s, uint32_t n)
{
	float max = s[0], sum = 0.0f;

	for (uint32_t i = 1; i < n; i++)
		if (s[i] > max)
			max = s[i];
	for (uint32_t i = 0; i < n; i++) {
		s[i] = (float)det_exp((double)(s[i] - max));
		sum += s[i];
	}
	for (uint32_t i = 0; i < n; i++)
		s[i] = s[i] / sum;
}

static float silu(float g)
{
	return g / (1.0f + (float)det_exp(-(double)g));
}

/* ------------------------------------------------------------ config */

enum {
	KEY_NAME, KEY_LAYERS, KEY_HEADS, KEY_HEAD_DIM, KEY_D_FF, KEY_VOCAB,
	KEY_MAX_SEQ, KEY_SEED, N_KEYS
};

static const char *const key_names[N_KEYS] = {
	"name", "layers", "heads", "head_dim", "d_ff", "vocab", "max_seq",
	"seed",
};

/* Weight count, scratch floats, and the bytes of both; false on overflow. */
static bool config_sizes(const struct model_config *c, uint64_t *n_weights,
			 uint64_t *n_scratch, uint64_t *total_bytes)
{
	uint64_t d = model_d_model(c), hd = c->head_dim, ff = c->d_ff;
	uint64_t vocab = c->vocab, seq = c->max_seq, t, dd, dff, layer, w, s;
	bool o = false;

	/* per layer: 2 gains, 4 [d][d], 3 [d][d_ff] */
	o |= __builtin_mul_overflow(d, d, &dd);
	o |= __builtin_mul_overflow(d, ff, &dff);
	o |= __builtin_mul_overflow(dd, 4, &dd);
	o |= __builtin_mul_overflow(dff, 3, &dff);
	o |= __builtin_add_overflow(dd, dff, &layer);
	o |= __builtin_add_overflow(layer, 2 * d, &layer);
	o |= __builtin_mul_overflow(layer, (uint64_t)c->n_layers, &w);
	/* embed, w_out, final_norm */
	o |= __builtin_mul_overflow(vocab, d, &t);
	o |= __builtin_add_overflow(w, t, &w);
	o |= __builtin_add_overflow(w, t, &w);
	o |= __builtin_add_overflow(w, d, &w);
	/* x [seq][d], rope [seq][hd], scores [seq], 6 [d], 2 [d_ff], row, logits */
	o |= __builtin_mul_overflow(seq, d, &s);
	o |= __builtin_mul_overflow(seq, hd, &t);
	o |= __builtin_add_overflow(s, t, &s);
	o |= __builtin_add_overflow(s, seq + 6 * d + 2 * ff + hd + vocab, &s);
	/* bytes: 4 per float, 8 per inv_freq */
	o |= __builtin_add_overflow(w, s, &t);
	o |= __builtin_mul_overflow(t, 4, &t);
	o |= __builtin_add_overflow(t, 4 * hd, &t);
	if (o || t > SIZE_MAX)
		return false;
	*n_weights = w;
	*n_scratch = s;
	*total_bytes = t;
	return true;
}

/*
 * The range checks; with @path, each failure is reported on stderr with
 * the key's line from @lines.
 */
static int config_check(const struct model_config *c, const char *path,
			const unsigned int *lines)
{
	static const struct {
		int key;
		size_t off;
		uint32_t min, max;
	} ranges[] = {
		{ KEY_LAYERS, offsetof(struct model_config, n_layers), 1,
		  KV_MAX_LAYERS },
		{ KEY_HEADS, offsetof(struct model_config, n_heads), 1,
		  UINT32_MAX },
		{ KEY_HEAD_DIM, offsetof(struct model_config, head_dim), 2,
		  UINT32_MAX },
		{ KEY_D_FF, offsetof(struct model_config, d_ff), 1,
		  UINT32_MAX },
		{ KEY_VOCAB, offsetof(struct model_config, vocab), 2,
		  MODEL_MAX_VOCAB },
		{ KEY_MAX_SEQ, offsetof(struct model_config, max_seq), 1,
		  MODEL_MAX_SEQ },
	};
	uint64_t nw, ns, bytes;
	uint32_t d;

	if (!memchr(c->name, '\0', sizeof(c->name))) {
		if (path)
			fprintf(stderr, "%s:%u: name: not NUL-terminated\n",
				path, lines[KEY_NAME]);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint32_t v;

		memcpy(&v, (const char *)c + ranges[i].off, sizeof(v));
		if (v < ranges[i].min || v > ranges[i].max) {
			if (path)
				fprintf(stderr,
					"%s:%u: %s = %u: must be %u..%u\n",
					path, lines[ranges[i].key],
					key_names[ranges[i].key], v,
					ranges[i].min, ranges[i].max);
			return -EINVAL;
		}
	}
	if (c->head_dim & 1) {
		if (path)
			fprintf(stderr,
				"%s:%u: head_dim = %u: must be even (rotary pairs)\n",
				path, lines[KEY_HEAD_DIM], c->head_dim);
		return -EINVAL;
	}
	if (__builtin_mul_overflow(c->n_heads, c->head_dim, &d)) {
		if (path)
			fprintf(stderr,
				"%s:%u: heads * head_dim = %u * %u overflows 32 bits\n",
				path, lines[KEY_HEAD_DIM], c->n_heads,
				c->head_dim);
		return -EINVAL;
	}
	if (!config_sizes(c, &nw, &ns, &bytes)) {
		if (path)
			fprintf(stderr,
				"%s: the model's sizes (layers, heads, head_dim, d_ff, vocab, max_seq) overflow\n",
				path);
		return -EINVAL;
	}
	return 0;
}

int model_config_check(const struct model_config *c)
{
	return config_check(c, NULL, NULL);
}

int model_memory_bytes(const struct model_config *c, uint64_t *weight_bytes,
		       uint64_t *total_bytes)
{
	uint64_t nw, ns, total;

	if (config_check(c, NULL, NULL) || !config_sizes(c, &nw, &ns, &total))
		return -EINVAL;
	if (weight_bytes)
		*weight_bytes = nw * 4;
	if (total_bytes)
		*total_bytes = total;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_line(const char *path, unsigned int lineno, char *line,
		      struct model_config *c, unsigned int *lines)
{
	char *hash = strchr(line, '#'), *eq, *key, *val;
	uint64_t v;
	int k, ret;

	if (hash)
		*hash = '\0';
	line = trim(line);
	if (!*line)
		return 0;
	eq = strchr(line, '=');
	if (!eq) {
		fprintf(stderr, "%s:%u: expected 'key = value'\n", path,
			lineno);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	for (k = 0; k < N_KEYS; k++)
		if (!strcmp(key, key_names[k]))
			break;
	if (k == N_KEYS) {
		fprintf(stderr, "%s:%u: unknown key '%s'\n", path, lineno, key);
		return -EINVAL;
	}
	if (lines[k]) {
		fprintf(stderr, "%s:%u: %s: already set on line %u\n", path,
			lineno, key, lines[k]);
		return -EINVAL;
	}
	lines[k] = lineno;

	if (k == KEY_NAME) {
		size_t n = strlen(val);

		if (!n || n >= sizeof(c->name) ||
		    strspn(val, "abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
			fprintf(stderr,
				"%s:%u: name: want 1..%zu characters of [A-Za-z0-9._-]\n",
				path, lineno, sizeof(c->name) - 1);
			return -EINVAL;
		}
		memcpy(c->name, val, n + 1);
		return 0;
	}
	ret = parse_u64(val, k == KEY_SEED ? UINT64_MAX : UINT32_MAX, &v);
	if (ret) {
		fprintf(stderr, "%s:%u: %s: '%s' is not %s\n", path, lineno,
			key, val, ret == -ERANGE ? "in range" :
			"an unsigned decimal number");
		return -EINVAL;
	}
	switch (k) {
	case KEY_LAYERS: c->n_layers = (uint32_t)v; break;
	case KEY_HEADS: c->n_heads = (uint32_t)v; break;
	case KEY_HEAD_DIM: c->head_dim = (uint32_t)v; break;
	case KEY_D_FF: c->d_ff = (uint32_t)v; break;
	case KEY_VOCAB: c->vocab = (uint32_t)v; break;
	case KEY_MAX_SEQ: c->max_seq = (uint32_t)v; break;
	default: c->seed = v; break;
	}
	return 0;
}

int model_config_load(const char *path, struct model_config *out)
{
	struct model_config c;
	unsigned int lines[N_KEYS] = { 0 }, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int ret = 0;

	f = fopen(path, "r");
	if (!f)
		return -errno;
	memset(&c, 0, sizeof(c));
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)len)) {
			fprintf(stderr, "%s:%u: NUL byte\n", path, lineno);
			ret = -EINVAL;
			break;
		}
		ret = parse_line(path, lineno, line, &c, lines);
		if (ret)
			break;
	}
	if (!ret && ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		ret = -EIO;
	}
	free(line);
	fclose(f);
	if (ret)
		return ret;
	for (int k = 0; k < N_KEYS; k++) {
		if (!lines[k]) {
			fprintf(stderr, "%s: missing key '%s'\n", path,
				key_names[k]);
			return -EINVAL;
		}
	}
	ret = config_check(&c, path, lines);
	if (!ret)
		*out = c;
	return ret;
}

/* ------------------------------------------------------------- model */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Top 24 bits as a multiple of 2^-23 in [-1, 1): exact in fp32. */
static float uniform(uint64_t *s)
{
	int32_t v = (int32_t)(splitmix64(s) >> 40) - (1 << 23);

	return (float)v * (1.0f / 8388608.0f);
}

/* Draw a [rows][fan_in] matrix (or a [rows][d] embedding with fan_in 0). */
static float *draw_matrix(float **next, uint64_t *s, uint64_t rows,
			  uint64_t cols, uint64_t fan_in)
{
	float *w = *next;
	float scale = fan_in ? (float)(1.0 / sqrt((double)fan_in)) : 1.0f;

	for (uint64_t i = 0; i < rows * cols; i++)
		w[i] = uniform(s) * scale;
	*next = w + rows * cols;
	return w;
}

static float *draw_gain(float **next, uint64_t *s, uint64_t n)
{
	float *w = *next;

	for (uint64_t i = 0; i < n; i++)
		w[i] = 1.0f + uniform(s) * 0.125f;
	*next = w + n;
	return w;
}

struct model *model_create(const struct model_config *c)
{
	uint64_t nw, ns, total, s;
	struct model *m;
	uint32_t d, hd;
	float *p;

	if (config_check(c, NULL, NULL) || !config_sizes(c, &nw, &ns, &total)) {
		errno = EINVAL;
		return NULL;
	}
	if (total > MODEL_MAX_BYTES) {
		errno = EFBIG;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->c = *c;
	m->d = d = model_d_model(c);
	hd = c->head_dim;
	m->n_weights = nw;
	m->weights = malloc(nw * sizeof(float));
	m->scratch = calloc(ns, sizeof(float));
	m->inv_freq = calloc(hd / 2, sizeof(double));
	if (!m->weights || !m->scratch || !m->inv_freq) {
		model_free(m);
		errno = ENOMEM;
		return NULL;
	}

	/* The weights, in model.h's order. */
	s = c->seed;
	p = m->weights;
	m->embed = draw_matrix(&p, &s, c->vocab, d, 0);
	for (uint32_t l = 0; l < c->n_layers; l++) {
		struct layer_w *w = &m->layer[l];

		w->attn_norm = draw_gain(&p, &s, d);
		w->wq = draw_matrix(&p, &s, d, d, d);
		w->wk = draw_matrix(&p, &s, d, d, d);
		w->wv = draw_matrix(&p, &s, d, d, d);
		w->wo = draw_matrix(&p, &s, d, d, d);
		w->mlp_norm = draw_gain(&p, &s, d);
		w->w_gate = draw_matrix(&p, &s, c->d_ff, d, d);
		w->w_up = draw_matrix(&p, &s, c->d_ff, d, d);
		w->w_down = draw_matrix(&p, &s, d, c->d_ff, c->d_ff);
	}
	m->final_norm = draw_gain(&p, &s, d);
	m->w_out = draw_matrix(&p, &s, c->vocab, d, d);

	/* Scratch, carved from one block (sizes as in config_sizes()). */
	p = m->scratch;
	m->x = p;	p += (size_t)c->max_seq * d;
	m->rope = p;	p += (size_t)c->max_seq * hd;
	m->scores = p;	p += c->max_seq;
	m->xn = p;	p += d;
	m->q = p;	p += d;
	m->k = p;	p += d;
	m->v = p;	p += d;
	m->att = p;	p += d;
	m->tmp = p;	p += d;
	m->gate = p;	p += c->d_ff;
	m->up = p;	p += c->d_ff;
	m->row = p;	p += hd;
	m->logits = p;

	/* 10000^(-2i/head_dim) = exp(-(2i/head_dim) ln 10000), in double. */
	for (uint32_t i = 0; i < hd / 2; i++)
		m->inv_freq[i] = det_exp(-((double)(2 * i) / (double)hd) *
					 9.21034037197618273607);
	m->attn_scale = (float)(1.0 / sqrt((double)hd));
	return m;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	free(m->weights);
	free(m->scratch);
	free(m->inv_freq);
	free(m);
}

const struct model_config *model_get_config(const struct model *m)
{
	return &m->c;
}

const float *model_weights(const struct model *m, size_t *count)
{
	*count = m->n_weights;
	return m->weights;
}

int model_kv_layout(const struct model_config *c, uint32_t max_tokens,
		    uint32_t dtype, struct kv_layout *l)
{
	return kv_layout_init(l, c->n_layers, c->n_heads, c->head_dim,
			      max_tokens, dtype);
}

/* ----------------------------------------------------------- forward */

static void kv_store(void *dst, const float *src, uint32_t n, uint32_t dtype)
{
	unsigned char *p = dst;

	if (dtype == KV_F32) {
		memcpy(p, src, (size_t)n * sizeof(float));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint16_t h = model_f32_to_f16(src[i]);

		memcpy(p + 2 * (size_t)i, &h, sizeof(h));
	}
}

static void kv_load(float *dst, const void *src, uint32_t n, uint32_t dtype)
{
	const unsigned char *p = src;

	if (dtype == KV_F32) {
		memcpy(dst, p, (size_t)n * sizeof(float));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint16_t h;

		memcpy(&h, p + 2 * (size_t)i, sizeof(h));
		dst[i] = model_f16_to_f32(h);
	}
}

/* The layout matches the model and every tensor lies inside layout->bytes. */
static int kv_check(const struct model *m, const struct kv_cache *kv)
{
	const struct kv_layout *l = kv->layout;
	uint64_t row;

	if (!l || !kv->base)
		return -EINVAL;
	if (l->n_layers != m->c.n_layers || l->n_heads != m->c.n_heads ||
	    l->head_dim != m->c.head_dim || !l->max_tokens ||
	    (l->dtype != KV_F32 && l->dtype != KV_F16))
		return -EINVAL;
	row = (uint64_t)l->head_dim * kv_elem_size(l->dtype);
	for (uint32_t i = 0; i < 2 * l->n_layers; i++) {
		const struct kv_tensor *t = i & 1 ? &l->v[i / 2] : &l->k[i / 2];
		uint64_t a, b, end;

		if (__builtin_mul_overflow((uint64_t)(l->max_tokens - 1),
					   t->token_stride, &a) ||
		    __builtin_mul_overflow((uint64_t)(l->n_heads - 1),
					   t->head_stride, &b) ||
		    __builtin_add_overflow(t->offset, a, &end) ||
		    __builtin_add_overflow(end, b, &end) ||
		    __builtin_add_overflow(end, row, &end) || end > l->bytes)
			return -EINVAL;
	}
	return 0;
}

static int check_request(const struct model *m, const struct kv_cache *kv,
			 const uint32_t *tokens, uint32_t n)
{
	uint64_t end;
	int ret;

	if (!n || !tokens)
		return -EINVAL;
	ret = kv_check(m, kv);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < n; i++)
		if (tokens[i] >= m->c.vocab)
			return -EINVAL;
	end = (uint64_t)kv->tokens + n;
	if (end > kv->layout->max_tokens || end > m->c.max_seq)
		return -ENOSPC;
	return 0;
}

/* cos, sin of every rotary pair at position @pos, into @cs [head_dim]. */
static void rope_table(const struct model *m, float *cs, uint32_t pos)
{
	for (uint32_t i = 0; i < m->c.head_dim / 2; i++) {
		double s, c;

		det_sincos((double)pos * m->inv_freq[i], &s, &c);
		cs[2 * i] = (float)c;
		cs[2 * i + 1] = (float)s;
	}
}

static void rope_apply(float *x, const float *cs, uint32_t head_dim)
{
	for (uint32_t i = 0; i < head_dim; i += 2) {
		float a = x[i], b = x[i + 1], c = cs[i], s = cs[i + 1];

		x[i] = a * c - b * s;
		x[i + 1] = a * s + b * c;
	}
}

/* Layer @l of the token at @pos, residual @xr, rotary table @cs. */
static void layer_token(struct model *m, struct kv_cache *kv, uint32_t l,
			float *xr, const float *cs, uint32_t pos)
{
	const struct layer_w *w = &m->layer[l];
	const struct kv_layout *lay = kv->layout;
	const struct kv_tensor *kt = &lay->k[l], *vt = &lay->v[l];
	uint32_t d = m->d, hd = m->c.head_dim, ff = m->c.d_ff;

	rmsnorm(m->xn, xr, w->attn_norm, d);
	matvec(m->q, w->wq, m->xn, d, d);
	matvec(m->k, w->wk, m->xn, d, d);
	matvec(m->v, w->wv, m->xn, d, d);
	for (uint32_t h = 0; h < m->c.n_heads; h++) {
		rope_apply(m->q + (size_t)h * hd, cs, hd);
		rope_apply(m->k + (size_t)h * hd, cs, hd);
		kv_store(kv_at(kv->base, kt, pos, h), m->k + (size_t)h * hd,
			 hd, lay->dtype);
		kv_store(kv_at(kv->base, vt, pos, h), m->v + (size_t)h * hd,
			 hd, lay->dtype);
	}

	for (uint32_t h = 0; h < m->c.n_heads; h++) {
		const float *qh = m->q + (size_t)h * hd;
		float *oh = m->att + (size_t)h * hd;

		for (uint32_t s = 0; s <= pos; s++) {
			kv_load(m->row, kv_at(kv->base, kt, s, h), hd,
				lay->dtype);
			m->scores[s] = dot(qh, m->row, hd) * m->attn_scale;
		}
		softmax(m->scores, pos + 1);
		memset(oh, 0, (size_t)hd * sizeof(float));
		for (uint32_t s = 0; s <= pos; s++) {
			float p = m->scores[s];

			kv_load(m->row, kv_at(kv->base, vt, s, h), hd,
				lay->dtype);
			for (uint32_t i = 0; i < hd; i++)
				oh[i] += p * m->row[i];
		}
	}
	matvec(m->tmp, w->wo, m->att, d, d);
	for (uint32_t i = 0; i < d; i++)
		xr[i] += m->tmp[i];

	rmsnorm(m->xn, xr, w->mlp_norm, d);
	matvec(m->gate, w->w_gate, m->xn, ff, d);
	matvec(m->up, w->w_up, m->xn, ff, d);
	for (uint32_t j = 0; j < ff; j++)
		m->gate[j] = silu(m->gate[j]) * m->up[j];
	matvec(m->tmp, w->w_down, m->gate, d, ff);
	for (uint32_t i = 0; i < d; i++)
		xr[i] += m->tmp[i];
}

/* The checked forward pass of prefill and decode alike. */
static void forward(struct model *m, struct kv_cache *kv,
		    const uint32_t *tokens, uint32_t n, float *logits,
		    void (*layer_done)(void *arg, uint32_t layer), void *arg)
{
	uint32_t p0 = kv->tokens, d = m->d, hd = m->c.head_dim;

	for (uint32_t t = 0; t < n; t++) {
		memcpy(m->x + (size_t)t * d, m->embed + (size_t)tokens[t] * d,
		       (size_t)d * sizeof(float));
		rope_table(m, m->rope + (size_t)t * hd, p0 + t);
	}
	for (uint32_t l = 0; l < m->c.n_layers; l++) {
		for (uint32_t t = 0; t < n; t++)
			layer_token(m, kv, l, m->x + (size_t)t * d,
				    m->rope + (size_t)t * hd, p0 + t);
		if (layer_done)
			layer_done(arg, l);
	}
	kv->tokens = p0 + n;
	if (logits) {
		rmsnorm(m->xn, m->x + (size_t)(n - 1) * d, m->final_norm, d);
		matvec(logits, m->w_out, m->xn, m->c.vocab, d);
	}
}

int model_prefill(struct model *m, struct kv_cache *kv, const uint32_t *prompt,
		  uint32_t n, float *logits,
		  void (*layer_done)(void *arg, uint32_t layer), void *arg)
{
	int ret = check_request(m, kv, prompt, n);

	if (ret)
		return ret;
	forward(m, kv, prompt, n, logits, layer_done, arg);
	return 0;
}

int model_decode_step(struct model *m, struct kv_cache *kv, uint32_t token,
		      float *logits)
{
	return model_prefill(m, kv, &token, 1, logits, NULL, NULL);
}

uint32_t model_argmax(const float *logits, uint32_t vocab)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < vocab; i++)
		if (logits[i] > logits[best] ||
		    (logits[best] != logits[best] && logits[i] == logits[i]))
			best = i;		/* a NaN never wins */
	return best;
}

int model_generate(struct model *m, struct kv_cache *kv, uint32_t first,
		   uint32_t n, uint32_t *out, float *last_logits)
{
	uint64_t end;
	int ret;

	if (!n || !out)
		return -EINVAL;
	ret = check_request(m, kv, &first, 1);
	if (ret)
		return ret;
	end = (uint64_t)kv->tokens + n;
	if (end > kv->layout->max_tokens || end > m->c.max_seq)
		return -ENOSPC;

	out[0] = first;
	for (uint32_t i = 0; i < n; i++) {
		/* Checked above: the token is < vocab, the space is there. */
		forward(m, kv, &out[i], 1, m->logits, NULL, NULL);
		if (i + 1 < n)
			out[i + 1] = model_argmax(m->logits, m->c.vocab);
	}
	if (last_logits)
		memcpy(last_logits, m->logits, (size_t)m->c.vocab * sizeof(float));
	return 0;
}
