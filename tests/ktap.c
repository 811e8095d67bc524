// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ktap.h"

static bool case_failed;
static char skip_reason[256];

const char *ktap_errname(long ret)
{
	const char *name;

	if (ret >= 0)
		return "success";
	name = strerrorname_np((int)-ret);
	return name ? name : "unknown errno";
}

void ktap_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	case_failed = true;
}

void ktap_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(skip_reason, sizeof(skip_reason), fmt, ap);
	va_end(ap);
}

bool ktap_case_failed(void)
{
	return case_failed;
}

int ktap_run_suite(const char *suite, const struct ktap_case *cases, int n)
{
	int passed = 0, failed = 0, skipped = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("KTAP version 1\n# suite: %s\n1..%d\n", suite, n);
	for (int i = 0; i < n; i++) {
		case_failed = false;
		skip_reason[0] = '\0';
		cases[i].run();
		if (case_failed) {
			printf("not ok %d %s\n", i + 1, cases[i].name);
			failed++;
		} else if (skip_reason[0]) {
			printf("ok %d %s # SKIP %s\n", i + 1, cases[i].name,
			       skip_reason);
			skipped++;
		} else {
			printf("ok %d %s\n", i + 1, cases[i].name);
			passed++;
		}
	}
	printf("# %s: %d passed, %d failed, %d skipped\n", suite, passed,
	       failed, skipped);
	return failed ? 1 : 0;
}
