/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmaplane's RDMA objects, shared by rdma_ep.c (connections), rdma_mr.c
 * (memory registration) and rdma_verbs.c (operations and completions).
 */
#ifndef _DMAPLANE_RDMA_H
#define _DMAPLANE_RDMA_H

#include <linux/completion.h>
#include <linux/dma-buf.h>
#include <linux/eventfd.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

#include "dmaplane.h"
#include "hist.h"

struct dmaplane_ep;
struct dmaplane_mr;

/*
 * A posted operation: one send- or receive-queue slot. @node is on a free
 * list while the slot is idle, on the endpoint's credit queue while the
 * operation waits for a credit, and on nothing while it is in flight.
 */
struct dmaplane_wr {
	struct ib_cqe cqe;
	struct dmaplane_ep *ep;
	struct dmaplane_mr *mr;		/* NULL without data */
	struct dmaplane_op op;		/* as the caller posted it */
	u64 submit_ns;			/* for the latency histogram */
	struct list_head node;
};

/*
 * Credit accounting of one connection, both directions (flow.c). All
 * counts are cumulative and wrap: only differences are meaningful.
 * Sending: the peer granted @peer_granted credits, @used were taken
 * (one per SEND or WRITE_IMM). Receiving: @posted RECVs were posted,
 * @consumed were used by the peer's messages, @granted were granted;
 * the peer never holds more than @window, a grant goes out at once when
 * the peer has @low or fewer left and otherwise once @high are due.
 */
struct dmaplane_credits {
	u32 peer_window;		/* the most the peer may grant */
	u32 peer_granted;
	u32 used;
	u32 window;
	u32 low;
	u32 high;
	u32 posted;
	u32 consumed;
	u32 granted;
};

u32 dmaplane_credit_avail(const struct dmaplane_credits *c);
bool dmaplane_credit_take(struct dmaplane_credits *c);
int dmaplane_credit_receive(struct dmaplane_credits *c, u32 cumulative);
u32 dmaplane_credit_due(const struct dmaplane_credits *c);

/*
 * An RC endpoint.
 *
 * @lock covers @state, @error, @events, @pending and @cm_id's pointer
 * value. @op_lock serialises what sleeps: CM operations, registering and
 * deregistering MRs (@mrs, each MR's @ibmr) and the teardown of @cm_id,
 * the QP, @cq and @pd; the CM handler never takes it. @post_lock covers
 * @qp_live, the slots' free lists, the busy counts, the completion ring
 * and @eventfd; it is taken from the CQ's completion context.
 *
 * A slot counts as busy from its post until its completion is reaped, so
 * the ring (one entry per slot) can never overflow and a full queue shows
 * as -EAGAIN to the caller, never as a lost completion.
 */
struct dmaplane_ep {
	struct dmaplane_obj obj;
	struct mutex op_lock;		/* see above */
	spinlock_t lock;		/* see above */
	wait_queue_head_t wq;		/* CM events, completions, failure */
	struct rdma_cm_id *cm_id;
	struct ib_pd *pd;
	struct ib_cq *cq;
	u32 state;
	int error;
	u32 events;			/* BIT(RDMA_CM_EVENT_*) seen */
	struct list_head pending;	/* listener: requests not accepted */
	struct list_head pending_node;
	struct work_struct remove_work;
	struct dmaplane_ep_create params;
	bool active;			/* it connected (it did not accept) */
	bool listened;			/* rdma_listen() succeeded on it */
	u32 peer_send_depth;		/* from the peer's hello */
	u32 peer_recv_depth;

	spinlock_t post_lock;		/* see above */
	bool qp_live;			/* work requests may be posted */
	bool qp_used;			/* it went live: drain before destroy */
	struct dmaplane_wr *wrs;	/* send_depth + recv_depth slots */
	struct list_head send_free;
	struct list_head recv_free;
	u32 send_busy;
	u32 recv_busy;
	struct dmaplane_completion *ring;
	u32 ring_head;
	u32 ring_count;
	struct eventfd_ctx *eventfd;
	struct mutex reap_lock;		/* one reaper copies out at a time */

	/*
	 * Flow control (flow.c), under post_lock unless noted. Grants go
	 * out as zero-length SEND_WITH_IMM on @ctrl_qp (immediate: the
	 * cumulative grant), one in flight at a time; any message from the
	 * peer's control QP shows it receives (@ctrl_ready).
	 */
	bool credits_on;		/* set before the connection, then fixed */
	struct dmaplane_credits credits;
	struct ib_qp *ctrl_qp;		/* op_lock */
	u32 ctrl_psn;
	u32 peer_ctrl_qpn;
	u32 peer_ctrl_psn;
	bool ctrl_used;			/* receives were posted: drain it */
	bool ctrl_ready;
	bool ctrl_busy;			/* a grant is in flight */
	struct ib_cqe ctrl_send_cqe;
	struct ib_cqe ctrl_recv_cqe;
	struct list_head credit_queue;	/* struct dmaplane_wr waiting */
	u32 queued;
	u64 stall_start_ns;		/* 0: not stalled */

	/* Counters (post_lock) for debugfs and ENDPOINT_INFO */
	u64 id;				/* module-wide, for debugfs and traces */
	struct list_head all_node;	/* dmaplane_eps */
	u64 ops;
	u64 bytes;
	u64 errors;
	u64 stalls;
	u64 stall_ns;
	u64 grants_sent;
	u64 grants_rcvd;
	struct dmaplane_hist latency;	/* send-side operations, ns */

	struct list_head mrs;		/* struct dmaplane_mr, op_lock */
	atomic_t mr_handles;		/* MR objects naming it: -EBUSY to destroy */
	/* REG_MR and LOCAL_INV, one at a time under op_lock */
	struct ib_cqe local_cqe;
	struct completion local_done;
	enum ib_wc_status local_status;
};

/* Room the QP keeps beyond the user's depths: one REG_MR/LOCAL_INV, one drain. */
#define DMAPLANE_EP_SEND_EXTRA	2
#define DMAPLANE_EP_RECV_EXTRA	1

/*
 * A registered window of a buffer on one endpoint's PD. The handle table
 * holds a reference; the MR holds one on its endpoint and its buffer.
 * @ibmr, @sgt's mapping and @ep_node are under the endpoint's op_lock:
 * when the device goes away the endpoint deregisters them and leaves
 * @ibmr NULL. @lkey and @rkey are copies, for the posting path.
 */
/*
 * How an MR's window reaches its device: pages mapped with the DMA API
 * (PAGES), an import's exporter's kernel mapping or an import's attachment
 * (below), or the GPU provider's mapping for the device, or its kernel
 * mapping for a software device (GPU, GPU_KVA).
 */
enum dmaplane_mr_mapping {
	DMAPLANE_MR_PAGES,
	DMAPLANE_MR_IMPORT_VMAP,
	DMAPLANE_MR_IMPORT_ATTACH,
	DMAPLANE_MR_GPU,
	DMAPLANE_MR_GPU_KVA,
};

struct dmaplane_mr {
	struct dmaplane_obj obj;
	struct dmaplane_ep *ep;
	struct dmaplane_buffer *buf;
	struct ib_mr *ibmr;
	struct ib_device *ibdev;
	struct sg_table sgt;		/* the window, mapped for @ibdev */
	enum dmaplane_mr_mapping mapping; /* how @sgt was made */
	/*
	 * An import reaches a device that does DMA through the exporter's
	 * mapping (@attach, @attach_sgt; @sgt then only copies its DMA
	 * addresses); a software device (soft-RoCE: "DMA" addresses are
	 * kernel addresses) through the exporter's kernel mapping (@vmap).
	 */
	struct dma_buf_attachment *attach;
	struct sg_table *attach_sgt;
	struct iosys_map vmap;
	u64 offset;
	u64 length;
	u32 access;			/* DMAPLANE_MR_* */
	u32 lkey;
	u32 rkey;
	atomic_t inflight;		/* operations posted on it */
	struct list_head ep_node;
	struct list_head buf_node;	/* buf->mr_list, under buf->lock */
	bool revoked;			/* taken by a revocation; buf->lock */
};

/* rdma_ep.c */
struct dmaplane_ep *dmaplane_ep_lookup(struct dmaplane_ctx *ctx, u32 handle);
void dmaplane_ep_put(struct dmaplane_ep *ep);
bool dmaplane_ep_set_error(struct dmaplane_ep *ep, int error);
void dmaplane_ep_fail(struct dmaplane_ep *ep, int error);
void dmaplane_ep_break(struct dmaplane_ep *ep);
void dmaplane_ep_peer_error(struct dmaplane_ep *ep, const char *why);
void dmaplane_ep_quiesce(struct dmaplane_ep *ep);
int dmaplane_ep_post_local(struct dmaplane_ep *ep, struct ib_send_wr *wr);

/* rdma_mr.c */
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_mr_page_size(struct scatterlist *sgl, unsigned int nents,
			  u64 size_cap, u32 max_pages, u32 *npages);
int dmaplane_mr_copy_window(struct dmaplane_mr *mr, struct sg_table *from);
#endif
struct dmaplane_mr *dmaplane_mr_lookup(struct dmaplane_ctx *ctx, u32 handle);
void dmaplane_mr_put(struct dmaplane_mr *mr);
void dmaplane_mr_drop_all(struct dmaplane_ep *ep);
void dmaplane_mr_sync(struct dmaplane_mr *mr, u64 offset, u64 len,
		      bool for_cpu);

/* flow.c */
#define DMAPLANE_CTRL_RECVS	16
/* Completions the control QP can have at once: receives, a grant, drains. */
#define DMAPLANE_CTRL_CQE	(DMAPLANE_CTRL_RECVS + 1 + 2)
int dmaplane_flow_create(struct dmaplane_ep *ep);
int dmaplane_flow_connect(struct dmaplane_ep *ep);
void dmaplane_flow_quiesce(struct dmaplane_ep *ep);
void dmaplane_flow_destroy(struct dmaplane_ep *ep);
void dmaplane_flow_kick(struct dmaplane_ep *ep);
int dmaplane_flow_admit(struct dmaplane_ep *ep, struct dmaplane_wr *wr,
			bool nowait);
void dmaplane_flow_flush(struct dmaplane_ep *ep);
int dmaplane_flow_check_params(struct dmaplane_ep_create *p);

/* rdma_verbs.c */
int dmaplane_wc_errno(enum ib_wc_status status);
#if IS_ENABLED(CONFIG_KUNIT)
int dmaplane_op_check(const struct dmaplane_op *op, u64 mr_length,
		      u32 mr_access);
#endif
int dmaplane_ep_verbs_init(struct dmaplane_ep *ep);
void dmaplane_ep_verbs_free(struct dmaplane_ep *ep);
void dmaplane_ep_signal(struct dmaplane_ep *ep);
void dmaplane_ep_complete(struct dmaplane_ep *ep,
			  const struct dmaplane_completion *c);
int dmaplane_ep_post_wr(struct dmaplane_ep *ep, struct dmaplane_wr *wr);
void dmaplane_wr_finish(struct dmaplane_ep *ep, struct dmaplane_wr *wr,
			int status, enum ib_wc_status wc_status);

/* rdma_ep.c: the module's endpoints, for debugfs */
void dmaplane_eps_walk(void (*fn)(struct dmaplane_ep *ep, void *data),
		       void *data);

#endif /* _DMAPLANE_RDMA_H */
