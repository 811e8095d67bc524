// SPDX-License-Identifier: GPL-2.0
/*
 * The sim's GPU: device memory behind an emulated PCI BAR. QEMU's
 * ivshmem-plain device (memdev=, a host memory backend) exposes it as
 * BAR 2; 64 KiB pages, as NVIDIA's GPUDirect RDMA pins them. Opt in with
 * the module parameter sim_gpu=1 (a lab host's ivshmem device is not ours).
 *
 * Pinned ranges are tracked per device so GPU_SIM_FREE can revoke the
 * ones it overlaps, as cudaFree does, and unbinding the device revokes
 * them all. The BAR has no struct pages: real DMA devices get it through
 * dma_map_resource(), software RDMA devices through its kernel mapping.
 */
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "dmaplane.h"
#include "gpu.h"

#define DMAPLANE_GPU_SIM_BAR		2
#define DMAPLANE_GPU_SIM_PAGE		SZ_64K
#define DMAPLANE_GPU_SIM_MAX_DEVICES	8

static bool dmaplane_sim_gpu;
module_param_named(sim_gpu, dmaplane_sim_gpu, bool, 0444);
MODULE_PARM_DESC(sim_gpu, "drive QEMU ivshmem-plain devices as sim GPUs");

/*
 * One sim GPU. Its memory stays mapped until the last pinned range on it
 * is unpinned (@ref: the driver binding and every range hold one).
 * @lock guards @ranges and @gone.
 */
struct dmaplane_sim_gpu {
	struct kref ref;
	struct pci_dev *pdev;
	u32 index;
	phys_addr_t phys;
	u64 size;
	void *kva;		/* memremap'd write-combining */
	struct mutex lock;
	struct list_head ranges;	/* struct dmaplane_sim_range */
	bool gone;		/* unbound: no new pins */
};

struct dmaplane_sim_range {
	struct list_head node;
	struct dmaplane_gpu_range *pin;
	struct dmaplane_sim_gpu *gpu;	/* a reference */
};

/* Bound devices by index; dmaplane_sim_lock guards the table. */
static DEFINE_MUTEX(dmaplane_sim_lock);
static struct dmaplane_sim_gpu *dmaplane_sim_gpus[DMAPLANE_GPU_SIM_MAX_DEVICES];
static unsigned int dmaplane_sim_count;

static void dmaplane_sim_gpu_free(struct kref *ref)
{
	struct dmaplane_sim_gpu *gpu = container_of(ref, struct dmaplane_sim_gpu,
						    ref);

	memunmap(gpu->kva);
	pci_release_region(gpu->pdev, DMAPLANE_GPU_SIM_BAR);
	pci_disable_device(gpu->pdev);
	pci_dev_put(gpu->pdev);
	mutex_destroy(&gpu->lock);
	kfree(gpu);
}

static struct dmaplane_sim_gpu *dmaplane_sim_gpu_get(u32 index)
{
	struct dmaplane_sim_gpu *gpu = NULL;

	mutex_lock(&dmaplane_sim_lock);
	if (index < DMAPLANE_GPU_SIM_MAX_DEVICES && dmaplane_sim_gpus[index]) {
		gpu = dmaplane_sim_gpus[index];
		kref_get(&gpu->ref);
	}
	mutex_unlock(&dmaplane_sim_lock);
	return gpu;
}

static void dmaplane_sim_gpu_put(struct dmaplane_sim_gpu *gpu)
{
	kref_put(&gpu->ref, dmaplane_sim_gpu_free);
}

unsigned int dmaplane_gpu_sim_devices(void)
{
	return READ_ONCE(dmaplane_sim_count);
}

static int dmaplane_sim_pin(struct dmaplane_gpu_range *pin)
{
	struct dmaplane_sim_range *range;
	struct dmaplane_sim_gpu *gpu;
	int ret = 0;

	gpu = dmaplane_sim_gpu_get(pin->device);
	if (!gpu)
		return -ENODEV;
	if (!dmaplane_gpu_range_ok(pin->addr, pin->length,
				   DMAPLANE_GPU_SIM_PAGE, gpu->size)) {
		ret = -ERANGE;
		goto err_put;
	}
	range = kzalloc(sizeof(*range), GFP_KERNEL_ACCOUNT);
	if (!range) {
		ret = -ENOMEM;
		goto err_put;
	}
	range->pin = pin;
	range->gpu = gpu;
	mutex_lock(&gpu->lock);
	if (gpu->gone)
		ret = -ENODEV;
	else
		list_add_tail(&range->node, &gpu->ranges);
	mutex_unlock(&gpu->lock);
	if (ret) {
		kfree(range);
		goto err_put;
	}
	pin->priv = range;
	return 0;

err_put:
	dmaplane_sim_gpu_put(gpu);
	return ret;
}

static void dmaplane_sim_unpin(struct dmaplane_gpu_range *pin)
{
	struct dmaplane_sim_range *range = pin->priv;
	struct dmaplane_sim_gpu *gpu = range->gpu;

	mutex_lock(&gpu->lock);
	list_del(&range->node);
	mutex_unlock(&gpu->lock);
	kfree(range);
	dmaplane_sim_gpu_put(gpu);
}

static struct dmaplane_sim_gpu *dmaplane_sim_pin_gpu(struct dmaplane_gpu_range *pin)
{
	return ((struct dmaplane_sim_range *)pin->priv)->gpu;
}

/*
 * The BAR through the device's IOMMU (or none), in max-segment pieces.
 * Device memory has no CPU cache to sync, and a range may be mapped for
 * several devices at once (an importer and an RDMA device): no syncs.
 */
static int dmaplane_sim_map(struct dmaplane_gpu_range *pin, struct device *dev,
			    u64 offset, u64 len, struct sg_table *sgt)
{
	struct dmaplane_sim_gpu *gpu = dmaplane_sim_pin_gpu(pin);
	u64 seg = dma_get_max_seg_size(dev) & PAGE_MASK, pos;
	struct scatterlist *sg;
	dma_addr_t addr;
	int ret;

	addr = dma_map_resource(dev, gpu->phys + pin->addr + offset, len,
				DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	if (dma_mapping_error(dev, addr))
		return -EIO;
	ret = sg_alloc_table(sgt, DIV_ROUND_UP_ULL(len, seg), GFP_KERNEL_ACCOUNT);
	if (ret) {
		dma_unmap_resource(dev, addr, len, DMA_BIDIRECTIONAL,
				   DMA_ATTR_SKIP_CPU_SYNC);
		return ret;
	}
	pos = 0;
	for_each_sgtable_sg(sgt, sg, ret) {
		sg_dma_address(sg) = addr + pos;
		sg_dma_len(sg) = min(seg, len - pos);
		pos += sg_dma_len(sg);
	}
	sgt->nents = sgt->orig_nents;
	return 0;
}

static void dmaplane_sim_unmap(struct dmaplane_gpu_range *pin,
			       struct device *dev, struct sg_table *sgt)
{
	struct scatterlist *sg;
	u64 len = 0;
	int i;

	for_each_sgtable_dma_sg(sgt, sg, i)
		len += sg_dma_len(sg);
	dma_unmap_resource(dev, sg_dma_address(sgt->sgl), len,
			   DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	sg_free_table(sgt);
}

static void *dmaplane_sim_kva(struct dmaplane_gpu_range *pin)
{
	return dmaplane_sim_pin_gpu(pin)->kva + pin->addr;
}

static int dmaplane_sim_mmap(struct dmaplane_gpu_range *pin,
			     struct vm_area_struct *vma)
{
	struct dmaplane_sim_gpu *gpu = dmaplane_sim_pin_gpu(pin);
	unsigned long pfn = PHYS_PFN(gpu->phys + pin->addr) + vma->vm_pgoff;
	pgprot_t prot = pin->flags & DMAPLANE_GPU_PIN_UNCACHED ?
			pgprot_noncached(vma->vm_page_prot) :
			pgprot_writecombine(vma->vm_page_prot);

	return io_remap_pfn_range(vma, vma->vm_start, pfn,
				  vma->vm_end - vma->vm_start, prot);
}

const struct dmaplane_gpu_ops dmaplane_gpu_sim_ops = {
	.provider = DMAPLANE_GPU_SIM,
	.page_size = DMAPLANE_GPU_SIM_PAGE,
	.pin = dmaplane_sim_pin,
	.unpin = dmaplane_sim_unpin,
	.map = dmaplane_sim_map,
	.unmap = dmaplane_sim_unmap,
	.kva = dmaplane_sim_kva,
	.mmap = dmaplane_sim_mmap,
};

/*
 * Revoke the ranges on @gpu overlapping [@addr, + @length) (all of them
 * with @all), outside gpu->lock: a revocation may drop the last buffer
 * reference, whose unpin takes it. *@revoked counts them.
 */
static int dmaplane_sim_revoke(struct dmaplane_sim_gpu *gpu, u64 addr,
			       u64 length, bool all, u32 *revoked)
{
	struct dmaplane_gpu_range **pins;
	struct dmaplane_sim_range *range;
	unsigned int n = 0, i;

	mutex_lock(&gpu->lock);
	list_for_each_entry(range, &gpu->ranges, node)
		n++;
	pins = kcalloc(n ?: 1, sizeof(*pins), GFP_KERNEL);
	if (!pins) {
		mutex_unlock(&gpu->lock);
		return -ENOMEM;
	}
	n = 0;
	list_for_each_entry(range, &gpu->ranges, node) {
		struct dmaplane_gpu_range *pin = range->pin;

		if ((all || dmaplane_gpu_overlaps(addr, length, pin->addr,
						  pin->length)) &&
		    dmaplane_gpu_get(pin))
			pins[n++] = pin;
	}
	mutex_unlock(&gpu->lock);
	for (i = 0; i < n; i++) {
		dmaplane_gpu_revoke(pins[i]);
		dmaplane_gpu_put(pins[i]);
	}
	kfree(pins);
	*revoked = n;
	return 0;
}

int dmaplane_gpu_sim_free(u32 device, u64 addr, u64 length, u32 *revoked)
{
	struct dmaplane_sim_gpu *gpu;
	u64 end;
	int ret;

	if (!length || check_add_overflow(addr, length, &end))
		return -EINVAL;
	if (!dmaplane_gpu_sim_devices())
		return -EOPNOTSUPP;
	gpu = dmaplane_sim_gpu_get(device);
	if (!gpu)
		return -ENODEV;
	ret = end > gpu->size ? -ERANGE :
	      dmaplane_sim_revoke(gpu, addr, length, false, revoked);
	dmaplane_sim_gpu_put(gpu);
	return ret;
}

static int dmaplane_sim_probe(struct pci_dev *pdev,
			      const struct pci_device_id *id)
{
	struct dmaplane_sim_gpu *gpu;
	u32 index;
	int ret;

	gpu = kzalloc(sizeof(*gpu), GFP_KERNEL);
	if (!gpu)
		return -ENOMEM;
	kref_init(&gpu->ref);
	mutex_init(&gpu->lock);
	INIT_LIST_HEAD(&gpu->ranges);
	gpu->pdev = pci_dev_get(pdev);
	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_free;
	ret = pci_request_region(pdev, DMAPLANE_GPU_SIM_BAR, "dmaplane-sim-gpu");
	if (ret)
		goto err_disable;
	gpu->phys = pci_resource_start(pdev, DMAPLANE_GPU_SIM_BAR);
	gpu->size = pci_resource_len(pdev, DMAPLANE_GPU_SIM_BAR);
	gpu->kva = memremap(gpu->phys, gpu->size, MEMREMAP_WC);
	if (!gpu->kva) {
		ret = -ENOMEM;
		goto err_release;
	}

	mutex_lock(&dmaplane_sim_lock);
	for (index = 0; index < DMAPLANE_GPU_SIM_MAX_DEVICES; index++)
		if (!dmaplane_sim_gpus[index])
			break;
	if (index < DMAPLANE_GPU_SIM_MAX_DEVICES) {
		gpu->index = index;
		dmaplane_sim_gpus[index] = gpu;
		dmaplane_sim_count++;
	}
	mutex_unlock(&dmaplane_sim_lock);
	if (index == DMAPLANE_GPU_SIM_MAX_DEVICES) {
		ret = -ENOSPC;
		goto err_unmap;
	}
	pci_set_drvdata(pdev, gpu);
	pci_info(pdev, "dmaplane sim GPU %u: %llu MiB\n", index,
		 gpu->size >> 20);
	return 0;

err_unmap:
	memunmap(gpu->kva);
err_release:
	pci_release_region(pdev, DMAPLANE_GPU_SIM_BAR);
err_disable:
	pci_disable_device(pdev);
err_free:
	pci_dev_put(pdev);
	mutex_destroy(&gpu->lock);
	kfree(gpu);
	return ret;
}

/* The device goes: every range on it is revoked, as a GPU reset would. */
static void dmaplane_sim_remove(struct pci_dev *pdev)
{
	struct dmaplane_sim_gpu *gpu = pci_get_drvdata(pdev);
	u32 revoked;

	mutex_lock(&dmaplane_sim_lock);
	dmaplane_sim_gpus[gpu->index] = NULL;
	dmaplane_sim_count--;
	mutex_unlock(&dmaplane_sim_lock);
	mutex_lock(&gpu->lock);
	gpu->gone = true;
	mutex_unlock(&gpu->lock);
	if (dmaplane_sim_revoke(gpu, 0, 0, true, &revoked))
		pci_warn(pdev, "dmaplane sim GPU %u: ranges not revoked\n",
			 gpu->index);
	dmaplane_sim_gpu_put(gpu);
}

/* QEMU's ivshmem (Red Hat, Inc. vendor id). */
static const struct pci_device_id dmaplane_sim_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },
	{ }
};

static struct pci_driver dmaplane_sim_driver = {
	.name = "dmaplane-sim-gpu",
	.id_table = dmaplane_sim_ids,
	.probe = dmaplane_sim_probe,
	.remove = dmaplane_sim_remove,
};

int dmaplane_gpu_sim_init(void)
{
	return dmaplane_sim_gpu ? pci_register_driver(&dmaplane_sim_driver) : 0;
}

void dmaplane_gpu_sim_exit(void)
{
	if (dmaplane_sim_gpu)
		pci_unregister_driver(&dmaplane_sim_driver);
}
