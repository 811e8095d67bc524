/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The GPU BAR tiers benchmark, shared by `dmaplanectl gpu-bench` (sim GPU
 * memory) and gpu_bench_cuda (CUDA memory through nvidia-p2p): one range
 * of GPU memory pinned twice, mapped write-combining and then uncached,
 * copied into and out of through each mapping, against a host memcpy of
 * the same size in the same run.
 */
#ifndef GPU_BAR_H
#define GPU_BAR_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Exit status of both tools when they cannot measure here (no GPU
 * provider ready, no GPU): the automake/ctest "skipped" code, which
 * neither a failure (1) nor a usage error (2) can be mistaken for.
 */
#define GPU_BAR_EXIT_SKIP	77

enum { GPU_BAR_WC, GPU_BAR_UC, GPU_BAR_TIERS };

struct gpu_bar_tier {
	const char *name;	/* "wc", "uc" */
	uint32_t flags;		/* GPU_PIN flags */
	int err;		/* 0: measured; else -errno of step @what */
	const char *what;
	double h2d_mbps;	/* host buffer -> mapping (memcpy) */
	double d2h_mbps;	/* mapping -> host buffer (memcpy) */
	int verified;		/* what went in came back out */
};

struct gpu_bar_run {
	/* in */
	uint32_t provider;	/* DMAPLANE_GPU_* */
	int32_t device;		/* GPU_PIN's device */
	uint64_t addr;		/* GPU_PIN's addr */
	uint64_t size;
	uint32_t iterations;
	/* out */
	double host_mbps;	/* host memcpy, the reference */
	struct gpu_bar_tier tier[GPU_BAR_TIERS];
	/* the CUDA tool's own copies, when it sets @cuda */
	int cuda;
	double cuda_h2d_mbps;	/* cudaMemcpy from pinned host memory */
	double cuda_d2h_mbps;
};

/*
 * Run every tier on /dev/dmaplane file @fd. The number of tiers measured
 * (0: none could be, see each tier's err), or -errno when no host memory.
 * A negative @fd (-errno: why there is no dmaplane to use) measures only
 * the host reference and gives every tier that error.
 */
int gpu_bar_measure(int fd, struct gpu_bar_run *run);
/* @run as a table (MB/s, ratio to host memcpy) and as one JSON object. */
void gpu_bar_print_table(FILE *out, const char *tool,
			 const struct gpu_bar_run *run);
void gpu_bar_print_json(FILE *out, const struct gpu_bar_run *run);
/* Bytes/s of @bytes copied in @ns, as MB/s (0 for no time). */
double gpu_bar_mbps(double bytes, double ns);
double gpu_bar_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* GPU_BAR_H */
