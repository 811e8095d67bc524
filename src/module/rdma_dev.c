// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA device tracking: an ib_client told about every RDMA device as it is
 * registered and before it goes away (e.g. `rdma link delete rxe0`).
 */
#include <rdma/ib_verbs.h>

#include "dmaplane.h"

static atomic_t dmaplane_rdma_devices = ATOMIC_INIT(0);

static int dmaplane_rdma_add(struct ib_device *ibdev)
{
	atomic_inc(&dmaplane_rdma_devices);
	return 0;
}

static void dmaplane_rdma_remove(struct ib_device *ibdev, void *client_data)
{
	atomic_dec(&dmaplane_rdma_devices);
}

static struct ib_client dmaplane_ib_client = {
	.name = "dmaplane",
	.add = dmaplane_rdma_add,
	.remove = dmaplane_rdma_remove,
};

unsigned int dmaplane_rdma_device_count(void)
{
	return atomic_read(&dmaplane_rdma_devices);
}

int dmaplane_rdma_init(void)
{
	return ib_register_client(&dmaplane_ib_client);
}

void dmaplane_rdma_exit(void)
{
	ib_unregister_client(&dmaplane_ib_client);
}
