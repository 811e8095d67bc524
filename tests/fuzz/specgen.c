// SPDX-License-Identifier: GPL-2.0
/*
 * specgen SPEC HEADER IOCTL_C > spec_check.c
 *
 * Turns tests/fuzz/uapi.spec into a C file that only compiles when the
 * spec agrees with the UAPI header: struct sizes, field offsets, sizes and
 * types, command numbers and every NUMBER~MACRO are _Static_asserts. Here,
 * before any compiling, it also checks what C cannot: that the header has
 * no struct and no DMAPLANE_IOC_* command the spec leaves out, and that
 * each command's v1= field is the one src/module/ioctl.c's table names.
 * The generated file carries the spec's text too, so dpfuzz needs no file
 * at run time (--spec FILE reads another).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len + 1);
	if (!buf || fread(buf, 1, len, f) != (size_t)len) {
		fprintf(stderr, "%s: cannot read\n", path);
		exit(1);
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

static int failed;

static void fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "specgen: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	failed = 1;
}

/* Every "struct dmaplane_X {" and "#define DMAPLANE_IOC_X" of the header. */
static void check_header(const struct spec *s, const char *hdr, const char *path)
{
	const char *p;

	for (p = hdr; (p = strstr(p, "\nstruct dmaplane_")); p++) {
		char name[64];
		int n = 0, i, found = 0;

		p += strlen("\nstruct dmaplane_");
		while ((isalnum((unsigned char)p[n]) || p[n] == '_') &&
		       n < 63)
			n++;
		memcpy(name, p, n);
		name[n] = 0;
		if (strncmp(p + n, " {", 2))
			continue;
		for (i = 0; i < s->nst; i++)
			found |= !strcmp(s->st[i]->name, name);
		if (!found)
			fail("%s: struct dmaplane_%s is not in the spec", path,
			     name);
	}
	for (p = hdr; (p = strstr(p, "#define DMAPLANE_IOC_")); p++) {
		char name[64];
		int n = 0;

		p += strlen("#define DMAPLANE_IOC_");
		while ((isalnum((unsigned char)p[n]) || p[n] == '_') &&
		       n < 63)
			n++;
		memcpy(name, p, n);
		name[n] = 0;
		if (!strcmp(name, "MAGIC"))
			continue;
		if (!spec_cmd(s, name))
			fail("%s: DMAPLANE_IOC_%s is not in the spec", path,
			     name);
	}
}

/* DMAPLANE_IOCTL(DMAPLANE_IOC_X, fn, struct dmaplane_S, FIELD) entries. */
static void check_ioctl_table(const struct spec *s, const char *src,
			      const char *path)
{
	const char *p;
	int seen[SPEC_MAX_CMDS] = { 0 };
	int i;

	for (p = src; (p = strstr(p, "DMAPLANE_IOCTL(DMAPLANE_IOC_")); p++) {
		char buf[512], *tok[4], *save = NULL;
		const char *end = strchr(p, ')');
		const struct spec_cmd *c;
		size_t len;
		int n = 0;

		if (!end)
			break;
		len = end - (p + strlen("DMAPLANE_IOCTL("));
		if (len >= sizeof(buf))
			continue;
		memcpy(buf, p + strlen("DMAPLANE_IOCTL("), len);
		buf[len] = 0;
		for (char *t = strtok_r(buf, ",", &save); t && n < 4;
		     t = strtok_r(NULL, ",", &save)) {
			while (isspace((unsigned char)*t))
				t++;
			for (char *e = t + strlen(t);
			     e > t && isspace((unsigned char)e[-1]); e--)
				e[-1] = 0;
			tok[n++] = t;
		}
		if (n != 4 || strncmp(tok[0], "DMAPLANE_IOC_", 13))
			continue;
		c = spec_cmd(s, tok[0] + 13);
		if (!c) {
			fail("%s: %s is not in the spec", path, tok[0]);
			continue;
		}
		seen[c - s->cmd] = 1;
		if (strncmp(tok[2], "struct dmaplane_", 16) ||
		    strcmp(tok[2] + 16, c->orig->name))
			fail("%s: the table gives %s another struct", path,
			     tok[0]);
		if (strcmp(tok[3], c->v1))
			fail("%s: %s: v1 differs from the spec", path, tok[0]);
	}
	for (i = 0; i < s->ncmd; i++)
		if (!seen[i])
			fail("%s: DMAPLANE_IOC_%s has no DMAPLANE_IOCTL() entry",
			     path, s->cmd[i].name);
}

static const char *ctype_of(const struct spec_field *f)
{
	switch (f->type) {
	case T_U8: return "__u8";
	case T_U16: return "__u16";
	case T_U32: return "__u32";
	case T_U64: return "__u64";
	case T_S32: return "__s32";
	default: return NULL;
	}
}

static void emit_struct(const struct spec *s, const struct spec_struct *st)
{
	int i;

	printf("\n/* %s:%d: struct %s */\n", s->file, st->line, st->name);
	printf("_Static_assert(sizeof(struct dmaplane_%s) == %u, \"%s:%d: sizeof(struct dmaplane_%s) is not %u\");\n",
	       st->name, st->size, s->file, st->line, st->name, st->size);
	for (i = 0; i < st->nf; i++) {
		const struct spec_field *f = &st->f[i];
		const char *t = ctype_of(f);

		printf("_Static_assert(offsetof(struct dmaplane_%s, %s) == %u, \"%s:%d: offset of %s.%s\");\n",
		       st->name, f->name, f->off, s->file, f->line, st->name,
		       f->name);
		printf("_Static_assert(sizeof(((struct dmaplane_%s *)0)->%s) == %u, \"%s:%d: size of %s.%s\");\n",
		       st->name, f->name, f->size, s->file, f->line, st->name,
		       f->name);
		if (t)
			printf("_Static_assert(_Generic(((struct dmaplane_%s *)0)->%s, %s: 1, default: 0), \"%s:%d: type of %s.%s is not %s\");\n",
			       st->name, f->name, t, s->file, f->line,
			       st->name, f->name, t);
		else if (f->type == T_STRUCT)
			printf("_Static_assert(_Generic(&((struct dmaplane_%s *)0)->%s, struct dmaplane_%s *: 1, default: 0), \"%s:%d: type of %s.%s\");\n",
			       st->name, f->name, f->sub->name, s->file,
			       f->line, st->name, f->name);
		else
			printf("_Static_assert(_Generic(&((struct dmaplane_%s *)0)->%s, %s (*)[%u]: 1, default: 0), \"%s:%d: type of %s.%s\");\n",
			       st->name, f->name,
			       f->type == T_CHARS ? "char" : "__u8", f->arrlen,
			       s->file, f->line, st->name, f->name);
	}
}

int main(int argc, char **argv)
{
	static struct spec s;
	char err[512];
	char *text, *hdr, *ioc;
	const char *c;
	int i;

	if (argc != 4) {
		fprintf(stderr, "usage: specgen SPEC HEADER IOCTL_C > spec_check.c\n");
		return 2;
	}
	text = slurp(argv[1]);
	hdr = slurp(argv[2]);
	ioc = slurp(argv[3]);
	if (spec_parse(&s, text, argv[1], err, sizeof(err))) {
		fprintf(stderr, "specgen: %s\n", err);
		return 1;
	}
	check_header(&s, hdr, argv[2]);
	check_ioctl_table(&s, ioc, argv[3]);
	if (failed)
		return 1;

	printf("/* Generated by tests/fuzz/specgen from %s: do not edit. */\n",
	       argv[1]);
	printf("#include <stddef.h>\n#include <linux/dmaplane.h>\n");
	for (i = 0; i < s.nst; i++)
		emit_struct(&s, s.st[i]);
	printf("\n/* Commands */\n");
	for (i = 0; i < s.ncmd; i++)
		printf("_Static_assert(DMAPLANE_IOC_%s == _IOWR(DMAPLANE_IOC_MAGIC, 0x%02x, struct dmaplane_%s), \"%s:%d: DMAPLANE_IOC_%s\");\n",
		       s.cmd[i].name, s.cmd[i].nr, s.cmd[i].orig->name,
		       s.file, s.cmd[i].line, s.cmd[i].name);
	printf("_Static_assert(DMAPLANE_IOC_MAGIC == 0xD7, \"magic\");\n");
	printf("\n/* NUMBER~MACRO */\n");
	for (i = 0; i < s.ncheck; i++)
		printf("_Static_assert((%lld) == (long long)(%s), \"%s:%d: %lld is not %s\");\n",
		       (long long)s.check[i].value, s.check[i].macro, s.file,
		       s.check[i].line, (long long)s.check[i].value,
		       s.check[i].macro);

	printf("\nconst char dpfuzz_spec_name[] = \"%s\";\n", argv[1]);
	printf("const char dpfuzz_spec_text[] =\n\"");
	for (c = text; *c; c++) {
		if (*c == '\n')
			printf("\\n\"\n\"");
		else if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c == '\t')
			printf("\\t");
		else
			putchar(*c);
	}
	printf("\";\n");
	spec_free(&s);
	return 0;
}
