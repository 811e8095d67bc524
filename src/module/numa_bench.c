// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA bandwidth matrix: for every node with CPUs (row) and every node with
 * memory (column), a kthread bound to the row's first CPU reads, writes or
 * copies a buffer whose pages are all on the column's node, for a number
 * of passes or until a time limit. Figures only: nothing here asserts a
 * speed. The caller may interrupt it with a signal.
 */
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/sched/task.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "dmaplane.h"

/* Work is checked for a stop request this often. */
#define DMAPLANE_BENCH_STEP	SZ_1M

/* Pages all on one node, mapped contiguously for the CPU. */
struct dmaplane_bench_mem {
	struct page **pages;
	unsigned long nr_pages;
	void *vaddr;
};

struct dmaplane_bench_work {
	struct completion done;
	enum dmaplane_bench_op op;
	void *src;		/* on the column's node */
	void *dst;		/* COPY: on the row's node */
	size_t size;
	u32 max_passes;
	u64 time_limit_ns;
	/* results */
	u32 passes;
	u64 ns;
	u64 sink;		/* READ's sum, so the loads are not optimised out */
};

static void dmaplane_bench_mem_free(struct dmaplane_bench_mem *mem)
{
	if (mem->vaddr)
		vunmap(mem->vaddr);
	if (mem->pages)
		dmaplane_free_node_pages(mem->pages, mem->nr_pages);
	kvfree(mem->pages);
}

static int dmaplane_bench_mem_alloc(struct dmaplane_bench_mem *mem, int nid,
				    size_t size)
{
	int ret;

	mem->nr_pages = size >> PAGE_SHIFT;
	mem->pages = kvcalloc(mem->nr_pages, sizeof(*mem->pages), GFP_KERNEL);
	if (!mem->pages)
		return -ENOMEM;
	ret = dmaplane_alloc_node_pages(mem->pages, mem->nr_pages, nid,
					GFP_KERNEL | __GFP_ZERO |
					__GFP_THISNODE | __GFP_NOWARN |
					__GFP_RETRY_MAYFAIL);
	if (ret)
		return ret;
	mem->vaddr = vmap(mem->pages, mem->nr_pages, VM_MAP, PAGE_KERNEL);
	return mem->vaddr ? 0 : -ENOMEM;
}

static u64 dmaplane_bench_read(const u64 *p, size_t bytes)
{
	u64 sum = 0;
	size_t i;

	for (i = 0; i < bytes / sizeof(u64); i++)
		sum += READ_ONCE(p[i]);
	return sum;
}

/* One pass, in steps; false when asked to stop halfway. */
static bool dmaplane_bench_pass(struct dmaplane_bench_work *w)
{
	size_t off, n;

	for (off = 0; off < w->size; off += n) {
		if (kthread_should_stop())
			return false;
		n = min_t(size_t, DMAPLANE_BENCH_STEP, w->size - off);
		switch (w->op) {
		case DMAPLANE_BENCH_READ:
			w->sink += dmaplane_bench_read(w->src + off, n);
			break;
		case DMAPLANE_BENCH_WRITE:
			memset(w->src + off, w->passes, n);
			break;
		default:
			memcpy(w->dst + off, w->src + off, n);
			break;
		}
		cond_resched();
	}
	return true;
}

static int dmaplane_bench_thread(void *data)
{
	struct dmaplane_bench_work *w = data;
	ktime_t start = ktime_get();

	while (w->passes < w->max_passes && dmaplane_bench_pass(w)) {
		w->passes++;
		w->ns = ktime_to_ns(ktime_sub(ktime_get(), start));
		if (w->ns >= w->time_limit_ns)
			break;
	}
	complete(&w->done);
	return 0;
}

/* Run @w on @cpu; -EINTR when the caller got a signal meanwhile. */
static int dmaplane_bench_run_on(struct dmaplane_bench_work *w, int cpu)
{
	struct task_struct *task;
	int ret = 0;

	init_completion(&w->done);
	task = kthread_create_on_node(dmaplane_bench_thread, w,
				      cpu_to_node(cpu), "dmaplane-bench/%d",
				      cpu);
	if (IS_ERR(task))
		return PTR_ERR(task);
	kthread_bind(task, cpu);
	/* kthread_stop() below needs the task even after it returned. */
	get_task_struct(task);
	wake_up_process(task);
	if (wait_for_completion_interruptible(&w->done))
		ret = -EINTR;
	kthread_stop(task);
	put_task_struct(task);
	return ret;
}

static int dmaplane_bench_cell(const struct dmaplane_numa_bench *req,
			       struct dmaplane_numa_bench_cell *cell)
{
	struct dmaplane_bench_mem src = {}, dst = {};
	struct dmaplane_bench_work w = {
		.op = req->op,
		.size = req->size,
		.max_passes = req->passes,
		.time_limit_ns = (u64)req->time_limit_ms * NSEC_PER_MSEC,
	};
	int cpu = cpumask_first_and(cpumask_of_node(cell->cpu_node),
				    cpu_online_mask);
	u64 charged = req->op == DMAPLANE_BENCH_COPY ? 2 * req->size :
		      req->size;
	int ret;

	if (cpu >= nr_cpu_ids)
		return -ENODEV;
	ret = dmaplane_charge(&dmaplane_stats.buffer_bytes, charged,
			      dmaplane_max_total_bytes);
	if (ret)
		return ret;
	ret = dmaplane_bench_mem_alloc(&src, cell->mem_node, req->size);
	if (!ret && req->op == DMAPLANE_BENCH_COPY)
		ret = dmaplane_bench_mem_alloc(&dst, cell->cpu_node, req->size);
	if (ret)
		goto out;
	w.src = src.vaddr;
	w.dst = dst.vaddr;
	ret = dmaplane_bench_run_on(&w, cpu);
	cell->passes = w.passes;
	cell->ns = w.ns;
	cell->bytes = (u64)w.passes * req->size;
out:
	dmaplane_bench_mem_free(&dst);
	dmaplane_bench_mem_free(&src);
	atomic64_sub(charged, &dmaplane_stats.buffer_bytes);
	return ret;
}

int dmaplane_ioc_numa_bench(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit)
{
	struct dmaplane_numa_bench *req = arg;
	struct dmaplane_numa_bench_cell *cells;
	nodemask_t cpu_nodes = node_states[N_CPU];
	nodemask_t mem_nodes = node_states[N_MEMORY];
	int row, col, ret = 0;
	u32 i = 0, n;
	u64 size;

	if (req->flags & ~DMAPLANE_NUMA_BENCH_VALID_FLAGS ||
	    req->op >= DMAPLANE_BENCH_NR_OPS ||
	    !req->passes || req->passes > DMAPLANE_BENCH_PASSES_MAX ||
	    !req->time_limit_ms ||
	    req->time_limit_ms > DMAPLANE_BENCH_TIME_MAX_MS ||
	    (req->cells_len && !req->cells_ptr) ||
	    req->size < DMAPLANE_BENCH_SIZE_MIN)
		return -EINVAL;
	ret = dmaplane_buffer_size(req->size, dmaplane_max_buffer_size,
				   PAGE_SIZE, &size);
	if (ret)
		return ret;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	req->size = size;
	req->nr_cells = nodes_weight(cpu_nodes) * nodes_weight(mem_nodes);
	n = min(req->cells_len, req->nr_cells);
	if (!n)
		return 0;

	cells = kcalloc(n, sizeof(*cells), GFP_KERNEL);
	if (!cells)
		return -ENOMEM;
	for_each_node_mask(row, cpu_nodes) {
		for_each_node_mask(col, mem_nodes) {
			if (i == n)
				break;
			cells[i].cpu_node = row;
			cells[i].mem_node = col;
			cells[i].status = dmaplane_bench_cell(req, &cells[i]);
			/* Only the caller's signal stops the whole matrix. */
			if (cells[i].status == -EINTR) {
				ret = -EINTR;
				goto out;
			}
			i++;
		}
	}
	if (copy_to_user(u64_to_user_ptr(req->cells_ptr), cells,
			 n * sizeof(*cells)))
		ret = -EFAULT;
out:
	kfree(cells);
	return ret;
}
