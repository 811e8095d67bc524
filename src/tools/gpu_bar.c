// SPDX-License-Identifier: GPL-2.0
/*
 * GPU BAR tiers (gpu_bar.h). Each tier pins the range on its own, maps it,
 * measures and lets go before the next one starts: on x86 a physical range
 * may not be mapped write-combining and uncached at once (PAT gives the
 * second mapping the first one's type), so the two mappings never coexist.
 *
 * Copies are plain memcpy() between a page-aligned host buffer and the
 * mapping, one warm-up copy untimed, then --iterations timed back to back.
 * What went in is compared with what came back: a mapping that does not
 * reach the memory shows as unverified, not as a fast figure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "gpu_bar.h"
#include "libdmaplane.h"

/* Keep the compiler from dropping a copy nobody reads back in C. */
#define GPU_BAR_USED(p)	__asm__ __volatile__("" : : "r"(p) : "memory")

double gpu_bar_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double gpu_bar_mbps(double bytes, double ns)
{
	return ns > 0 ? bytes / (ns / 1e9) / 1e6 : 0.0;
}

/* MB/s of @iterations memcpy(@dst, @src, @size) after one untimed. */
static double gpu_bar_copy(void *dst, const void *src, uint64_t size,
			   uint32_t iterations)
{
	double start;

	memcpy(dst, src, size);
	GPU_BAR_USED(dst);
	start = gpu_bar_now_ns();
	for (uint32_t i = 0; i < iterations; i++) {
		memcpy(dst, src, size);
		GPU_BAR_USED(dst);
	}
	return gpu_bar_mbps((double)size * iterations, gpu_bar_now_ns() - start);
}

static void gpu_bar_tier_run(int fd, const struct gpu_bar_run *run,
			     struct gpu_bar_tier *t, unsigned char *src,
			     unsigned char *dst)
{
	struct dmaplane_gpu_pin req = {
		.provider = run->provider, .flags = t->flags,
		.addr = run->addr, .length = run->size, .device = run->device,
	};
	void *map;

	t->err = dmaplane_gpu_pin(fd, &req);
	if (t->err) {
		t->what = "GPU_PIN";
		return;
	}
	map = mmap(NULL, run->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   req.mmap_offset);
	if (map == MAP_FAILED) {
		t->err = -errno;
		t->what = "mmap";
	} else {
		memset(dst, 0, run->size);
		t->h2d_mbps = gpu_bar_copy(map, src, run->size, run->iterations);
		t->d2h_mbps = gpu_bar_copy(dst, map, run->size, run->iterations);
		t->verified = !memcmp(dst, src, run->size);
		munmap(map, run->size);
	}
	dmaplane_buffer_destroy(fd, req.handle);
}

int gpu_bar_measure(int fd, struct gpu_bar_run *run)
{
	static const struct gpu_bar_tier tiers[GPU_BAR_TIERS] = {
		[GPU_BAR_WC] = { .name = "wc", .flags = 0 },
		[GPU_BAR_UC] = { .name = "uc", .flags = DMAPLANE_GPU_PIN_UNCACHED },
	};
	unsigned char *src, *dst;
	int measured = 0;

	src = aligned_alloc(4096, run->size);
	dst = aligned_alloc(4096, run->size);
	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < run->size; i++)
		src[i] = (unsigned char)(i * 131 + i / 4096 + 7);
	memset(dst, 0, run->size);
	run->host_mbps = gpu_bar_copy(dst, src, run->size, run->iterations);
	for (int i = 0; i < GPU_BAR_TIERS; i++) {
		run->tier[i] = tiers[i];
		if (fd < 0) {
			run->tier[i].err = fd;
			run->tier[i].what = "dmaplane";
			continue;
		}
		gpu_bar_tier_run(fd, run, &run->tier[i], src, dst);
		measured += !run->tier[i].err;
	}
	free(src);
	free(dst);
	return measured;
}

static const char *gpu_bar_provider(uint32_t provider)
{
	const char *name = dmaplane_gpu_provider_name(provider);

	return name ? name : "?";
}

static double gpu_bar_ratio(double mbps, double ref)
{
	return ref > 0 ? mbps / ref : 0.0;
}

static void gpu_bar_row(FILE *out, const char *path, double h2d, double d2h,
			double ref, const char *note)
{
	fprintf(out, "%-22s %10.1f %10.1f %9.3f %9.3f%s%s\n", path, h2d, d2h,
		gpu_bar_ratio(h2d, ref), gpu_bar_ratio(d2h, ref),
		*note ? "  " : "", note);
}

void gpu_bar_print_table(FILE *out, const char *tool,
			 const struct gpu_bar_run *run)
{
	double ref = run->host_mbps;

	fprintf(out, "%s: %s device %d, %llu MiB at 0x%llx, %u iterations "
		"(MB/s; ratio to host memcpy)\n", tool,
		gpu_bar_provider(run->provider), run->device,
		(unsigned long long)(run->size >> 20),
		(unsigned long long)run->addr, run->iterations);
	fprintf(out, "%-22s %10s %10s %9s %9s\n", "path", "h2d", "d2h",
		"h2d/host", "d2h/host");
	gpu_bar_row(out, "host memcpy", ref, ref, ref, "");
	if (run->cuda)
		gpu_bar_row(out, "cudaMemcpy (pinned)", run->cuda_h2d_mbps,
			    run->cuda_d2h_mbps, ref, "");
	for (int i = 0; i < GPU_BAR_TIERS; i++) {
		const struct gpu_bar_tier *t = &run->tier[i];
		char path[32];

		snprintf(path, sizeof(path), "bar %s memcpy", t->name);
		if (t->err)
			fprintf(out, "%-22s %s: %s\n", path, t->what,
				strerror(-t->err));
		else
			gpu_bar_row(out, path, t->h2d_mbps, t->d2h_mbps, ref,
				    t->verified ? "verified" :
				    "DATA MISMATCH");
	}
}

void gpu_bar_print_json(FILE *out, const struct gpu_bar_run *run)
{
	double ref = run->host_mbps;

	fprintf(out, "{\"benchmark\": \"gpu_bar\", \"provider\": \"%s\", "
		"\"device\": %d, \"addr\": %llu, \"size\": %llu, "
		"\"iterations\": %u, \"host_memcpy_MBps\": %.1f",
		gpu_bar_provider(run->provider), run->device,
		(unsigned long long)run->addr, (unsigned long long)run->size,
		run->iterations, ref);
	if (run->cuda)
		fprintf(out, ", \"cuda_memcpy\": {\"h2d_MBps\": %.1f, "
			"\"d2h_MBps\": %.1f, \"h2d_ratio\": %.3f, "
			"\"d2h_ratio\": %.3f}", run->cuda_h2d_mbps,
			run->cuda_d2h_mbps,
			gpu_bar_ratio(run->cuda_h2d_mbps, ref),
			gpu_bar_ratio(run->cuda_d2h_mbps, ref));
	fprintf(out, ", \"tiers\": [");
	for (int i = 0; i < GPU_BAR_TIERS; i++) {
		const struct gpu_bar_tier *t = &run->tier[i];

		fprintf(out, "%s{\"tier\": \"%s\"", i ? ", " : "", t->name);
		if (t->err)
			fprintf(out, ", \"error\": \"%s: %s\"}", t->what,
				strerror(-t->err));
		else
			fprintf(out, ", \"h2d_MBps\": %.1f, \"d2h_MBps\": %.1f, "
				"\"h2d_ratio\": %.3f, \"d2h_ratio\": %.3f, "
				"\"verified\": %s}", t->h2d_mbps, t->d2h_mbps,
				gpu_bar_ratio(t->h2d_mbps, ref),
				gpu_bar_ratio(t->d2h_mbps, ref),
				t->verified ? "true" : "false");
	}
	fprintf(out, "]}\n");
}
