// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplane: buffer orchestration for AI data paths.
 *
 * Module init/exit, the /dev/dmaplane misc device and its file operations.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/string.h>

#include "dmaplane.h"
#include "gpu.h"

unsigned long dmaplane_max_buffer_size = 1UL << 30;
module_param_named(max_buffer_size, dmaplane_max_buffer_size, ulong, 0444);
MODULE_PARM_DESC(max_buffer_size, "Largest single buffer in bytes (default 1 GiB)");

unsigned long dmaplane_max_total_bytes;
module_param_named(max_total_bytes, dmaplane_max_total_bytes, ulong, 0444);
MODULE_PARM_DESC(max_total_bytes, "Bytes all buffers may hold together (0 = half of RAM)");

unsigned long dmaplane_max_file_bytes;
module_param_named(max_file_bytes, dmaplane_max_file_bytes, ulong, 0444);
MODULE_PARM_DESC(max_file_bytes, "Bytes the buffers of one open file may hold (0 = max_total_bytes)");

unsigned int dmaplane_max_handles = 65536;
module_param_named(max_handles, dmaplane_max_handles, uint, 0444);
MODULE_PARM_DESC(max_handles, "Objects one open file may hold (default 65536)");

struct dmaplane_stats dmaplane_stats;

void dmaplane_fill_info(struct dmaplane_info *info)
{
	info->uapi_version = DMAPLANE_UAPI_VERSION;
	info->capabilities = DMAPLANE_CAP_BUFFER_PAGES | DMAPLANE_CAP_RDMA |
			     DMAPLANE_CAP_BUFFER_COHERENT |
			     DMAPLANE_CAP_BUFFER_HUGE | DMAPLANE_CAP_BUFFER_USER |
			     DMAPLANE_CAP_MMAP | DMAPLANE_CAP_TOPOLOGY |
			     DMAPLANE_CAP_DMABUF | DMAPLANE_CAP_RDMA_DEVICES |
			     DMAPLANE_CAP_ENDPOINTS | DMAPLANE_CAP_VERBS |
			     DMAPLANE_CAP_CREDITS;
	if (IS_ENABLED(CONFIG_NUMA))
		info->capabilities |= DMAPLANE_CAP_NUMA;
	info->numa_nodes_online = num_online_nodes();
	info->numa_nodes_possible = nr_node_ids;
	info->rdma_devices = dmaplane_rdma_device_count();
	strscpy(info->module_version, DMAPLANE_MODULE_VERSION,
		sizeof(info->module_version));
	dmaplane_gpu_fill_info(info);
}

static int dmaplane_open(struct inode *inode, struct file *file)
{
	struct dmaplane_ctx *ctx;

	ctx = dmaplane_ctx_create();
	if (!ctx)
		return -ENOMEM;
	file->private_data = ctx;
	return nonseekable_open(inode, file);
}

static int dmaplane_release(struct inode *inode, struct file *file)
{
	dmaplane_ctx_destroy(file->private_data);
	return 0;
}

static const struct file_operations dmaplane_fops = {
	.owner = THIS_MODULE,
	.open = dmaplane_open,
	.release = dmaplane_release,
	.unlocked_ioctl = dmaplane_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = dmaplane_mmap,
	.llseek = no_llseek,
};

static struct miscdevice dmaplane_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = DMAPLANE_DEVICE_NAME,
	.fops = &dmaplane_fops,
	.mode = 0600,
};

static int __init dmaplane_init(void)
{
	int ret;

	/* The mmap offset carries the handle and the offset in the buffer. */
	if (!dmaplane_max_handles ||
	    dmaplane_max_handles > DMAPLANE_MAX_HANDLES_LIMIT ||
	    !dmaplane_max_buffer_size ||
	    dmaplane_max_buffer_size > DMAPLANE_MAX_BUFFER_LIMIT) {
		pr_err("dmaplane: max_handles must be 1..%lu and max_buffer_size 1..%llu\n",
		       DMAPLANE_MAX_HANDLES_LIMIT, DMAPLANE_MAX_BUFFER_LIMIT);
		return -EINVAL;
	}
	if (!dmaplane_max_total_bytes)
		dmaplane_max_total_bytes = (totalram_pages() / 2) << PAGE_SHIFT;
	if (!dmaplane_max_file_bytes)
		dmaplane_max_file_bytes = dmaplane_max_total_bytes;

	ret = dmaplane_dma_init();
	if (ret)
		return ret;

	ret = dmaplane_rdma_init();
	if (ret)
		goto err_dma;

	ret = dmaplane_ep_init();
	if (ret)
		goto err_rdma;

	ret = dmaplane_gpu_sim_init();
	if (ret)
		goto err_ep;

	ret = misc_register(&dmaplane_miscdev);
	if (ret)
		goto err_gpu;

	dmaplane_debugfs_init();
	pr_info("dmaplane: version %s, uapi %d\n", DMAPLANE_MODULE_VERSION,
		DMAPLANE_UAPI_VERSION);
	return 0;

err_gpu:
	dmaplane_gpu_sim_exit();
err_ep:
	dmaplane_ep_exit();
err_rdma:
	dmaplane_rdma_exit();
err_dma:
	dmaplane_dma_exit();
	return ret;
}

static void __exit dmaplane_exit(void)
{
	dmaplane_debugfs_exit();
	misc_deregister(&dmaplane_miscdev);
	dmaplane_gpu_sim_exit();
	dmaplane_ep_exit();
	dmaplane_rdma_exit();
	dmaplane_dma_exit();
}

module_init(dmaplane_init);
module_exit(dmaplane_exit);

MODULE_DESCRIPTION("dmaplane: DMA buffer orchestration for AI data paths");
MODULE_LICENSE("GPL");
MODULE_VERSION(DMAPLANE_MODULE_VERSION);
