// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA device tracking: an ib_client told about every RDMA device as it is
 * registered and before it goes away (e.g. `rdma link delete rxe0`), and
 * RDMA_DEVICES, which reports them to userspace (names, GUIDs, limits and
 * port 1's state: identifiers and numbers only, no kernel addresses).
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <rdma/ib_verbs.h>

#include "dmaplane.h"

struct dmaplane_rdma_dev {
	struct ib_device *ibdev;
	struct list_head node;
};

/* The devices registered now; add and remove are serialised by the core. */
static LIST_HEAD(dmaplane_rdma_devs);
static DEFINE_MUTEX(dmaplane_rdma_lock);
static unsigned int dmaplane_rdma_count;	/* under dmaplane_rdma_lock */

static struct ib_client dmaplane_ib_client;

static int dmaplane_rdma_add(struct ib_device *ibdev)
{
	struct dmaplane_rdma_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);

	if (!dev)
		return -ENOMEM;
	dev->ibdev = ibdev;
	mutex_lock(&dmaplane_rdma_lock);
	list_add_tail(&dev->node, &dmaplane_rdma_devs);
	dmaplane_rdma_count++;
	mutex_unlock(&dmaplane_rdma_lock);
	ib_set_client_data(ibdev, &dmaplane_ib_client, dev);
	return 0;
}

static void dmaplane_rdma_remove(struct ib_device *ibdev, void *client_data)
{
	struct dmaplane_rdma_dev *dev = client_data;

	mutex_lock(&dmaplane_rdma_lock);
	list_del(&dev->node);
	dmaplane_rdma_count--;
	mutex_unlock(&dmaplane_rdma_lock);
	kfree(dev);
}

static struct ib_client dmaplane_ib_client = {
	.name = "dmaplane",
	.add = dmaplane_rdma_add,
	.remove = dmaplane_rdma_remove,
};

unsigned int dmaplane_rdma_device_count(void)
{
	unsigned int n;

	mutex_lock(&dmaplane_rdma_lock);
	n = dmaplane_rdma_count;
	mutex_unlock(&dmaplane_rdma_lock);
	return n;
}

static void dmaplane_rdma_describe(struct ib_device *ibdev,
				   struct dmaplane_rdma_device *out)
{
	struct ib_port_attr port;

	strscpy(out->name, dev_name(&ibdev->dev), sizeof(out->name));
	out->index = ibdev->index;
	out->phys_port_cnt = ibdev->phys_port_cnt;
	out->node_guid = be64_to_cpu(ibdev->node_guid);
	out->max_mr_size = ibdev->attrs.max_mr_size;
	out->max_qp = ibdev->attrs.max_qp;
	out->max_qp_wr = ibdev->attrs.max_qp_wr;
	out->max_send_sge = ibdev->attrs.max_send_sge;
	out->max_cqe = ibdev->attrs.max_cqe;
	out->max_mr = ibdev->attrs.max_mr;
	out->max_fast_reg_page_list_len =
		ibdev->attrs.max_fast_reg_page_list_len;
	if (!ib_query_port(ibdev, 1, &port)) {
		out->port_state = port.state;
		out->port_active_mtu = ib_mtu_enum_to_int(port.active_mtu);
	}
	out->port_link_layer = rdma_port_get_link_layer(ibdev, 1);
}

int dmaplane_ioc_rdma_devices(struct dmaplane_ctx *ctx, void *arg,
			      struct dmaplane_commit *commit)
{
	struct dmaplane_rdma_devices *req = arg;
	struct dmaplane_rdma_device *devs;
	struct dmaplane_rdma_dev *dev;
	u32 n = 0;
	int ret = 0;

	if (req->flags & ~DMAPLANE_RDMA_DEVICES_VALID_FLAGS || req->reserved ||
	    (req->devices_len && !req->devices_ptr))
		return -EINVAL;

	mutex_lock(&dmaplane_rdma_lock);
	req->nr_devices = dmaplane_rdma_count;
	devs = kcalloc(min(req->devices_len, dmaplane_rdma_count) + 1,
		       sizeof(*devs), GFP_KERNEL);
	if (!devs) {
		mutex_unlock(&dmaplane_rdma_lock);
		return -ENOMEM;
	}
	list_for_each_entry(dev, &dmaplane_rdma_devs, node) {
		if (n == req->devices_len)
			break;
		dmaplane_rdma_describe(dev->ibdev, &devs[n++]);
	}
	mutex_unlock(&dmaplane_rdma_lock);

	if (copy_to_user(u64_to_user_ptr(req->devices_ptr), devs,
			 n * sizeof(*devs)))
		ret = -EFAULT;
	kfree(devs);
	return ret;
}

int dmaplane_rdma_init(void)
{
	return ib_register_client(&dmaplane_ib_client);
}

void dmaplane_rdma_exit(void)
{
	ib_unregister_client(&dmaplane_ib_client);
}
