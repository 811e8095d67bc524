// SPDX-License-Identifier: GPL-2.0
/*
 * lifecycle: loading and unloading dmaplane.ko with and without open files,
 * module parameters and the limits they set.
 *
 * Loads the module itself from $DMAPLANE_KO (finit_module) and leaves it
 * loaded with default parameters at the end. Needs root and ib_core loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define LOAD_CYCLES 20

static const char *ko_path;

static int load_module(const char *params)
{
	int fd = open(ko_path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int unload_module(void)
{
	return syscall(SYS_delete_module, "dmaplane", O_NONBLOCK) ? -errno : 0;
}

static int module_loaded(void)
{
	return access("/sys/module/dmaplane", F_OK) == 0;
}

/* Start from an unloaded module whatever the previous case left. */
static void ensure_unloaded(void)
{
	if (module_loaded())
		KTAP_EXPECT_RET(unload_module(), 0);
}

/*
 * Kernel log lines since the last "dmaplane-test: mark" that look like a
 * warning, a bug or an oops; 0 when the log is clean.
 */
static void kmsg_mark(void)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		dprintf(fd, "dmaplane-test: mark\n");
		close(fd);
	}
}

static int kmsg_bad_lines_since_mark(void)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "Call Trace", "general protection",
		"kernel BUG", "refcount_t:", "list_del corruption",
	};
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *from, *line, *save;
	int hits = 0;

	if (len <= 0)
		return -1;
	buf = calloc(1, len + 1);
	if (!buf)
		return -1;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (len < 0) {
		free(buf);
		return -1;
	}
	from = buf;
	for (char *p = strstr(buf, "dmaplane-test: mark"); p;
	     p = strstr(p + 1, "dmaplane-test: mark"))
		from = p;
	for (line = strtok_r(from, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(line, bad[i])) {
				printf("# kernel log: %s\n", line);
				hits++;
				break;
			}
		}
	}
	free(buf);
	return hits;
}

static void unload_refused_while_open(void)
{
	int fd;

	if (!module_loaded())
		KTAP_EXPECT_RET(load_module(""), 0);
	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(unload_module(), -EWOULDBLOCK);
	KTAP_EXPECT(module_loaded(), "module gone with an open file");
	KTAP_EXPECT_RET(dmaplane_echo(fd, 1, 0, NULL), 0);
	close(fd);
}

static void unload_after_close(void)
{
	KTAP_EXPECT_RET(unload_module(), 0);
	KTAP_EXPECT(!module_loaded(), "still in /sys/module");
	KTAP_EXPECT(access(DMAPLANE_DEV_PATH, F_OK) != 0,
		    "%s still exists", DMAPLANE_DEV_PATH);
}

static void load_rejects_bad_params(void)
{
	ensure_unloaded();
	KTAP_EXPECT_RET(load_module("max_handles=0"), -EINVAL);
	KTAP_EXPECT_RET(load_module("max_buffer_size=0"), -EINVAL);
	KTAP_EXPECT(!module_loaded(), "loaded despite bad parameters");
}

static void handle_limit_is_emfile(void)
{
	uint32_t h;
	int fd;

	ensure_unloaded();
	KTAP_EXPECT_RET(load_module("max_handles=4"), 0);
	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	for (int i = 0; i < 4; i++)
		KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 4096, -1, 0, &h,
						       NULL), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 4096, -1, 0, &h, NULL),
			-EMFILE);
	/* Freeing one makes room again. */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, h), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 4096, -1, 0, &h, NULL), 0);
	close(fd);
	KTAP_EXPECT_RET(unload_module(), 0);
}

static void total_bytes_limit_is_enospc(void)
{
	uint64_t bytes = 1;
	uint32_t a, b;
	int fd;

	ensure_unloaded();
	KTAP_EXPECT_RET(load_module("max_total_bytes=1048576"), 0);
	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 786432, -1, 0, &a, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 524288, -1, 0, &b, NULL),
			-ENOSPC);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 262144, -1, 0, &b, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 4096, -1, 0, &b, NULL),
			-ENOSPC);
	/* A failed create must not leave a charge behind. */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, a), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 786432, -1, 0, &a, NULL),
			0);
	close(fd);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffer_bytes",
				       &bytes), 0);
	KTAP_EXPECT(bytes == 0, "%llu bytes charged after close",
		    (unsigned long long)bytes);
	KTAP_EXPECT_RET(unload_module(), 0);
}

static void load_unload_cycles(void)
{
	int bad;

	ensure_unloaded();
	kmsg_mark();
	for (int i = 0; i < LOAD_CYCLES && !ktap_case_failed(); i++) {
		uint32_t h;
		int fd;

		KTAP_EXPECT_RET(load_module(""), 0);
		fd = dmaplane_open();
		KTAP_EXPECT(fd >= 0, "cycle %d open: %s", i, ktap_errname(fd));
		if (fd < 0)
			break;
		KTAP_EXPECT_RET(dmaplane_echo(fd, i, 0, NULL), 0);
		/* Leave a buffer for close() to release. */
		KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 1 << 16, -1, 0, &h,
						       NULL), 0);
		close(fd);
		KTAP_EXPECT_RET(unload_module(), 0);
	}
	bad = kmsg_bad_lines_since_mark();
	KTAP_EXPECT(bad == 0, "%d warning lines in the kernel log", bad);
	printf("# %d load/unload cycles\n", LOAD_CYCLES);
}

/* Leave the module loaded for whatever runs next. */
static void reload_defaults(void)
{
	ensure_unloaded();
	KTAP_EXPECT_RET(load_module(""), 0);
	KTAP_EXPECT(access(DMAPLANE_DEV_PATH, F_OK) == 0, "no %s",
		    DMAPLANE_DEV_PATH);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(unload_refused_while_open),
	KTAP_CASE(unload_after_close),
	KTAP_CASE(load_rejects_bad_params),
	KTAP_CASE(handle_limit_is_emfile),
	KTAP_CASE(total_bytes_limit_is_enospc),
	KTAP_CASE(load_unload_cycles),
	KTAP_CASE(reload_defaults),
};

int main(void)
{
	ko_path = getenv("DMAPLANE_KO");
	if (!ko_path) {
		fprintf(stderr, "DMAPLANE_KO must name dmaplane.ko\n");
		return 2;
	}
	return ktap_run_suite("lifecycle", cases,
			      sizeof(cases) / sizeof(cases[0]));
}
