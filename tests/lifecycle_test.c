// SPDX-License-Identifier: GPL-2.0
/*
 * lifecycle: loading and unloading dmaplane.ko with and without open files,
 * module parameters and the limits they set.
 *
 * Loads the module itself from $DMAPLANE_KO (finit_module) and leaves it
 * loaded with default parameters at the end. Kernel log lines matching
 * $DMAPLANE_LOG_PATTERNS (one extended regex a line) fail the load/unload
 * cycles. Needs root and ib_core loaded.
 */
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"
#include "verbsutil.h"

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

/* Does @line match one of the patterns in $DMAPLANE_LOG_PATTERNS? */
static bool kmsg_line_bad(const char *line, regex_t *re, int n)
{
	for (int i = 0; i < n; i++)
		if (!regexec(&re[i], line, 0, NULL, 0))
			return true;
	return false;
}

static int load_patterns(regex_t *re, int max)
{
	const char *path = getenv("DMAPLANE_LOG_PATTERNS");
	char pat[256];
	int n = 0;
	FILE *f;

	if (!path || !(f = fopen(path, "r")))
		return -1;
	while (n < max && fgets(pat, sizeof(pat), f)) {
		pat[strcspn(pat, "\n")] = '\0';
		if (pat[0] && !regcomp(&re[n], pat, REG_EXTENDED | REG_NOSUB))
			n++;
	}
	fclose(f);
	return n;
}

/* Kernel log lines since the last mark that match a bad pattern; -1 when
 * the log or the patterns cannot be read.
 */
static int kmsg_bad_lines_since_mark(void)
{
	regex_t re[64];
	int npat = load_patterns(re, 64);
	char *log = npat > 0 ? kmsg_since_mark() : NULL;
	char *line, *save;
	int hits = -1;

	if (!log)
		goto out;
	hits = 0;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (kmsg_line_bad(line, re, npat)) {
			printf("# kernel log: %s\n", line);
			hits++;
		}
	}
out:
	free(log);
	for (int i = 0; i < npat; i++)
		regfree(&re[i]);
	return hits;
}

/* Load the module afresh with @params and open it: the fd, or -1 (failed). */
static int fresh_load_open(const char *params)
{
	int fd;

	ensure_unloaded();
	KTAP_EXPECT_RET(load_module(params), 0);
	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	return fd < 0 ? -1 : fd;
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
	/* The mmap offset has room for 2^20 handles and 2^40-byte buffers. */
	KTAP_EXPECT_RET(load_module("max_handles=1048577"), -EINVAL);
	KTAP_EXPECT_RET(load_module("max_buffer_size=1099511627777"), -EINVAL);
	KTAP_EXPECT(!module_loaded(), "loaded despite bad parameters");
}

static void handle_limit_is_emfile(void)
{
	uint32_t h;
	int fd;

	fd = fresh_load_open("max_handles=4");
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

/*
 * Load with @param set to 1 MiB and fill that limit from one file: 768 KiB
 * fits, 512 KiB more is refused with @err, 256 KiB still fits (a refused
 * create leaves no charge), and closing gives every byte back. With
 * @per_file, a second file is not affected by the first one's bytes.
 */
static void expect_byte_limit(const char *param, int err, bool per_file)
{
	char arg[64];
	uint64_t bytes = 1;
	uint32_t a, b;
	int fd, other;

	snprintf(arg, sizeof(arg), "%s=1048576", param);
	fd = fresh_load_open(arg);
	other = dmaplane_open();
	KTAP_EXPECT(other >= 0, "open: %s", ktap_errname(other));
	if (fd < 0 || other < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 786432, -1, 0, &a, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 524288, -1, 0, &b, NULL),
			err);
	KTAP_EXPECT_RET(dmaplane_buffer_create(other, 786432, -1, 0, &b, NULL),
			per_file ? 0 : err);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 262144, -1, 0, &b, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 4096, -1, 0, &b, NULL),
			err);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(fd, a), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 786432, -1, 0, &a, NULL),
			0);
	close(other);
	close(fd);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffer_bytes",
				       &bytes), 0);
	KTAP_EXPECT(bytes == 0, "%llu bytes charged after close",
		    (unsigned long long)bytes);
	KTAP_EXPECT_RET(unload_module(), 0);
}

static void total_bytes_limit_is_enospc(void)
{
	expect_byte_limit("max_total_bytes", -ENOSPC, false);
}

static void file_bytes_limit_is_edquot(void)
{
	expect_byte_limit("max_file_bytes", -EDQUOT, true);
}

/* A live mapping holds the file, so the module, until it is unmapped. */
static void unload_refused_while_mapped(void)
{
	struct dmaplane_buffer_create req = { .size = 8192, .numa_node = -1 };
	volatile unsigned char *map;
	int fd;

	fd = fresh_load_open("");
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(fd, &req), 0);
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   req.mmap_offset);
	KTAP_EXPECT(map != MAP_FAILED, "mmap: %s", strerror(errno));
	close(fd);
	if (map == MAP_FAILED)
		return;
	map[8191] = 0x5a;
	KTAP_EXPECT(unload_module() != 0, "unloaded under a live mapping");
	KTAP_EXPECT(map[8191] == 0x5a, "mapping lost its data");
	munmap((void *)map, 8192);
	KTAP_EXPECT_RET(unload_module(), 0);
}

/* A dma-buf holds the module: its ops must outlive every fd. */
static void unload_refused_while_exported(void)
{
	struct dmaplane_buffer_create req = { .size = 8192, .numa_node = -1 };
	int fd, d = -1;

	fd = fresh_load_open("");
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create_req(fd, &req), 0);
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(fd, req.handle, 0, &d), 0);
	close(fd);
	KTAP_EXPECT(unload_module() != 0, "unloaded under a live dma-buf");
	close(d);
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
	KTAP_EXPECT(bad == 0, "%d bad lines in the kernel log (-1: unreadable)",
		    bad);
	printf("# %d load/unload cycles\n", LOAD_CYCLES);
}

/* Back as the runner loaded it (DMAPLANE_PARAMS, e.g. sim_gpu=1). */
static void reload_defaults(void)
{
	const char *params = getenv("DMAPLANE_PARAMS");

	ensure_unloaded();
	KTAP_EXPECT_RET(load_module(params ? params : ""), 0);
	KTAP_EXPECT(access(DMAPLANE_DEV_PATH, F_OK) == 0, "no %s",
		    DMAPLANE_DEV_PATH);
}

#define HOG_FILES_WITH_CONNECTIONS 4

/*
 * Take all one file may hold: a loopback connection with an MR on each end
 * (the first few files, when there is an RDMA device), then 1 MiB buffers
 * until a limit says no, each mapped, the first exported and imported back.
 */
static int hog_file(int fd, const char *ip, int nth)
{
	uint32_t client, server, h, mr;
	struct dmaplane_import_dmabuf imp;
	int d, n = 0;
	long ret;

	if (ip && nth < HOG_FILES_WITH_CONNECTIONS) {
		ret = dmaplane_ep_loopback(fd, ip, NULL, &client, &server);
		if (!ret)
			ret = dmaplane_buffer_create(fd, 1 << 20, -1, 0, &h,
						     NULL);
		/* Earlier files may have taken every byte already. */
		if (ret == -ENOSPC)
			return 0;
		if (!ret)
			ret = dmaplane_mr_reg(fd, client, h, 0, 1 << 20, 0, &mr,
					      NULL);
		if (!ret)
			ret = dmaplane_mr_reg(fd, server, h, 0, 1 << 20,
					      DMAPLANE_MR_LOCAL_WRITE, &mr,
					      NULL);
		if (ret)
			return 100 - ret;	/* 100 + errno */
	}
	while (!(ret = dmaplane_buffer_create(fd, 1 << 20, -1, 0, &h, NULL))) {
		if (mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 (off_t)h << 40) == MAP_FAILED)
			return 2;
		if (!n++ && (dmaplane_export_dmabuf(fd, h, 0, &d) ||
			     dmaplane_import_dmabuf(fd, d, &imp)))
			return 3;
	}
	/* The file's handles, or the module's bytes. */
	return ret == -EMFILE || ret == -ENOSPC ? 0 : 4;
}

/*
 * Exhaustion: a process opens files until its fd limit, fills each to the
 * module's limits (handles per file, bytes in all) with buffers, mappings,
 * dma-bufs, connections and MRs, and is killed holding all of it: every
 * counter comes back to zero and the module unloads (on the debug kernel
 * the runner's kmemleak scan checks for anything else).
 */
static void killed_hog_gives_everything_back(void)
{
	static const char *const counters[] = {
		"open_contexts", "buffers", "buffer_bytes", "mappings",
		"exports", "attachments", "endpoints", "mrs",
	};
	const char *ip = count_rdma_devices() > 0 ? getenv("DP_GUEST_IP") :
			 NULL;
	int fd, sync[2], files = 0;
	char c = 0;
	pid_t pid;

	fd = fresh_load_open("max_handles=32 max_total_bytes=67108864");
	if (fd < 0)
		return;
	close(fd);
	KTAP_EXPECT_RET(pipe(sync), 0);
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = 48, .rlim_max = 48 };
		int ret = 0;

		if (setrlimit(RLIMIT_NOFILE, &rl))
			_exit(10);
		while (!ret && (fd = dmaplane_open()) >= 0)
			ret = hog_file(fd, ip, files++);
		if (ret || fd != -EMFILE)
			_exit(ret ? ret : 11);
		c = files;
		if (write(sync[1], &c, 1) != 1)
			_exit(12);
		pause();
		_exit(13);
	}
	close(sync[1]);
	if (pid > 0 && read(sync[0], &c, 1) != 1) {
		int status = 0;

		waitpid(pid, &status, 0);
		KTAP_EXPECT(0, "the hog failed before it held everything (status 0x%x)",
			    status);
		pid = -1;
	}
	if (pid < 0) {
		close(sync[0]);
		return;
	}
	printf("# the hog holds %d files, %llu buffers, %llu endpoints, %llu MRs, %llu mappings\n",
	       c, (unsigned long long)dmaplane_counter("buffers"),
	       (unsigned long long)dmaplane_counter("endpoints"),
	       (unsigned long long)dmaplane_counter("mrs"),
	       (unsigned long long)dmaplane_counter("mappings"));
	KTAP_EXPECT(dmaplane_counter("buffer_bytes") > 63 << 20 &&
		    dmaplane_counter("exports") > 0 &&
		    (!ip || dmaplane_counter("mrs") > 0),
		    "the hog did not reach the limits");
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		KTAP_EXPECT(counter_settled(counters[i], 0) == 0,
			    "%s left after the hog's death", counters[i]);
	close(sync[0]);
	KTAP_EXPECT_RET(unload_module(), 0);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(unload_refused_while_open),
	KTAP_CASE(unload_after_close),
	KTAP_CASE(load_rejects_bad_params),
	KTAP_CASE(handle_limit_is_emfile),
	KTAP_CASE(total_bytes_limit_is_enospc),
	KTAP_CASE(file_bytes_limit_is_edquot),
	KTAP_CASE(unload_refused_while_mapped),
	KTAP_CASE(unload_refused_while_exported),
	KTAP_CASE(load_unload_cycles),
	KTAP_CASE(killed_hog_gives_everything_back),
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
