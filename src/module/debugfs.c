// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: /sys/kernel/debug/dmaplane/. Counters only, never addresses.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "dmaplane.h"

static struct dentry *dmaplane_debugfs_root;

#define DMAPLANE_COUNTER(_name) { #_name, &dmaplane_stats._name }

static const struct {
	const char *name;
	atomic64_t *value;
} dmaplane_counters[] = {
	DMAPLANE_COUNTER(ioctls),
	DMAPLANE_COUNTER(pinned_pages),
	DMAPLANE_COUNTER(memlock_denied),
	DMAPLANE_COUNTER(numa_pages_on_node),
	DMAPLANE_COUNTER(numa_pages_off_node),
	DMAPLANE_COUNTER(numa_strict_failures),
	DMAPLANE_COUNTER(huge_chunks),
	DMAPLANE_COUNTER(huge_fallback_chunks),
	DMAPLANE_COUNTER(revocations),
	DMAPLANE_COUNTER(released_attached),
	DMAPLANE_COUNTER(mr_dereg_no_inv),
	DMAPLANE_COUNTER(ops_posted),
	DMAPLANE_COUNTER(op_bytes),
	DMAPLANE_COUNTER(op_errors),
	DMAPLANE_COUNTER(handshakes_refused),
};

static const char *const dmaplane_kind_names[] = {
	[DMAPLANE_KIND_PAGES] = "pages",
	[DMAPLANE_KIND_COHERENT] = "coherent",
	[DMAPLANE_KIND_HUGE] = "huge",
	[DMAPLANE_KIND_USER] = "user",
	[DMAPLANE_KIND_IMPORT] = "import",
};

static void dmaplane_buffer_show(struct dmaplane_buffer *buf, void *data)
{
	struct seq_file *m = data;

	seq_printf(m, "id=%llu kind=%s size=%llu node=%d pages_on_node=%lu mappings=%d exports=%d attachments=%d mrs=%d flags=0x%x%s\n",
		   buf->id, dmaplane_kind_names[buf->kind], buf->size,
		   buf->nid, buf->pages_on_node, atomic_read(&buf->mappings),
		   atomic_read(&buf->exports), atomic_read(&buf->attachments),
		   atomic_read(&buf->mrs), buf->result_flags, READ_ONCE(buf->revoked) ? " revoked" : "");
}

/* One line per buffer module-wide: no handles (they are per file), no addresses. */
static int dmaplane_buffers_show(struct seq_file *m, void *unused)
{
	dmaplane_buffers_walk(dmaplane_buffer_show, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_buffers);

static int dmaplane_info_show(struct seq_file *m, void *unused)
{
	struct dmaplane_info info = {};
	size_t i;

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
	seq_printf(m, "mappings: %d\n", atomic_read(&dmaplane_stats.mappings));
	seq_printf(m, "exports: %d\n", atomic_read(&dmaplane_stats.exports));
	seq_printf(m, "attachments: %d\n",
		   atomic_read(&dmaplane_stats.attachments));
	seq_printf(m, "endpoints: %d\n",
		   atomic_read(&dmaplane_stats.endpoints));
	seq_printf(m, "mrs: %d\n", atomic_read(&dmaplane_stats.mrs));
	for (i = 0; i < ARRAY_SIZE(dmaplane_counters); i++)
		seq_printf(m, "%s: %lld\n", dmaplane_counters[i].name,
			   atomic64_read(dmaplane_counters[i].value));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_info);

void dmaplane_debugfs_init(void)
{
	/* debugfs failures are not fatal: the module works without it. */
	dmaplane_debugfs_root = debugfs_create_dir(DMAPLANE_DEVICE_NAME, NULL);
	debugfs_create_file("info", 0444, dmaplane_debugfs_root, NULL,
			    &dmaplane_info_fops);
	debugfs_create_file("buffers", 0400, dmaplane_debugfs_root, NULL,
			    &dmaplane_buffers_fops);
}

void dmaplane_debugfs_exit(void)
{
	debugfs_remove_recursive(dmaplane_debugfs_root);
}
