// SPDX-License-Identifier: GPL-2.0
/*
 * The module's own DMA devices, the udmabuf way: devices with no hardware
 * behind them whose DMA mask is coerced to 64 bits, so buffers can be
 * allocated coherently and DMA-mapped (and checked by DMA-API debug) with
 * no NIC or GPU present.
 *
 * A root device, /sys/devices/dmaplane, serves buffers with no node; one
 * child per possible node (dma-node<N>) carries that node in dev->numa_node,
 * which is where dma_alloc_coherent() places its pages. Segments may be as
 * long as a scatterlist entry allows.
 */
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dmaplane.h"

struct dmaplane_dma_node {
	struct device dev;
	struct device_dma_parameters parms;
};

static struct device *dmaplane_dma_root;
static struct device_dma_parameters dmaplane_dma_root_parms;
/* Indexed by node id; set up at init and read-only until exit. */
static struct dmaplane_dma_node **dmaplane_dma_nodes;

static int dmaplane_dma_setup(struct device *dev,
			      struct device_dma_parameters *parms)
{
	dev->dma_parms = parms;
	dma_set_max_seg_size(dev, UINT_MAX & PAGE_MASK);
	return dma_coerce_mask_and_coherent(dev, DMA_BIT_MASK(64));
}

static void dmaplane_dma_node_release(struct device *dev)
{
	kfree(container_of(dev, struct dmaplane_dma_node, dev));
}

static int dmaplane_dma_node_add(int nid)
{
	struct dmaplane_dma_node *node;
	int ret;

	node = kzalloc(sizeof(*node), GFP_KERNEL);
	if (!node)
		return -ENOMEM;
	device_initialize(&node->dev);
	node->dev.parent = dmaplane_dma_root;
	node->dev.release = dmaplane_dma_node_release;
	set_dev_node(&node->dev, nid);
	ret = dev_set_name(&node->dev, "dma-node%d", nid);
	if (!ret)
		ret = dmaplane_dma_setup(&node->dev, &node->parms);
	if (!ret)
		ret = device_add(&node->dev);
	if (ret) {
		put_device(&node->dev);
		return ret;
	}
	dmaplane_dma_nodes[nid] = node;
	return 0;
}

/* The DMA device for buffers on @nid (NUMA_NO_NODE: the root device). */
struct device *dmaplane_dma_dev(int nid)
{
	if (nid == NUMA_NO_NODE || !dmaplane_dma_nodes[nid])
		return dmaplane_dma_root;
	return &dmaplane_dma_nodes[nid]->dev;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_dma_dev);

/* Also undoes a dmaplane_dma_init() that stopped halfway. */
void dmaplane_dma_exit(void)
{
	int nid;

	for (nid = 0; dmaplane_dma_nodes && nid < nr_node_ids; nid++)
		if (dmaplane_dma_nodes[nid])
			device_unregister(&dmaplane_dma_nodes[nid]->dev);
	kfree(dmaplane_dma_nodes);
	dmaplane_dma_nodes = NULL;
	root_device_unregister(dmaplane_dma_root);
}

int dmaplane_dma_init(void)
{
	int nid, ret;

	dmaplane_dma_root = root_device_register(DMAPLANE_DEVICE_NAME);
	if (IS_ERR(dmaplane_dma_root))
		return PTR_ERR(dmaplane_dma_root);
	dmaplane_dma_nodes = kcalloc(nr_node_ids, sizeof(*dmaplane_dma_nodes),
				     GFP_KERNEL);
	ret = dmaplane_dma_nodes ? dmaplane_dma_setup(dmaplane_dma_root,
						      &dmaplane_dma_root_parms) :
				   -ENOMEM;
	for_each_node(nid)
		if (!ret)
			ret = dmaplane_dma_node_add(nid);
	if (ret)
		dmaplane_dma_exit();
	return ret;
}
