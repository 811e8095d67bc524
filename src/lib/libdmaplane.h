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

/* Name of one DMAPLANE_CAP_* bit, or NULL for a bit this library predates. */
const char *dmaplane_cap_name(uint64_t cap);

#endif /* LIBDMAPLANE_H */
