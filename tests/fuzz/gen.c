// SPDX-License-Identifier: GPL-2.0
/*
 * One ioctl from the spec: generate every field by its kind (valid, or an
 * edge/invalid value), let the command's hook fix what the spec cannot
 * say, classify from the bytes the kernel will see whether the call must
 * fail, call, and check the result: the errno against the command's
 * documented ones, success against the must-fail reasons, every out field
 * against its attributes (kernel addresses, ranges, masks, errnos), and
 * the canaries after every out array.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dmaplane.h>

#include "dpfuzz.h"

#define CANARY	0xcd

static const uint64_t edges[] = {
	0, 1, 2, 3, 7, 8, 255, 256, 4095, 4096, 4097, 8191, 65535, 65536,
	65537, 1 << 20, (2 << 20) + 1, (4 << 20) + 4096, 0x7fffffff,
	0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 1ULL << 32,
	(1ULL << 32) + 4096, (1ULL << 40) - 4096, 1ULL << 40, (1ULL << 40) + 1,
	0x7fffffffffffffffULL, 1ULL << 63, (1ULL << 63) + 4096,
	0xffff800000000000ULL, 0xffffffffffff0000ULL, ~0ULL - 4095, ~0ULL - 1,
	~0ULL,
};
#define NEDGES (sizeof(edges) / sizeof(edges[0]))

static uint64_t width_mask(const struct spec_field *f)
{
	return f->size >= 8 ? ~0ULL : (1ULL << (8 * f->size)) - 1;
}

int fld_signed(const struct spec_field *f)
{
	return f->type == T_S32;
}

uint64_t fld_get(const uint8_t *base, const struct spec_field *f)
{
	const uint8_t *p = base + f->off;
	uint64_t v = 0;

	switch (f->size) {
	case 1: v = *p; break;
	case 2: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
	case 4: {
		uint32_t x;

		memcpy(&x, p, 4);
		v = fld_signed(f) ? (uint64_t)(int64_t)(int32_t)x : x;
		break;
	}
	case 8: memcpy(&v, p, 8); break;
	default: break;
	}
	return v;
}

void fld_set(uint8_t *base, const struct spec_field *f, uint64_t v)
{
	uint8_t *p = base + f->off;

	switch (f->size) {
	case 1: *p = (uint8_t)v; break;
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	case 8: memcpy(p, &v, 8); break;
	default: break;
	}
}

/* "a" or "a.b" (a struct field's field): the field and its offset. */
static const struct spec_field *resolve(const struct spec_struct *st,
					const char *name, unsigned int *off)
{
	const char *dot = strchr(name, '.');
	const struct spec_field *f;
	char head[48];

	if (!dot) {
		f = spec_field(st, name);
		*off = f ? f->off : 0;
		return f;
	}
	snprintf(head, sizeof(head), "%.*s", (int)(dot - name), name);
	f = spec_field(st, head);
	if (!f || f->type != T_STRUCT)
		return NULL;
	st = f->sub;
	*off = f->off;
	f = spec_field(st, dot + 1);
	if (f)
		*off += f->off;
	return f;
}

static uint64_t get_at(const uint8_t *base, const struct spec_struct *st,
		       const char *name)
{
	unsigned int off;
	const struct spec_field *f = resolve(st, name, &off);

	if (!f) {
		fprintf(stderr, "dpfuzz: internal: no field %s in %s\n", name,
			st->name);
		abort();
	}
	return fld_get(base + off - f->off, f);
}

const struct spec_field *cf(const struct call *c, const char *name)
{
	unsigned int off;

	return resolve(c->st, name, &off);
}

uint64_t fget(const struct call *c, const char *name)
{
	return get_at(c->buf, c->st, name);
}

uint64_t fget_in(const struct call *c, const char *name)
{
	return get_at(c->in, c->st, name);
}

uint64_t fget_out(const struct call *c, const char *name)
{
	return get_at(c->out, c->st, name);
}

void fset(struct call *c, const char *name, uint64_t v)
{
	unsigned int off;
	const struct spec_field *f = resolve(c->st, name, &off);

	if (!f) {
		fprintf(stderr, "dpfuzz: internal: no field %s in %s\n", name,
			c->st->name);
		abort();
	}
	fld_set(c->buf + off - f->off, f, v);
}

void must(struct call *c, const char *fmt, ...)
{
	size_t len = strlen(c->must);
	va_list ap;

	if (len + 4 >= sizeof(c->must))
		return;
	if (len) {
		strcpy(c->must + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->must + len, sizeof(c->must) - len, fmt, ap);
	va_end(ap);
}

void *arena_alloc(struct tstate *t, size_t n)
{
	void *p;

	n = (n + 63) & ~(size_t)63;
	if (t->arena_used + n > ARENA_SIZE)
		return NULL;
	p = t->arena + t->arena_used;
	t->arena_used += n;
	return p;
}

void call_checkout(struct call *c, int res)
{
	if (res >= 0 && c->nco < (int)(sizeof(c->co) / sizeof(c->co[0])))
		c->co[c->nco++] = res;
}

static int res_type_of(const char *name)
{
	if (!strcmp(name, "buffer"))
		return R_BUFFER;
	if (!strcmp(name, "endpoint"))
		return R_ENDPOINT;
	if (!strcmp(name, "mr"))
		return R_MR;
	if (!strcmp(name, "dmabuf"))
		return R_DMABUF;
	if (!strcmp(name, "eventfd"))
		return R_EVENTFD;
	return R_NONE;
}

/* ---- generation ---- */

static uint64_t gen_edge(struct rng *r, const struct spec_field *f)
{
	uint64_t v;

	switch (rbelow(r, 10)) {
	case 0:
		v = rnext(r);
		break;
	case 1:
		v = rbelow(r, 64);
		break;
	case 2:
		v = 1ULL << rbelow(r, 8 * f->size);
		break;
	default:
		v = edges[rbelow(r, NEDGES)];
		break;
	}
	return v & width_mask(f);
}

struct pick_arg {
	int dev;
	unsigned int devgen;
	const char *sub;
	int want_dev;	/* 1: this dev, 0: another dev */
	int type_not;
};

static int pred_handle(const struct res *x, void *a)
{
	const struct pick_arg *p = a;

	if (p->want_dev ? x->dev != p->dev || x->devgen != p->devgen :
	    x->dev == p->dev)
		return 0;
	if (p->sub && p->sub[0] && x->type == R_ENDPOINT) {
		if (!strcmp(p->sub, "idle") && x->state != EP_IDLE)
			return 0;
		if (!strcmp(p->sub, "listener") && x->state != EP_LISTENING)
			return 0;
		if (!strcmp(p->sub, "connected") && x->state != EP_CONNECTED)
			return 0;
	}
	return 1;
}

/* A valid handle of @f's type on this call's devfd; 0 if there is none. */
int handle_pick(struct call *c, const struct spec_field *f, int *resi)
{
	struct pick_arg a = { .dev = c->dev, .want_dev = 1 };
	int type = res_type_of(f->res), i;

	*resi = -1;
	if (c->dev < 0)
		return 0;
	a.devgen = g.dev[c->dev].gen;
	a.sub = f->sub_res;
	i = res_pick(c->r, type, pred_handle, &a, 0);
	if (i < 0 && a.sub[0] && rchance(c->r, 50)) {
		a.sub = NULL;	/* one in another state: may fail */
		i = res_pick(c->r, type, pred_handle, &a, 0);
	}
	if (i < 0)
		return 0;
	*resi = i;
	return (int)g.res[i].handle;
}

static uint32_t bad_handle(struct call *c, const struct spec_field *f)
{
	struct pick_arg a = { .dev = c->dev, .want_dev = 1 };
	int type = res_type_of(f->res), i, other;

	if (c->dev >= 0)
		a.devgen = g.dev[c->dev].gen;
	switch (rbelow(c->r, 7)) {
	case 0:
		return 0;
	case 1:
		return (uint32_t)(edges[rbelow(c->r, NEDGES)] | (1U << 21));
	case 2:	/* another type on this fd */
		other = type == R_BUFFER ? R_ENDPOINT :
			type == R_ENDPOINT ? R_MR : R_BUFFER;
		if (rchance(c->r, 50))
			other = type == R_MR ? R_ENDPOINT : R_MR;
		i = res_pick(c->r, other, pred_handle, &a, 0);
		return i >= 0 ? g.res[i].handle : 1;
	case 3:	/* destroyed */
		if (c->dev >= 0 && g.dev[c->dev].nstale)
			return g.dev[c->dev].stale[rbelow(c->r,
				g.dev[c->dev].nstale < STALE_RING ?
				g.dev[c->dev].nstale : STALE_RING)];
		return 2;
	case 4:	/* another file's */
		a.want_dev = 0;
		i = res_pick(c->r, type, pred_handle, &a, 0);
		return i >= 0 ? g.res[i].handle : 3;
	default:
		return (uint32_t)(1 + rbelow(c->r, 64));
	}
}

static int pred_fd(const struct res *x, void *a)
{
	(void)a;
	return x->fd >= 0;
}

int fd_pick(struct call *c, const struct spec_field *f, int *resi)
{
	int i = res_pick(c->r, res_type_of(f->res), pred_fd, NULL, 1);

	*resi = i;
	if (i < 0)
		return -1;
	call_checkout(c, i);
	return g.res[i].fd;
}

static int bad_fd(struct call *c, const struct spec_field *f, int *resi)
{
	int i;

	switch (rbelow(c->r, 7)) {
	case 0:
		return -2;
	case 1:
		return 1 << 20;
	case 2:
		return INT32_MIN;
	case 3:	/* another type */
		i = res_pick(c->r, res_type_of(f->res) == R_DMABUF ?
			     R_EVENTFD : R_DMABUF, pred_fd, NULL, 1);
		if (i >= 0) {
			call_checkout(c, i);
			*resi = i;
			return g.res[i].fd;
		}
		return c->fd;
	case 4:
		return c->fd;	/* /dev/dmaplane itself */
	case 5:
		return (int)rbelow(c->r, 3);	/* stdio */
	default:
		return f->neg1_ok ? -3 : -1;
	}
}

static uint64_t gen_size(struct call *c, const struct spec_field *f, int bad)
{
	static const uint64_t sizes[] = {
		1, 100, 4095, 4096, 4097, 8192, 12288, 65536, 65537,
		(1 << 20), (2 << 20) - 1, (2 << 20), (2 << 20) + 1, (4 << 20),
	};
	int64_t max = f->max_param[0] ? spec_param(&g.spec, f->max_param) :
		      f->max;
	int64_t left = (int64_t)g.o.mem_budget - __atomic_load_n(&g.budget_used,
								 __ATOMIC_RELAXED);
	uint64_t v;
	int tries;

	if (bad) {
		switch (rbelow(c->r, 5)) {
		case 0: return 0;
		case 1: return (uint64_t)max + 1;
		case 2: return (uint64_t)max + 4096;
		default: return gen_edge(c->r, f);
		}
	}
	for (tries = 0; tries < 8; tries++) {
		v = sizes[rbelow(c->r, sizeof(sizes) / sizeof(sizes[0]))];
		if (rchance(c->r, 20))
			v = 1 + rbelow(c->r, 256 << 10);
		if (f->has_min && v < (uint64_t)f->min)
			v = (uint64_t)f->min;
		if (!f->budget || (int64_t)v <= left)
			return v;
	}
	return f->has_min ? (uint64_t)f->min : 4096;
}

/* Size of the object @f (an offset or length) indexes, or 0: unknown. */
static uint64_t object_size(const struct call *c, const struct spec_field *f)
{
	int fi;

	if (!f->res[0])
		return 0;
	fi = spec_field_index(c->st, f->res);
	if (fi < 0 || c->fres[fi] < 0)
		return 0;
	return c->fcopy[fi].size;
}

static uint64_t gen_offset(struct call *c, const struct spec_field *f, int bad)
{
	uint64_t s = object_size(c, f), a = f->align ? f->align : 1;

	if (!s)
		s = a * (1 + rbelow(c->r, 16));
	if (bad) {
		switch (rbelow(c->r, 6)) {
		case 0: return s;
		case 1: return s + a;
		case 2: return a > 1 ? a / 2 + 1 : s + 1;
		case 3: return s - 1;
		default: return gen_edge(c->r, f);
		}
	}
	if (rchance(c->r, 50) || s < a)
		return 0;
	return rbelow(c->r, s / a) * a;
}

static uint64_t gen_length(struct call *c, const struct spec_field *f, int bad)
{
	uint64_t s = object_size(c, f), off = 0, rem;

	if (f->from[0])
		off = fget(c, f->from);
	if (!s)
		s = 4096 * (1 + rbelow(c->r, 16));
	rem = off < s ? s - off : 0;
	if (bad) {
		switch (rbelow(c->r, 6)) {
		case 0: return rem + 1;
		case 1: return s + 4096;
		case 2: return f->zero_invalid ? 0 : (1ULL << 31) + 1;
		case 3: return ~0ULL - off + 1;	/* wraps */
		default: return gen_edge(c->r, f);
		}
	}
	if ((f->zero_whole || f->zero_ok) && rchance(c->r, 25))
		return 0;
	if (!rem)
		return f->zero_invalid ? 4096 : 0;
	if (rchance(c->r, 30))
		return rem;
	if (rchance(c->r, 50))
		return 1 + rbelow(c->r, rem < 8192 ? rem : 8192);
	return 1 + rbelow(c->r, rem);
}

static uint64_t gen_range(struct call *c, const struct spec_field *f, int bad)
{
	if (bad) {
		switch (rbelow(c->r, 4)) {
		case 0:
			if (f->min > 0 || fld_signed(f))
				return (uint64_t)(f->min - 1) & width_mask(f);
			return (uint64_t)(f->max + 1) & width_mask(f);
		case 1:
			return (uint64_t)(f->max + 1) & width_mask(f);
		default:
			return gen_edge(c->r, f);
		}
	}
	if (f->has_cheap && rchance(c->r, 85)) {
		int64_t hi = f->cheap < f->max ? f->cheap : f->max;

		return (uint64_t)(f->min + (int64_t)rbelow(c->r, hi - f->min + 1));
	}
	switch (rbelow(c->r, 4)) {
	case 0: return (uint64_t)f->min;
	case 1: return (uint64_t)f->max;
	default: return (uint64_t)(f->min + (int64_t)rbelow(c->r, f->max - f->min + 1));
	}
}

static int in_vals(const struct spec_field *f, uint64_t v)
{
	int i;

	for (i = 0; i < f->nvals; i++) {
		if (fld_signed(f) ? ((int64_t)v >= f->vlo[i] && (int64_t)v <= f->vhi[i]) :
		    (v >= (uint64_t)f->vlo[i] && v <= (uint64_t)f->vhi[i]))
			return 1;
	}
	return 0;
}

static uint64_t gen_enum(struct call *c, const struct spec_field *f, int bad)
{
	int i = (int)rbelow(c->r, f->nvals);
	uint64_t v;
	int tries;

	if (!bad)
		return (uint64_t)(f->vlo[i] + (int64_t)rbelow(c->r, f->vhi[i] - f->vlo[i] + 1));
	for (tries = 0; tries < 16; tries++) {
		v = rchance(c->r, 50) ? (uint64_t)(f->vhi[i] + 1) & width_mask(f) :
		    gen_edge(c->r, f);
		if (!in_vals(f, v))
			return v;
	}
	return width_mask(f);
}

static uint64_t gen_flags(struct call *c, const struct spec_field *f, int bad)
{
	uint64_t v = rnext(c->r) & f->mask, outside = ~f->mask & width_mask(f);

	if (f->has_one && __builtin_popcountll(v & f->one) > 1) {
		uint64_t keep = v & f->one;

		v &= ~f->one;
		v |= keep & -keep;	/* lowest of them */
	}
	if (f->has_needs && (v & f->needs_a))
		v |= f->needs_b;
	if (rchance(c->r, 30))
		v = 0;
	if (!bad)
		return v;
	switch (rbelow(c->r, 3)) {
	case 0:
		if (f->has_one && __builtin_popcountll(f->one) > 1)
			return v | f->one;
		break;
	case 1:
		if (f->has_needs)
			return (v | f->needs_a) & ~f->needs_b;
		break;
	default:
		break;
	}
	if (!outside)
		return v;
	if (rchance(c->r, 30))
		return v | outside;
	for (;;) {
		uint64_t bit = 1ULL << rbelow(c->r, 8 * f->size);

		if (bit & outside)
			return v | bit;
	}
}

static const char *guest_ip(void)
{
	return g.guest_ip[0] ? g.guest_ip : "127.0.0.1";
}

static int pred_listener(const struct res *x, void *a)
{
	(void)a;
	return x->state == EP_LISTENING && x->port;
}

static void gen_ipaddr(struct call *c, uint8_t *p, int family, int bad)
{
	static const uint8_t v6_lo[16] = { [15] = 1 };
	static const uint8_t v6_ll[16] = { 0xfe, 0x80, [15] = 1 };
	unsigned int a, b, cc, d;

	memset(p, 0, 16);
	if (bad || rchance(c->r, 10)) {
		for (int i = 0; i < 16; i++)
			p[i] = (uint8_t)rnext(c->r);
		return;
	}
	if (family == 10) {
		switch (rbelow(c->r, 3)) {
		case 0: memcpy(p, v6_lo, 16); break;
		case 1: memcpy(p, v6_ll, 16); break;
		default: break;
		}
		return;
	}
	switch (rbelow(c->r, 8)) {
	case 0: a = 127; b = 0; cc = 0; d = 1; break;
	case 1: a = b = cc = d = 0; break;
	case 2: a = 10; b = 77; cc = 0; d = 250; break;	/* nobody */
	default:
		if (sscanf(guest_ip(), "%u.%u.%u.%u", &a, &b, &cc, &d) != 4)
			a = 127, b = 0, cc = 0, d = 1;
		break;
	}
	p[0] = (uint8_t)a;
	p[1] = (uint8_t)b;
	p[2] = (uint8_t)cc;
	p[3] = (uint8_t)d;
}

static void gen_struct(struct call *c, uint8_t *base, const struct spec_struct *st,
		       int mode, int bad_field, int pass);

/* Field @fi of @st at @base. Pass 1: all but pointers and what depends
 * on other fields; pass 2: those. */
static void gen_field(struct call *c, uint8_t *base, const struct spec_struct *st,
		      int fi, int bad, int pass)
{
	const struct spec_field *f = &st->f[fi];
	int top = st == c->st;
	int late = f->kind == K_OFFSET || f->kind == K_LENGTH ||
		   f->kind == K_UPTR || f->kind == K_UADDR ||
		   f->kind == K_IPADDR;
	uint64_t v = 0;
	int resi = -1;

	if (f->type == T_STRUCT) {
		int sub_bad = bad ? (int)rbelow(c->r, f->sub->nf) : -1;

		if (f->kind == K_OUT) {
			if (pass == 1)
				memset(base + f->off, rchance(c->r, 50) ? 0 : 0xa5,
				       f->size);
			return;
		}
		gen_struct(c, base + f->off, f->sub, bad ? M_ONEBAD : M_VALID,
			   sub_bad, pass);
		return;
	}
	if ((pass == 2) != late)
		return;
	switch (f->kind) {
	case K_U:
		v = rchance(c->r, 50) ? rnext(c->r) : gen_edge(c->r, f);
		if (f->echo && rchance(c->r, 80))
			v = rnext(c->r) & 0x7fffffffffffULL;
		break;
	case K_FLAGS:
		v = gen_flags(c, f, bad);
		break;
	case K_RESERVED:
		v = bad ? (rchance(c->r, 50) ? 1 : gen_edge(c->r, f) | 1) : 0;
		break;
	case K_RANGE:
		v = gen_range(c, f, bad);
		break;
	case K_ENUM:
		v = gen_enum(c, f, bad);
		break;
	case K_HANDLE:
		if (bad)
			v = bad_handle(c, f);
		else if (f->zero_ok && rchance(c->r, 20))
			v = 0;
		else
			v = (uint64_t)handle_pick(c, f, &resi);
		if (!bad && !v && !f->zero_ok)
			v = 1 + rbelow(c->r, 8);
		break;
	case K_FD:
		if (bad)
			v = (uint64_t)(int64_t)bad_fd(c, f, &resi);
		else if (f->neg1_ok && rchance(c->r, 15))
			v = (uint64_t)-1;
		else
			v = (uint64_t)(int64_t)fd_pick(c, f, &resi);
		break;
	case K_NODE:
		if (bad) {
			static const int64_t bn[] = { -2, INT32_MIN, 64, 1024,
						      INT32_MAX, 1, 2, 3 };

			v = (uint64_t)bn[rbelow(c->r, sizeof(bn) / sizeof(bn[0]))];
		} else if (rchance(c->r, 40) || !g.nr_nodes) {
			v = (uint64_t)-1;
		} else {
			int n = (int)rbelow(c->r, 64), k;

			for (k = 0; k < 64; k++)
				if (g.node_online[(n + k) % 64])
					break;
			v = (uint64_t)((n + k) % 64);
		}
		break;
	case K_SIZE:
		v = gen_size(c, f, bad);
		break;
	case K_OFFSET:
		v = gen_offset(c, f, bad);
		break;
	case K_LENGTH:
		v = gen_length(c, f, bad);
		break;
	case K_COUNT:
		if (bad) {
			v = rchance(c->r, 50) && f->has_max ? (uint64_t)f->max + 1 :
			    rchance(c->r, 50) ? 0 : gen_edge(c->r, f);
		} else {
			int64_t lo = f->has_min ? f->min : 0;
			int64_t hi = f->has_cheap ? f->cheap :
				     f->has_max && f->max < 16 ? f->max : 16;

			if (hi < lo)
				hi = lo;
			v = (uint64_t)(lo + (int64_t)rbelow(c->r, hi - lo + 1));
			if (f->has_max && rchance(c->r, 5))
				v = (uint64_t)f->max;
		}
		break;
	case K_UPTR:
		if (f->dir_in)
			return;		/* the command's hook builds it */
		{
			uint64_t n = fld_get(base, spec_field(st, f->count));
			size_t bytes, alloc;
			struct uarr *a;
			uint8_t *p;

			if (f->count_sq)
				n *= n;
			bytes = n > (64 << 10) / f->elem_size ? 64 << 10 :
				(size_t)n * f->elem_size;
			alloc = bytes + 64;
			p = arena_alloc(c->t, alloc);
			if (!p || c->narr == 4) {
				v = 0;
				break;
			}
			memset(p, CANARY, alloc);
			a = &c->arr[c->narr++];
			a->f = f;
			a->p = p;
			a->bytes = bytes;
			a->count = n;
			/* a canary only where the whole array fits */
			a->canary = bytes == (size_t)n * f->elem_size ? 64 : 0;
			v = (uint64_t)(uintptr_t)p;
			if (!bad && !(n == 0 && rchance(c->r, 50)))
				break;
			if (!bad) {
				v = 0;
				break;
			}
			a->canary = 0;
			switch (rbelow(c->r, 6)) {
			case 0: v = 0; break;
			case 1: v = 0xffff888000000000ULL; break;
			case 2: v = 0x0000800000000000ULL; break;
			case 3:	/* straddles into the guard page */
				v = (uint64_t)(uintptr_t)(c->t->guard + 4096 -
					(f->elem_size > 4096 ? 8 : f->elem_size / 2 + 1));
				break;
			case 4: v = (uint64_t)(uintptr_t)c->t->ropage; break;
			default: v = (uint64_t)(uintptr_t)(p + 1); a->canary = 0; break;
			}
		}
		break;
	case K_UADDR:
		v = 0;
		if (bad)
			v = gen_edge(c->r, f);
		break;
	case K_PORT:
		if (rchance(c->r, 40)) {
			int i = res_pick(c->r, R_ENDPOINT, pred_listener, NULL, 0);

			v = i >= 0 ? g.res[i].port : 0;
		} else {
			v = rchance(c->r, 60) ? 0 : 1024 + rbelow(c->r, 64000);
		}
		break;
	case K_IPADDR:
		gen_ipaddr(c, base + f->off,
			   (int)get_at(base, st, "family"), bad);
		return;
	case K_OUT:
		switch (rbelow(c->r, 4)) {
		case 0: case 1: v = 0; break;
		case 2: v = 0xa5a5a5a5a5a5a5a5ULL; break;
		default: v = rnext(c->r); break;
		}
		if (f->type == T_CHARS || f->type == T_BYTES) {
			memset(base + f->off, (int)(v & 0xff), f->size);
			return;
		}
		break;
	default:
		break;
	}
	if (f->type == T_CHARS || f->type == T_BYTES)
		return;
	fld_set(base, f, v);
	if (top && resi >= 0) {
		c->fres[fi] = resi;
		pool_lock();
		c->fcopy[fi] = g.res[resi];
		c->fcopy[fi].cookies = NULL;
		pool_unlock();
	}
}

static void gen_struct(struct call *c, uint8_t *base, const struct spec_struct *st,
		       int mode, int bad_field, int pass)
{
	int i;

	for (i = 0; i < st->nf; i++) {
		int bad = mode == M_CHAOS ? rchance(c->r, 30) :
			  mode == M_ONEBAD ? i == bad_field : 0;

		gen_field(c, base, st, i, bad, pass);
	}
}

void call_init(struct call *c, struct tstate *t, struct rng *r, int ci,
	       int dev, int mode)
{
	int i;

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->r = r;
	c->ci = ci;
	c->cmd = &g.spec.cmd[ci];
	c->st = c->cmd->st;
	c->ksize = c->st->size;
	c->usize = c->ksize;
	c->mode = mode;
	c->dev = dev;
	c->fd = dev >= 0 ? g.dev[dev].fd : -1;
	c->excl = dev_excl(t, dev);
	c->post_first_bad = -1;
	c->aux = -1;
	c->deadline_ms = 3000;
	for (i = 0; i < SPEC_MAX_FIELDS; i++)
		c->fres[i] = -1;
	c->bad_field = -1;
	if (mode == M_ONEBAD) {
		int cand[SPEC_MAX_FIELDS], n = 0;

		for (i = 0; i < c->st->nf; i++)
			if (c->st->f[i].kind != K_OUT)
				cand[n++] = i;
		if (n)
			c->bad_field = cand[rbelow(r, n)];
	}
	t->arena_used = 0;
}

void call_generate(struct call *c)
{
	gen_struct(c, c->buf, c->st, c->mode, c->bad_field, 1);
	gen_struct(c, c->buf, c->st, c->mode, c->bad_field, 2);
}

/* ---- classification: from the bytes the kernel sees ---- */

static int node_ok(int64_t n)
{
	return n == -1 || (n >= 0 && n < 64 && g.node_online[n]);
}

static void classify_struct(struct call *c, const uint8_t *base,
			    const struct spec_struct *st, const char *prefix)
{
	int i;

	for (i = 0; i < st->nf; i++) {
		const struct spec_field *f = &st->f[i];
		uint64_t v = fld_get(base, f);
		int top = st == c->st;
		char name[100];

		snprintf(name, sizeof(name), "%s%s", prefix, f->name);
		if (f->type == T_STRUCT) {
			if (f->kind == K_IN || f->kind == K_INOUT) {
				char sub[128];

				snprintf(sub, sizeof(sub), "%s.", name);
				classify_struct(c, base + f->off, f->sub, sub);
			}
			continue;
		}
		switch (f->kind) {
		case K_FLAGS:
			if (v & ~f->mask)
				must(c, "%s: bits 0x%" PRIx64 " outside 0x%" PRIx64,
				     name, v & ~f->mask, f->mask);
			if (f->has_one && __builtin_popcountll(v & f->one) > 1)
				must(c, "%s: more than one of 0x%" PRIx64, name,
				     f->one);
			if (f->has_needs && (v & f->needs_a) && !(v & f->needs_b))
				must(c, "%s: 0x%" PRIx64 " without 0x%" PRIx64,
				     name, f->needs_a, f->needs_b);
			break;
		case K_RESERVED:
			if (v)
				must(c, "%s: reserved 0x%" PRIx64, name, v);
			break;
		case K_RANGE:
			if (fld_signed(f) ? ((int64_t)v < f->min || (int64_t)v > f->max) :
			    (v < (uint64_t)f->min || v > (uint64_t)f->max))
				must(c, "%s: %" PRIu64 " outside %" PRId64 "..%" PRId64,
				     name, v, f->min, f->max);
			if (f->le[0] && v > get_at(base, st, f->le))
				must(c, "%s: %" PRIu64 " above %s", name, v, f->le);
			break;
		case K_ENUM:
			if (!in_vals(f, v))
				must(c, "%s: %" PRId64 " not a known value", name,
				     (int64_t)v);
			break;
		case K_HANDLE:
			if (!v && !f->zero_ok) {
				must(c, "%s: handle 0", name);
			} else if (v > (1U << 20)) {
				must(c, "%s: handle 0x%" PRIx64 " above 2^20", name, v);
			} else if (v && c->dev >= 0 && top && !dev_wrapped(c->dev) &&
				   !g.dev[c->dev].tainted) {
				int type = dev_handle_type(c->dev, (uint32_t)v);
				int want = res_type_of(f->res);

				if (type && type != want)
					must(c, "%s: handle %" PRIu64 " is another type", name, v);
				else if (!type && dev_is_stale(c->dev, (uint32_t)v))
					must(c, "%s: handle %" PRIu64 " was destroyed", name, v);
			}
			break;
		case K_FD:
			if ((int64_t)v < -1 || (!f->neg1_ok && (int64_t)v == -1) ||
			    (int64_t)v >= (1 << 20))
				must(c, "%s: fd %" PRId64, name, (int64_t)v);
			else if (top && (((int64_t)v >= 0 && (int64_t)v <= 2) ||
					 (int64_t)v == c->fd ||
					 (c->fres[i] >= 0 &&
					  c->fcopy[i].type != res_type_of(f->res))))
				must(c, "%s: fd %" PRId64 " is not a %s", name,
				     (int64_t)v, f->res);
			break;
		case K_NODE:
			if (g.nodes_known && !node_ok((int64_t)v))
				must(c, "%s: node %" PRId64 " not online", name,
				     (int64_t)v);
			break;
		case K_SIZE: {
			int64_t max = f->max_param[0] ?
				      spec_param(&g.spec, f->max_param) : f->max;

			if ((f->has_min && v < (uint64_t)f->min) ||
			    (f->has_max && v > (uint64_t)max))
				must(c, "%s: %" PRIu64 " outside %" PRId64 "..%" PRId64,
				     name, v, f->min, max);
			break;
		}
		case K_OFFSET:
		case K_LENGTH: {
			uint64_t s = top ? object_size(c, f) : 0;
			uint64_t off = f->kind == K_LENGTH && f->from[0] ?
				       get_at(base, st, f->from) : v;

			if (f->has_max && v > (uint64_t)f->max)
				must(c, "%s: %" PRIu64 " above %" PRId64, name, v,
				     f->max);
			if (f->kind == K_LENGTH && f->zero_invalid && !v)
				must(c, "%s: 0", name);
			if (!f->strict || !s)
				break;
			if (f->kind == K_OFFSET) {
				if (f->align && v % f->align)
					must(c, "%s: %" PRIu64 " not aligned to %" PRIu64,
					     name, v, f->align);
				if (v >= s && f->align)	/* windows start inside */
					must(c, "%s: %" PRIu64 " not inside %" PRIu64,
					     name, v, s);
				if (v > s)
					must(c, "%s: %" PRIu64 " past %" PRIu64,
					     name, v, s);
			} else if (off <= s && v > s - off) {
				must(c, "%s: %" PRIu64 " at %" PRIu64 " past %" PRIu64,
				     name, v, off, s);
			}
			break;
		}
		case K_UPTR: {
			uint64_t n = get_at(base, st, f->count);

			if (f->null_einval && !v && n)
				must(c, "%s: NULL for %" PRIu64 " entries", name, n);
			if (f->needcount && v && !n)
				must(c, "%s: a pointer with no entries", name);
			break;
		}
		case K_COUNT:
			if ((f->has_min && v < (uint64_t)f->min) ||
			    (f->has_max && v > (uint64_t)f->max))
				must(c, "%s: count %" PRIu64 " outside %" PRId64 "..%" PRId64,
				     name, v, f->min, f->max);
			break;
		case K_UADDR: {
			uint64_t w = get_at(base, st, f->when);
			uint64_t len = get_at(base, st, f->len), end;

			if (!(w & f->when_bit)) {
				if (v)
					must(c, "%s: 0x%" PRIx64 " without the flag",
					     name, v);
			} else if (v % g.spec.page ||
				   __builtin_add_overflow(v, len, &end)) {
				must(c, "%s: 0x%" PRIx64 " unaligned or wrapping",
				     name, v);
			}
			break;
		}
		default:
			break;
		}
	}
}

/* ---- checking results ---- */

static void check_out_struct(struct call *c, const uint8_t *base,
			     const struct spec_struct *st, unsigned int limit,
			     int all_out, const char *prefix)
{
	int i;

	for (i = 0; i < st->nf; i++) {
		const struct spec_field *f = &st->f[i];
		int out = all_out || f->kind == K_OUT;
		char name[100];
		uint64_t v;

		if (f->off + f->size > limit)
			break;
		snprintf(name, sizeof(name), "%s%s", prefix, f->name);
		if (f->type == T_STRUCT) {
			if (f->kind == K_OUT || f->kind == K_INOUT || all_out) {
				char sub[128];

				snprintf(sub, sizeof(sub), "%s.", name);
				check_out_struct(c, base + f->off, f->sub, f->size,
						 f->kind == K_OUT || all_out, sub);
			}
			continue;
		}
		if (!out)
			continue;
		if (f->type == T_CHARS) {
			if (f->cstr && !memchr(base + f->off, 0, f->size))
				finding(c->t, 1, "result-cstr",
					"%s: %s is not NUL-terminated",
					c->cmd->name, name);
			continue;
		}
		if (f->type == T_BYTES)
			continue;
		v = fld_get(base, f);
		if (f->size == 8 && !f->noaddr && !f->echo) {
			__atomic_fetch_add(&g.sh->kaddr_checked, 1, __ATOMIC_RELAXED);
			if (v >= KADDR_MIN) {
				char key[256];

				snprintf(key, sizeof(key), "kaddr:%s:%s",
					 c->cmd->name, name);
				finding(c->t, 1, key,
					"%s returned %s = 0x%" PRIx64 ", a kernel address",
					c->cmd->name, name, v);
			}
		}
		if (f->kind != K_OUT)
			continue;	/* an input's rules do not bind results */
		if ((f->nvals && !in_vals(f, v)) ||
		    (f->has_mask && (v & ~f->mask)) ||
		    (f->has_max && !f->max_param[0] &&
		     (fld_signed(f) ? (int64_t)v > f->max : v > (uint64_t)f->max)) ||
		    (f->has_min &&
		     (fld_signed(f) ? (int64_t)v < f->min : v < (uint64_t)f->min))) {
			char key[256];

			snprintf(key, sizeof(key), "result:%s:%s", c->cmd->name,
				 name);
			finding(c->t, 1, key, "%s returned %s = %" PRId64 " (0x%" PRIx64 "), outside what the spec allows",
				c->cmd->name, name, (int64_t)v, v);
		}
		if (f->has_errset && v &&
		    (!fld_signed(f) || !errset_has(&f->errs, -(int)(int64_t)v))) {
			char key[256];
			const char *en = errno_name(-(int)(int64_t)v);

			snprintf(key, sizeof(key), "result-errno:%s:%s:%s",
				 c->cmd->name, name, en ? en : "?");
			finding(c->t, 1, key, "%s returned %s = %" PRId64 " (%s), not a documented errno",
				c->cmd->name, name, (int64_t)v, en ? en : "?");
		}
	}
}

static void check_arrays(struct call *c, int ok)
{
	int i;

	for (i = 0; i < c->narr; i++) {
		struct uarr *a = &c->arr[i];
		size_t k;

		for (k = 0; k < a->canary; k++) {
			if (a->p[a->bytes + k] != CANARY) {
				char key[256];

				snprintf(key, sizeof(key), "overrun:%s:%s",
					 c->cmd->name, a->f->name);
				finding(c->t, 1, key,
					"%s wrote past the %" PRIu64 " entries %s gave it (byte %zu after the end is 0x%02x)",
					c->cmd->name, a->count, a->f->name, k,
					a->p[a->bytes + k]);
				break;
			}
		}
		if (!ok || (uintptr_t)fget_in(c, a->f->name) != (uintptr_t)a->p)
			continue;
		if (a->f->elem_st || a->f->elem_size == 8) {
			uint64_t n = a->count, w, e;

			if (a->f->written[0]) {
				w = fget_out(c, a->f->written);
				if (a->f->written_sq)
					w *= w;
				if (w < n)
					n = w;
			}
			if (n * a->f->elem_size > a->bytes)
				n = a->bytes / a->f->elem_size;
			for (e = 0; e < n && e < 512; e++) {
				const uint8_t *el = a->p + e * a->f->elem_size;

				if (a->f->elem_st) {
					check_out_struct(c, el, a->f->elem_st,
							 a->f->elem_st->size, 1,
							 a->f->name);
				} else {
					uint64_t v;

					memcpy(&v, el, 8);
					__atomic_fetch_add(&g.sh->kaddr_checked, 1,
							   __ATOMIC_RELAXED);
					if (v >= KADDR_MIN)
						finding(c->t, 1, "kaddr-array",
							"%s: %s[%" PRIu64 "] = 0x%" PRIx64 ", a kernel address",
							c->cmd->name, a->f->name, e, v);
				}
			}
		}
	}
}

static void describe(struct call *c, char *d, size_t len)
{
	size_t n;
	int i;

	n = snprintf(d, len, "%s fd=%d mode=%d usize=%u arg=%d", c->cmd->name,
		     c->fd, c->mode, c->usize, c->argmode);
	for (i = 0; i < c->st->nf && n < len; i++) {
		const struct spec_field *f = &c->st->f[i];
		uint64_t v;

		if (f->kind == K_OUT || f->type == T_STRUCT ||
		    f->type == T_CHARS || f->type == T_BYTES)
			continue;
		v = fld_get(c->in, f);
		if (v)
			n += snprintf(d + n, len - n, " %s=0x%" PRIx64, f->name, v);
	}
	for (i = 0; i < c->st->nf && n < len; i++) {
		const struct spec_field *f = &c->st->f[i];

		if (f->type == T_STRUCT && f->kind != K_OUT)
			n += snprintf(d + n, len - n, " %s.family=%u port=%u ip=%u.%u.%u.%u",
				      f->name, (unsigned int)get_at(c->in + f->off, f->sub, "family"),
				      (unsigned int)get_at(c->in + f->off, f->sub, "port"),
				      c->in[f->off + 8], c->in[f->off + 9],
				      c->in[f->off + 10], c->in[f->off + 11]);
	}
}

/* Where the argument goes and how the command number is built. */
static void choose_arg(struct call *c)
{
	unsigned long dir = _IOC_READ | _IOC_WRITE, type = DMAPLANE_IOC_MAGIC;
	unsigned int nr = c->cmd->nr;
	int r = (int)rbelow(c->r, 1000);
	uint8_t *p;

	c->argmode = 0;
	if (c->mode != M_VALID && rchance(c->r, 10)) {
		switch (rbelow(c->r, 8)) {
		case 0:	/* shorter than the first version */
			c->usize = (unsigned int)rbelow(c->r, c->cmd->v1_end);
			c->expect = EINVAL;
			break;
		case 1:	/* an older caller */
			if (c->cmd->v1_end < c->ksize)
				c->usize = c->cmd->v1_end +
					(unsigned int)rbelow(c->r, c->ksize - c->cmd->v1_end);
			break;
		case 2:	/* a newer caller, zero tail */
			c->usize = c->ksize + 8 * (1 + (unsigned int)rbelow(c->r, 32));
			break;
		case 3:	/* a newer caller, non-zero tail */
			c->usize = c->ksize + 8 * (1 + (unsigned int)rbelow(c->r, 32));
			c->buf[c->ksize + rbelow(c->r, c->usize - c->ksize)] = 1;
			c->expect = E2BIG;
			break;
		case 4:	/* direction bits */
			dir = (unsigned long)rbelow(c->r, 3);
			c->expect = ENOTTY;
			break;
		case 5:
			nr = 0x19 + (unsigned int)rbelow(c->r, 0xff - 0x19 + 1);
			c->expect = ENOTTY;
			break;
		case 6:
			type = rchance(c->r, 50) ? 0xd6 : 0xd8;
			c->expect = ENOTTY;
			break;
		default:
			break;
		}
	}
	c->req = _IOC(dir, type, nr, c->usize);
	memset(c->in, 0, sizeof(c->in));
	memcpy(c->in, c->buf, c->usize < c->ksize ? c->usize : c->ksize);

	p = arena_alloc(c->t, c->usize + 16);
	if (!p) {
		c->t->arena_used = 0;
		p = arena_alloc(c->t, c->usize + 16);
	}
	c->argp = p;
	if (c->mode != M_VALID && r < 30) {
		switch (r % 6) {
		case 0:	/* ends at the guard page */
			if (c->usize <= 4096)
				c->argp = c->t->guard + 4096 - c->usize;
			c->argmode = 1;
			break;
		case 1:
			c->argp = p + 1 + rbelow(c->r, 7);
			c->argmode = 2;
			break;
		case 2:	/* read-only: the result cannot be copied back */
			if (c->usize <= 4096) {
				c->argp = c->t->ropage;
				c->argmode = 3;
			}
			break;
		case 3:
			c->argp = NULL;
			c->argmode = 4;
			break;
		case 4:
			c->argp = (void *)0xffff888000001000ULL;
			c->argmode = 5;
			break;
		default:
			c->argp = c->t->guard + 4096;	/* PROT_NONE */
			c->argmode = 6;
			break;
		}
	}
	if (c->argmode == 3) {
		mprotect(c->t->ropage, 4096, PROT_READ | PROT_WRITE);
		memcpy(c->argp, c->buf, c->usize);
		mprotect(c->t->ropage, 4096, PROT_READ);
	} else if (c->argmode < 3) {
		memcpy(c->argp, c->buf, c->usize);
	}
	/* A bad pointer faults before the tail is looked at. */
	if (c->argmode >= 4 && c->usize >= c->cmd->v1_end &&
	    (!c->expect || c->expect == E2BIG))
		c->expect = EFAULT;
	if (c->argmode == 3 && !c->expect)
		c->expect_efault_or_fail = 1;
}

/* The lowest free fd: an fd a failed call installed would take it. */
static int lowest_free_fd(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

	if (fd >= 0)
		close(fd);
	return fd;
}

int call_run(struct call *c)
{
	const struct hooks *h = hooks_for(c->cmd->name);
	char desc[1024];
	int e, probe = -1, i;

	if (h && h->pre && !c->skip_pre)
		h->pre(c);
	choose_arg(c);
	if (!c->expect) {
		classify_struct(c, c->in, c->st, "");
		if (h && h->classify)
			h->classify(c);
	}
	describe(c, desc, sizeof(desc));
	if (!c->no_log)
		logf_(c->t, "%s%s%s", desc, c->must[0] ? " MUST-FAIL " : "",
		      c->must);
	if (c->argmode == 3 && g.o.threads == 1 && !g.in_child &&
	    c->cmd->creates[0] && !strcmp(c->cmd->creates, "dmabuf"))
		probe = lowest_free_fd();

	call_begin(c->t, c->deadline_ms, desc);
	c->ret = ioctl(c->fd, c->req, c->argp);
	c->err = c->ret < 0 ? errno : 0;
	call_end(c->t);
	stat_call(c->ci, c->err);
	if (!c->no_log)
		logf_(c->t, "  -> %d %s", c->ret, c->ret < 0 ?
		      (errno_name(c->err) ? errno_name(c->err) : "?") : "");

	if (c->argmode <= 3) {
		memset(c->out, 0, sizeof(c->out));
		memcpy(c->out, c->argp, c->usize < c->ksize ? c->usize : c->ksize);
		c->out_valid = 1;
	}
	e = c->err;
	if (c->ret > 0) {
		finding(c->t, 1, "positive", "%s returned %d", c->cmd->name, c->ret);
	} else if (c->expect) {
		if (!c->ret) {
			char key[128];

			snprintf(key, sizeof(key), "dispatch-ok:%s:%d",
				 c->cmd->name, c->expect);
			finding(c->t, 1, key, "%s succeeded where the dispatcher must refuse it with %s (%s)",
				c->cmd->name, errno_name(c->expect), desc);
		} else if (e != c->expect) {
			char key[128];

			snprintf(key, sizeof(key), "dispatch-errno:%s:%d:%d",
				 c->cmd->name, c->expect, e);
			finding(c->t, 1, key, "%s failed with %s where the dispatcher must say %s (%s)",
				c->cmd->name, errno_name(e) ? errno_name(e) : "?",
				errno_name(c->expect), desc);
		}
		goto out;
	} else if (c->ret < 0 && !errset_has(&c->cmd->errs, e)) {
		char key[128];

		snprintf(key, sizeof(key), "errno:%s:%d", c->cmd->name, e);
		__atomic_fetch_add(&g.sh->undoc, 1, __ATOMIC_RELAXED);
		finding(c->t, 1, key, "%s failed with %s (%d), not one of its documented errnos (%s)",
			c->cmd->name, errno_name(e) ? errno_name(e) : "?", e, desc);
	}
	if (c->must[0] || c->expect_efault_or_fail)
		__atomic_fetch_add(&g.sh->must_fail_checked, 1, __ATOMIC_RELAXED);
	if (!c->ret && c->must[0]) {
		char key[700], *colon;

		snprintf(key, sizeof(key), "accepted:%s:%s", c->cmd->name, c->must);
		colon = strchr(key + 9 + strlen(c->cmd->name), ':');
		if (colon)
			*colon = 0;
		finding(c->t, 1, key, "%s succeeded with invalid input: %s (%s)",
			c->cmd->name, c->must, desc);
	}
	if (!c->ret && c->expect_efault_or_fail)
		finding(c->t, 1, "ro-arg-ok",
			"%s succeeded although its result could not be copied back (read-only argument)",
			c->cmd->name);
	if (probe >= 0 && fcntl(probe, F_GETFD) >= 0)
		finding(c->t, 1, "fd-leak",
			"%s failed (%s) but fd %d appeared: an fd installed for a call that failed",
			c->cmd->name, errno_name(e) ? errno_name(e) : "?", probe);
	if (!c->ret && c->out_valid)
		check_out_struct(c, c->out, c->st,
				 c->usize < c->ksize ? c->usize : c->ksize, 0, "");
	check_arrays(c, !c->ret);
out:
	if (h && h->post)
		h->post(c);
	for (i = 0; i < c->nco; i++)
		res_release(c->co[i]);
	c->nco = 0;
	return c->ret < 0 ? -e : 0;
}

void call_done(struct call *c)
{
	int i;

	for (i = 0; i < c->nco; i++)
		res_release(c->co[i]);
	c->nco = 0;
}

int do_cmd(struct tstate *t, struct rng *r, const char *name, int dev,
	   int mode, void (*setup)(struct call *, void *), void *arg,
	   struct call *out)
{
	struct call local, *c = out ? out : &local;
	int ci = cmdi(name);

	if (ci < 0)
		return -ENOSYS;
	call_init(c, t, r, ci, dev, mode);
	call_generate(c);
	if (setup)
		setup(c, arg);
	return call_run(c);
}
