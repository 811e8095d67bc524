/* SPDX-License-Identifier: GPL-2.0 */
#ifndef DMAPLANE_TESTUTIL_H
#define DMAPLANE_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Parse the first unsigned number in a file; -errno on failure. */
int read_u64_file(const char *path, uint64_t *val);
/* Value of "key: N" in a "key: value" file such as debugfs dmaplane/info. */
int read_keyed_u64(const char *path, const char *key, uint64_t *val);
/* Nodes listed in /sys/devices/system/node/online ("0-1,3" style). */
int count_online_nodes(void);
/* Entries in /sys/class/infiniband (0 when the class does not exist). */
int count_rdma_devices(void);

/* Value in kB of "key:" in /proc/self/status (VmPin, VmLck, ...). */
int proc_status_kb(const char *key, uint64_t *kb);
/* Drop @cap from this process's effective, permitted and inheritable sets. */
int drop_capability(int cap);
/* Counter @key of debugfs dmaplane/info; 0 when it cannot be read. */
uint64_t dmaplane_counter(const char *key);

/* The first line of @path without its newline; -ENOENT if unreadable. */
int read_first_line(const char *path, char *buf, size_t len);

/*
 * A test pattern: byte i of a buffer written with @seed. pattern_mismatch()
 * checks @len bytes that start at byte @base of such a buffer and returns
 * the index of the first wrong one, or @len.
 */
void fill_pattern(unsigned char *p, size_t len, unsigned int seed);
size_t pattern_mismatch(const unsigned char *p, size_t len, unsigned int seed,
			size_t base);
bool pattern_holds(const unsigned char *p, size_t len, unsigned int seed);

/*
 * Wait for @pid; a KTAP failure unless it exited 0. Children exit with
 * the number of the step that failed.
 */
bool child_exited_ok(pid_t pid);
/*
 * A read-only page holding @len bytes of @arg, for the "copy-in works,
 * copy-out fails" cases; NULL (and a KTAP failure) if it cannot be made.
 * Release with munmap(p, 4096).
 */
void *readonly_arg(const void *arg, size_t len);

/* The netdev under RDMA device @dev (`rdma link show`); -ENOENT if none. */
int rdma_netdev_of(const char *dev, char *netdev, size_t len);
/*
 * `rdma link add @name type rxe netdev @netdev`, then wait up to 30 s for
 * its port to be ACTIVE: 0, -EIO (the command failed) or -ETIMEDOUT.
 */
int rxe_link_add(const char *name, const char *netdev);
/* Wait up to 30 s for port 1 of RDMA device @name to be ACTIVE. */
int rdma_port_wait_active(const char *name);
/*
 * The sum of port 1's receiver-not-ready hardware counters of device @dev
 * (every hw_counters file with "rnr" in its name): -ENOENT without them.
 */
int rdma_rnr_events(const char *dev, uint64_t *sum);

/*
 * @rel (e.g. "fixtures/models/tiny.conf") in the repository: under
 * $DMAPLANE_ROOT, or two levels above this binary (build/tests/x).
 */
void repo_path(char *buf, size_t len, const char *rel);

/*
 * Kernel log: kmsg_mark() notes where it ends now; kmsg_since_mark()
 * returns what was logged after that (the whole log without a mark), for
 * the caller to free, or NULL when it cannot be read.
 */
void kmsg_mark(void);
char *kmsg_since_mark(void);

#define DMAPLANE_DEBUGFS_INFO "/sys/kernel/debug/dmaplane/info"
#define DMAPLANE_PARAM(name) "/sys/module/dmaplane/parameters/" name

#endif /* DMAPLANE_TESTUTIL_H */
