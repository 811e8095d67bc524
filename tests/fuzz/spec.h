/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The UAPI description (tests/fuzz/uapi.spec): parser shared by specgen
 * (which turns it into build-time checks against the header) and dpfuzz.
 */
#ifndef DPFUZZ_SPEC_H
#define DPFUZZ_SPEC_H

#include <stdint.h>

#define SPEC_MAX_FIELDS		40
#define SPEC_MAX_STRUCTS	48
#define SPEC_MAX_CMDS		40
#define SPEC_MAX_SETS		16
#define SPEC_MAX_PARAMS		16
#define SPEC_MAX_CHECKS		256
#define SPEC_MAX_VALS		16
#define SPEC_ERRNO_MAX		512	/* errno bitmap size */

enum spec_type { T_U8, T_U16, T_U32, T_U64, T_S32, T_CHARS, T_BYTES, T_STRUCT };

enum spec_kind {
	K_U, K_FLAGS, K_RESERVED, K_RANGE, K_ENUM, K_HANDLE, K_FD, K_NODE,
	K_SIZE, K_OFFSET, K_LENGTH, K_UADDR, K_UPTR, K_COUNT, K_PORT,
	K_IPADDR, K_OUT, K_IN, K_INOUT, K_NR_KINDS
};

struct spec_errset {
	uint8_t bits[SPEC_ERRNO_MAX / 8];
};

static inline int errset_has(const struct spec_errset *s, int e)
{
	return e > 0 && e < SPEC_ERRNO_MAX && (s->bits[e / 8] >> (e % 8)) & 1;
}

struct spec_struct;

struct spec_field {
	char name[48];
	unsigned int off, size, arrlen;
	enum spec_type type;
	struct spec_struct *sub;	/* T_STRUCT */
	enum spec_kind kind;
	int line;
	/* Attributes (what applies depends on the kind). */
	uint64_t mask, one, needs_a, needs_b;
	int has_mask, has_one, has_needs;
	int64_t min, max, cheap;
	int has_min, has_max, has_cheap;
	char max_param[32];		/* max=param:NAME */
	int64_t vlo[SPEC_MAX_VALS], vhi[SPEC_MAX_VALS];
	int nvals;
	char res[16], sub_res[16];	/* res=, sub= */
	char count[48], from[48], le[48], len[48], when[48], ptr[48];
	char written[48];
	int count_sq, written_sq;	/* count=FIELD^2 */
	uint64_t when_bit;
	char elem[48];			/* uptr element: struct name or u32/u64 */
	struct spec_struct *elem_st;
	unsigned int elem_size;
	int dir_out, dir_in;		/* uptr dir */
	int null_einval, needcount;
	int zero_ok, zero_whole, zero_invalid, neg1_ok;
	int echo, noaddr, block, strict, budget, cstr;
	uint64_t align;
	int has_errset;
	struct spec_errset errs;
};

struct spec_struct {
	char name[48];		/* without the dmaplane_ prefix */
	unsigned int size;
	struct spec_field f[SPEC_MAX_FIELDS];
	int nf;
	int line;
};

struct spec_cmd {
	char name[32];
	unsigned int nr;
	struct spec_struct *st;		/* the command's own copy */
	const struct spec_struct *orig;	/* as declared (for checks) */
	char v1[48];
	unsigned int v1_end;		/* offsetofend(v1) */
	struct spec_errset errs;
	char creates[16];
	int priv, block;
	int line;
};

struct spec_check {		/* NUMBER~MACRO, checked at build time */
	int64_t value;
	char macro[96];
	int line;
};

struct spec {
	unsigned int page;
	struct spec_struct *st[SPEC_MAX_STRUCTS];
	int nst;
	struct spec_cmd cmd[SPEC_MAX_CMDS];
	int ncmd;
	struct { char name[24]; struct spec_errset s; } set[SPEC_MAX_SETS];
	int nset;
	struct { char name[32]; int64_t dflt, value; } param[SPEC_MAX_PARAMS];
	int nparam;
	struct spec_check check[SPEC_MAX_CHECKS];
	int ncheck;
	const char *file;
};

/* Parse @text (named @file in messages); 0, or -1 with a message on @err. */
int spec_parse(struct spec *s, const char *text, const char *file,
	       char *err, int errlen);
void spec_free(struct spec *s);

const struct spec_field *spec_field(const struct spec_struct *st,
				    const char *name);
int spec_field_index(const struct spec_struct *st, const char *name);
const struct spec_cmd *spec_cmd(const struct spec *s, const char *name);
int spec_cmd_index(const struct spec *s, const char *name);
/* A parameter's value (read from sysfs by the caller, else its default). */
int64_t spec_param(const struct spec *s, const char *name);
void spec_set_param(struct spec *s, const char *name, int64_t v);

const char *spec_kind_name(enum spec_kind k);
const char *errno_name(int e);		/* "EINVAL", or NULL */
int errno_by_name(const char *name);	/* 0 when unknown */

#endif /* DPFUZZ_SPEC_H */
