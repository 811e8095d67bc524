// SPDX-License-Identifier: GPL-2.0
/*
 * Parser of tests/fuzz/uapi.spec (the format is described at the top of
 * that file). Strict: an unknown kind, attribute or field reference is an
 * error with its line, so the description cannot rot unnoticed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

static const char *const kind_names[K_NR_KINDS] = {
	[K_U] = "u", [K_FLAGS] = "flags", [K_RESERVED] = "reserved",
	[K_RANGE] = "range", [K_ENUM] = "enum", [K_HANDLE] = "handle",
	[K_FD] = "fd", [K_NODE] = "node", [K_SIZE] = "size",
	[K_OFFSET] = "offset", [K_LENGTH] = "length", [K_UADDR] = "uaddr",
	[K_UPTR] = "uptr", [K_COUNT] = "count", [K_PORT] = "port",
	[K_IPADDR] = "ipaddr", [K_OUT] = "out", [K_IN] = "in",
	[K_INOUT] = "inout",
};

const char *spec_kind_name(enum spec_kind k)
{
	return k < K_NR_KINDS ? kind_names[k] : "?";
}

#define E(x) { #x, x }
static const struct { const char *name; int e; } errnos[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
	E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
	E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY), E(EFBIG),
	E(ENOSPC), E(ESPIPE), E(EROFS), E(EPIPE), E(EDOM), E(ERANGE),
	E(EDEADLK), E(ENAMETOOLONG), E(ENOSYS), E(ENODATA), E(ETIME),
	E(EPROTO), E(EBADMSG), E(EOVERFLOW), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(EAFNOSUPPORT),
	E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH),
	E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN),
	E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH),
	E(EALREADY), E(EINPROGRESS), E(EDQUOT), E(ECANCELED), E(EREMOTEIO),
	E(ENOMEDIUM), E(EKEYREJECTED), E(EOWNERDEAD), E(ENOTRECOVERABLE),
	E(ERFKILL), E(EHWPOISON), E(ENOLINK), E(EILSEQ), E(ESTALE),
	E(ENOTBLK), E(ETXTBSY), E(EMLINK), E(ENOLCK), E(ENOTEMPTY),
	E(ELOOP), E(ENOMSG), E(EIDRM), E(ENOSTR), E(ENOSR), E(EREMOTE),
	E(ENOTSOCK), E(EDESTADDRREQ), E(ESOCKTNOSUPPORT), E(EPFNOSUPPORT),
	E(ENETRESET), E(ESHUTDOWN), E(ETOOMANYREFS), E(EUCLEAN),
	E(ENOTUNIQ), E(EBADFD), E(EREMCHG), E(ELIBACC), E(ELIBBAD),
	E(ELIBSCN), E(ELIBMAX), E(ELIBEXEC), E(ERESTART), E(ESTRPIPE),
	E(EUSERS), E(ENOTNAM), E(ENAVAIL), E(EISNAM), E(EKEYEXPIRED),
	E(EKEYREVOKED), E(ENOKEY), E(EMEDIUMTYPE),
};
#undef E

const char *errno_name(int e)
{
	size_t i;

	if (e == 512)
		return "ERESTARTSYS";
	if (e == 513)
		return "ERESTARTNOINTR";
	if (e == 516)
		return "ERESTART_RESTARTBLOCK";
	if (e == 524)
		return "ENOTSUPP";
	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].e == e)
			return errnos[i].name;
	return NULL;
}

int errno_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (!strcmp(errnos[i].name, name))
			return errnos[i].e;
	return 0;
}

struct pstate {
	struct spec *s;
	int line;
	char *err;
	int errlen;
	int failed;
};

static void perr(struct pstate *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void perr(struct pstate *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (p->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%d: %s", p->s->file, p->line, msg);
	p->failed = 1;
}

static void copy(char *dst, size_t len, const char *src, struct pstate *p)
{
	if (strlen(src) >= len)
		perr(p, "'%s' is too long", src);
	snprintf(dst, len, "%s", src);
}

/* NUMBER or NUMBER~MACRO; the macro is recorded for the build check. */
static int64_t pnum(struct pstate *p, const char *tok)
{
	char buf[128], *tilde, *end;
	long long v;

	copy(buf, sizeof(buf), tok, p);
	tilde = strchr(buf, '~');
	if (tilde)
		*tilde = 0;
	errno = 0;
	if (buf[0] == '-')
		v = strtoll(buf, &end, 0);
	else
		v = (long long)strtoull(buf, &end, 0);
	if (errno || end == buf || *end) {
		perr(p, "bad number '%s'", tok);
		return 0;
	}
	if (tilde) {
		struct spec_check *c;

		if (!tilde[1]) {
			perr(p, "'~' without a macro in '%s'", tok);
			return v;
		}
		if (p->s->ncheck == SPEC_MAX_CHECKS) {
			perr(p, "too many NUMBER~MACRO checks");
			return v;
		}
		c = &p->s->check[p->s->ncheck++];
		c->value = v;
		c->line = p->line;
		copy(c->macro, sizeof(c->macro), tilde + 1, p);
	}
	return v;
}

static void perrset(struct pstate *p, struct spec_errset *set, const char *list)
{
	char buf[512], *save = NULL, *t;

	copy(buf, sizeof(buf), list, p);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (t[0] == '@') {
			int i, found = 0;

			for (i = 0; i < p->s->nset; i++) {
				if (strcmp(p->s->set[i].name, t + 1))
					continue;
				for (size_t b = 0; b < sizeof(set->bits); b++)
					set->bits[b] |= p->s->set[i].s.bits[b];
				found = 1;
			}
			if (!found)
				perr(p, "unknown errset '%s'", t);
		} else {
			int e = errno_by_name(t);

			if (!e)
				perr(p, "unknown errno '%s'", t);
			else
				set->bits[e / 8] |= 1 << (e % 8);
		}
	}
}

static void pvals(struct pstate *p, struct spec_field *f, const char *list)
{
	char buf[256], *save = NULL, *t;

	copy(buf, sizeof(buf), list, p);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *dots = strstr(t, "..");

		if (f->nvals == SPEC_MAX_VALS) {
			perr(p, "too many values");
			return;
		}
		if (dots) {
			*dots = 0;
			f->vlo[f->nvals] = pnum(p, t);
			f->vhi[f->nvals] = pnum(p, dots + 2);
		} else {
			f->vlo[f->nvals] = f->vhi[f->nvals] = pnum(p, t);
		}
		f->nvals++;
	}
}

/* One key=value or flag attribute of field @f. */
static void pattr(struct pstate *p, struct spec_field *f, const char *tok)
{
	char key[48], *val;
	const char *eq = strchr(tok, '=');

	if (!eq) {
		if (!strcmp(tok, "echo")) f->echo = 1;
		else if (!strcmp(tok, "noaddr")) f->noaddr = 1;
		else if (!strcmp(tok, "block")) f->block = 1;
		else if (!strcmp(tok, "strict")) f->strict = 1;
		else if (!strcmp(tok, "budget")) f->budget = 1;
		else if (!strcmp(tok, "cstr")) f->cstr = 1;
		else if (!strcmp(tok, "needcount")) f->needcount = 1;
		else perr(p, "unknown attribute '%s'", tok);
		return;
	}
	if ((size_t)(eq - tok) >= sizeof(key)) {
		perr(p, "attribute '%s' too long", tok);
		return;
	}
	memcpy(key, tok, eq - tok);
	key[eq - tok] = 0;
	val = (char *)eq + 1;

	if (!strcmp(key, "mask")) {
		f->mask = pnum(p, val);
		f->has_mask = 1;
	} else if (!strcmp(key, "one")) {
		f->one = pnum(p, val);
		f->has_one = 1;
	} else if (!strcmp(key, "needs")) {
		char buf[64], *colon;

		copy(buf, sizeof(buf), val, p);
		colon = strchr(buf, ':');
		if (!colon) {
			perr(p, "needs=A:B expected");
			return;
		}
		*colon = 0;
		f->needs_a = pnum(p, buf);
		f->needs_b = pnum(p, colon + 1);
		f->has_needs = 1;
	} else if (!strcmp(key, "min")) {
		f->min = pnum(p, val);
		f->has_min = 1;
	} else if (!strcmp(key, "max")) {
		if (!strncmp(val, "param:", 6))
			copy(f->max_param, sizeof(f->max_param), val + 6, p);
		else
			f->max = pnum(p, val);
		f->has_max = 1;
	} else if (!strcmp(key, "cheap")) {
		f->cheap = pnum(p, val);
		f->has_cheap = 1;
	} else if (!strcmp(key, "values")) {
		pvals(p, f, val);
	} else if (!strcmp(key, "res")) {
		copy(f->res, sizeof(f->res), val, p);
	} else if (!strcmp(key, "sub")) {
		copy(f->sub_res, sizeof(f->sub_res), val, p);
	} else if (!strcmp(key, "count") || !strcmp(key, "written")) {
		char *dst = key[0] == 'c' ? f->count : f->written;
		int *sq = key[0] == 'c' ? &f->count_sq : &f->written_sq;
		char buf[48], *hat;

		copy(buf, sizeof(buf), val, p);
		hat = strchr(buf, '^');
		if (hat) {
			if (strcmp(hat, "^2"))
				perr(p, "only ^2 is known");
			*hat = 0;
			*sq = 1;
		}
		copy(dst, 48, buf, p);
	} else if (!strcmp(key, "from")) {
		copy(f->from, sizeof(f->from), val, p);
	} else if (!strcmp(key, "le")) {
		copy(f->le, sizeof(f->le), val, p);
	} else if (!strcmp(key, "len")) {
		copy(f->len, sizeof(f->len), val, p);
	} else if (!strcmp(key, "ptr")) {
		copy(f->ptr, sizeof(f->ptr), val, p);
	} else if (!strcmp(key, "when")) {
		char buf[64], *amp;

		copy(buf, sizeof(buf), val, p);
		amp = strchr(buf, '&');
		if (!amp) {
			perr(p, "when=FIELD&BIT expected");
			return;
		}
		*amp = 0;
		copy(f->when, sizeof(f->when), buf, p);
		f->when_bit = pnum(p, amp + 1);
	} else if (!strcmp(key, "elem")) {
		copy(f->elem, sizeof(f->elem), val, p);
	} else if (!strcmp(key, "dir")) {
		f->dir_in = !strcmp(val, "in");
		f->dir_out = !strcmp(val, "out");
		if (!f->dir_in && !f->dir_out)
			perr(p, "dir=in|out expected");
	} else if (!strcmp(key, "null")) {
		if (!strcmp(val, "einval"))
			f->null_einval = 1;
		else if (strcmp(val, "ok"))
			perr(p, "null=einval|ok expected");
	} else if (!strcmp(key, "zero")) {
		if (!strcmp(val, "ok"))
			f->zero_ok = 1;
		else if (!strcmp(val, "whole"))
			f->zero_whole = 1;
		else if (!strcmp(val, "invalid"))
			f->zero_invalid = 1;
		else
			perr(p, "zero=ok|whole|invalid expected");
	} else if (!strcmp(key, "neg1")) {
		f->neg1_ok = !strcmp(val, "ok");
	} else if (!strcmp(key, "align")) {
		f->align = pnum(p, val);
	} else if (!strcmp(key, "errno")) {
		f->has_errset = 1;
		perrset(p, &f->errs, val);
	} else {
		perr(p, "unknown attribute '%s'", key);
	}
}

static enum spec_kind pkind(struct pstate *p, const char *tok)
{
	int k;

	for (k = 0; k < K_NR_KINDS; k++)
		if (!strcmp(kind_names[k], tok))
			return k;
	perr(p, "unknown kind '%s'", tok);
	return K_U;
}

static struct spec_struct *find_struct(const struct spec *s, const char *name)
{
	int i;

	for (i = 0; i < s->nst; i++)
		if (!strcmp(s->st[i]->name, name))
			return s->st[i];
	return NULL;
}

static void ptype(struct pstate *p, struct spec_field *f, const char *tok)
{
	unsigned int n;
	char c;

	if (!strcmp(tok, "u8")) { f->type = T_U8; f->size = 1; }
	else if (!strcmp(tok, "u16")) { f->type = T_U16; f->size = 2; }
	else if (!strcmp(tok, "u32")) { f->type = T_U32; f->size = 4; }
	else if (!strcmp(tok, "u64")) { f->type = T_U64; f->size = 8; }
	else if (!strcmp(tok, "s32")) { f->type = T_S32; f->size = 4; }
	else if (sscanf(tok, "char[%u%c", &n, &c) == 2 && c == ']') {
		f->type = T_CHARS; f->size = f->arrlen = n;
	} else if (sscanf(tok, "u8[%u%c", &n, &c) == 2 && c == ']') {
		f->type = T_BYTES; f->size = f->arrlen = n;
	} else if (!strncmp(tok, "struct:", 7)) {
		f->type = T_STRUCT;
		f->sub = find_struct(p->s, tok + 7);
		if (!f->sub)
			perr(p, "struct '%s' not declared before", tok + 7);
		else
			f->size = f->sub->size;
	} else {
		perr(p, "unknown type '%s'", tok);
	}
}

static int split(char *line, char **tok, int max)
{
	int n = 0;
	char *s = line;

	while (*s) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s || *s == '#')
			break;
		if (n == max)
			return -1;
		tok[n++] = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		if (*s)
			*s++ = 0;
	}
	return n;
}

const struct spec_field *spec_field(const struct spec_struct *st,
				    const char *name)
{
	int i = spec_field_index(st, name);

	return i < 0 ? NULL : &st->f[i];
}

int spec_field_index(const struct spec_struct *st, const char *name)
{
	int i;

	for (i = 0; i < st->nf; i++)
		if (!strcmp(st->f[i].name, name))
			return i;
	return -1;
}

const struct spec_cmd *spec_cmd(const struct spec *s, const char *name)
{
	int i = spec_cmd_index(s, name);

	return i < 0 ? NULL : &s->cmd[i];
}

int spec_cmd_index(const struct spec *s, const char *name)
{
	int i;

	for (i = 0; i < s->ncmd; i++)
		if (!strcmp(s->cmd[i].name, name))
			return i;
	return -1;
}

int64_t spec_param(const struct spec *s, const char *name)
{
	int i;

	for (i = 0; i < s->nparam; i++)
		if (!strcmp(s->param[i].name, name))
			return s->param[i].value;
	return 0;
}

void spec_set_param(struct spec *s, const char *name, int64_t v)
{
	int i;

	for (i = 0; i < s->nparam; i++)
		if (!strcmp(s->param[i].name, name))
			s->param[i].value = v;
}

/* Field references and layout of a finished struct. */
static void check_struct(struct pstate *p, struct spec_struct *st)
{
	unsigned int end = 0;
	int i;

	for (i = 0; i < st->nf; i++) {
		struct spec_field *f = &st->f[i];
		const char *refs[] = { f->count, f->from, f->le, f->len,
				       f->when, f->ptr, f->written };
		size_t r;

		p->line = f->line;
		if (f->off != end)
			perr(p, "%s.%s at %u: the fields before end at %u (gap or overlap)",
			     st->name, f->name, f->off, end);
		end = f->off + f->size;
		for (r = 0; r < sizeof(refs) / sizeof(refs[0]); r++)
			if (refs[r][0] && !spec_field(st, refs[r]))
				perr(p, "%s.%s: no field '%s'", st->name,
				     f->name, refs[r]);
		if (f->kind == K_UPTR) {
			if (!f->elem[0] || !f->count[0] ||
			    (!f->dir_in && !f->dir_out))
				perr(p, "uptr needs elem=, count= and dir=");
			if (!strcmp(f->elem, "u32"))
				f->elem_size = 4;
			else if (!strcmp(f->elem, "u64"))
				f->elem_size = 8;
			else if ((f->elem_st = find_struct(p->s, f->elem)))
				f->elem_size = f->elem_st->size;
			else
				perr(p, "unknown elem '%s'", f->elem);
		}
		if (f->type == T_STRUCT && f->kind != K_IN &&
		    f->kind != K_OUT && f->kind != K_INOUT)
			perr(p, "a struct field is in, out or inout");
		if ((f->kind == K_FLAGS && !f->has_mask) ||
		    (f->kind == K_RANGE && (!f->has_min || !f->has_max)) ||
		    (f->kind == K_ENUM && !f->nvals) ||
		    ((f->kind == K_HANDLE || f->kind == K_FD) && !f->res[0]))
			perr(p, "%s.%s: kind %s is missing its attributes",
			     st->name, f->name, spec_kind_name(f->kind));
		if (f->max_param[0]) {
			int k, found = 0;

			for (k = 0; k < p->s->nparam; k++)
				found |= !strcmp(p->s->param[k].name,
						 f->max_param);
			if (!found)
				perr(p, "unknown param '%s'", f->max_param);
		}
	}
	st->size = end;
}

int spec_parse(struct spec *s, const char *text, const char *file,
	       char *err, int errlen)
{
	struct pstate p = { .s = s, .err = err, .errlen = errlen };
	struct spec_struct *cur = NULL;
	const char *line = text;
	int i;

	memset(s, 0, sizeof(*s));
	s->file = file;
	s->page = 4096;
	while (*line && !p.failed) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[1024], *tok[40];
		int n;

		p.line++;
		if (len >= sizeof(buf)) {
			perr(&p, "line too long");
			break;
		}
		memcpy(buf, line, len);
		buf[len] = 0;
		line += len + (nl ? 1 : 0);
		n = split(buf, tok, 40);
		if (n < 0) {
			perr(&p, "too many tokens");
			break;
		}
		if (!n)
			continue;

		if (cur) {
			struct spec_field *f;

			if (!strcmp(tok[0], "end")) {
				check_struct(&p, cur);
				cur = NULL;
				continue;
			}
			if (n < 4) {
				perr(&p, "FIELD OFFSET TYPE KIND expected");
				break;
			}
			if (cur->nf == SPEC_MAX_FIELDS) {
				perr(&p, "too many fields");
				break;
			}
			f = &cur->f[cur->nf++];
			f->line = p.line;
			copy(f->name, sizeof(f->name), tok[0], &p);
			f->off = (unsigned int)pnum(&p, tok[1]);
			ptype(&p, f, tok[2]);
			f->kind = pkind(&p, tok[3]);
			for (i = 4; i < n; i++)
				pattr(&p, f, tok[i]);
			continue;
		}

		if (!strcmp(tok[0], "page") && n == 2) {
			s->page = (unsigned int)pnum(&p, tok[1]);
		} else if (!strcmp(tok[0], "param") && n == 3) {
			if (s->nparam == SPEC_MAX_PARAMS) {
				perr(&p, "too many params");
				break;
			}
			copy(s->param[s->nparam].name,
			     sizeof(s->param[0].name), tok[1], &p);
			s->param[s->nparam].dflt = s->param[s->nparam].value =
				pnum(&p, tok[2]);
			s->nparam++;
		} else if (!strcmp(tok[0], "errset") && n >= 3) {
			if (s->nset == SPEC_MAX_SETS) {
				perr(&p, "too many errsets");
				break;
			}
			copy(s->set[s->nset].name, sizeof(s->set[0].name),
			     tok[1], &p);
			for (i = 2; i < n; i++)
				perrset(&p, &s->set[s->nset].s, tok[i]);
			s->nset++;
		} else if (!strcmp(tok[0], "struct") && n == 2) {
			if (s->nst == SPEC_MAX_STRUCTS) {
				perr(&p, "too many structs");
				break;
			}
			if (find_struct(s, tok[1]))
				perr(&p, "struct '%s' declared twice", tok[1]);
			cur = calloc(1, sizeof(*cur));
			if (!cur) {
				perr(&p, "out of memory");
				break;
			}
			s->st[s->nst++] = cur;
			copy(cur->name, sizeof(cur->name), tok[1], &p);
			cur->line = p.line;
		} else if (!strcmp(tok[0], "cmd") && n >= 4) {
			struct spec_cmd *c;
			struct spec_struct *orig;
			const struct spec_field *v1;

			if (s->ncmd == SPEC_MAX_CMDS) {
				perr(&p, "too many commands");
				break;
			}
			c = &s->cmd[s->ncmd++];
			c->line = p.line;
			copy(c->name, sizeof(c->name), tok[1], &p);
			c->nr = (unsigned int)pnum(&p, tok[2]);
			orig = find_struct(s, tok[3]);
			if (!orig) {
				perr(&p, "unknown struct '%s'", tok[3]);
				break;
			}
			c->orig = orig;
			c->st = malloc(sizeof(*c->st));
			if (!c->st) {
				perr(&p, "out of memory");
				break;
			}
			*c->st = *orig;
			for (i = 4; i < n; i++) {
				char *eq = strchr(tok[i], '='), *dot;

				if (!strcmp(tok[i], "priv")) {
					c->priv = 1;
					continue;
				}
				if (!strcmp(tok[i], "block")) {
					c->block = 1;
					continue;
				}
				if (!eq) {
					perr(&p, "unknown command attribute '%s'",
					     tok[i]);
					break;
				}
				dot = strchr(tok[i], '.');
				if (dot && dot < eq) {
					/* FIELD.ATTR=VALUE: this command's copy */
					struct spec_field *f;
					int fi;

					*dot = 0;
					fi = spec_field_index(c->st, tok[i]);
					if (fi < 0) {
						perr(&p, "no field '%s'", tok[i]);
						break;
					}
					f = &c->st->f[fi];
					if (!strncmp(dot + 1, "res=", 4))
						f->res[0] = 0;
					pattr(&p, f, dot + 1);
				} else if (!strncmp(tok[i], "v1=", 3)) {
					copy(c->v1, sizeof(c->v1), eq + 1, &p);
				} else if (!strncmp(tok[i], "errno=", 6)) {
					perrset(&p, &c->errs, eq + 1);
				} else if (!strncmp(tok[i], "creates=", 8)) {
					copy(c->creates, sizeof(c->creates),
					     eq + 1, &p);
				} else {
					perr(&p, "unknown command attribute '%s'",
					     tok[i]);
				}
			}
			v1 = spec_field(c->st, c->v1);
			if (!v1)
				perr(&p, "%s: v1= must name a field", c->name);
			else
				c->v1_end = v1->off + v1->size;
			for (i = 0; i < s->ncmd - 1; i++)
				if (s->cmd[i].nr == c->nr ||
				    !strcmp(s->cmd[i].name, c->name))
					perr(&p, "command %s or number 0x%x twice",
					     c->name, c->nr);
		} else {
			perr(&p, "unknown statement '%s'", tok[0]);
		}
	}
	if (cur && !p.failed) {
		p.line = cur->line;
		perr(&p, "struct %s has no 'end'", cur->name);
	}
	return p.failed ? -1 : 0;
}

void spec_free(struct spec *s)
{
	int i;

	for (i = 0; i < s->ncmd; i++)
		free(s->cmd[i].st);
	for (i = 0; i < s->nst; i++)
		free(s->st[i]);
	memset(s, 0, sizeof(*s));
}
