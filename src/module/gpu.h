/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GPU memory providers: what a source of device memory gives dmaplane
 * (gpu.c) so a pinned range can be an ordinary buffer.
 */
#ifndef _DMAPLANE_GPU_H
#define _DMAPLANE_GPU_H

#include <linux/list.h>
#include <linux/scatterlist.h>
#include <linux/types.h>

struct device;
struct vm_area_struct;
struct dmaplane_buffer;
struct dmaplane_gpu_range;

/*
 * A provider. Every callback but @pin is called at most once per range
 * after @pin succeeded, and never concurrently with @unpin.
 *
 * @pin:	pin [pin->addr, + pin->length) of device pin->device; fill
 *		pin->priv. From its return until @unpin the provider may
 *		call dmaplane_gpu_revoke() at any time.
 * @unpin:	give the range back (also after a revocation: free what is
 *		left). May sleep.
 * @map:	the DMA addresses of [@offset, + @len) of the range for @dev
 *		into @sgt (allocated by the provider; may be longer than
 *		@len, dmaplane uses @len of it).
 * @unmap:	undo @map.
 * @kva:	the range's kernel mapping, for software RDMA devices that
 *		take kernel addresses for DMA addresses; NULL where there is
 *		none.
 * @mmap:	map pages [vma->vm_pgoff, + vma_pages(vma)) of the range
 *		into @vma, cached as pin->flags ask; NULL: no CPU mapping.
 */
struct dmaplane_gpu_ops {
	u32 provider;		/* DMAPLANE_GPU_* */
	u32 page_size;
	int (*pin)(struct dmaplane_gpu_range *pin);
	void (*unpin)(struct dmaplane_gpu_range *pin);
	int (*map)(struct dmaplane_gpu_range *pin, struct device *dev, u64 offset,
		   u64 len, struct sg_table *sgt);
	void (*unmap)(struct dmaplane_gpu_range *pin, struct device *dev,
		      struct sg_table *sgt);
	void *(*kva)(struct dmaplane_gpu_range *pin);
	int (*mmap)(struct dmaplane_gpu_range *pin, struct vm_area_struct *vma);
};

/*
 * One pinned range, owned by its buffer (buf->gpu) and freed with it.
 * Immutable after the pin but for @priv, which is the provider's.
 */
struct dmaplane_gpu_range {
	const struct dmaplane_gpu_ops *ops;
	struct dmaplane_buffer *buf;
	u32 device;
	u32 flags;		/* DMAPLANE_GPU_PIN_* */
	u64 addr;
	u64 length;
	void *priv;
};

/* gpu.c */
bool dmaplane_gpu_range_ok(u64 addr, u64 length, u64 page_size, u64 limit);
bool dmaplane_gpu_overlaps(u64 a, u64 alen, u64 b, u64 blen);
bool dmaplane_gpu_get(struct dmaplane_gpu_range *pin);
void dmaplane_gpu_put(struct dmaplane_gpu_range *pin);
void dmaplane_gpu_revoke(struct dmaplane_gpu_range *pin);
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_gpu_buffer_new(const struct dmaplane_gpu_ops *ops, u32 device,
			    u64 addr, u64 len, u32 flags,
			    struct dmaplane_buffer **out);
#endif

/* gpu_sim.c: ivshmem-plain BARs in a QEMU guest */
extern const struct dmaplane_gpu_ops dmaplane_gpu_sim_ops;
int dmaplane_gpu_sim_init(void);
void dmaplane_gpu_sim_exit(void);
unsigned int dmaplane_gpu_sim_devices(void);
int dmaplane_gpu_sim_free(u32 device, u64 addr, u64 length, u32 *revoked);

/* gpu_nvidia.c: built only against the NVIDIA driver's nv-p2p.h */
#ifdef DMAPLANE_NVIDIA_P2P
extern const struct dmaplane_gpu_ops dmaplane_gpu_nvidia_ops;
bool dmaplane_gpu_nvidia_ready(void);
#endif

#endif /* _DMAPLANE_GPU_H */
