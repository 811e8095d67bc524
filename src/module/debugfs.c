// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: /sys/kernel/debug/dmaplane/. Counters only, never addresses.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "rdma.h"

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
	DMAPLANE_COUNTER(peer_errors),
	DMAPLANE_COUNTER(gpu_pinned_bytes),
	DMAPLANE_COUNTER(gpu_revocations),
};

static const char *const dmaplane_kind_names[] = {
	[DMAPLANE_KIND_PAGES] = "pages",
	[DMAPLANE_KIND_COHERENT] = "coherent",
	[DMAPLANE_KIND_HUGE] = "huge",
	[DMAPLANE_KIND_USER] = "user",
	[DMAPLANE_KIND_IMPORT] = "import",
	[DMAPLANE_KIND_GPU] = "gpu",
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

static const char *const dmaplane_ep_state_names[] = {
	[DMAPLANE_EP_IDLE] = "idle",
	[DMAPLANE_EP_LISTENING] = "listening",
	[DMAPLANE_EP_CONNECTING] = "connecting",
	[DMAPLANE_EP_CONNECTED] = "connected",
	[DMAPLANE_EP_DISCONNECTED] = "disconnected",
	[DMAPLANE_EP_ERROR] = "error",
};

static void dmaplane_hist_show(struct seq_file *m, const struct dmaplane_hist *h)
{
	unsigned int b;
	bool any = false;

	seq_printf(m, " lat_count=%llu lat_p50_ns=%llu lat_p99_ns=%llu lat_p999_ns=%llu lat_max_ns=%llu lat_hist=",
		   h->count, dmaplane_hist_percentile(h, 500000),
		   dmaplane_hist_percentile(h, 990000),
		   dmaplane_hist_percentile(h, 999000), h->max);
	for (b = 0; b < DMAPLANE_HIST_BUCKETS; b++) {
		if (!h->bucket[b])
			continue;
		seq_printf(m, "%s%u:%llu", any ? "," : "", b, h->bucket[b]);
		any = true;
	}
	seq_puts(m, any ? "\n" : "-\n");
}

static void dmaplane_ep_show(struct dmaplane_ep *ep, void *data)
{
	struct seq_file *m = data;
	u32 state = READ_ONCE(ep->state);

	spin_lock_bh(&ep->post_lock);
	seq_printf(m, "id=%llu state=%s credits=%s window=%u credits_avail=%u peer_credits=%u queued=%u inflight=%u ops=%llu bytes=%llu errors=%llu stalls=%llu stall_ns=%llu grants_sent=%llu grants_rcvd=%llu",
		   ep->id, state < ARRAY_SIZE(dmaplane_ep_state_names) ?
		   dmaplane_ep_state_names[state] : "?",
		   ep->credits_on ? "on" : "off", ep->params.credit_window,
		   dmaplane_credit_avail(&ep->credits),
		   ep->credits.granted - ep->credits.consumed, ep->queued,
		   ep->send_busy + ep->recv_busy - ep->ring_count, ep->ops,
		   ep->bytes, ep->errors, ep->stalls, ep->stall_ns,
		   ep->grants_sent, ep->grants_rcvd);
	/* The credit counters themselves: what a stalled stream is owed. */
	seq_printf(m, " peer_granted=%u used=%u posted=%u consumed=%u granted=%u grant_in_flight=%u ctrl_ready=%u",
		   ep->credits.peer_granted, ep->credits.used,
		   ep->credits.posted, ep->credits.consumed,
		   ep->credits.granted, ep->ctrl_busy, ep->ctrl_ready);
	dmaplane_hist_show(m, &ep->latency);
	spin_unlock_bh(&ep->post_lock);
}

/* One line per endpoint module-wide, by id: no handles, no addresses. */
static int dmaplane_endpoints_show(struct seq_file *m, void *unused)
{
	dmaplane_eps_walk(dmaplane_ep_show, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_endpoints);

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
	debugfs_create_file("endpoints", 0400, dmaplane_debugfs_root, NULL,
			    &dmaplane_endpoints_fops);
}

void dmaplane_debugfs_exit(void)
{
	debugfs_remove_recursive(dmaplane_debugfs_root);
}
