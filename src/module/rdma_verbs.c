// SPDX-License-Identifier: GPL-2.0
/*
 * Operations on a connected endpoint: SEND, RECV, WRITE, WRITE_WITH_IMM
 * and READ posted in batches (one ioctl for up to DMAPLANE_POST_MAX), their
 * completions collected in batches (REAP), and an optional eventfd that
 * is signalled for each completion so one poll() can watch many
 * endpoints.
 *
 * Every operation names its local data as (MR, offset, length), checked
 * against the MR with overflow-safe arithmetic, and its remote data as
 * (rkey, offset) in the peer's zero-based window, which the peer's device
 * checks. Each one takes a slot that stays busy until its completion is
 * reaped, so the number in flight is bounded by the queue depths and the
 * completion ring never overflows.
 */
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/ktime.h>
#include <rdma/rdma_cm.h>
#include <kunit/visibility.h>

#include "rdma.h"
#include "trace.h"

static void dmaplane_wr_done(struct ib_cq *cq, struct ib_wc *wc);

static u32 dmaplane_ep_slots(const struct dmaplane_ep *ep)
{
	return ep->params.send_depth + ep->params.recv_depth;
}

int dmaplane_ep_verbs_init(struct dmaplane_ep *ep)
{
	u32 i, n = dmaplane_ep_slots(ep);

	spin_lock_init(&ep->post_lock);
	mutex_init(&ep->reap_lock);
	INIT_LIST_HEAD(&ep->send_free);
	INIT_LIST_HEAD(&ep->recv_free);
	INIT_LIST_HEAD(&ep->credit_queue);
	ep->wrs = kvcalloc(n, sizeof(*ep->wrs), GFP_KERNEL_ACCOUNT);
	ep->ring = kvcalloc(n, sizeof(*ep->ring), GFP_KERNEL_ACCOUNT);
	if (!ep->wrs || !ep->ring) {
		kvfree(ep->wrs);
		kvfree(ep->ring);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct dmaplane_wr *wr = &ep->wrs[i];

		wr->ep = ep;
		wr->cqe.done = dmaplane_wr_done;
		list_add_tail(&wr->node, i < ep->params.send_depth ?
			      &ep->send_free : &ep->recv_free);
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ep_verbs_init);

void dmaplane_ep_verbs_free(struct dmaplane_ep *ep)
{
	if (ep->eventfd)
		eventfd_ctx_put(ep->eventfd);
	mutex_destroy(&ep->reap_lock);
	kvfree(ep->wrs);
	kvfree(ep->ring);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ep_verbs_free);

/* Wake the endpoint's waiters and its eventfd. */
void dmaplane_ep_signal(struct dmaplane_ep *ep)
{
	spin_lock_bh(&ep->post_lock);
	if (ep->eventfd)
		eventfd_signal(ep->eventfd, 1);
	spin_unlock_bh(&ep->post_lock);
	wake_up_all(&ep->wq);
}

/* What a work completion's status means for the caller. */
int dmaplane_wc_errno(enum ib_wc_status status)
{
	switch (status) {
	case IB_WC_SUCCESS:
		return 0;
	case IB_WC_WR_FLUSH_ERR:
		return -ECANCELED;
	case IB_WC_REM_ACCESS_ERR:
	case IB_WC_LOC_ACCESS_ERR:
	case IB_WC_LOC_PROT_ERR:
		return -EACCES;
	case IB_WC_REM_INV_REQ_ERR:
	case IB_WC_REM_OP_ERR:
		return -EREMOTEIO;
	case IB_WC_RETRY_EXC_ERR:
	case IB_WC_RNR_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	case IB_WC_LOC_LEN_ERR:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_wc_errno);

/* Record a completion in the ring. post_lock held. */
void dmaplane_ep_complete(struct dmaplane_ep *ep,
			  const struct dmaplane_completion *c)
{
	u32 n = dmaplane_ep_slots(ep);

	ep->ring[(ep->ring_head + ep->ring_count) % n] = *c;
	ep->ring_count++;
	if (ep->eventfd)
		eventfd_signal(ep->eventfd, 1);
}

static bool dmaplane_op_is_recv(const struct dmaplane_op *op)
{
	return op->opcode == DMAPLANE_OP_RECV;
}

/*
 * @wr is done with completion @c: count it, queue @c for REAP and put
 * the slot back on its free list (it stays busy until reaped). post_lock
 * held.
 */
static void dmaplane_wr_retire(struct dmaplane_ep *ep, struct dmaplane_wr *wr,
			       struct dmaplane_completion *c)
{
	u64 latency = 0;

	if (c->status) {
		c->bytes = 0;
		ep->errors++;
		atomic64_inc(&dmaplane_stats.op_errors);
	} else {
		ep->bytes += c->bytes;
		atomic64_add(c->bytes, &dmaplane_stats.op_bytes);
	}
	ep->ops++;
	/* A receive's wait is the peer's pace: only send-side latencies. */
	if (!dmaplane_op_is_recv(&wr->op) &&
	    wr->op.opcode != DMAPLANE_OP_NOOP && !c->status) {
		latency = ktime_get_ns() - wr->submit_ns;
		dmaplane_hist_add(&ep->latency, latency);
	}
	trace_dmaplane_complete(ep->id, c->cookie, c->opcode, c->status,
				c->bytes, latency);
	if (wr->mr) {
		atomic_dec(&wr->mr->inflight);
		wr->mr = NULL;
	}
	dmaplane_ep_complete(ep, c);
	list_add_tail(&wr->node, dmaplane_op_is_recv(&wr->op) ?
		      &ep->recv_free : &ep->send_free);
}

/* @wr ends without a work completion (@status). post_lock held. */
void dmaplane_wr_finish(struct dmaplane_ep *ep, struct dmaplane_wr *wr,
			int status, enum ib_wc_status wc_status)
{
	struct dmaplane_completion c = {
		.cookie = wr->op.cookie,
		.opcode = wr->op.opcode,
		.status = status,
		.wc_status = wc_status,
		.bytes = wr->op.length,
	};

	dmaplane_wr_retire(ep, wr, &c);
}

static void dmaplane_wr_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_wr *wr = container_of(wc->wr_cqe, struct dmaplane_wr,
					      cqe);
	struct dmaplane_ep *ep = wr->ep;
	struct dmaplane_completion c = {
		.cookie = wr->op.cookie,
		.opcode = wr->op.opcode,
		.status = dmaplane_wc_errno(wc->status),
		.wc_status = wc->status,
		.bytes = wr->op.length,
	};
	bool recv = dmaplane_op_is_recv(&wr->op);
	bool fatal = c.status && c.status != -ECANCELED;

	/* A failed completion's other fields are not defined. */
	if (recv && !c.status) {
		c.bytes = wc->byte_len;
		if (wc->wc_flags & IB_WC_WITH_IMM) {
			c.imm = be32_to_cpu(wc->ex.imm_data);
			c.flags |= DMAPLANE_COMP_IMM;
		}
		if (wc->opcode == IB_WC_RECV_RDMA_WITH_IMM)
			c.flags |= DMAPLANE_COMP_WRITE_IMM;
	}
	if (wr->mr && (recv || wr->op.opcode == DMAPLANE_OP_READ))
		dmaplane_mr_sync(wr->mr, wr->op.offset, wr->op.length, true);
	spin_lock_bh(&ep->post_lock);
	/* A reaper sees the failure and its completion together. */
	if (fatal)
		dmaplane_ep_set_error(ep, c.status);
	/*
	 * Only the responder takes a live QP to the error state without
	 * telling us: the peer sent a request it refused (an rkey or range
	 * outside its registration, an oversized message).
	 */
	else if (c.status && ep->qp_live && !READ_ONCE(ep->error))
		dmaplane_ep_peer_error(ep, "sent a request this side refused (access or length)");
	dmaplane_wr_retire(ep, wr, &c);
	if (recv && !c.status && ep->credits_on) {
		/* The peer used a receive: maybe a grant is due. */
		if (ep->credits.consumed++ == ep->credits.granted)
			dmaplane_ep_peer_error(ep, "sent a message without a credit");
		dmaplane_flow_kick(ep);
	}
	spin_unlock_bh(&ep->post_lock);
	wake_up_all(&ep->wq);
	/* The QP is in error: end the connection so the peer learns. */
	if (fatal)
		dmaplane_ep_break(ep);
}

/*
 * The rules of one operation that need no endpoint state: its fields, and
 * its local range against an MR of @mr_length bytes and @mr_access.
 */
VISIBLE_IF_KUNIT int dmaplane_op_check(const struct dmaplane_op *op,
				       u64 mr_length, u32 mr_access)
{
	bool remote = op->opcode == DMAPLANE_OP_WRITE ||
		      op->opcode == DMAPLANE_OP_WRITE_IMM ||
		      op->opcode == DMAPLANE_OP_READ;

	if (op->opcode > DMAPLANE_OP_READ ||
	    op->flags & ~DMAPLANE_OP_VALID_FLAGS || op->reserved)
		return -EINVAL;
	if (op->opcode == DMAPLANE_OP_NOOP)
		return op->mr || op->imm || op->offset || op->length ||
		       op->remote_offset || op->rkey ? -EINVAL : 0;
	if (op->opcode != DMAPLANE_OP_WRITE_IMM && op->imm)
		return -EINVAL;
	if (!remote && (op->rkey || op->remote_offset))
		return -EINVAL;
	if (!op->length) {
		/* Only a message without data: nothing local to name. */
		if (op->opcode == DMAPLANE_OP_WRITE ||
		    op->opcode == DMAPLANE_OP_READ || op->mr || op->offset)
			return -EINVAL;
		return 0;
	}
	if (op->length > DMAPLANE_OP_MAX_LENGTH)
		return -EMSGSIZE;
	if (op->offset > mr_length || op->length > mr_length - op->offset)
		return -ERANGE;
	if (remote && op->remote_offset > U64_MAX - op->length)
		return -ERANGE;
	if ((op->opcode == DMAPLANE_OP_RECV || op->opcode == DMAPLANE_OP_READ) &&
	    !(mr_access & DMAPLANE_MR_LOCAL_WRITE))
		return -EACCES;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_op_check);

/* Take a slot for @op, or -EAGAIN. post_lock held. */
static struct dmaplane_wr *dmaplane_ep_take_slot(struct dmaplane_ep *ep,
						 bool recv)
{
	struct list_head *free = recv ? &ep->recv_free : &ep->send_free;
	u32 *busy = recv ? &ep->recv_busy : &ep->send_busy;
	u32 depth = recv ? ep->params.recv_depth : ep->params.send_depth;
	struct dmaplane_wr *wr;

	if (*busy >= depth || list_empty(free))
		return ERR_PTR(-EAGAIN);
	wr = list_first_entry(free, struct dmaplane_wr, node);
	list_del(&wr->node);
	(*busy)++;
	return wr;
}

/* Undo dmaplane_ep_take_slot() for an operation that did not go out. */
static void dmaplane_ep_give_back_slot(struct dmaplane_ep *ep,
				       struct dmaplane_wr *wr)
{
	bool recv = dmaplane_op_is_recv(&wr->op);

	if (wr->mr)
		atomic_dec(&wr->mr->inflight);
	wr->mr = NULL;
	list_add(&wr->node, recv ? &ep->recv_free : &ep->send_free);
	if (recv)
		ep->recv_busy--;
	else
		ep->send_busy--;
}

static const enum ib_wr_opcode dmaplane_ib_opcode[] = {
	[DMAPLANE_OP_SEND] = IB_WR_SEND,
	[DMAPLANE_OP_WRITE] = IB_WR_RDMA_WRITE,
	[DMAPLANE_OP_WRITE_IMM] = IB_WR_RDMA_WRITE_WITH_IMM,
	[DMAPLANE_OP_READ] = IB_WR_RDMA_READ,
};

/* Build and post @wr's work request. post_lock held. */
int dmaplane_ep_post_wr(struct dmaplane_ep *ep, struct dmaplane_wr *wr)
{
	const struct dmaplane_op *op = &wr->op;
	struct ib_sge sge = {
		.addr = op->offset,	/* zero-based: offset in the MR */
		.length = op->length,
		.lkey = wr->mr ? wr->mr->lkey : 0,
	};
	struct ib_recv_wr rwr = {
		.wr_cqe = &wr->cqe,
		.sg_list = &sge,
		.num_sge = op->length ? 1 : 0,
	};
	struct ib_rdma_wr rdma = {
		.wr = {
			.wr_cqe = &wr->cqe,
			.sg_list = &sge,
			.num_sge = op->length ? 1 : 0,
			.opcode = dmaplane_ib_opcode[op->opcode],
			.send_flags = IB_SEND_SIGNALED,
		},
		.remote_addr = op->remote_offset,
		.rkey = op->rkey,
	};
	struct ib_qp *qp = ep->cm_id->qp;

	if (dmaplane_op_is_recv(op))
		return ib_post_recv(qp, &rwr, NULL);
	if (op->opcode == DMAPLANE_OP_WRITE_IMM)
		rdma.wr.ex.imm_data = cpu_to_be32(op->imm);
	return ib_post_send(qp, &rdma.wr, NULL);
}

/* Post one operation; @mr is its looked-up MR or NULL. */
static int dmaplane_ep_post_one(struct dmaplane_ep *ep, struct dmaplane_mr *mr,
				const struct dmaplane_op *op, bool nowait)
{
	bool recv = dmaplane_op_is_recv(op);
	struct dmaplane_wr *wr;
	int ret;

	spin_lock_bh(&ep->post_lock);
	if (op->opcode != DMAPLANE_OP_NOOP &&
	    (!ep->qp_live || READ_ONCE(ep->error))) {
		ret = READ_ONCE(ep->error) ?: -ENOTCONN;
		goto out;
	}
	/* The QP is live: teardown has not unmapped the MR (it stops it first). */
	if (mr)
		dmaplane_mr_sync(mr, op->offset, op->length, false);
	wr = dmaplane_ep_take_slot(ep, recv);
	if (IS_ERR(wr)) {
		ret = PTR_ERR(wr);
		goto out;
	}
	wr->op = *op;
	wr->submit_ns = ktime_get_ns();
	if (op->opcode == DMAPLANE_OP_NOOP) {
		dmaplane_wr_finish(ep, wr, 0, IB_WC_SUCCESS);
		ret = 0;
		goto out;
	}
	wr->mr = mr;
	if (mr)
		atomic_inc(&mr->inflight);
	ret = 0;
	if (!recv && ep->credits_on)
		ret = dmaplane_flow_admit(ep, wr, nowait);
	if (ret > 0) {
		trace_dmaplane_submit(ep->id, op->cookie, op->opcode,
				      op->length, true);
		ret = 0;	/* queued: it goes out with its credit */
		goto out;
	}
	if (!ret)
		ret = dmaplane_ep_post_wr(ep, wr);
	if (ret) {
		dmaplane_ep_give_back_slot(ep, wr);
		/* The provider's "queue full" is ours. */
		if (ret == -ENOMEM)
			ret = -EAGAIN;
		goto out;
	}
	trace_dmaplane_submit(ep->id, op->cookie, op->opcode, op->length,
			      false);
	if (recv && ep->credits_on)
		ep->credits.posted++;
out:
	spin_unlock_bh(&ep->post_lock);
	if (!ret)
		atomic64_inc(&dmaplane_stats.ops_posted);
	return ret;
}

/* Validate @op against this file's objects and post it. */
static int dmaplane_ep_submit(struct dmaplane_ctx *ctx, struct dmaplane_ep *ep,
			      const struct dmaplane_op *op, bool nowait)
{
	struct dmaplane_mr *mr = NULL;
	int ret;

	if (op->mr) {
		mr = dmaplane_mr_lookup(ctx, op->mr);
		if (!mr)
			return -ENOENT;
		if (mr->ep != ep) {
			ret = -EXDEV;
			goto out;
		}
		/* Its GPU memory was taken back (gpu.c). */
		if (READ_ONCE(mr->revoked)) {
			ret = -ENODEV;
			goto out;
		}
	}
	ret = dmaplane_op_check(op, mr ? mr->length : 0, mr ? mr->access : 0);
	if (!ret)
		ret = dmaplane_ep_post_one(ep, mr, op, nowait);
out:
	if (mr)
		dmaplane_mr_put(mr);
	return ret;
}

int dmaplane_ioc_post(struct dmaplane_ctx *ctx, void *arg,
		      struct dmaplane_commit *commit)
{
	struct dmaplane_post *req = arg;
	struct dmaplane_op __user *uops = u64_to_user_ptr(req->ops);
	struct dmaplane_ep *ep;
	int ret = 0;
	u32 i;

	if (req->flags & ~DMAPLANE_POST_VALID_FLAGS || req->reserved ||
	    !req->count || req->count > DMAPLANE_POST_MAX)
		return -EINVAL;
	ep = dmaplane_ep_lookup(ctx, req->endpoint);
	if (!ep)
		return -ENOENT;
	for (i = 0; i < req->count; i++) {
		struct dmaplane_op op;

		if (copy_from_user(&op, &uops[i], sizeof(op))) {
			ret = -EFAULT;
			break;
		}
		ret = dmaplane_ep_submit(ctx, ep, &op,
					 req->flags & DMAPLANE_POST_NOWAIT);
		if (ret)
			break;
	}
	/* One grant for the batch's receives, if one is due. */
	if (i && ep->credits_on) {
		spin_lock_bh(&ep->post_lock);
		dmaplane_flow_kick(ep);
		spin_unlock_bh(&ep->post_lock);
	}
	dmaplane_ep_put(ep);
	req->posted = i;
	req->error = ret;
	/* Some were posted: the caller must learn how many. */
	return i ? 0 : ret;
}

/*
 * Copy up to @max completions out, oldest first; each leaves the ring
 * (and frees its slot's busy count) only once it reached userspace.
 * reap_lock held.
 */
static int dmaplane_ep_copy_out(struct dmaplane_ep *ep,
				struct dmaplane_completion __user *uc, u32 max,
				u32 *count)
{
	struct dmaplane_completion batch[8];
	u32 n = dmaplane_ep_slots(ep), done = 0;

	while (done < max) {
		u32 i, want = min_t(u32, max - done, ARRAY_SIZE(batch));

		spin_lock_bh(&ep->post_lock);
		want = min(want, ep->ring_count);
		for (i = 0; i < want; i++)
			batch[i] = ep->ring[(ep->ring_head + i) % n];
		spin_unlock_bh(&ep->post_lock);
		if (!want)
			break;
		if (copy_to_user(uc + done, batch, want * sizeof(batch[0])))
			return done ? 0 : -EFAULT;
		spin_lock_bh(&ep->post_lock);
		for (i = 0; i < want; i++) {
			if (batch[i].opcode == DMAPLANE_OP_RECV)
				ep->recv_busy--;
			else
				ep->send_busy--;
		}
		ep->ring_head = (ep->ring_head + want) % n;
		ep->ring_count -= want;
		spin_unlock_bh(&ep->post_lock);
		done += want;
		*count = done;
	}
	return 0;
}

/*
 * @min completions are ready, or the endpoint failed and everything it
 * posted has completed (a failed endpoint's operations all come back,
 * flushed by its teardown).
 */
static bool dmaplane_ep_reap_ready(struct dmaplane_ep *ep, u32 min)
{
	u32 ready = READ_ONCE(ep->ring_count);

	if (ready >= min)
		return true;
	return READ_ONCE(ep->error) &&
	       ready == READ_ONCE(ep->send_busy) + READ_ONCE(ep->recv_busy);
}

int dmaplane_ioc_reap(struct dmaplane_ctx *ctx, void *arg,
		      struct dmaplane_commit *commit)
{
	struct dmaplane_reap *req = arg;
	struct dmaplane_ep *ep;
	long left = 1;
	int ret;

	if (req->reserved || !req->max || req->max > DMAPLANE_POST_MAX ||
	    req->min > req->max || req->timeout_ms > DMAPLANE_EP_TIMEOUT_MAX_MS)
		return -EINVAL;
	ep = dmaplane_ep_lookup(ctx, req->endpoint);
	if (!ep)
		return -ENOENT;
	if (req->min)
		left = wait_event_interruptible_timeout(ep->wq,
							dmaplane_ep_reap_ready(ep, req->min),
							msecs_to_jiffies(req->timeout_ms));
	req->count = 0;
	mutex_lock(&ep->reap_lock);
	ret = dmaplane_ep_copy_out(ep, u64_to_user_ptr(req->entries),
				   req->max, &req->count);
	mutex_unlock(&ep->reap_lock);
	if (!ret && !req->count && req->min) {
		if (left < 0)
			ret = -EINTR;
		else
			ret = READ_ONCE(ep->error) ?: -ETIMEDOUT;
	}
	dmaplane_ep_put(ep);
	return ret;
}

int dmaplane_ioc_ep_eventfd(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit)
{
	struct dmaplane_ep_eventfd *req = arg;
	struct eventfd_ctx *efd = NULL, *old;
	struct dmaplane_ep *ep;

	if (req->fd < -1)
		return -EBADF;
	ep = dmaplane_ep_lookup(ctx, req->endpoint);
	if (!ep)
		return -ENOENT;
	if (req->fd >= 0) {
		efd = eventfd_ctx_fdget(req->fd);
		if (IS_ERR(efd)) {
			dmaplane_ep_put(ep);
			return PTR_ERR(efd);
		}
	}
	spin_lock_bh(&ep->post_lock);
	old = ep->eventfd;
	ep->eventfd = efd;
	spin_unlock_bh(&ep->post_lock);
	if (old)
		eventfd_ctx_put(old);
	dmaplane_ep_put(ep);
	return 0;
}
