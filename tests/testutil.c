// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "ktap.h"
#include "testutil.h"

int read_u64_file(const char *path, uint64_t *val)
{
	FILE *f = fopen(path, "r");
	int ret = 0;

	if (!f)
		return -errno;
	if (fscanf(f, "%" SCNu64, val) != 1)
		ret = -EINVAL;
	fclose(f);
	return ret;
}

int read_keyed_u64(const char *path, const char *key, uint64_t *val)
{
	size_t keylen = strlen(key);
	char line[256];
	int ret = -ENOENT;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, keylen) || line[keylen] != ':')
			continue;
		ret = sscanf(line + keylen + 1, "%" SCNu64, val) == 1 ?
			0 : -EINVAL;
		break;
	}
	fclose(f);
	return ret;
}

int count_online_nodes(void)
{
	FILE *f = fopen("/sys/devices/system/node/online", "r");
	char buf[256], *p, *tok;
	int count = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	for (tok = strtok_r(buf, ",\n", &p); tok; tok = strtok_r(NULL, ",\n", &p)) {
		unsigned int lo, hi;

		switch (sscanf(tok, "%u-%u", &lo, &hi)) {
		case 1:
			count++;
			break;
		case 2:
			count += hi - lo + 1;
			break;
		default:
			return -EINVAL;
		}
	}
	return count;
}

int count_rdma_devices(void)
{
	DIR *d = opendir("/sys/class/infiniband");
	struct dirent *de;
	int count = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			count++;
	closedir(d);
	return count;
}

int proc_status_kb(const char *key, uint64_t *kb)
{
	return read_keyed_u64("/proc/self/status", key, kb);
}

int drop_capability(int cap)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[cap / 32].effective &= ~(1U << (cap % 32));
	data[cap / 32].permitted &= ~(1U << (cap % 32));
	data[cap / 32].inheritable &= ~(1U << (cap % 32));
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

uint64_t dmaplane_counter(const char *key)
{
	uint64_t v = 0;

	read_keyed_u64(DMAPLANE_DEBUGFS_INFO, key, &v);
	return v;
}

bool child_exited_ok(pid_t pid)
{
	int status = 0;

	KTAP_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	KTAP_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child failed at step %d (status 0x%x)",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void *readonly_arg(const void *arg, size_t len)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	KTAP_EXPECT(p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, arg, len);
	mprotect(p, 4096, PROT_READ);
	return p;
}

int read_first_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ret = f && fgets(buf, len, f) ? 0 : -ENOENT;

	if (f)
		fclose(f);
	if (!ret)
		buf[strcspn(buf, "\n")] = '\0';
	else if (len)
		buf[0] = '\0';
	return ret;
}

static unsigned char pattern_byte(size_t i, unsigned int seed)
{
	return (unsigned char)(i * 31 + seed + (i >> 12));
}

void fill_pattern(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(i, seed);
}

size_t pattern_mismatch(const unsigned char *p, size_t len, unsigned int seed,
			size_t base)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(base + i, seed))
			return i;
	return len;
}

bool pattern_holds(const unsigned char *p, size_t len, unsigned int seed)
{
	return pattern_mismatch(p, len, seed, 0) == len;
}

int rdma_netdev_of(const char *dev, char *netdev, size_t len)
{
	char cmd[128], line[512], *p;
	FILE *f;
	int ret = -ENOENT;

	snprintf(cmd, sizeof(cmd), "rdma link show %s/1 2>/dev/null", dev);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f))
		if ((p = strstr(line, " netdev ")) &&
		    sscanf(p + 8, "%63s", netdev) == 1 && strlen(netdev) < len)
			ret = 0;
	if (f)
		pclose(f);
	return ret;
}

int rxe_link_add(const char *name, const char *netdev)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rdma link add %s type rxe netdev %s", name,
		 netdev);
	if (system(cmd))
		return -EIO;
	return rdma_port_wait_active(name);
}

int rdma_port_wait_active(const char *name)
{
	char path[256], state[64] = "";

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/state",
		 name);
	for (int i = 0; i < 300 && !strstr(state, "ACTIVE"); i++) {
		read_first_line(path, state, sizeof(state));
		usleep(100 * 1000);
	}
	return strstr(state, "ACTIVE") ? 0 : -ETIMEDOUT;
}

int rdma_rnr_events(const char *dev, uint64_t *sum)
{
	char dir[256], path[512];
	struct dirent *d;
	uint64_t v;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/sys/class/infiniband/%s/ports/1/hw_counters",
		 dev);
	dp = opendir(dir);
	if (!dp)
		return -ENOENT;
	*sum = 0;
	while ((d = readdir(dp)))
		if (strstr(d->d_name, "rnr") &&
		    snprintf(path, sizeof(path), "%s/%s", dir, d->d_name) <
		    (int)sizeof(path) && !read_u64_file(path, &v))
			*sum += v;
	closedir(dp);
	return 0;
}

void repo_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("DMAPLANE_ROOT");
	char exe[PATH_MAX];
	ssize_t n;

	if (root && *root) {
		snprintf(buf, len, "%s/%s", root, rel);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	snprintf(buf, len, "%s/../../%s", dirname(exe), rel);
}

/* The whole kernel log (syslog(2) READ_ALL), NUL-terminated, or NULL. */
static char *klog_read(void)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf;

	if (len <= 0)
		return NULL;
	buf = calloc(1, len + 1);
	if (buf && klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len) < 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/*
 * The log's last line when kmsg_mark() ran: its timestamp makes it unique.
 * (A line written to /dev/kmsg would do, but in the sim guests such
 * writes never reach the log.)
 */
static char *kmsg_last;

void kmsg_mark(void)
{
	char *log = klog_read(), *end, *line;

	free(kmsg_last);
	kmsg_last = NULL;
	if (!log)
		return;
	end = log + strlen(log);
	while (end > log && end[-1] == '\n')
		*--end = '\0';
	line = strrchr(log, '\n');
	kmsg_last = strdup(line ? line + 1 : log);
	free(log);
}

char *kmsg_since_mark(void)
{
	char *log = klog_read(), *from;

	if (!log || !kmsg_last || !kmsg_last[0])
		return log;
	from = log;
	for (char *p = strstr(log, kmsg_last); p; p = strstr(p + 1, kmsg_last))
		from = p + strlen(kmsg_last);
	memmove(log, from, strlen(from) + 1);
	return log;
}
