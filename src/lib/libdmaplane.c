// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "libdmaplane.h"

static int dmaplane_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

int dmaplane_open(void)
{
	int fd = open(DMAPLANE_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int dmaplane_get_info(int fd, struct dmaplane_info *info)
{
	memset(info, 0, sizeof(*info));
	return dmaplane_ioctl(fd, DMAPLANE_IOC_GET_INFO, info);
}

int dmaplane_echo(int fd, uint64_t value, uint32_t flags, uint64_t *out)
{
	struct dmaplane_echo echo = { .value = value, .flags = flags };
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_ECHO, &echo);

	if (!ret && out)
		*out = echo.value;
	return ret;
}

int dmaplane_buffer_create(int fd, uint64_t size, int numa_node,
			   uint32_t flags, uint32_t *handle,
			   uint64_t *alloc_size)
{
	struct dmaplane_buffer_create req = {
		.size = size,
		.flags = flags,
		.numa_node = numa_node,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_CREATE, &req);

	if (ret)
		return ret;
	*handle = req.handle;
	if (alloc_size)
		*alloc_size = req.alloc_size;
	return 0;
}

int dmaplane_buffer_destroy(int fd, uint32_t handle)
{
	struct dmaplane_handle_op op = { .handle = handle };

	return dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_DESTROY, &op);
}

int dmaplane_buffer_create_req(int fd, struct dmaplane_buffer_create *req)
{
	return dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_CREATE, req);
}

int dmaplane_buffer_info(int fd, uint32_t handle,
			 struct dmaplane_buffer_info *info,
			 uint64_t *node_pages, uint32_t len)
{
	memset(info, 0, sizeof(*info));
	info->handle = handle;
	info->node_pages_ptr = (uintptr_t)node_pages;
	info->node_pages_len = node_pages ? len : 0;
	return dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_INFO, info);
}

void dmaplane_topology_free(struct dmaplane_topo *topo)
{
	free(topo->nodes);
	free(topo->distances);
	free(topo->cpus);
	memset(topo, 0, sizeof(*topo));
}

/* Ask for the sizes, then for the data; again if nodes or CPUs came online. */
int dmaplane_topology(int fd, struct dmaplane_topo *topo)
{
	struct dmaplane_topology req;
	int ret;

	memset(topo, 0, sizeof(*topo));
	for (;;) {
		memset(&req, 0, sizeof(req));
		ret = dmaplane_ioctl(fd, DMAPLANE_IOC_GET_TOPOLOGY, &req);
		if (ret)
			return ret;
		topo->nodes = calloc(req.nr_nodes + 1, sizeof(*topo->nodes));
		topo->distances = calloc((size_t)req.nr_nodes * req.nr_nodes + 1,
					 sizeof(*topo->distances));
		topo->cpus = calloc(req.nr_cpus + 1, sizeof(*topo->cpus));
		if (!topo->nodes || !topo->distances || !topo->cpus) {
			dmaplane_topology_free(topo);
			return -ENOMEM;
		}
		req.nodes_len = req.nr_nodes;
		req.cpus_len = req.nr_cpus;
		req.nodes_ptr = (uintptr_t)topo->nodes;
		req.distances_ptr = (uintptr_t)topo->distances;
		req.cpus_ptr = (uintptr_t)topo->cpus;
		ret = dmaplane_ioctl(fd, DMAPLANE_IOC_GET_TOPOLOGY, &req);
		if (!ret && req.nr_nodes <= req.nodes_len &&
		    req.nr_cpus <= req.cpus_len) {
			topo->nr_nodes = req.nr_nodes;
			topo->nr_cpus = req.nr_cpus;
			return 0;
		}
		dmaplane_topology_free(topo);
		if (ret)
			return ret;
	}
}

int dmaplane_numa_bench(int fd, uint64_t size, uint32_t op, uint32_t passes,
			uint32_t time_limit_ms,
			struct dmaplane_numa_bench_cell **cells,
			uint32_t *nr_cells)
{
	struct dmaplane_numa_bench req = {
		.size = size,
		.op = op,
		.passes = passes,
		.time_limit_ms = time_limit_ms,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_NUMA_BENCH, &req);

	if (ret)
		return ret;
	*cells = calloc(req.nr_cells + 1, sizeof(**cells));
	if (!*cells)
		return -ENOMEM;
	req.cells_len = req.nr_cells;
	req.cells_ptr = (uintptr_t)*cells;
	ret = dmaplane_ioctl(fd, DMAPLANE_IOC_NUMA_BENCH, &req);
	if (ret) {
		free(*cells);
		*cells = NULL;
		return ret;
	}
	*nr_cells = req.cells_len < req.nr_cells ? req.cells_len : req.nr_cells;
	return 0;
}

int dmaplane_map_bench(int fd, uint32_t handle, uint32_t iterations,
		       struct dmaplane_map_bench *out)
{
	memset(out, 0, sizeof(*out));
	out->handle = handle;
	out->iterations = iterations;
	return dmaplane_ioctl(fd, DMAPLANE_IOC_MAP_BENCH, out);
}

int dmaplane_export_dmabuf(int fd, uint32_t handle, uint32_t flags,
			   int *dmabuf_fd)
{
	struct dmaplane_export_dmabuf req = { .handle = handle, .flags = flags };
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_EXPORT_DMABUF, &req);

	if (!ret)
		*dmabuf_fd = req.fd;
	return ret;
}

int dmaplane_import_dmabuf(int fd, int dmabuf_fd,
			   struct dmaplane_import_dmabuf *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = dmabuf_fd;
	return dmaplane_ioctl(fd, DMAPLANE_IOC_IMPORT_DMABUF, out);
}

int dmaplane_gpu_pin(int fd, struct dmaplane_gpu_pin *req)
{
	return dmaplane_ioctl(fd, DMAPLANE_IOC_GPU_PIN, req);
}

int dmaplane_gpu_sim_free(int fd, uint32_t device, uint64_t addr,
			  uint64_t length, uint32_t *revoked)
{
	struct dmaplane_gpu_sim_free req = {
		.device = device, .addr = addr, .length = length,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_GPU_SIM_FREE, &req);

	if (!ret && revoked)
		*revoked = req.revoked;
	return ret;
}

uint64_t dmaplane_parse_size(const char *arg)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 0);
	int shift = 0;

	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end || end == arg || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

const char *dmaplane_gpu_provider_name(uint32_t provider)
{
	switch (provider) {
	case DMAPLANE_GPU_NVIDIA_P2P:
		return "nvidia-p2p";
	case DMAPLANE_GPU_DMABUF:
		return "dma-buf";
	case DMAPLANE_GPU_SIM:
		return "sim";
	default:
		return NULL;
	}
}

int dmaplane_buffer_revoke(int fd, uint32_t handle, uint32_t *exports)
{
	struct dmaplane_revoke req = { .handle = handle };
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_BUFFER_REVOKE, &req);

	if (!ret && exports)
		*exports = req.exports;
	return ret;
}

int dmaplane_rdma_devices(int fd, struct dmaplane_rdma_device **devs,
			  uint32_t *n)
{
	struct dmaplane_rdma_devices req;
	int ret;

	for (;;) {
		memset(&req, 0, sizeof(req));
		ret = dmaplane_ioctl(fd, DMAPLANE_IOC_RDMA_DEVICES, &req);
		if (ret)
			return ret;
		*devs = calloc(req.nr_devices + 1, sizeof(**devs));
		if (!*devs)
			return -ENOMEM;
		req.devices_len = req.nr_devices;
		req.devices_ptr = (uintptr_t)*devs;
		ret = dmaplane_ioctl(fd, DMAPLANE_IOC_RDMA_DEVICES, &req);
		if (!ret && req.nr_devices <= req.devices_len) {
			*n = req.nr_devices;
			return 0;
		}
		free(*devs);
		*devs = NULL;
		if (ret)
			return ret;
	}
}

int dmaplane_addr_parse(const char *ip, uint16_t port, struct dmaplane_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->port = port;
	if (inet_pton(AF_INET, ip, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a->addr) == 1)
		a->family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

int dmaplane_ep_create(int fd, const struct dmaplane_ep_create *p,
		       uint32_t *handle)
{
	struct dmaplane_ep_create req = { 0 };
	int ret;

	if (p)
		req = *p;
	ret = dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_CREATE, &req);
	if (!ret)
		*handle = req.handle;
	return ret;
}

int dmaplane_ep_destroy(int fd, uint32_t handle)
{
	struct dmaplane_handle_op op = { .handle = handle };

	return dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_DESTROY, &op);
}

int dmaplane_ep_listen(int fd, uint32_t handle, uint32_t backlog,
		       struct dmaplane_addr *a)
{
	struct dmaplane_ep_listen req = {
		.handle = handle, .backlog = backlog, .addr = *a,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_LISTEN, &req);

	if (!ret)
		*a = req.addr;
	return ret;
}

int dmaplane_ep_connect(int fd, uint32_t handle, const struct dmaplane_addr *a,
			uint32_t timeout_ms)
{
	struct dmaplane_ep_connect req = {
		.handle = handle, .timeout_ms = timeout_ms, .addr = *a,
	};

	return dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_CONNECT, &req);
}

int dmaplane_ep_accept(int fd, uint32_t listener, uint32_t timeout_ms,
		       uint32_t *handle, struct dmaplane_addr *peer)
{
	struct dmaplane_ep_accept req = {
		.handle = listener, .timeout_ms = timeout_ms,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_ACCEPT, &req);

	if (!ret) {
		*handle = req.new_handle;
		if (peer)
			*peer = req.peer;
	}
	return ret;
}

int dmaplane_ep_info(int fd, uint32_t handle, struct dmaplane_ep_info *info)
{
	memset(info, 0, sizeof(*info));
	info->handle = handle;
	return dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_INFO, info);
}

const char *dmaplane_cap_name(uint64_t cap)
{
	switch (cap) {
	case DMAPLANE_CAP_BUFFER_PAGES:
		return "buffer_pages";
	case DMAPLANE_CAP_NUMA:
		return "numa";
	case DMAPLANE_CAP_RDMA:
		return "rdma";
	case DMAPLANE_CAP_BUFFER_COHERENT:
		return "buffer_coherent";
	case DMAPLANE_CAP_BUFFER_HUGE:
		return "buffer_huge";
	case DMAPLANE_CAP_BUFFER_USER:
		return "buffer_user";
	case DMAPLANE_CAP_MMAP:
		return "mmap";
	case DMAPLANE_CAP_TOPOLOGY:
		return "topology";
	case DMAPLANE_CAP_DMABUF:
		return "dmabuf";
	case DMAPLANE_CAP_RDMA_DEVICES:
		return "rdma_devices";
	case DMAPLANE_CAP_ENDPOINTS:
		return "endpoints";
	case DMAPLANE_CAP_VERBS:
		return "verbs";
	case DMAPLANE_CAP_CREDITS:
		return "credits";
	case DMAPLANE_CAP_GPU:
		return "gpu";
	default:
		return NULL;
	}
}

int dmaplane_ep_dial(int fd, const struct dmaplane_ep_create *p,
		     const struct dmaplane_addr *a, uint32_t wait_ms,
		     uint32_t *handle)
{
	uint32_t waited = 0;
	int ret;

	for (;;) {
		ret = dmaplane_ep_create(fd, p, handle);
		if (ret)
			return ret;
		ret = dmaplane_ep_connect(fd, *handle, a, 0);
		if ((ret != -ECONNREFUSED && ret != -ETIMEDOUT) ||
		    waited >= wait_ms)
			break;
		dmaplane_ep_destroy(fd, *handle);
		usleep(200 * 1000);
		waited += 200;
	}
	if (ret)
		dmaplane_ep_destroy(fd, *handle);
	return ret;
}

int dmaplane_ep_accept_wait(int fd, uint32_t listener, uint32_t wait_ms,
			    uint32_t *handle)
{
	uint32_t waited = 0;
	int ret;

	do {
		ret = dmaplane_ep_accept(fd, listener, DMAPLANE_EP_TIMEOUT_MAX_MS,
					 handle, NULL);
		waited += DMAPLANE_EP_TIMEOUT_MAX_MS;
	} while (ret == -ETIMEDOUT && waited < wait_ms);
	return ret;
}

int dmaplane_ep_device(int fd, uint32_t ep, struct dmaplane_rdma_device *dev)
{
	struct dmaplane_rdma_device *devs = NULL;
	struct dmaplane_ep_info info;
	uint32_t n = 0;
	int ret = dmaplane_ep_info(fd, ep, &info);

	if (!ret)
		ret = dmaplane_rdma_devices(fd, &devs, &n);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (uint32_t i = 0; i < n; i++)
		if ((int32_t)devs[i].index == info.device_index) {
			*dev = devs[i];
			ret = 0;
		}
	free(devs);
	return ret;
}

struct dmaplane_loopback_connector {
	int fd;
	uint32_t handle;
	struct dmaplane_addr addr;
	int ret;
};

static void *dmaplane_loopback_connect(void *arg)
{
	struct dmaplane_loopback_connector *c = arg;

	c->ret = dmaplane_ep_connect(c->fd, c->handle, &c->addr, 0);
	return NULL;
}

int dmaplane_ep_loopback(int fd, const char *ip,
			 const struct dmaplane_ep_create *p,
			 uint32_t *client, uint32_t *server)
{
	struct dmaplane_loopback_connector c = { .fd = fd };
	uint32_t listener;
	pthread_t thread;
	int ret;

	ret = dmaplane_addr_parse(ip, 0, &c.addr);
	if (ret)
		return ret;
	ret = dmaplane_ep_create(fd, p, &listener);
	if (ret)
		return ret;
	ret = dmaplane_ep_listen(fd, listener, 1, &c.addr);
	if (!ret)
		ret = dmaplane_ep_create(fd, p, &c.handle);
	if (ret)
		goto out;
	ret = -pthread_create(&thread, NULL, dmaplane_loopback_connect, &c);
	if (ret) {
		dmaplane_ep_destroy(fd, c.handle);
		goto out;
	}
	ret = dmaplane_ep_accept(fd, listener, 0, server, NULL);
	pthread_join(thread, NULL);
	if (!ret && c.ret) {
		dmaplane_ep_destroy(fd, *server);
		ret = c.ret;
	}
	if (ret)
		dmaplane_ep_destroy(fd, c.handle);
	else
		*client = c.handle;
out:
	dmaplane_ep_destroy(fd, listener);
	return ret;
}

int dmaplane_mr_reg(int fd, uint32_t endpoint, uint32_t buffer,
		    uint64_t offset, uint64_t length, uint32_t access,
		    uint32_t *handle, uint32_t *rkey)
{
	struct dmaplane_mr_reg req = {
		.endpoint = endpoint, .buffer = buffer, .access = access,
		.offset = offset, .length = length,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_MR_REG, &req);

	if (!ret) {
		*handle = req.handle;
		if (rkey)
			*rkey = req.rkey;
	}
	return ret;
}

int dmaplane_mr_dereg(int fd, uint32_t handle)
{
	struct dmaplane_handle_op op = { .handle = handle };

	return dmaplane_ioctl(fd, DMAPLANE_IOC_MR_DEREG, &op);
}

int dmaplane_post(int fd, uint32_t endpoint, const struct dmaplane_op *ops,
		  uint32_t n, uint32_t *posted)
{
	struct dmaplane_post req = {
		.endpoint = endpoint, .count = n,
		.ops = (uintptr_t)ops,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_POST, &req);

	if (posted)
		*posted = ret ? 0 : req.posted;
	return ret ? ret : req.error;
}

int dmaplane_reap(int fd, uint32_t endpoint, struct dmaplane_completion *c,
		  uint32_t max, uint32_t min, uint32_t timeout_ms,
		  uint32_t *count)
{
	struct dmaplane_reap req = {
		.endpoint = endpoint, .max = max, .entries = (uintptr_t)c,
		.min = min, .timeout_ms = timeout_ms,
	};
	int ret = dmaplane_ioctl(fd, DMAPLANE_IOC_REAP, &req);

	*count = ret ? 0 : req.count;
	return ret;
}

int dmaplane_ep_eventfd(int fd, uint32_t endpoint, int efd)
{
	struct dmaplane_ep_eventfd req = { .endpoint = endpoint, .fd = efd };

	return dmaplane_ioctl(fd, DMAPLANE_IOC_ENDPOINT_EVENTFD, &req);
}
