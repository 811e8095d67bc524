// SPDX-License-Identifier: GPL-2.0
/*
 * gpu suite: GPU memory as buffers (GPU_PIN). On the sim GPU (QEMU
 * ivshmem-plain, vm/launch.sh --gpu-mem, module parameter sim_gpu=1):
 * pin and unpin from 64 KiB to 256 MiB with nothing left behind, data
 * through write-combining and uncached mappings, GPU-backed MRs as source
 * and destination of RDMA WRITE, revocation (GPU_SIM_FREE, as cudaFree)
 * of idle ranges and of ranges under a running transfer, a process that
 * dies holding pins, the dma-buf provider, a GPU range exported as a
 * dma-buf and revoked under its importer, and every bad input. Without a
 * sim GPU the cases that need one are skipped; GET_INFO's provider report
 * is checked everywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ktap.h"
#include "libdmaplane.h"
#include "testutil.h"
#include "verbsutil.h"

#define KIB		1024ULL
#define MIB		(1024 * KIB)
#define GPU_PAGE	(64 * KIB)
/* One FRWR of 4 KiB host pages on soft-RoCE (512 entries) covers 2 MiB. */
#define MR_SIZE		(1 * MIB)
#define CAP_SYS_ADMIN_BIT 21

static int dev_fd = -1;
static struct dmaplane_info info;
static uint64_t bar_size;	/* sim GPU 0's memory */
static const char *guest_ip;
static uint32_t client, server;
static bool connected;

static bool need_sim_gpu(void)
{
	if (!bar_size)
		ktap_skip("no sim GPU (vm/launch.sh --gpu-mem, module parameter sim_gpu=1)");
	return bar_size;
}

static bool need_pair(void)
{
	if (!need_sim_gpu())
		return false;
	if (!connected)
		ktap_skip("no loopback connection (no RDMA device)");
	return connected;
}

/* GPU_PIN on sim GPU 0; 0 or the -errno. */
static int sim_pin(uint64_t addr, uint64_t len, uint32_t flags,
		   struct dmaplane_gpu_pin *req)
{
	memset(req, 0, sizeof(*req));
	req->provider = DMAPLANE_GPU_SIM;
	req->flags = flags;
	req->addr = addr;
	req->length = len;
	return dmaplane_gpu_pin(dev_fd, req);
}

/* A pinned and mapped range of sim GPU 0. */
static bool gpu_region(struct region *r, uint64_t addr, uint64_t len,
		       uint32_t flags)
{
	struct dmaplane_gpu_pin req;

	memset(r, 0, sizeof(*r));
	KTAP_EXPECT_RET(sim_pin(addr, len, flags, &req), 0);
	if (ktap_case_failed())
		return false;
	r->buf = req.handle;
	r->size = len;
	r->p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd,
		    req.mmap_offset);
	KTAP_EXPECT(r->p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (r->p == MAP_FAILED)
		r->p = NULL;
	return r->p;
}

static void setup(void)
{
	uint64_t size;

	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", strerror(-dev_fd));
	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_GPU, "no CAP_GPU");
	if (info.gpu_sim_devices) {
		struct dmaplane_gpu_pin req;

		int ret = -ERANGE;

		/* The BAR's size: the largest power of two that pins. */
		for (size = 1ULL << 30; size >= GPU_PAGE && ret == -ERANGE;
		     size >>= 1)
			ret = sim_pin(0, size, 0, &req);
		KTAP_EXPECT_RET(ret, 0);
		size <<= 1;
		if (!ret) {
			bar_size = size;
			KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd,
								req.handle), 0);
		}
	}
	guest_ip = getenv("DP_GUEST_IP");
	if (guest_ip && count_rdma_devices() > 0) {
		KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, NULL,
						     &client, &server), 0);
		connected = !ktap_case_failed();
	}
}

static void info_reports_providers(void)
{
	uint32_t always = 1U << DMAPLANE_GPU_DMABUF | 1U << DMAPLANE_GPU_SIM;

	KTAP_EXPECT((info.gpu_providers & always) == always,
		    "providers %#x", info.gpu_providers);
	KTAP_EXPECT(!(info.gpu_ready & ~info.gpu_providers),
		    "ready %#x not built %#x", info.gpu_ready,
		    info.gpu_providers);
	KTAP_EXPECT(!!(info.gpu_ready & 1U << DMAPLANE_GPU_SIM) ==
		    !!info.gpu_sim_devices, "sim ready %#x with %u devices",
		    info.gpu_ready, info.gpu_sim_devices);
	printf("# providers built %#x ready %#x, sim GPUs %u (%llu MiB), nvidia-p2p %s\n",
	       info.gpu_providers, info.gpu_ready, info.gpu_sim_devices,
	       (unsigned long long)(bar_size / MIB),
	       info.gpu_providers & 1U << DMAPLANE_GPU_NVIDIA_P2P ?
	       "built" : "not built (no nv-p2p.h)");
	/* Not built, or built without the NVIDIA driver loaded. */
	if (!(info.gpu_ready & 1U << DMAPLANE_GPU_NVIDIA_P2P)) {
		struct dmaplane_gpu_pin req = {
			.provider = DMAPLANE_GPU_NVIDIA_P2P, .length = GPU_PAGE,
		};

		KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EOPNOTSUPP);
	}
}

static void pin_unpin_sizes(void)
{
	static const uint64_t sizes[] = {
		64 * KIB, 1 * MIB, 16 * MIB, 256 * MIB,
	};
	uint64_t base_buffers = dmaplane_counter("buffers");

	if (!need_sim_gpu())
		return;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct dmaplane_buffer_info bi;
		struct dmaplane_gpu_pin req;
		uint64_t len = sizes[i];

		if (len > bar_size) {
			printf("# %llu MiB: larger than the sim GPU\n",
			       (unsigned long long)(len / MIB));
			continue;
		}
		KTAP_EXPECT_RET(sim_pin(bar_size - len, len, 0, &req), 0);
		if (ktap_case_failed())
			return;
		KTAP_EXPECT(req.page_size == GPU_PAGE &&
			    req.result_flags == DMAPLANE_BUF_RES_GPU,
			    "page %u flags %#x", req.page_size,
			    req.result_flags);
		KTAP_EXPECT(dmaplane_counter("gpu_pinned_bytes") == len,
			    "gpu_pinned_bytes %llu for %llu",
			    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"),
			    (unsigned long long)len);
		KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle, &bi,
						     NULL, 0), 0);
		KTAP_EXPECT(bi.size == len && bi.result_flags ==
			    DMAPLANE_BUF_RES_GPU, "size %llu flags %#x",
			    (unsigned long long)bi.size, bi.result_flags);
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
	}
	KTAP_EXPECT(dmaplane_counter("gpu_pinned_bytes") == 0 &&
		    dmaplane_counter("buffers") == base_buffers,
		    "left pinned %llu, buffers %llu (was %llu)",
		    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"),
		    (unsigned long long)dmaplane_counter("buffers"),
		    (unsigned long long)base_buffers);
}

static void pin_rejects_bad_input(void)
{
	struct dmaplane_gpu_pin req;
	uint64_t hist[4];

	if (!need_sim_gpu())
		return;
	KTAP_EXPECT_RET(sim_pin(4 * KIB, GPU_PAGE, 0, &req), -EINVAL);
	KTAP_EXPECT_RET(sim_pin(0, GPU_PAGE + 4 * KIB, 0, &req), -EINVAL);
	KTAP_EXPECT_RET(sim_pin(0, 0, 0, &req), -EINVAL);
	KTAP_EXPECT_RET(sim_pin(-GPU_PAGE, 2 * GPU_PAGE, 0, &req), -EINVAL);
	KTAP_EXPECT_RET(sim_pin(bar_size, GPU_PAGE, 0, &req), -ERANGE);
	KTAP_EXPECT_RET(sim_pin(bar_size - GPU_PAGE, 2 * GPU_PAGE, 0, &req),
			-ERANGE);
	KTAP_EXPECT_RET(sim_pin(0, GPU_PAGE, 1U << 7, &req), -EINVAL);
	KTAP_EXPECT_RET(sim_pin(0, 2ULL << 30, 0, &req), -EFBIG);
	memset(&req, 0, sizeof(req));
	req.provider = DMAPLANE_GPU_SIM;
	req.length = GPU_PAGE;
	req.device = 7;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -ENODEV);
	req.device = -1;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EINVAL);
	req.device = 0;
	req.provider = 0;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EINVAL);
	req.provider = DMAPLANE_GPU_PROVIDER_MAX + 1;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EINVAL);
	/* The dma-buf provider takes the fd and nothing else. */
	req.provider = DMAPLANE_GPU_DMABUF;
	req.device = -1;
	req.length = 0;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EBADF);
	req.length = GPU_PAGE;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), -EINVAL);

	/* What a GPU buffer has no use for. */
	KTAP_EXPECT_RET(sim_pin(0, GPU_PAGE, 0, &req), 0);
	if (ktap_case_failed())
		return;
	struct dmaplane_buffer_info bi;

	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, req.handle, &bi, hist, 4),
			-EOPNOTSUPP);
	struct dmaplane_map_bench mb;

	KTAP_EXPECT_RET(dmaplane_map_bench(dev_fd, req.handle, 1, &mb), -EINVAL);
	/* Windows outside the range, and executable mappings. */
	KTAP_EXPECT(mmap(NULL, 2 * GPU_PAGE, PROT_READ, MAP_SHARED, dev_fd,
			 req.mmap_offset) == MAP_FAILED && errno == EINVAL,
		    "a window past the range mapped (%s)", strerror(errno));
	KTAP_EXPECT(mmap(NULL, GPU_PAGE, PROT_READ | PROT_EXEC, MAP_SHARED,
			 dev_fd, req.mmap_offset) == MAP_FAILED &&
		    errno == EPERM, "an executable mapping (%s)",
		    strerror(errno));
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, req.handle), 0);
}

/* Write through a write-combining view, read through an uncached one. */
static void mappings_share_memory(void)
{
	struct region wc, uc, part;

	if (!need_sim_gpu() || !gpu_region(&wc, MIB, MIB, 0) ||
	    !gpu_region(&uc, MIB, MIB, DMAPLANE_GPU_PIN_UNCACHED) ||
	    !gpu_region(&part, MIB + GPU_PAGE, GPU_PAGE, 0))
		goto out;
	fill_pattern(wc.p, MIB, 41);
	KTAP_EXPECT(pattern_holds(uc.p, MIB, 41),
		    "uncached view differs at %zu",
		    pattern_mismatch(uc.p, MIB, 41, 0));
	KTAP_EXPECT(!memcmp(part.p, wc.p + GPU_PAGE, GPU_PAGE),
		    "a range inside the first sees other bytes");
	memset(uc.p, 0x5a, 4096);
	KTAP_EXPECT(wc.p[0] == 0x5a && wc.p[4095] == 0x5a,
		    "write through the uncached view not seen");
out:
	region_free(dev_fd, &part);
	region_free(dev_fd, &uc);
	region_free(dev_fd, &wc);
}

/* Source and destination MRs over @src and @dst; false on failure. */
static bool mr_pair(const struct region *src, const struct region *dst,
		    uint32_t *smr, uint32_t *dmr, uint32_t *rkey)
{
	*smr = *dmr = 0;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, client, src->buf, 0, 0, 0,
					smr, NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, server, dst->buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, dmr, rkey), 0);
	return !ktap_case_failed();
}

static int write_once(const struct region *src, const struct region *dst,
		      uint64_t len)
{
	struct dmaplane_completion c;
	uint32_t smr, dmr, rkey;
	int ret = -EIO;

	if (mr_pair(src, dst, &smr, &dmr, &rkey)) {
		struct dmaplane_op op = {
			.cookie = 1, .opcode = DMAPLANE_OP_WRITE, .mr = smr,
			.length = len, .rkey = rkey,
		};

		ret = dmaplane_post(dev_fd, client, &op, 1, NULL);
		if (!ret)
			ret = reap_n(dev_fd, client, &c, 1) == 1 ? c.status :
			      -ETIME;
	}
	if (smr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, smr), 0);
	if (dmr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, dmr), 0);
	return ret;
}

/* GPU -> GPU, host -> GPU and GPU -> host, every byte checked. */
static void gpu_mr_write_integrity(void)
{
	struct region g1, g2, host;

	memset(&host, 0, sizeof(host));
	if (!need_pair() || !gpu_region(&g1, 0, MR_SIZE, 0) ||
	    !gpu_region(&g2, 8 * MIB, MR_SIZE, 0) ||
	    !region_make(dev_fd, &host, MR_SIZE))
		goto out;
	fill_pattern(g1.p, MR_SIZE, 7);
	memset(g2.p, 0, MR_SIZE);
	KTAP_EXPECT_RET(write_once(&g1, &g2, MR_SIZE), 0);
	KTAP_EXPECT(pattern_holds(g2.p, MR_SIZE, 7), "GPU->GPU differs at %zu",
		    pattern_mismatch(g2.p, MR_SIZE, 7, 0));
	fill_pattern(host.p, MR_SIZE, 8);
	KTAP_EXPECT_RET(write_once(&host, &g1, MR_SIZE), 0);
	KTAP_EXPECT(pattern_holds(g1.p, MR_SIZE, 8),
		    "host->GPU differs at %zu",
		    pattern_mismatch(g1.p, MR_SIZE, 8, 0));
	memset(host.p, 0, MR_SIZE);
	KTAP_EXPECT_RET(write_once(&g2, &host, MR_SIZE), 0);
	KTAP_EXPECT(pattern_holds(host.p, MR_SIZE, 7),
		    "GPU->host differs at %zu",
		    pattern_mismatch(host.p, MR_SIZE, 7, 0));
out:
	region_free(dev_fd, &host);
	region_free(dev_fd, &g2);
	region_free(dev_fd, &g1);
}

/* An idle, local-only MR: revoked without touching the connection. */
static void revoke_idle_range(void)
{
	struct dmaplane_buffer_info bi;
	struct dmaplane_ep_info ei;
	uint64_t revocations = dmaplane_counter("gpu_revocations");
	uint32_t mr, mr2, revoked;
	struct region g;

	if (!need_pair() || !gpu_region(&g, 16 * MIB, MIB, 0))
		goto out;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, client, g.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE, &mr, NULL), 0);
	/* A free next to the range leaves it alone. */
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, 17 * MIB, GPU_PAGE,
					      &revoked), 0);
	KTAP_EXPECT(revoked == 0, "%u revoked by a free beside it", revoked);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, 16 * MIB + 4096, 1,
					      &revoked), 0);
	KTAP_EXPECT(revoked == 1, "%u revoked", revoked);
	KTAP_EXPECT(dmaplane_counter("gpu_revocations") == revocations + 1,
		    "gpu_revocations %llu",
		    (unsigned long long)dmaplane_counter("gpu_revocations"));
	KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, g.buf, &bi, NULL, 0), 0);
	KTAP_EXPECT(bi.result_flags & DMAPLANE_BUF_RES_REVOKED,
		    "flags %#x", bi.result_flags);
	struct dmaplane_op op = {
		.opcode = DMAPLANE_OP_RECV, .mr = mr, .length = 64,
	};

	KTAP_EXPECT_RET(dmaplane_post(dev_fd, client, &op, 1, NULL), -ENODEV);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, client, g.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE, &mr2, NULL),
			-ENODEV);
	KTAP_EXPECT(mmap(NULL, GPU_PAGE, PROT_READ, MAP_SHARED, dev_fd,
			 bi.mmap_offset) == MAP_FAILED &&
		    errno == ENODEV, "mapped a revoked range (%s)",
		    strerror(errno));
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, client, &ei), 0);
	KTAP_EXPECT(ei.state == DMAPLANE_EP_CONNECTED && !ei.error,
		    "connection state %u error %d", ei.state, ei.error);
	KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, mr), 0);
out:
	region_free(dev_fd, &g);
}

/* A transfer that runs until its connection fails, in its own thread. */
struct xfer {
	uint32_t ep, mr, rkey;
	uint32_t batches;	/* completed without error, atomic */
	int error;		/* what ended it */
};

static void *xfer_run(void *arg)
{
	enum { BATCH = 8 };
	struct dmaplane_completion c[BATCH];
	struct dmaplane_op ops[BATCH];
	struct xfer *x = arg;
	uint32_t posted, count;

	for (int i = 0; i < BATCH; i++)
		ops[i] = (struct dmaplane_op){
			.cookie = i, .opcode = DMAPLANE_OP_WRITE, .mr = x->mr,
			.length = MR_SIZE, .rkey = x->rkey,
		};
	while (!x->error) {
		posted = 0;
		x->error = dmaplane_post(dev_fd, x->ep, ops, BATCH, &posted);
		if (posted) {
			int ret = dmaplane_reap(dev_fd, x->ep, c, posted,
						posted, VERBS_WAIT_MS, &count);

			if (!x->error)
				x->error = ret ?: count < posted ? -ETIME : 0;
			for (uint32_t i = 0; i < count && !x->error; i++)
				x->error = c[i].status;
		}
		if (!x->error)
			__atomic_add_fetch(&x->batches, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * WRITEs from one GPU range into another run in a loop, and the GPU takes
 * the target back under them: the target's connection fails with -ENODEV
 * before the revocation returns, the transfer ends with an error, and
 * nothing is left behind.
 */
static void revoke_during_transfer(void)
{
	struct xfer x = { .error = 0 };
	struct dmaplane_ep_info ei;
	uint32_t dmr = 0, revoked, cl = 0, sv = 0;
	struct region src, dst;
	pthread_t thread;

	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	if (!need_pair())
		return;
	/* A connection of its own: this one is meant to break. */
	KTAP_EXPECT_RET(dmaplane_ep_loopback(dev_fd, guest_ip, NULL, &cl, &sv),
			0);
	if (ktap_case_failed() || !gpu_region(&src, 32 * MIB, MR_SIZE, 0) ||
	    !gpu_region(&dst, 40 * MIB, MR_SIZE, 0))
		goto out;
	x.ep = cl;
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, cl, src.buf, 0, 0, 0, &x.mr,
					NULL), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(dev_fd, sv, dst.buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, &dmr,
					&x.rkey), 0);
	if (ktap_case_failed() || pthread_create(&thread, NULL, xfer_run, &x))
		goto out;
	/* Running: batches complete (bounded wait, not a timing check). */
	for (int i = 0; i < 60000 && !x.error &&
	     __atomic_load_n(&x.batches, __ATOMIC_RELAXED) < 2; i++)
		usleep(1000);
	KTAP_EXPECT(x.batches >= 2, "the transfer did not run (error %d)",
		    x.error);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, 40 * MIB, MR_SIZE,
					      &revoked), 0);
	KTAP_EXPECT(revoked == 1, "%u revoked", revoked);
	/* Revocation fenced the target's connection before returning. */
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, sv, &ei), 0);
	KTAP_EXPECT(ei.state == DMAPLANE_EP_ERROR && ei.error == -ENODEV,
		    "target state %u error %d", ei.state, ei.error);
	pthread_join(thread, NULL);
	printf("# %u batches of 8 x 1 MiB, then: %s\n", x.batches,
	       ktap_errname(x.error));
	KTAP_EXPECT(x.error, "the transfer went on after the revocation");
out:
	if (x.mr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, x.mr), 0);
	if (dmr)
		KTAP_EXPECT_RET(dmaplane_mr_dereg(dev_fd, dmr), 0);
	region_free(dev_fd, &dst);
	region_free(dev_fd, &src);
	if (cl)
		dmaplane_ep_destroy(dev_fd, cl);
	if (sv)
		dmaplane_ep_destroy(dev_fd, sv);
	KTAP_EXPECT(counter_settled("gpu_pinned_bytes", 0) == 0,
		    "gpu_pinned_bytes %llu left",
		    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"));
}

/* A process that dies holding a pin, its mapping and an MR. */
static void exit_releases_pins(void)
{
	int pipefd[2];
	pid_t pid;
	char c;

	if (!need_sim_gpu() || pipe(pipefd))
		return;
	pid = fork();
	if (pid == 0) {
		int fd = dmaplane_open();
		struct dmaplane_gpu_pin req = {
			.provider = DMAPLANE_GPU_SIM, .length = 8 * MIB,
		};

		if (fd < 0 || dmaplane_gpu_pin(fd, &req) ||
		    mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 req.mmap_offset) == MAP_FAILED)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	KTAP_EXPECT(read(pipefd[0], &c, 1) == 1, "child did not pin");
	close(pipefd[0]);
	KTAP_EXPECT(dmaplane_counter("gpu_pinned_bytes") == 8 * MIB,
		    "gpu_pinned_bytes %llu while the child holds 8 MiB",
		    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	KTAP_EXPECT(counter_settled("gpu_pinned_bytes", 0) == 0,
		    "gpu_pinned_bytes %llu after the child died",
		    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"));
}

/*
 * The dma-buf provider: a dma-buf a GPU driver would export (here a
 * dmaplane buffer's own export stands in for it) becomes a GPU buffer,
 * mapped through its exporter and written into over RDMA.
 */
static void dmabuf_provider(void)
{
	struct dmaplane_gpu_pin req = { .provider = DMAPLANE_GPU_DMABUF };
	struct region exporter, g, host;
	int dmabuf_fd = -1;

	memset(&g, 0, sizeof(g));
	memset(&host, 0, sizeof(host));
	if (!region_make(dev_fd, &exporter, MR_SIZE))
		return;
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, exporter.buf, 0,
					       &dmabuf_fd), 0);
	if (ktap_case_failed())
		goto out;
	req.device = dmabuf_fd;
	KTAP_EXPECT_RET(dmaplane_gpu_pin(dev_fd, &req), 0);
	if (ktap_case_failed())
		goto out;
	KTAP_EXPECT(req.length == MR_SIZE && req.result_flags ==
		    (DMAPLANE_BUF_RES_GPU | DMAPLANE_BUF_RES_IMPORTED |
		     DMAPLANE_BUF_RES_DYNAMIC), "length %llu flags %#x",
		    (unsigned long long)req.length, req.result_flags);
	g.buf = req.handle;
	g.size = MR_SIZE;
	g.p = mmap(NULL, MR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd,
		   req.mmap_offset);
	KTAP_EXPECT(g.p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (g.p == MAP_FAILED) {
		g.p = NULL;
		goto out;
	}
	fill_pattern(exporter.p, MR_SIZE, 9);
	KTAP_EXPECT(pattern_holds(g.p, MR_SIZE, 9),
		    "the import does not show the exporter's bytes");
	if (connected && region_make(dev_fd, &host, MR_SIZE)) {
		fill_pattern(host.p, MR_SIZE, 10);
		KTAP_EXPECT_RET(write_once(&host, &g, MR_SIZE), 0);
		KTAP_EXPECT(pattern_holds(exporter.p, MR_SIZE, 10),
			    "RDMA WRITE into the import differs at %zu",
			    pattern_mismatch(exporter.p, MR_SIZE, 10, 0));
	}
out:
	region_free(dev_fd, &host);
	region_free(dev_fd, &g);
	if (dmabuf_fd >= 0)
		close(dmabuf_fd);
	region_free(dev_fd, &exporter);
}

/*
 * A GPU range exported as a dma-buf and imported back (as any importer
 * that can be told would): the import maps the same memory; more imports
 * than DMA-API debug allows overlapping mappings of one range share the
 * exporter's mapping; the GPU takes the range back: every import is
 * revoked with it, and the range cannot be exported again.
 */
static void export_follows_revocation(void)
{
	enum { MORE = 9 };
	struct dmaplane_buffer_info bi;
	struct dmaplane_import_dmabuf imp, more[MORE] = {};
	uint32_t revoked;
	struct region g;
	int dmabuf_fd = -1;
	void *p;

	memset(&imp, 0, sizeof(imp));
	if (!need_sim_gpu() || !gpu_region(&g, 48 * MIB, MIB, 0))
		goto out;
	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, g.buf, 0, &dmabuf_fd),
			0);
	if (ktap_case_failed())
		goto out;
	KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, dmabuf_fd, &imp), 0);
	if (ktap_case_failed())
		goto out;
	KTAP_EXPECT(imp.result_flags & DMAPLANE_BUF_RES_DYNAMIC &&
		    imp.size == MIB, "import flags %#x size %llu",
		    imp.result_flags, (unsigned long long)imp.size);
	fill_pattern(g.p, MIB, 21);
	p = mmap(NULL, MIB, PROT_READ, MAP_SHARED, dev_fd, imp.mmap_offset);
	KTAP_EXPECT(p != MAP_FAILED, "mmap of the import: %s", strerror(errno));
	if (p != MAP_FAILED) {
		KTAP_EXPECT(pattern_holds(p, MIB, 21),
			    "the import shows other bytes at %zu",
			    pattern_mismatch(p, MIB, 21, 0));
		munmap(p, MIB);
	}
	for (int i = 0; i < MORE; i++)
		KTAP_EXPECT_RET(dmaplane_import_dmabuf(dev_fd, dmabuf_fd,
						       &more[i]), 0);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, 48 * MIB, MIB,
					      &revoked), 0);
	for (int i = -1; i < MORE; i++) {
		uint32_t h = i < 0 ? imp.handle : more[i].handle;

		KTAP_EXPECT_RET(dmaplane_buffer_info(dev_fd, h, &bi, NULL, 0),
				0);
		KTAP_EXPECT(bi.result_flags & DMAPLANE_BUF_RES_REVOKED,
			    "import %d flags %#x after the revocation", i,
			    bi.result_flags);
	}
	KTAP_EXPECT(mmap(NULL, MIB, PROT_READ, MAP_SHARED, dev_fd,
			 imp.mmap_offset) == MAP_FAILED && errno == ENODEV,
		    "mapped a revoked import (%s)", strerror(errno));
	int again = -1;

	KTAP_EXPECT_RET(dmaplane_export_dmabuf(dev_fd, g.buf, 0, &again),
			-ENODEV);
out:
	if (imp.handle)
		KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, imp.handle), 0);
	for (int i = 0; i < MORE; i++)
		if (more[i].handle)
			KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd,
								more[i].handle),
					0);
	if (dmabuf_fd >= 0)
		close(dmabuf_fd);
	region_free(dev_fd, &g);
}

static void sim_free_rejects_bad_input(void)
{
	struct dmaplane_gpu_sim_free req = { .length = GPU_PAGE };
	uint32_t revoked;
	pid_t pid;

	if (!need_sim_gpu())
		return;
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, 0, 0, &revoked),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, -4096ULL, 8192,
					      &revoked), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 0, bar_size, 1,
					      &revoked), -ERANGE);
	KTAP_EXPECT_RET(dmaplane_gpu_sim_free(dev_fd, 7, 0, 1, &revoked),
			-ENODEV);
	req.flags = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_GPU_SIM_FREE, &req) ? -errno : 0,
			-EINVAL);
	req.flags = 0;
	req.reserved = 1;
	KTAP_EXPECT_RET(ioctl(dev_fd, DMAPLANE_IOC_GPU_SIM_FREE, &req) ? -errno : 0,
			-EINVAL);
	/* Taking memory from whoever pinned it is the GPU owner's right. */
	pid = fork();
	if (pid == 0)
		_exit(drop_capability(CAP_SYS_ADMIN_BIT) ||
		      dmaplane_gpu_sim_free(dev_fd, 0, 0, 1, NULL) != -EPERM);
	KTAP_EXPECT(child_exited_ok(pid), "GPU_SIM_FREE without CAP_SYS_ADMIN");
}

static void teardown(void)
{
	if (connected) {
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, client), 0);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, server), 0);
	}
	close(dev_fd);
	KTAP_EXPECT(counter_settled("gpu_pinned_bytes", 0) == 0 &&
		    counter_settled("mrs", 0) == 0,
		    "left: gpu_pinned_bytes %llu mrs %llu",
		    (unsigned long long)dmaplane_counter("gpu_pinned_bytes"),
		    (unsigned long long)dmaplane_counter("mrs"));
}

static const struct ktap_case cases[] = {
	KTAP_CASE(setup),
	KTAP_CASE(info_reports_providers),
	KTAP_CASE(pin_unpin_sizes),
	KTAP_CASE(pin_rejects_bad_input),
	KTAP_CASE(mappings_share_memory),
	KTAP_CASE(gpu_mr_write_integrity),
	KTAP_CASE(revoke_idle_range),
	KTAP_CASE(revoke_during_transfer),
	KTAP_CASE(exit_releases_pins),
	KTAP_CASE(dmabuf_provider),
	KTAP_CASE(export_follows_revocation),
	KTAP_CASE(sim_free_rejects_bad_input),
	KTAP_CASE(teardown),
};

int main(void)
{
	return ktap_run_suite("gpu", cases, sizeof(cases) / sizeof(cases[0]));
}
