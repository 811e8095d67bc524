/* SPDX-License-Identifier: GPL-2.0 */
#ifndef DMAPLANE_TESTUTIL_H
#define DMAPLANE_TESTUTIL_H

#include <stdint.h>

/* Parse the first unsigned number in a file; -errno on failure. */
int read_u64_file(const char *path, uint64_t *val);
/* Value of "key: N" in a "key: value" file such as debugfs dmaplane/info. */
int read_keyed_u64(const char *path, const char *key, uint64_t *val);
/* Nodes listed in /sys/devices/system/node/online ("0-1,3" style). */
int count_online_nodes(void);
/* Entries in /sys/class/infiniband (0 when the class does not exist). */
int count_rdma_devices(void);

#define DMAPLANE_DEBUGFS_INFO "/sys/kernel/debug/dmaplane/info"
#define DMAPLANE_PARAM(name) "/sys/module/dmaplane/parameters/" name

#endif /* DMAPLANE_TESTUTIL_H */
