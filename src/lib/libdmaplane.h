/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libdmaplane: a thin C wrapper over the dmaplane UAPI.
 *
 * Every function returns 0 (or a file descriptor) on success and a negative
 * errno on failure; errno itself is left as the failing call set it.
 */
#ifndef LIBDMAPLANE_H
#define LIBDMAPLANE_H

#include <stdint.h>

#include <linux/dmaplane.h>

#define DMAPLANE_DEV_PATH "/dev/" DMAPLANE_DEVICE_NAME

int dmaplane_open(void);
int dmaplane_get_info(int fd, struct dmaplane_info *info);
int dmaplane_echo(int fd, uint64_t value, uint32_t flags, uint64_t *out);
int dmaplane_buffer_create(int fd, uint64_t size, int numa_node,
			   uint32_t flags, uint32_t *handle,
			   uint64_t *alloc_size);
int dmaplane_buffer_destroy(int fd, uint32_t handle);
/* BUFFER_CREATE with every field: *req in, its out fields filled. */
int dmaplane_buffer_create_req(int fd, struct dmaplane_buffer_create *req);
/* BUFFER_INFO; @node_pages (may be NULL) receives up to @len entries. */
int dmaplane_buffer_info(int fd, uint32_t handle,
			 struct dmaplane_buffer_info *info,
			 uint64_t *node_pages, uint32_t len);

/* A GET_TOPOLOGY snapshot, allocated by dmaplane_topology(). */
struct dmaplane_topo {
	uint32_t nr_nodes;
	uint32_t nr_cpus;
	struct dmaplane_numa_node *nodes;	/* nr_nodes, by node id */
	uint32_t *distances;			/* nr_nodes x nr_nodes */
	uint32_t *cpus;				/* nr_cpus */
};

int dmaplane_topology(int fd, struct dmaplane_topo *topo);
void dmaplane_topology_free(struct dmaplane_topo *topo);

/*
 * NUMA_BENCH over the whole matrix; *@cells (malloc'd, free() it) holds
 * *@nr_cells row-major cells.
 */
int dmaplane_numa_bench(int fd, uint64_t size, uint32_t op, uint32_t passes,
			uint32_t time_limit_ms,
			struct dmaplane_numa_bench_cell **cells,
			uint32_t *nr_cells);
int dmaplane_map_bench(int fd, uint32_t handle, uint32_t iterations,
		       struct dmaplane_map_bench *out);

/* EXPORT_DMABUF: *@dmabuf_fd receives the new dma-buf fd. */
int dmaplane_export_dmabuf(int fd, uint32_t handle, uint32_t flags,
			   int *dmabuf_fd);
/* IMPORT_DMABUF: *@out (zeroed here) receives the handle and its facts. */
int dmaplane_import_dmabuf(int fd, int dmabuf_fd,
			   struct dmaplane_import_dmabuf *out);
int dmaplane_buffer_revoke(int fd, uint32_t handle, uint32_t *exports);
/* GPU_PIN: *@req in (provider, flags, addr, length, device), out fields filled. */
int dmaplane_gpu_pin(int fd, struct dmaplane_gpu_pin *req);
/* GPU_SIM_FREE: *@revoked (may be NULL) gets the pinned ranges revoked. */
int dmaplane_gpu_sim_free(int fd, uint32_t device, uint64_t addr,
			  uint64_t length, uint32_t *revoked);
/* "nvidia-p2p", "dma-buf", "sim", or NULL for an unknown provider. */
const char *dmaplane_gpu_provider_name(uint32_t provider);
/*
 * RDMA_DEVICES: *@devs (malloc'd, free() it) holds *@n devices; asks for
 * the count first and again if a device appeared meanwhile.
 */
int dmaplane_rdma_devices(int fd, struct dmaplane_rdma_device **devs,
			  uint32_t *n);

/* "10.77.0.1" or an IPv6 literal and a port into *@a; -EINVAL if neither. */
int dmaplane_addr_parse(const char *ip, uint16_t port, struct dmaplane_addr *a);
/* ENDPOINT_CREATE with *@p (NULL: defaults); *@handle receives it. */
int dmaplane_ep_create(int fd, const struct dmaplane_ep_create *p,
		       uint32_t *handle);
int dmaplane_ep_destroy(int fd, uint32_t handle);
/* Listen on @a (port 0: any); the bound port is written back into @a. */
int dmaplane_ep_listen(int fd, uint32_t handle, uint32_t backlog,
		       struct dmaplane_addr *a);
int dmaplane_ep_connect(int fd, uint32_t handle, const struct dmaplane_addr *a,
			uint32_t timeout_ms);
int dmaplane_ep_accept(int fd, uint32_t listener, uint32_t timeout_ms,
		       uint32_t *handle, struct dmaplane_addr *peer);
int dmaplane_ep_info(int fd, uint32_t handle, struct dmaplane_ep_info *info);
/*
 * ENDPOINT_CREATE with @p (NULL: defaults) and CONNECT to @a; while
 * nobody listens there yet (-ECONNREFUSED, -ETIMEDOUT) the endpoint is
 * dropped and a new one tries again, for up to @wait_ms. *@handle gets
 * the connected endpoint.
 */
int dmaplane_ep_dial(int fd, const struct dmaplane_ep_create *p,
		     const struct dmaplane_addr *a, uint32_t wait_ms,
		     uint32_t *handle);
/* ACCEPT on @listener, waiting up to @wait_ms (longer than one ACCEPT may). */
int dmaplane_ep_accept_wait(int fd, uint32_t listener, uint32_t wait_ms,
			    uint32_t *handle);
/* The RDMA device endpoint @ep runs on, into *@dev; -ENOENT before it has one. */
int dmaplane_ep_device(int fd, uint32_t ep, struct dmaplane_rdma_device *dev);
/*
 * A loopback connection in one file: a listener on @ip, an endpoint that
 * connects to it from a second thread, the accepted one. *@client and
 * *@server are the two connected ends; the listener is destroyed.
 * @p (NULL: defaults) applies to every endpoint.
 */
int dmaplane_ep_loopback(int fd, const char *ip,
			 const struct dmaplane_ep_create *p,
			 uint32_t *client, uint32_t *server);

/* MR_REG: *@handle and *@rkey (0 without remote access) receive it. */
int dmaplane_mr_reg(int fd, uint32_t endpoint, uint32_t buffer,
		    uint64_t offset, uint64_t length, uint32_t access,
		    uint32_t *handle, uint32_t *rkey);
int dmaplane_mr_dereg(int fd, uint32_t handle);
/*
 * POST @n operations; *@posted (may be NULL) gets how many were. 0 when
 * all were, else the -errno that stopped the batch.
 */
int dmaplane_post(int fd, uint32_t endpoint, const struct dmaplane_op *ops,
		  uint32_t n, uint32_t *posted);
/*
 * REAP up to @max completions into @c, waiting up to @timeout_ms for
 * @min of them; *@count gets how many arrived.
 */
int dmaplane_reap(int fd, uint32_t endpoint, struct dmaplane_completion *c,
		  uint32_t max, uint32_t min, uint32_t timeout_ms,
		  uint32_t *count);
/* Signal eventfd @efd on the endpoint's completions; -1 stops it. */
int dmaplane_ep_eventfd(int fd, uint32_t endpoint, int efd);

/* A size with an optional K/M/G suffix (powers of two); 0 when it is not one. */
uint64_t dmaplane_parse_size(const char *arg);

/* Name of one DMAPLANE_CAP_* bit, or NULL for a bit this library predates. */
const char *dmaplane_cap_name(uint64_t cap);

#endif /* LIBDMAPLANE_H */
