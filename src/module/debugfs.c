// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: /sys/kernel/debug/dmaplane/. Counters only, never addresses.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "dmaplane.h"

static struct dentry *dmaplane_debugfs_root;

static int dmaplane_info_show(struct seq_file *m, void *unused)
{
	struct dmaplane_info info = {};

	dmaplane_fill_info(&info);
	seq_printf(m, "module_version: %s\n", info.module_version);
	seq_printf(m, "uapi_version: %u\n", info.uapi_version);
	seq_printf(m, "capabilities: 0x%llx\n", info.capabilities);
	seq_printf(m, "numa_nodes_online: %u\n", info.numa_nodes_online);
	seq_printf(m, "numa_nodes_possible: %u\n", info.numa_nodes_possible);
	seq_printf(m, "rdma_devices: %u\n", info.rdma_devices);
	seq_printf(m, "open_contexts: %d\n",
		   atomic_read(&dmaplane_stats.open_contexts));
	seq_printf(m, "buffers: %d\n", atomic_read(&dmaplane_stats.buffers));
	seq_printf(m, "buffer_bytes: %lld\n",
		   atomic64_read(&dmaplane_stats.buffer_bytes));
	seq_printf(m, "ioctls: %lld\n", atomic64_read(&dmaplane_stats.ioctls));
	seq_printf(m, "mappings: %d\n", atomic_read(&dmaplane_stats.mappings));
	seq_printf(m, "pinned_pages: %lld\n",
		   atomic64_read(&dmaplane_stats.pinned_pages));
	seq_printf(m, "memlock_denied: %lld\n",
		   atomic64_read(&dmaplane_stats.memlock_denied));
	seq_printf(m, "numa_pages_on_node: %lld\n",
		   atomic64_read(&dmaplane_stats.numa_pages_on_node));
	seq_printf(m, "numa_pages_off_node: %lld\n",
		   atomic64_read(&dmaplane_stats.numa_pages_off_node));
	seq_printf(m, "numa_strict_failures: %lld\n",
		   atomic64_read(&dmaplane_stats.numa_strict_failures));
	seq_printf(m, "huge_chunks: %lld\n",
		   atomic64_read(&dmaplane_stats.huge_chunks));
	seq_printf(m, "huge_fallback_chunks: %lld\n",
		   atomic64_read(&dmaplane_stats.huge_fallback_chunks));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_info);

void dmaplane_debugfs_init(void)
{
	/* debugfs failures are not fatal: the module works without it. */
	dmaplane_debugfs_root = debugfs_create_dir(DMAPLANE_DEVICE_NAME, NULL);
	debugfs_create_file("info", 0444, dmaplane_debugfs_root, NULL,
			    &dmaplane_info_fops);
}

void dmaplane_debugfs_exit(void)
{
	debugfs_remove_recursive(dmaplane_debugfs_root);
}
