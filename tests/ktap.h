/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal KTAP producer for the userspace suites.
 *
 * A suite is a table of cases; each case runs its checks with KTAP_EXPECT*
 * and becomes one "ok"/"not ok" line. Failed checks print "# " diagnostics.
 */
#ifndef DMAPLANE_KTAP_H
#define DMAPLANE_KTAP_H

#include <stdbool.h>

struct ktap_case {
	const char *name;
	void (*run)(void);
};

#define KTAP_CASE(fn) { #fn, fn }

/* Runs every case, prints KTAP and the closing count; returns exit status. */
int ktap_run_suite(const char *suite, const struct ktap_case *cases, int n);

/* Record a failed check; the current case goes on so all failures show. */
void ktap_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Mark the current case skipped with a reason. */
void ktap_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True once the current case has a failed check. */
bool ktap_case_failed(void);

#define KTAP_EXPECT(cond, fmt, ...)					\
	do {								\
		if (!(cond))						\
			ktap_fail(__FILE__, __LINE__, "%s: " fmt, #cond, \
				  ##__VA_ARGS__);			\
	} while (0)

/* ret is a libdmaplane-style result: 0 or -errno. */
#define KTAP_EXPECT_RET(ret, want)					\
	do {								\
		long _r = (ret), _w = (want);				\
		if (_r != _w)						\
			ktap_fail(__FILE__, __LINE__,			\
				  "%s: got %ld (%s), want %ld (%s)", #ret, \
				  _r, ktap_errname(_r), _w, ktap_errname(_w)); \
	} while (0)

const char *ktap_errname(long ret);

#endif /* DMAPLANE_KTAP_H */
