// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA: where a buffer's pages are, checked page by page, and the topology
 * the kernel sees (online nodes, their CPUs and memory, SLIT distances).
 */
#include <linux/cpumask.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/uaccess.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

/*
 * The verdict on a buffer with @on_node of @total pages on the node it
 * asked for: strict placement must be complete (-EXDEV otherwise), a
 * preference that was not fully met is flagged in *@result_flags.
 */
VISIBLE_IF_KUNIT int dmaplane_placement_verdict(unsigned long on_node,
						unsigned long total,
						bool strict, u32 *result_flags)
{
	if (on_node == total)
		return 0;
	if (strict)
		return -EXDEV;
	*result_flags |= DMAPLANE_BUF_RES_NUMA_FALLBACK;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_placement_verdict);

/* Verify with page_to_nid() where every page of @buf landed. */
int dmaplane_buffer_place(struct dmaplane_buffer *buf)
{
	unsigned long i, on = 0;

	if (buf->nid == NUMA_NO_NODE)
		return 0;
	for (i = 0; i < buf->nr_pages; i++)
		on += page_to_nid(buf->pages[i]) == buf->nid;
	buf->pages_on_node = on;
	atomic64_add(on, &dmaplane_stats.numa_pages_on_node);
	atomic64_add(buf->nr_pages - on, &dmaplane_stats.numa_pages_off_node);
	return dmaplane_placement_verdict(on, buf->nr_pages,
					  buf->flags & DMAPLANE_BUF_NUMA_STRICT,
					  &buf->result_flags);
}

/* Pages of @buf per node, into the first min(@len, nr_node_ids) entries. */
int dmaplane_node_histogram(struct dmaplane_buffer *buf, u64 __user *uhist,
			    u32 len)
{
	u32 n = min_t(u32, len, nr_node_ids);
	unsigned long i;
	u64 *hist;
	int ret = 0;

	hist = kcalloc(nr_node_ids, sizeof(*hist), GFP_KERNEL);
	if (!hist)
		return -ENOMEM;
	for (i = 0; i < buf->nr_pages; i++)
		hist[page_to_nid(buf->pages[i])]++;
	if (copy_to_user(uhist, hist, n * sizeof(*hist)))
		ret = -EFAULT;
	kfree(hist);
	return ret;
}

static void dmaplane_node_mem(int nid, u64 *total, u64 *free)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long managed = 0, nr_free = 0;
	int z;

	for (z = 0; z < MAX_NR_ZONES; z++) {
		struct zone *zone = &pgdat->node_zones[z];

		managed += zone_managed_pages(zone);
		nr_free += zone_page_state(zone, NR_FREE_PAGES);
	}
	*total = (u64)managed << PAGE_SHIFT;
	*free = (u64)nr_free << PAGE_SHIFT;
}

/*
 * Node entries, the CPU id list and the distance matrix, for the nodes
 * online at the start of the call. Collected first, copied out after, so
 * nothing faults on user memory halfway through the snapshot.
 */
int dmaplane_ioc_get_topology(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit)
{
	struct dmaplane_topology *topo = arg;
	struct dmaplane_numa_node *nodes;
	nodemask_t online = node_online_map;
	u32 i = 0, j, nr_cpus = 0, nodes_out, cpus_out;
	u32 __user *udist;
	size_t cells;
	u32 *cpus;
	int nid, cpu, ret = -ENOMEM;

	if (topo->flags & ~DMAPLANE_TOPOLOGY_VALID_FLAGS || topo->reserved ||
	    (topo->nodes_len && !topo->nodes_ptr) ||
	    (topo->cpus_len && !topo->cpus_ptr) ||
	    (topo->distances_ptr && !topo->nodes_len) ||
	    check_mul_overflow((size_t)topo->nodes_len,
			       (size_t)topo->nodes_len, &cells))
		return -EINVAL;

	topo->nr_nodes = nodes_weight(online);
	nodes = kcalloc(topo->nr_nodes, sizeof(*nodes), GFP_KERNEL);
	cpus = kcalloc(nr_cpu_ids, sizeof(*cpus), GFP_KERNEL);
	if (!nodes || !cpus)
		goto out;
	for_each_node_mask(nid, online) {
		nodes[i].node_id = nid;
		nodes[i].cpu_index = nr_cpus;
		for_each_cpu_and(cpu, cpumask_of_node(nid), cpu_online_mask) {
			if (nr_cpus == nr_cpu_ids)
				break;
			cpus[nr_cpus++] = cpu;
			nodes[i].nr_cpus++;
		}
		dmaplane_node_mem(nid, &nodes[i].mem_total, &nodes[i].mem_free);
		i++;
	}
	topo->nr_cpus = nr_cpus;
	nodes_out = min(topo->nr_nodes, topo->nodes_len);
	cpus_out = min(nr_cpus, topo->cpus_len);

	ret = -EFAULT;
	if (copy_to_user(u64_to_user_ptr(topo->nodes_ptr), nodes,
			 nodes_out * sizeof(*nodes)) ||
	    copy_to_user(u64_to_user_ptr(topo->cpus_ptr), cpus,
			 cpus_out * sizeof(*cpus)))
		goto out;
	udist = u64_to_user_ptr(topo->distances_ptr);
	for (i = 0; udist && i < nodes_out; i++)
		for (j = 0; j < nodes_out; j++)
			if (put_user(node_distance(nodes[i].node_id,
						   nodes[j].node_id),
				     udist + (size_t)i * topo->nodes_len + j))
				goto out;
	ret = 0;
out:
	kfree(cpus);
	kfree(nodes);
	return ret;
}
