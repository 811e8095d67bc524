// SPDX-License-Identifier: GPL-2.0
/*
 * gpu_bench_cuda: the BAR tiers of CUDA memory (gpu_bar.h), next to what
 * CUDA's own copies do.
 *
 *   gpu_bench_cuda [--device N] [--size S] [--iterations N]
 *                  [--json | --json-out FILE]
 *
 * cudaMalloc()s --size bytes (64 KiB aligned, as nvidia_p2p_get_pages()
 * wants them) on CUDA device N, times cudaMemcpy() to and from pinned
 * host memory (cudaHostAlloc), then pins the allocation through dmaplane's
 * nvidia-p2p provider (GPU_PIN with the CUDA pointer as the address),
 * maps it write-combining and then uncached through /dev/dmaplane, and
 * times memcpy() through each mapping against a host memcpy. The pointer
 * gets CU_POINTER_ATTRIBUTE_SYNC_MEMOPS first, as GPUDirect RDMA asks:
 * CUDA's synchronous copies then finish before any other access sees the
 * memory.
 *
 * Exit status: 0 measured; 1 could not run (CUDA failed on a device it
 * reported); GPU_BAR_EXIT_SKIP (77) nothing to measure here: no CUDA
 * device, no dmaplane, or its nvidia-p2p provider not ready. The reason is
 * on stderr; what was measured before a skip is still printed.
 *
 * Built by nvcc with cudart linked statically, and without libcuda: the
 * one driver call (cuPointerSetAttribute) is looked up at run time, so
 * the binary starts, and skips, on machines without an NVIDIA driver.
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "libdmaplane.h"
}
#include "gpu_bar.h"

#define TOOL		"gpu_bench_cuda"
#define NV_PAGE		(64ULL << 10)

struct args {
	int device;
	uint64_t size;
	uint32_t iterations;
	int json;
	const char *json_out;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " TOOL " [--device N] [--size S] [--iterations N]\n"
		"                      [--json | --json-out FILE]\n"
		"CUDA memory: cudaMemcpy from pinned host memory, then memcpy\n"
		"through dmaplane's nvidia-p2p mappings (write-combining, uncached)\n"
		"against host memcpy. Sizes take K, M or G (a multiple of 64K).\n"
		"Exit 0 measured, 1 could not run, %d skipped (no CUDA device,\n"
		"no dmaplane, or its nvidia-p2p provider not ready).\n",
		GPU_BAR_EXIT_SKIP);
}

static int parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!strcmp(opt, "--json")) {
			a->json = 1;
			continue;
		}
		if (!val)
			return -1;
		i++;
		if (!strcmp(opt, "--size")) {
			a->size = dmaplane_parse_size(val);
			if (!a->size || a->size % NV_PAGE)
				return -1;
		} else if (!strcmp(opt, "--iterations")) {
			unsigned long v = strtoul(val, &end, 0);

			if (*end || !v || v > UINT32_MAX)
				return -1;
			a->iterations = (uint32_t)v;
		} else if (!strcmp(opt, "--device")) {
			long v = strtol(val, &end, 0);

			if (*end || v < 0 || v > 1024)
				return -1;
			a->device = (int)v;
		} else if (!strcmp(opt, "--json-out")) {
			a->json_out = val;
		} else {
			return -1;
		}
	}
	return 0;
}

static int skip(const char *why, const char *detail)
{
	fprintf(stderr, TOOL ": skipped: %s%s%s\n", why, detail ? ": " : "",
		detail ? detail : "");
	return GPU_BAR_EXIT_SKIP;
}

static int cuda_fail(const char *what, cudaError_t err)
{
	fprintf(stderr, TOOL ": %s: %s\n", what, cudaGetErrorString(err));
	return 1;
}

/* MB/s of --iterations cudaMemcpy(@dst, @src) after one untimed. */
static int cuda_copy(void *dst, const void *src, uint64_t size,
		     uint32_t iterations, cudaMemcpyKind kind, double *mbps)
{
	cudaError_t err = cudaMemcpy(dst, src, size, kind);
	double start;

	if (err != cudaSuccess)
		return cuda_fail("cudaMemcpy", err);
	start = gpu_bar_now_ns();
	for (uint32_t i = 0; i < iterations; i++) {
		err = cudaMemcpy(dst, src, size, kind);
		if (err != cudaSuccess)
			return cuda_fail("cudaMemcpy", err);
	}
	*mbps = gpu_bar_mbps((double)size * iterations,
			     gpu_bar_now_ns() - start);
	return 0;
}

/*
 * CU_POINTER_ATTRIBUTE_SYNC_MEMOPS on [@ptr, ...): through libcuda,
 * found at run time (cudart already loaded it, or there is no driver).
 */
static int set_sync_memops(void *ptr)
{
	typedef CUresult (*set_attr_fn)(const void *, CUpointer_attribute,
					 CUdeviceptr);
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	unsigned int one = 1;
	set_attr_fn set_attr;
	CUresult res;

	if (!lib)
		lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib) {
		fprintf(stderr, TOOL ": libcuda.so.1: %s\n", dlerror());
		return -1;
	}
	set_attr = (set_attr_fn)dlsym(lib, "cuPointerSetAttribute");
	if (!set_attr) {
		fprintf(stderr, TOOL ": cuPointerSetAttribute: %s\n", dlerror());
		return -1;
	}
	res = set_attr(&one, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS,
		       (CUdeviceptr)(uintptr_t)ptr);
	if (res != CUDA_SUCCESS) {
		fprintf(stderr, TOOL ": cuPointerSetAttribute(SYNC_MEMOPS): "
			"error %d\n", (int)res);
		return -1;
	}
	return 0;
}

static void print(const struct args *a, const struct gpu_bar_run *run)
{
	FILE *js = a->json ? stdout : NULL;

	if (!a->json)
		gpu_bar_print_table(stdout, TOOL, run);
	if (a->json_out && !a->json)
		js = fopen(a->json_out, "w");
	if (a->json_out && !a->json && !js)
		fprintf(stderr, TOOL ": %s: %s\n", a->json_out, strerror(errno));
	if (js)
		gpu_bar_print_json(js, run);
	if (js && js != stdout)
		fclose(js);
}

/*
 * The BAR tiers of [@gpu, + @size) through dmaplane: 0 measured, 1 none
 * could be (the provider refused the range), or a skip when there is no
 * dmaplane nvidia-p2p provider here; the host reference is measured (and
 * every tier shows why it is missing) in any case.
 */
static int bar_tiers(void *gpu, struct gpu_bar_run *run)
{
	struct dmaplane_info info;
	int fd, ret, status = 0;

	run->provider = DMAPLANE_GPU_NVIDIA_P2P;
	run->device = 0;
	run->addr = (uint64_t)(uintptr_t)gpu;
	fd = dmaplane_open();
	if (fd < 0) {
		status = skip(DMAPLANE_DEV_PATH, strerror(-fd));
	} else {
		ret = dmaplane_get_info(fd, &info);
		if (!ret && !(info.gpu_ready & 1U << DMAPLANE_GPU_NVIDIA_P2P))
			ret = -EOPNOTSUPP;
		if (ret) {
			status = skip("dmaplane's nvidia-p2p provider not ready",
				      strerror(-ret));
			close(fd);
			fd = ret;
		}
	}
	ret = gpu_bar_measure(fd, run);
	if (fd >= 0)
		close(fd);
	if (ret < 0) {
		fprintf(stderr, TOOL ": %s\n", strerror(-ret));
		return 1;
	}
	if (status)
		return status;
	if (!ret)
		fprintf(stderr, TOOL ": no tier could be measured: %s: %s\n",
			run->tier[0].what, strerror(-run->tier[0].err));
	return ret ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct args a = { 0, 16ULL << 20, 5, 0, NULL };
	struct gpu_bar_run run;
	void *raw = NULL, *host = NULL, *gpu;
	cudaError_t err;
	int count = 0, ret;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (parse_args(argc, argv, &a)) {
		usage(stderr);
		return 2;
	}
	memset(&run, 0, sizeof(run));
	run.size = a.size;
	run.iterations = a.iterations;

	err = cudaGetDeviceCount(&count);
	if (err != cudaSuccess)
		return skip("no CUDA device", cudaGetErrorString(err));
	if (a.device >= count)
		return skip("no such CUDA device (--device)", NULL);
	err = cudaSetDevice(a.device);
	if (err != cudaSuccess)
		return cuda_fail("cudaSetDevice", err);
	/* One GPU page more, to start the pinned range on a 64 KiB boundary. */
	err = cudaMalloc(&raw, a.size + NV_PAGE);
	if (err != cudaSuccess)
		return cuda_fail("cudaMalloc", err);
	gpu = (void *)(((uintptr_t)raw + NV_PAGE - 1) &
		       ~(uintptr_t)(NV_PAGE - 1));
	err = cudaHostAlloc(&host, a.size, cudaHostAllocDefault);
	if (err != cudaSuccess) {
		cudaFree(raw);
		return cuda_fail("cudaHostAlloc", err);
	}
	memset(host, 0x5a, a.size);

	run.cuda = 1;
	ret = cuda_copy(gpu, host, a.size, a.iterations, cudaMemcpyHostToDevice,
			&run.cuda_h2d_mbps);
	if (!ret)
		ret = cuda_copy(host, gpu, a.size, a.iterations,
				cudaMemcpyDeviceToHost, &run.cuda_d2h_mbps);
	if (!ret && set_sync_memops(gpu))
		ret = 1;
	if (!ret) {
		ret = bar_tiers(gpu, &run);
		print(&a, &run);
	}
	/* Each tier unpinned its range (BUFFER_DESTROY) before this. */
	cudaFreeHost(host);
	cudaFree(raw);
	return ret;
}
