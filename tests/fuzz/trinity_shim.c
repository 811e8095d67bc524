// SPDX-License-Identifier: GPL-2.0
/*
 * Preloaded into trinity by tests/fuzz/trinity.sh (see there for why):
 * fstat() fails on the dmaplane device, so trinity's ioctl group lookup
 * finds no group (and skips the group checks that crash it when their fd
 * providers are off); and three in four 64-bit ioctls on the device get
 * one of the UAPI's DMAPLANE_IOC_* numbers (one in sixteen of those with
 * a bit flipped), standing in for the ioctl group trinity does not have.
 * The pick depends on trinity's own number and the process's count of
 * such calls, so trinity's seed replays it. TRINITY_DMAPLANE_CMDS=0 keeps
 * trinity's numbers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/dmaplane.h>

static const unsigned int cmds[] = {
#include "trinity_cmds.h"	/* every DMAPLANE_IOC_*, from the header */
};
static long (*next_syscall)(long, ...);
static dev_t rdev;
static int rewrite = 1;
static unsigned long long calls;

__attribute__((constructor)) static void shim_init(void)
{
	const char *env = getenv("TRINITY_DMAPLANE_CMDS");
	struct stat st;

	next_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	if (!stat("/dev/dmaplane", &st) && S_ISCHR(st.st_mode))
		rdev = st.st_rdev;
	rewrite = !env || strcmp(env, "0");
}

static int is_dmaplane(int fd, struct stat *st)
{
	return rdev && !fstatat(fd, "", st, AT_EMPTY_PATH) &&
	       S_ISCHR(st->st_mode) && st->st_rdev == rdev;
}

/* trinity's ioctl group lookup is its only caller: no group for us */
int fstat(int fd, struct stat *st)
{
	if (is_dmaplane(fd, st)) {
		errno = EBADF;
		return -1;
	}
	return fstatat(fd, "", st, AT_EMPTY_PATH);
}

/* splitmix64's finaliser */
static unsigned long long mix(unsigned long long x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* trinity makes its 64-bit calls through syscall(3) */
long syscall(long nr, ...)
{
	unsigned long long h;
	struct stat st;
	va_list ap;
	long a[6];

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (rewrite && nr == SYS_ioctl && is_dmaplane((int)a[0], &st)) {
		h = mix((unsigned long)a[1] ^ ++calls * 0x9e3779b97f4a7c15ULL);
		if (h & 3) {
			a[1] = cmds[(h >> 2) % (sizeof(cmds) / sizeof(cmds[0]))];
			if (!((h >> 16) & 15))
				a[1] ^= 1UL << ((h >> 20) & 31);
		}
	}
	return next_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
