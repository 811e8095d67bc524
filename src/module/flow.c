// SPDX-License-Identifier: GPL-2.0
/*
 * Flow control: receiver-granted credits.
 *
 * Every SEND and WRITE_IMM uses one of the peer's posted receives. The
 * receiving side grants its peer one credit per RECV it posted (each has
 * its completion-ring entry reserved with its slot, so CQ room comes with
 * it), never more than its window at once; the sending side takes one
 * credit per such operation and, without one, queues the operation (and
 * every send-side operation after it, so the order of the send queue is
 * kept) or refuses it with -EAGAIN. So no message ever finds an empty
 * receive queue: no receiver-not-ready retries, nothing dropped.
 *
 * Grants are cumulative counts carried in the immediate of zero-length
 * SEND_WITH_IMM messages on a second RC QP of the connection (the control
 * QP), so they never use a receive the user posted and never mix with
 * user data. Its QP number and first PSN travel in the CM handshake; it
 * is connected by hand with the attributes the CM computed for the data
 * QP (rdma_init_qp_attr), so it follows the same path. One grant is in
 * flight at a time and carries the latest count, so grants coalesce; the
 * peer keeps DMAPLANE_CTRL_RECVS zero-length receives posted and posts
 * each again as it completes. The accepting side sends no grant before
 * the connecting side's first control message shows its control QP
 * receives (the connecting side sends one as soon as it is ready).
 *
 * Replenishing: a grant goes out at once when the peer has @low credits
 * or fewer left (it is about to stall), otherwise only once @high
 * receives wait to be granted, so a steady stream costs one control
 * message per @high messages.
 *
 * A stall is one event: from the first operation that found no credit to
 * the grant that brought credits back; its duration is summed.
 */
#include <linux/random.h>
#include <linux/ktime.h>
#include <rdma/rdma_cm.h>
#include <kunit/visibility.h>

#include "rdma.h"
#include "trace.h"

/* Credits the peer granted that are not used yet. */
u32 dmaplane_credit_avail(const struct dmaplane_credits *c)
{
	return c->peer_granted - c->used;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_credit_avail);

bool dmaplane_credit_take(struct dmaplane_credits *c)
{
	if (!dmaplane_credit_avail(c))
		return false;
	c->used++;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_credit_take);

/*
 * The peer granted @cumulative credits in all. Grants arrive in order and
 * only grow, and the peer never has more than its window out: anything
 * else is a broken or hostile peer (-EPROTO).
 */
int dmaplane_credit_receive(struct dmaplane_credits *c, u32 cumulative)
{
	u32 more = cumulative - c->peer_granted;

	if ((s32)more < 0 ||
	    (u64)dmaplane_credit_avail(c) + more > c->peer_window)
		return -EPROTO;
	c->peer_granted = cumulative;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_credit_receive);

/*
 * The cumulative grant to send now: @granted when none is due. The peer
 * may hold at most @window of the receives posted and not consumed.
 */
u32 dmaplane_credit_due(const struct dmaplane_credits *c)
{
	u32 waiting = c->posted - c->consumed;
	u32 target = c->consumed + min(waiting, c->window);
	u32 left = c->granted - c->consumed;	/* the peer's credits */
	u32 more = target - c->granted;

	if ((s32)more <= 0)
		return c->granted;
	if (left <= c->low || more >= c->high)
		return target;
	return c->granted;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_credit_due);

/* ENDPOINT_CREATE's credit fields: checked, zeros turned into defaults. */
int dmaplane_flow_check_params(struct dmaplane_ep_create *p)
{
	if (p->reserved2 || p->credit_window > p->recv_depth)
		return -EINVAL;
	if (!p->credit_window)
		p->credit_window = p->recv_depth;
	if (p->credit_low >= p->credit_window ||
	    p->credit_high > p->credit_window)
		return -EINVAL;
	if (!p->credit_low)
		p->credit_low = p->credit_window / 4;
	if (!p->credit_high)
		p->credit_high = max(1U, p->credit_window / 2);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_flow_check_params);

static void dmaplane_stall_begin(struct dmaplane_ep *ep)
{
	if (ep->stall_start_ns)
		return;
	ep->stall_start_ns = ktime_get_ns();
	ep->stalls++;
	trace_dmaplane_credit_stall(ep->id, true, 0, ep->queued);
}

/* Credits are back: the stall, if any, is over. Returns true if one was. */
static bool dmaplane_stall_end(struct dmaplane_ep *ep)
{
	u64 ns;

	if (!ep->stall_start_ns || !dmaplane_credit_avail(&ep->credits))
		return false;
	ns = ktime_get_ns() - ep->stall_start_ns;
	ep->stall_ns += ns;
	ep->stall_start_ns = 0;
	trace_dmaplane_credit_stall(ep->id, false, ns, ep->queued);
	return true;
}

static bool dmaplane_op_needs_credit(const struct dmaplane_op *op)
{
	return op->opcode == DMAPLANE_OP_SEND ||
	       op->opcode == DMAPLANE_OP_WRITE_IMM;
}

/*
 * May send-side @wr go out now? 0: yes (its credit is taken), 1: it was
 * queued behind earlier ones or for a credit, -EAGAIN: it would have to
 * wait and the caller said not to. post_lock held.
 */
int dmaplane_flow_admit(struct dmaplane_ep *ep, struct dmaplane_wr *wr,
			bool nowait)
{
	if (list_empty(&ep->credit_queue) &&
	    (!dmaplane_op_needs_credit(&wr->op) ||
	     dmaplane_credit_take(&ep->credits)))
		return 0;
	dmaplane_stall_begin(ep);
	if (nowait)
		return -EAGAIN;
	list_add_tail(&wr->node, &ep->credit_queue);
	ep->queued++;
	return 1;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_flow_admit);

/* Post what waited and has its credit now, in order. post_lock held. */
static void dmaplane_flow_drain_queue(struct dmaplane_ep *ep)
{
	struct dmaplane_wr *wr, *next;

	list_for_each_entry_safe(wr, next, &ep->credit_queue, node) {
		if (!ep->qp_live)
			return;
		if (dmaplane_op_needs_credit(&wr->op) &&
		    !dmaplane_credit_take(&ep->credits)) {
			dmaplane_stall_begin(ep);
			return;
		}
		list_del(&wr->node);
		ep->queued--;
		if (dmaplane_ep_post_wr(ep, wr)) {
			/* The QP is broken: this one fails, the rest flush. */
			dmaplane_ep_set_error(ep, -EIO);
			dmaplane_wr_finish(ep, wr, -EIO, IB_WC_GENERAL_ERR);
			dmaplane_ep_break(ep);
			return;
		}
	}
}

/*
 * Every operation still waiting completes, flushed: the connection is
 * over. post_lock held.
 */
void dmaplane_flow_flush(struct dmaplane_ep *ep)
{
	struct dmaplane_wr *wr, *next;

	list_for_each_entry_safe(wr, next, &ep->credit_queue, node) {
		list_del(&wr->node);
		ep->queued--;
		dmaplane_wr_finish(ep, wr, -ECANCELED, IB_WC_WR_FLUSH_ERR);
	}
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_flow_flush);

static void dmaplane_ctrl_failed(struct dmaplane_ep *ep, int error)
{
	dmaplane_ep_set_error(ep, error);
	dmaplane_ep_break(ep);
}

/* Grant @cumulative credits in all. post_lock held, no grant in flight. */
static void dmaplane_ctrl_send(struct dmaplane_ep *ep, u32 cumulative)
{
	struct ib_send_wr wr = {
		.wr_cqe = &ep->ctrl_send_cqe,
		.opcode = IB_WR_SEND_WITH_IMM,
		.send_flags = IB_SEND_SIGNALED,
		.ex.imm_data = cpu_to_be32(cumulative),
	};

	if (ib_post_send(ep->ctrl_qp, &wr, NULL)) {
		dmaplane_ctrl_failed(ep, -EIO);
		return;
	}
	ep->ctrl_busy = true;
	ep->credits.granted = cumulative;
	ep->grants_sent++;
	trace_dmaplane_credit_grant(ep->id, true, cumulative,
				    cumulative - ep->credits.consumed);
}

/* Send the grant that is due, if one is and none is in flight. post_lock held. */
void dmaplane_flow_kick(struct dmaplane_ep *ep)
{
	u32 due;

	if (!ep->credits_on || !ep->ctrl_ready || ep->ctrl_busy)
		return;
	due = dmaplane_credit_due(&ep->credits);
	if (due != ep->credits.granted)
		dmaplane_ctrl_send(ep, due);
}

static void dmaplane_ctrl_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_ep *ep = container_of(wc->wr_cqe, struct dmaplane_ep,
					      ctrl_send_cqe);

	spin_lock_bh(&ep->post_lock);
	ep->ctrl_busy = false;
	if (wc->status == IB_WC_SUCCESS)
		dmaplane_flow_kick(ep);
	else if (wc->status != IB_WC_WR_FLUSH_ERR)
		dmaplane_ctrl_failed(ep, dmaplane_wc_errno(wc->status));
	spin_unlock_bh(&ep->post_lock);
}

static int dmaplane_ctrl_post_recv(struct dmaplane_ep *ep)
{
	struct ib_recv_wr wr = { .wr_cqe = &ep->ctrl_recv_cqe };

	return ib_post_recv(ep->ctrl_qp, &wr, NULL);
}

/* A grant from the peer: take it, post what waited for it. */
static void dmaplane_ctrl_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_ep *ep = container_of(wc->wr_cqe, struct dmaplane_ep,
					      ctrl_recv_cqe);
	bool unstalled = false;
	int ret = 0;

	spin_lock_bh(&ep->post_lock);
	/*
	 * Stopped: flushes are ours, and a receive posted now could
	 * complete after the drain. Before that, only the peer fails a
	 * zero-length receive (a message with data, any other request).
	 */
	if (!ep->ctrl_used)
		goto out;
	if (wc->status != IB_WC_SUCCESS) {
		dmaplane_ep_peer_error(ep, "sent a control message this side refused");
		ret = -EPROTO;
		goto out;
	}
	if (!(wc->wc_flags & IB_WC_WITH_IMM) ||
	    dmaplane_credit_receive(&ep->credits,
				    be32_to_cpu(wc->ex.imm_data))) {
		dmaplane_ep_peer_error(ep, "sent an invalid credit grant");
		ret = -EPROTO;
		goto out;
	}
	ret = dmaplane_ctrl_post_recv(ep);
	if (ret) {
		dmaplane_ctrl_failed(ep, ret);
		goto out;
	}
	ep->grants_rcvd++;
	trace_dmaplane_credit_grant(ep->id, false, ep->credits.peer_granted,
				    dmaplane_credit_avail(&ep->credits));
	/* The accepting side's grants wait for this first sign of life. */
	ep->ctrl_ready = true;
	unstalled = dmaplane_stall_end(ep);
	dmaplane_flow_drain_queue(ep);
	dmaplane_flow_kick(ep);
out:
	spin_unlock_bh(&ep->post_lock);
	/* Whoever got -EAGAIN may post again. */
	if (unstalled || ret)
		dmaplane_ep_signal(ep);
}

/*
 * The control QP, in INIT, on the data QP's PD and CQ. op_lock held, the
 * cm id resolved (connecting) or requested (accepting).
 */
int dmaplane_flow_create(struct dmaplane_ep *ep)
{
	struct rdma_cm_id *id = ep->cm_id;
	struct ib_qp_init_attr init = {
		.send_cq = ep->cq,
		.recv_cq = ep->cq,
		.cap = {
			.max_send_wr = 2,	/* one grant, one drain */
			.max_recv_wr = DMAPLANE_CTRL_RECVS + 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.sq_sig_type = IB_SIGNAL_REQ_WR,
		.qp_type = IB_QPT_RC,
	};
	struct ib_qp_attr attr = { .qp_state = IB_QPS_INIT };
	int mask, ret;

	/* iWARP connects QPs in the CM itself: no second QP by hand. */
	if (!rdma_cap_ib_cm(id->device, id->port_num))
		return -EOPNOTSUPP;
	ep->ctrl_send_cqe.done = dmaplane_ctrl_send_done;
	ep->ctrl_recv_cqe.done = dmaplane_ctrl_recv_done;
	ep->credits.window = ep->params.credit_window;
	ep->credits.low = ep->params.credit_low;
	ep->credits.high = ep->params.credit_high;
	ep->ctrl_psn = get_random_u32() & 0xffffff;
	ep->ctrl_qp = ib_create_qp(ep->pd, &init);
	if (IS_ERR(ep->ctrl_qp)) {
		ret = PTR_ERR(ep->ctrl_qp);
		ep->ctrl_qp = NULL;
		return ret;
	}
	ret = rdma_init_qp_attr(id, &attr, &mask);
	if (!ret)
		ret = ib_modify_qp(ep->ctrl_qp, &attr, mask);
	return ret;
}

/*
 * Connect the control QP to the peer's (RTR, receives posted, RTS). The
 * connecting side, established, then says so with its first grant; the
 * accepting side does this before it accepts. op_lock held.
 */
int dmaplane_flow_connect(struct dmaplane_ep *ep)
{
	struct ib_qp_attr attr = { .qp_state = IB_QPS_RTR };
	int i, mask, ret;

	ret = rdma_init_qp_attr(ep->cm_id, &attr, &mask);
	if (ret)
		return ret;
	attr.dest_qp_num = ep->peer_ctrl_qpn;
	attr.rq_psn = ep->peer_ctrl_psn;
	ret = ib_modify_qp(ep->ctrl_qp, &attr, mask);
	if (ret)
		return ret;
	spin_lock_bh(&ep->post_lock);
	ep->ctrl_used = true;
	for (i = 0; i < DMAPLANE_CTRL_RECVS && !ret; i++)
		ret = dmaplane_ctrl_post_recv(ep);
	spin_unlock_bh(&ep->post_lock);
	if (ret)
		return ret;
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IB_QPS_RTS;
	ret = rdma_init_qp_attr(ep->cm_id, &attr, &mask);
	if (ret)
		return ret;
	attr.sq_psn = ep->ctrl_psn;
	attr.rnr_retry = 7;	/* a late re-post only delays a grant */
	ret = ib_modify_qp(ep->ctrl_qp, &attr, mask | IB_QP_RNR_RETRY);
	if (ret || !ep->active)
		return ret;
	spin_lock_bh(&ep->post_lock);
	ep->ctrl_ready = true;
	/* A first grant (of nothing yet): the acceptor may grant now. */
	dmaplane_ctrl_send(ep, ep->credits.granted);
	spin_unlock_bh(&ep->post_lock);
	return READ_ONCE(ep->error);
}

/*
 * Stop granting and drain the control QP, then complete what still
 * waited for a credit. The data QP is drained already. op_lock held.
 */
void dmaplane_flow_quiesce(struct dmaplane_ep *ep)
{
	bool drain;

	spin_lock_bh(&ep->post_lock);
	ep->ctrl_ready = false;
	drain = ep->ctrl_used;
	ep->ctrl_used = false;
	spin_unlock_bh(&ep->post_lock);
	if (drain)
		ib_drain_qp(ep->ctrl_qp);
	spin_lock_bh(&ep->post_lock);
	dmaplane_flow_flush(ep);
	spin_unlock_bh(&ep->post_lock);
}

/* After dmaplane_flow_quiesce(); op_lock held. */
void dmaplane_flow_destroy(struct dmaplane_ep *ep)
{
	if (ep->ctrl_qp)
		ib_destroy_qp(ep->ctrl_qp);
	ep->ctrl_qp = NULL;
}
