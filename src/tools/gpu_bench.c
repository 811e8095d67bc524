// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl gpu-bench: the BAR tiers of GPU memory (gpu_bar.h): a range
 * pinned through GPU_PIN and mapped write-combining, then uncached,
 * copied into (h2d) and out of (d2h) with memcpy, against a host memcpy
 * of the same size in the same run.
 *
 *   gpu-bench [--provider sim|nvidia] [--device N] [--size S]
 *             [--iterations N] [--json | --json-out FILE]
 *
 * Provider: --provider, else the sim GPU when GET_INFO says it is ready.
 * NVIDIA memory is a cudaMalloc pointer only a CUDA process has, so
 * nvidia-p2p is measured by gpu_bench_cuda (same table and JSON), not
 * here. Exit status: 0 measured (figures, and per tier the error of one
 * that could not be), 1 nothing could be measured, GPU_BAR_EXIT_SKIP (77)
 * no usable provider here, with the reason on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dmaplanectl.h"
#include "gpu_bar.h"
#include "libdmaplane.h"

#define GPU_BENCH_CUDA_TOOL	"gpu_bench_cuda"
#define GPU_BENCH_PAGE		(64ULL << 10)	/* the sim GPU's page */

static int gpu_bench_skip(const char *why)
{
	fprintf(stderr, "dmaplanectl gpu-bench: skipped: %s\n", why);
	return GPU_BAR_EXIT_SKIP;
}

/* The provider @name names: a DMAPLANE_GPU_* value, 0 for none. */
static uint32_t gpu_bench_provider(const char *name)
{
	if (!strcmp(name, "nvidia"))
		return DMAPLANE_GPU_NVIDIA_P2P;
	for (uint32_t p = 1; p <= DMAPLANE_GPU_PROVIDER_MAX; p++) {
		const char *n = dmaplane_gpu_provider_name(p);

		if (n && !strcmp(n, name))
			return p;
	}
	return 0;
}

int cmd_gpu_bench(int fd, const struct options *o)
{
	struct gpu_bar_run run = {
		.device = (int32_t)o->device, .size = o->size,
		.iterations = (uint32_t)o->iterations,
	};
	struct dmaplane_info info;
	int ret;

	ret = dmaplane_get_info(fd, &info);
	if (ret)
		return fail("GET_INFO", ret);
	if (!(info.capabilities & DMAPLANE_CAP_GPU))
		return gpu_bench_skip("this dmaplane has no GPU support");
	if (o->provider) {
		run.provider = gpu_bench_provider(o->provider);
		if (!run.provider) {
			fprintf(stderr, "dmaplanectl: unknown --provider '%s' "
				"(sim or nvidia)\n", o->provider);
			return 2;
		}
	} else if (info.gpu_ready & 1U << DMAPLANE_GPU_SIM) {
		run.provider = DMAPLANE_GPU_SIM;
	} else if (info.gpu_ready & 1U << DMAPLANE_GPU_NVIDIA_P2P) {
		run.provider = DMAPLANE_GPU_NVIDIA_P2P;
	} else {
		return gpu_bench_skip("no GPU provider ready");
	}
	if (run.provider == DMAPLANE_GPU_NVIDIA_P2P)
		return gpu_bench_skip("nvidia-p2p pins CUDA memory: run "
				      GPU_BENCH_CUDA_TOOL " (same figures)");
	if (run.provider != DMAPLANE_GPU_SIM)
		return gpu_bench_skip("only sim and nvidia memory have BAR tiers");
	if (!(info.gpu_ready & 1U << DMAPLANE_GPU_SIM))
		return gpu_bench_skip("no sim GPU (dmaplane sim_gpu=1 in a VM "
				      "with an ivshmem-plain device)");
	if ((uint32_t)run.device >= info.gpu_sim_devices || run.device < 0)
		return gpu_bench_skip("no such sim GPU (--device)");
	if (run.size % GPU_BENCH_PAGE) {
		fprintf(stderr, "dmaplanectl: --size must be a multiple of "
			"the GPU page size (64K)\n");
		return 2;
	}

	ret = gpu_bar_measure(fd, &run);
	if (ret < 0)
		return fail("gpu-bench", ret);
	if (o->tbl)
		gpu_bar_print_table(o->tbl, "gpu-bench", &run);
	if (o->js)
		gpu_bar_print_json(o->js, &run);
	if (!ret) {
		fprintf(stderr, "dmaplanectl gpu-bench: no tier could be "
			"measured: %s: %s\n", run.tier[0].what,
			strerror(-run.tier[0].err));
		return 1;
	}
	return 0;
}
