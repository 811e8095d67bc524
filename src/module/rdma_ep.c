// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA endpoints: one RC connection each, made with the kernel's rdma_cm
 * by address (resolve address and route, connect; or bind, listen,
 * accept), in the style of nvme-rdma and rtrs. Each endpoint owns its
 * rdma_cm id and, once a device is known, its PD, CQ and QP.
 *
 * The CM event handler only records what happened and wakes waiters; it
 * never tears anything down itself and never lets the CM destroy an id.
 * Everything that sleeps on the CM (the ioctls) and every teardown run
 * under the endpoint's op_lock, which the handler never takes. When a
 * device goes away (DEVICE_REMOVAL), the endpoint is marked -ENODEV,
 * waiters wake, and a work item tears it down so the CM can finish
 * removing the device.
 *
 * Teardown order: stop posting, disconnect, drain the QP (every operation
 * completes, flushed), deregister the endpoint's MRs, then free the QP,
 * CQ, PD and the cm id.
 *
 * Handshake: both sides put a struct dmaplane_cm_hello in the CM's
 * private data (the connect request, the accept). A request without a
 * valid one is refused, so only dmaplane endpoints connect; each side
 * learns the other's queue depths, credit window and control QP (flow.c).
 * The accepting side follows the connecting side's choice of flow
 * control. No address is in it.
 */
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <rdma/rdma_cm.h>
#include <kunit/visibility.h>

#include "rdma.h"
#include "trace.h"

#define DMAPLANE_CM_MAGIC	0x44504c4e	/* "DPLN" */
#define DMAPLANE_CM_VERSION	2
#define DMAPLANE_CM_CREDITS	BIT(0)	/* hello flags: flow control on */

/* The CM private data of a dmaplane connection, big-endian on the wire. */
struct dmaplane_cm_hello {
	__be32 magic;
	u8 version;
	u8 flags;
	u8 reserved[2];
	__be32 send_depth;
	__be32 recv_depth;
	__be32 credit_window;
	__be32 ctrl_qpn;	/* 0 without flow control */
	__be32 ctrl_psn;
};

/* Every endpoint of the module, for debugfs. */
static LIST_HEAD(dmaplane_eps);
static DEFINE_SPINLOCK(dmaplane_eps_lock);
static atomic64_t dmaplane_ep_ids;

static struct workqueue_struct *dmaplane_ep_wq;

static void dmaplane_ep_release(struct dmaplane_obj *obj);

/* MRs registered on it keep an endpoint's handle: deregister them first. */
static bool dmaplane_ep_busy(struct dmaplane_obj *obj)
{
	return atomic_read(&container_of(obj, struct dmaplane_ep,
					 obj)->mr_handles) > 0;
}

static const struct dmaplane_obj_ops dmaplane_ep_ops = {
	.release = dmaplane_ep_release,
	.busy = dmaplane_ep_busy,
};

void dmaplane_ep_put(struct dmaplane_ep *ep)
{
	dmaplane_obj_put(&ep->obj);
}

/*
 * Record @error unless one is recorded already (the first error wins):
 * true if @error is the one recorded.
 */
bool dmaplane_ep_set_error(struct dmaplane_ep *ep, int error)
{
	bool first;

	spin_lock(&ep->lock);
	first = !ep->error;
	if (first) {
		ep->error = error;
		ep->state = DMAPLANE_EP_ERROR;
	}
	spin_unlock(&ep->lock);
	return first;
}

/* Mark the endpoint failed with @error and wake everyone watching it. */
void dmaplane_ep_fail(struct dmaplane_ep *ep, int error)
{
	dmaplane_ep_set_error(ep, error);
	dmaplane_ep_signal(ep);
}

/*
 * The connection is over (the peer left, or an operation failed and took
 * the QP down): disconnect and tear down off the caller's context, so
 * everything in flight completes flushed and the peer hears about it.
 */
void dmaplane_ep_break(struct dmaplane_ep *ep)
{
	/* No reference left: its release is tearing it down already. */
	if (!kref_get_unless_zero(&ep->obj.ref))
		return;
	if (!queue_work(dmaplane_ep_wq, &ep->remove_work))
		dmaplane_ep_put(ep);
}

/*
 * The connected peer broke the protocol (@why): the connection ends with
 * -EPROTO, counted and logged, unless it had failed already. One line per
 * connection at most, and connections are the application's to accept:
 * not rate-limited. From completion context, post_lock held: the caller
 * wakes the waiters.
 */
void dmaplane_ep_peer_error(struct dmaplane_ep *ep, const char *why)
{
	if (dmaplane_ep_set_error(ep, -EPROTO)) {
		atomic64_inc(&dmaplane_stats.peer_errors);
		pr_notice("dmaplane: endpoint %llu: the peer %s: connection closed\n",
			  ep->id, why);
	}
	dmaplane_ep_break(ep);
}

/*
 * Stop posting and complete everything posted: the QP goes to the error
 * state and every outstanding work request comes back flushed. op_lock
 * held; safe to call again.
 */
void dmaplane_ep_quiesce(struct dmaplane_ep *ep)
{
	bool drain;

	spin_lock_bh(&ep->post_lock);
	ep->qp_live = false;
	drain = ep->qp_used;
	ep->qp_used = false;
	spin_unlock_bh(&ep->post_lock);
	if (drain && ep->cm_id && ep->cm_id->qp)
		ib_drain_qp(ep->cm_id->qp);
	dmaplane_flow_quiesce(ep);
}

/* The connection is up: operations may be posted. */
static void dmaplane_ep_go_live(struct dmaplane_ep *ep)
{
	spin_lock_bh(&ep->post_lock);
	ep->qp_live = true;
	ep->qp_used = true;
	spin_unlock_bh(&ep->post_lock);
}

static void dmaplane_ep_local_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_ep *ep = container_of(wc->wr_cqe, struct dmaplane_ep,
					      local_cqe);

	ep->local_status = wc->status;
	/* A failed registration or invalidation took the QP down with it. */
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR) {
		dmaplane_ep_fail(ep, -EIO);
		dmaplane_ep_break(ep);
	}
	complete(&ep->local_done);
}

/*
 * Post a REG_MR or LOCAL_INV and wait for it. A QP that does not complete
 * it in the endpoint's timeout is failed and drained, which completes it.
 * op_lock held.
 */
int dmaplane_ep_post_local(struct dmaplane_ep *ep, struct ib_send_wr *wr)
{
	unsigned long left;
	int ret = -ENOTCONN;

	wr->wr_cqe = &ep->local_cqe;
	wr->send_flags = IB_SEND_SIGNALED;
	wr->next = NULL;
	reinit_completion(&ep->local_done);
	spin_lock_bh(&ep->post_lock);
	if (ep->qp_live)
		ret = ib_post_send(ep->cm_id->qp, wr, NULL);
	spin_unlock_bh(&ep->post_lock);
	if (ret)
		return READ_ONCE(ep->error) ?: ret;
	left = wait_for_completion_timeout(&ep->local_done,
					   msecs_to_jiffies(ep->params.timeout_ms));
	if (!left) {
		dmaplane_ep_fail(ep, -ETIMEDOUT);
		dmaplane_ep_quiesce(ep);
		wait_for_completion(&ep->local_done);
		return -ETIMEDOUT;
	}
	if (ep->local_status != IB_WC_SUCCESS)
		return READ_ONCE(ep->error) ?: -EIO;
	return 0;
}

/* Free the QP, CQ, PD and the cm id, in the order above. op_lock held. */
static void dmaplane_ep_teardown(struct dmaplane_ep *ep)
{
	struct rdma_cm_id *id = ep->cm_id;

	if (!id)
		return;
	spin_lock_bh(&ep->post_lock);
	trace_dmaplane_teardown(ep->id, READ_ONCE(ep->error),
				ep->send_busy + ep->recv_busy, ep->queued);
	/* Flushes from here on are ours, not the peer's (rdma_verbs.c). */
	ep->qp_live = false;
	spin_unlock_bh(&ep->post_lock);
	if (id->qp)
		rdma_disconnect(id);
	dmaplane_ep_quiesce(ep);
	dmaplane_mr_drop_all(ep);
	spin_lock(&ep->lock);
	ep->cm_id = NULL;
	spin_unlock(&ep->lock);
	dmaplane_flow_destroy(ep);
	if (id->qp)
		rdma_destroy_qp(id);
	if (ep->cq)
		ib_free_cq(ep->cq);
	if (ep->pd)
		ib_dealloc_pd(ep->pd);
	ep->cq = NULL;
	ep->pd = NULL;
	rdma_destroy_id(id);
}

static void dmaplane_ep_remove_work(struct work_struct *work)
{
	struct dmaplane_ep *ep = container_of(work, struct dmaplane_ep,
					      remove_work);

	mutex_lock(&ep->op_lock);
	dmaplane_ep_teardown(ep);
	mutex_unlock(&ep->op_lock);
	dmaplane_ep_put(ep);
}

static int dmaplane_ep_handler(struct rdma_cm_id *id,
			       struct rdma_cm_event *ev);

static struct dmaplane_ep *dmaplane_ep_alloc(const struct dmaplane_ep_create *p)
{
	struct dmaplane_ep *ep = kzalloc(sizeof(*ep), GFP_KERNEL_ACCOUNT);

	if (!ep)
		return NULL;
	dmaplane_obj_init(&ep->obj, DMAPLANE_OBJ_ENDPOINT, &dmaplane_ep_ops);
	mutex_init(&ep->op_lock);
	spin_lock_init(&ep->lock);
	init_waitqueue_head(&ep->wq);
	INIT_LIST_HEAD(&ep->pending);
	INIT_LIST_HEAD(&ep->pending_node);
	INIT_WORK(&ep->remove_work, dmaplane_ep_remove_work);
	INIT_LIST_HEAD(&ep->mrs);
	init_completion(&ep->local_done);
	ep->local_cqe.done = dmaplane_ep_local_done;
	ep->params = *p;
	ep->credits_on = !(p->flags & DMAPLANE_EP_NO_CREDITS);
	if (dmaplane_ep_verbs_init(ep)) {
		kfree(ep);
		return NULL;
	}
	ep->id = atomic64_inc_return(&dmaplane_ep_ids);
	spin_lock(&dmaplane_eps_lock);
	list_add_tail(&ep->all_node, &dmaplane_eps);
	spin_unlock(&dmaplane_eps_lock);
	atomic_inc(&dmaplane_stats.endpoints);
	return ep;
}

void dmaplane_eps_walk(void (*fn)(struct dmaplane_ep *ep, void *data),
		       void *data)
{
	struct dmaplane_ep *ep;

	spin_lock(&dmaplane_eps_lock);
	list_for_each_entry(ep, &dmaplane_eps, all_node)
		fn(ep, data);
	spin_unlock(&dmaplane_eps_lock);
}

/* What a peer's hello says. */
struct dmaplane_peer {
	bool credits;
	u32 send_depth;
	u32 recv_depth;
	u32 credit_window;
	u32 ctrl_qpn;
	u32 ctrl_psn;
};

/*
 * A handshake that is not a dmaplane one, from the peer of @id: counted
 * and logged; the CM refuses the connection.
 */
static int dmaplane_handshake_refused(struct rdma_cm_id *id, const char *why)
{
	atomic64_inc(&dmaplane_stats.handshakes_refused);
	pr_notice_ratelimited("dmaplane: refused a connection with %pISpc: %s\n",
			      &id->route.addr.dst_addr, why);
	return -EPROTO;
}

/* The hello in @conn from @id's peer, or -EPROTO if it is not one. */
static int dmaplane_cm_hello_parse(struct rdma_cm_id *id,
				   const struct rdma_conn_param *conn,
				   struct dmaplane_peer *peer)
{
	const struct dmaplane_cm_hello *h = conn->private_data;

	if (!h || conn->private_data_len < sizeof(*h) ||
	    be32_to_cpu(h->magic) != DMAPLANE_CM_MAGIC)
		return dmaplane_handshake_refused(id, "no dmaplane hello");
	if (h->version != DMAPLANE_CM_VERSION)
		return dmaplane_handshake_refused(id, "another hello version");
	peer->credits = h->flags & DMAPLANE_CM_CREDITS;
	peer->send_depth = be32_to_cpu(h->send_depth);
	peer->recv_depth = be32_to_cpu(h->recv_depth);
	peer->credit_window = be32_to_cpu(h->credit_window);
	peer->ctrl_qpn = be32_to_cpu(h->ctrl_qpn);
	peer->ctrl_psn = be32_to_cpu(h->ctrl_psn);
	/* QP numbers and PSNs are 24 bits; QP 0 and 1 are the device's own. */
	if (peer->credits &&
	    (peer->ctrl_qpn < 2 || peer->ctrl_qpn > 0xffffff ||
	     peer->ctrl_psn > 0xffffff || !peer->credit_window ||
	     peer->credit_window > DMAPLANE_EP_DEPTH_MAX))
		return dmaplane_handshake_refused(id, "a bad control QP or credit window");
	return 0;
}

static void dmaplane_ep_set_peer(struct dmaplane_ep *ep,
				 const struct dmaplane_peer *peer)
{
	ep->peer_send_depth = peer->send_depth;
	ep->peer_recv_depth = peer->recv_depth;
	ep->credits.peer_window = peer->credit_window;
	ep->peer_ctrl_qpn = peer->ctrl_qpn;
	ep->peer_ctrl_psn = peer->ctrl_psn;
}

/* The acceptor's hello, on the connecting side: it must agree on credits. */
static int dmaplane_ep_take_accept(struct dmaplane_ep *ep,
				   struct rdma_cm_id *id,
				   const struct rdma_conn_param *conn)
{
	struct dmaplane_peer peer;
	int ret = dmaplane_cm_hello_parse(id, conn, &peer);

	if (ret)
		return ret;
	if (peer.credits != ep->credits_on)
		return dmaplane_handshake_refused(id,
						  "the accept disagrees on credits");
	dmaplane_ep_set_peer(ep, &peer);
	return 0;
}

/*
 * A listener got a request: a new endpoint waits for ENDPOINT_ACCEPT.
 * Any error makes the CM reject the request and destroy the id. Nothing
 * is released here: releasing an endpoint takes its op_lock, which must
 * never nest inside the CM's handler lock.
 */
static int dmaplane_ep_request(struct dmaplane_ep *listener,
			       struct rdma_cm_id *id,
			       const struct rdma_conn_param *conn)
{
	struct dmaplane_peer peer;
	struct dmaplane_ep *child;
	int ret;

	ret = dmaplane_cm_hello_parse(id, conn, &peer);
	if (ret)
		return ret;
	child = dmaplane_ep_alloc(&listener->params);
	if (!child)
		return -ENOMEM;
	/* It follows the connecting side's choice. */
	child->credits_on = peer.credits;
	dmaplane_ep_set_peer(child, &peer);
	child->cm_id = id;
	child->state = DMAPLANE_EP_CONNECTING;
	id->context = child;
	spin_lock(&listener->lock);
	list_add_tail(&child->pending_node, &listener->pending);
	spin_unlock(&listener->lock);
	wake_up_all(&listener->wq);
	return 0;
}

static int dmaplane_ep_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct dmaplane_ep *ep = id->context;

	if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST)
		return dmaplane_ep_request(ep, id, &ev->param.conn);

	switch (ev->event) {
	case RDMA_CM_EVENT_ESTABLISHED:
		/* The accepting side's hello comes with its accept. */
		if (ep->active &&
		    dmaplane_ep_take_accept(ep, id, &ev->param.conn)) {
			/* Not established for the caller: no event recorded. */
			dmaplane_ep_fail(ep, -EPROTO);
			return 0;
		}
		spin_lock(&ep->lock);
		if (!ep->error)
			ep->state = DMAPLANE_EP_CONNECTED;
		spin_unlock(&ep->lock);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		dmaplane_ep_fail(ep, ev->status == -ETIMEDOUT ? -ETIMEDOUT :
				 -EHOSTUNREACH);
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		dmaplane_ep_fail(ep, -ENETUNREACH);
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		dmaplane_ep_fail(ep, -ECONNABORTED);
		break;
	case RDMA_CM_EVENT_REJECTED:
		dmaplane_ep_fail(ep, -ECONNREFUSED);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		spin_lock(&ep->lock);
		if (!ep->error) {
			ep->error = -ECONNRESET;
			ep->state = DMAPLANE_EP_DISCONNECTED;
		}
		spin_unlock(&ep->lock);
		dmaplane_ep_break(ep);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/* Stronger than whatever ended it before: the device is gone. */
		spin_lock(&ep->lock);
		ep->error = -ENODEV;
		ep->state = DMAPLANE_EP_ERROR;
		spin_unlock(&ep->lock);
		/* The CM waits for this id to go: tear down off this thread. */
		dmaplane_ep_break(ep);
		break;
	default:
		break;
	}
	spin_lock(&ep->lock);
	ep->events |= BIT(ev->event);
	spin_unlock(&ep->lock);
	dmaplane_ep_signal(ep);
	return 0;
}

/* Wait for CM event @event, the endpoint's failure, a signal or @ms. */
static int dmaplane_ep_wait(struct dmaplane_ep *ep, u32 event, u32 ms)
{
	long left;

	left = wait_event_interruptible_timeout(ep->wq,
						READ_ONCE(ep->events) & BIT(event) ||
						READ_ONCE(ep->error),
						msecs_to_jiffies(ms));
	/*
	 * It happened: a failure after it (a peer that connects and at once
	 * disconnects) shows on the endpoint, not as this wait's error.
	 */
	if (READ_ONCE(ep->events) & BIT(event))
		return 0;
	if (left < 0) {
		dmaplane_ep_fail(ep, -EINTR);
		return -EINTR;
	}
	if (READ_ONCE(ep->error))
		return READ_ONCE(ep->error);
	if (!left) {
		dmaplane_ep_fail(ep, -ETIMEDOUT);
		return -ETIMEDOUT;
	}
	return 0;
}

/*
 * PD, CQ, RC QP and, with flow control, the control QP on the device the
 * cm id resolved to. op_lock held.
 */
static int dmaplane_ep_create_qp(struct dmaplane_ep *ep)
{
	struct rdma_cm_id *id = ep->cm_id;
	struct ib_qp_init_attr attr = {
		.cap = {
			.max_send_wr = ep->params.send_depth +
				       DMAPLANE_EP_SEND_EXTRA,
			.max_recv_wr = ep->params.recv_depth +
				       DMAPLANE_EP_RECV_EXTRA,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.sq_sig_type = IB_SIGNAL_REQ_WR,
		.qp_type = IB_QPT_RC,
	};
	u32 max_wr = id->device->attrs.max_qp_wr;
	u32 cqe = attr.cap.max_send_wr + attr.cap.max_recv_wr;
	int ret;

	if (attr.cap.max_send_wr > max_wr || attr.cap.max_recv_wr > max_wr)
		return -EINVAL;
	if (ep->credits_on)
		cqe += DMAPLANE_CTRL_CQE;
	ep->pd = ib_alloc_pd(id->device, 0);
	if (IS_ERR(ep->pd)) {
		ret = PTR_ERR(ep->pd);
		ep->pd = NULL;
		return ret;
	}
	ep->cq = ib_alloc_cq(id->device, ep, cqe, 0, IB_POLL_WORKQUEUE);
	if (IS_ERR(ep->cq)) {
		ret = PTR_ERR(ep->cq);
		ep->cq = NULL;
		return ret;
	}
	attr.send_cq = ep->cq;
	attr.recv_cq = ep->cq;
	ret = rdma_create_qp(id, ep->pd, &attr);
	if (!ret && ep->credits_on)
		ret = dmaplane_flow_create(ep);
	return ret;
}

/* Connection parameters, with @hello (the caller's) as private data. */
static void dmaplane_ep_conn_param(struct dmaplane_ep *ep,
				   struct rdma_conn_param *param,
				   struct dmaplane_cm_hello *hello)
{
	*hello = (struct dmaplane_cm_hello){
		.magic = cpu_to_be32(DMAPLANE_CM_MAGIC),
		.version = DMAPLANE_CM_VERSION,
		.send_depth = cpu_to_be32(ep->params.send_depth),
		.recv_depth = cpu_to_be32(ep->params.recv_depth),
		.credit_window = cpu_to_be32(ep->params.credit_window),
	};
	if (ep->credits_on) {
		hello->flags = DMAPLANE_CM_CREDITS;
		hello->ctrl_qpn = cpu_to_be32(ep->ctrl_qp->qp_num);
		hello->ctrl_psn = cpu_to_be32(ep->ctrl_psn);
	}
	memset(param, 0, sizeof(*param));
	param->private_data = hello;
	param->private_data_len = sizeof(*hello);
	param->retry_count = ep->params.retry_count;
	param->rnr_retry_count = ep->params.rnr_retry_count;
	param->responder_resources = 1;
	param->initiator_depth = 1;
}

VISIBLE_IF_KUNIT int dmaplane_addr_to_sockaddr(const struct dmaplane_addr *a,
					       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->addr, 4);
		return 0;
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		in6->sin6_scope_id = a->scope_id;
		memcpy(&in6->sin6_addr, a->addr, 16);
		return 0;
	}
	return -EINVAL;
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_addr_to_sockaddr);

VISIBLE_IF_KUNIT void dmaplane_sockaddr_to_addr(const struct sockaddr *sa,
						struct dmaplane_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		a->family = AF_INET;
		a->port = ntohs(in->sin_port);
		memcpy(a->addr, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;

		a->family = AF_INET6;
		a->port = ntohs(in6->sin6_port);
		a->scope_id = in6->sin6_scope_id;
		memcpy(a->addr, &in6->sin6_addr, 16);
	}
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_sockaddr_to_addr);

struct dmaplane_ep *dmaplane_ep_lookup(struct dmaplane_ctx *ctx, u32 handle)
{
	struct dmaplane_obj *obj;

	obj = dmaplane_ctx_lookup(ctx, handle, DMAPLANE_OBJ_ENDPOINT);
	return obj ? container_of(obj, struct dmaplane_ep, obj) : NULL;
}

/* The endpoint @handle with @a decoded into @ss: where LISTEN and CONNECT start. */
static struct dmaplane_ep *dmaplane_ep_addressed(struct dmaplane_ctx *ctx,
						 u32 handle,
						 const struct dmaplane_addr *a,
						 struct sockaddr_storage *ss)
{
	struct dmaplane_ep *ep;
	int ret = dmaplane_addr_to_sockaddr(a, ss);

	if (ret)
		return ERR_PTR(ret);
	ep = dmaplane_ep_lookup(ctx, handle);
	return ep ? ep : ERR_PTR(-ENOENT);
}

/* Take an idle endpoint into @next, or -EINVAL. op_lock held. */
static int dmaplane_ep_leave_idle(struct dmaplane_ep *ep, u32 next)
{
	int ret = 0;

	spin_lock(&ep->lock);
	if (ep->state != DMAPLANE_EP_IDLE || !ep->cm_id)
		ret = -EINVAL;
	else
		ep->state = next;
	spin_unlock(&ep->lock);
	return ret;
}

/* Bounds of an ENDPOINT_CREATE, and its zeros turned into defaults. */
VISIBLE_IF_KUNIT int dmaplane_ep_check_params(struct dmaplane_ep_create *p)
{
	if (p->flags & ~DMAPLANE_EP_CREATE_VALID_FLAGS || p->reserved ||
	    p->send_depth > DMAPLANE_EP_DEPTH_MAX ||
	    p->recv_depth > DMAPLANE_EP_DEPTH_MAX ||
	    p->timeout_ms > DMAPLANE_EP_TIMEOUT_MAX_MS ||
	    p->retry_count > 7 || p->rnr_retry_count > 7 ||
	    p->ack_timeout > DMAPLANE_EP_ACK_TIMEOUT_MAX)
		return -EINVAL;
	if (!p->send_depth)
		p->send_depth = DMAPLANE_EP_DEPTH_DEFAULT;
	if (!p->recv_depth)
		p->recv_depth = DMAPLANE_EP_DEPTH_DEFAULT;
	if (!p->timeout_ms)
		p->timeout_ms = DMAPLANE_EP_TIMEOUT_DEFAULT_MS;
	if (!p->retry_count)
		p->retry_count = DMAPLANE_EP_RETRY_DEFAULT;
	if (!p->rnr_retry_count)
		p->rnr_retry_count = 7;
	return dmaplane_flow_check_params(p);
}
EXPORT_SYMBOL_IF_KUNIT(dmaplane_ep_check_params);

int dmaplane_ioc_ep_create(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit)
{
	struct dmaplane_ep_create *req = arg;
	struct dmaplane_ep *ep;
	struct rdma_cm_id *id;
	int ret;

	ret = dmaplane_ep_check_params(req);
	if (ret)
		return ret;
	ep = dmaplane_ep_alloc(req);
	if (!ep)
		return -ENOMEM;
	id = rdma_create_id(&init_net, dmaplane_ep_handler, ep, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id)) {
		dmaplane_ep_put(ep);
		return PTR_ERR(id);
	}
	ep->cm_id = id;
	ret = dmaplane_ctx_reserve(ctx, &ep->obj);
	if (ret) {
		dmaplane_ep_put(ep);
		return ret;
	}
	req->handle = ep->obj.handle;
	commit->created = &ep->obj;
	return 0;
}

int dmaplane_ioc_ep_destroy(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit)
{
	struct dmaplane_handle_op *op = arg;

	if (op->flags & ~DMAPLANE_HANDLE_OP_VALID_FLAGS)
		return -EINVAL;
	return dmaplane_ctx_remove(ctx, op->handle, DMAPLANE_OBJ_ENDPOINT);
}

int dmaplane_ioc_ep_listen(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit)
{
	struct dmaplane_ep_listen *req = arg;
	struct sockaddr_storage ss;
	struct dmaplane_ep *ep;
	int ret;

	if (!req->backlog || req->backlog > 1024)
		return -EINVAL;
	ep = dmaplane_ep_addressed(ctx, req->handle, &req->addr, &ss);
	if (IS_ERR(ep))
		return PTR_ERR(ep);
	mutex_lock(&ep->op_lock);
	ret = dmaplane_ep_leave_idle(ep, DMAPLANE_EP_LISTENING);
	if (ret)
		goto out;
	ret = rdma_bind_addr(ep->cm_id, (struct sockaddr *)&ss);
	if (!ret)
		ret = rdma_listen(ep->cm_id, req->backlog);
	/* Bound and listening, or failed: not reusable either way. */
	if (!ret) {
		WRITE_ONCE(ep->listened, true);
		dmaplane_sockaddr_to_addr((struct sockaddr *)
					  &ep->cm_id->route.addr.src_addr,
					  &req->addr);
	} else {
		dmaplane_ep_fail(ep, ret);
	}
out:
	mutex_unlock(&ep->op_lock);
	dmaplane_ep_put(ep);
	return ret;
}

int dmaplane_ioc_ep_connect(struct dmaplane_ctx *ctx, void *arg,
			    struct dmaplane_commit *commit)
{
	struct dmaplane_ep_connect *req = arg;
	struct dmaplane_cm_hello hello;
	struct rdma_conn_param param;
	struct sockaddr_storage ss;
	struct dmaplane_ep *ep;
	u32 ms;
	int ret;

	if (req->timeout_ms > DMAPLANE_EP_TIMEOUT_MAX_MS)
		return -EINVAL;
	ep = dmaplane_ep_addressed(ctx, req->handle, &req->addr, &ss);
	if (IS_ERR(ep))
		return PTR_ERR(ep);
	ms = req->timeout_ms ? req->timeout_ms : ep->params.timeout_ms;
	mutex_lock(&ep->op_lock);
	ret = dmaplane_ep_leave_idle(ep, DMAPLANE_EP_CONNECTING);
	if (ret)
		goto out;
	ep->active = true;
	ret = rdma_resolve_addr(ep->cm_id, NULL, (struct sockaddr *)&ss, ms);
	if (!ret)
		ret = dmaplane_ep_wait(ep, RDMA_CM_EVENT_ADDR_RESOLVED, ms);
	/* Before the route: on RoCE it also sets the path's packet lifetime. */
	if (!ret && ep->params.ack_timeout)
		ret = rdma_set_ack_timeout(ep->cm_id, ep->params.ack_timeout);
	if (!ret)
		ret = rdma_resolve_route(ep->cm_id, ms);
	if (!ret)
		ret = dmaplane_ep_wait(ep, RDMA_CM_EVENT_ROUTE_RESOLVED, ms);
	if (!ret)
		ret = dmaplane_ep_create_qp(ep);
	if (!ret) {
		dmaplane_ep_conn_param(ep, &param, &hello);
		ret = rdma_connect(ep->cm_id, &param);
	}
	if (!ret)
		ret = dmaplane_ep_wait(ep, RDMA_CM_EVENT_ESTABLISHED, ms);
	if (!ret && ep->credits_on) {
		ret = dmaplane_flow_connect(ep);
		/* A peer that already left fails it: report why it left. */
		if (ret)
			ret = READ_ONCE(ep->error) ?: ret;
	}
	if (!ret)
		dmaplane_ep_go_live(ep);
	else
		dmaplane_ep_fail(ep, ret);
out:
	mutex_unlock(&ep->op_lock);
	dmaplane_ep_put(ep);
	return ret;
}

/* The oldest request on @listener, or NULL; the list's reference moves. */
static struct dmaplane_ep *dmaplane_ep_dequeue(struct dmaplane_ep *listener)
{
	struct dmaplane_ep *child;

	spin_lock(&listener->lock);
	child = list_first_entry_or_null(&listener->pending, struct dmaplane_ep,
					 pending_node);
	if (child)
		list_del_init(&child->pending_node);
	spin_unlock(&listener->lock);
	return child;
}

/* Accept @child; its peer's address into @peer while its id is sure to live. */
static int dmaplane_ep_accept_one(struct dmaplane_ep *child, u32 ms,
				  struct dmaplane_addr *peer)
{
	struct dmaplane_cm_hello hello;
	struct rdma_conn_param param;
	int ret;

	mutex_lock(&child->op_lock);
	ret = READ_ONCE(child->error);
	if (!ret && !child->cm_id)
		ret = -ECONNABORTED;
	if (!ret && child->params.ack_timeout)
		ret = rdma_set_ack_timeout(child->cm_id,
					   child->params.ack_timeout);
	if (!ret)
		ret = dmaplane_ep_create_qp(child);
	/* Its control QP receives before the peer can send. */
	if (!ret && child->credits_on)
		ret = dmaplane_flow_connect(child);
	if (!ret) {
		dmaplane_ep_conn_param(child, &param, &hello);
		rdma_lock_handler(child->cm_id);
		ret = rdma_accept(child->cm_id, &param);
		rdma_unlock_handler(child->cm_id);
	}
	if (!ret)
		ret = dmaplane_ep_wait(child, RDMA_CM_EVENT_ESTABLISHED, ms);
	if (!ret) {
		dmaplane_ep_go_live(child);
		dmaplane_sockaddr_to_addr((struct sockaddr *)
					  &child->cm_id->route.addr.dst_addr,
					  peer);
	} else {
		dmaplane_ep_fail(child, ret);
		/*
		 * The peer rejected or disconnected: it gave up first. The
		 * IB CM also refuses (-EINVAL) the QP attributes or the
		 * answer for a request the peer gave up on meanwhile, before
		 * its REJ reaches the handler; the child's parameters are the
		 * listener's, checked already.
		 */
		if (ret == -ECONNREFUSED || ret == -ECONNRESET ||
		    ret == -EINVAL)
			ret = -ECONNABORTED;
	}
	mutex_unlock(&child->op_lock);
	return ret;
}

int dmaplane_ioc_ep_accept(struct dmaplane_ctx *ctx, void *arg,
			   struct dmaplane_commit *commit)
{
	struct dmaplane_ep_accept *req = arg;
	struct dmaplane_ep *listener, *child = NULL;
	long left;
	u32 ms;
	int ret;

	if (req->reserved || req->timeout_ms > DMAPLANE_EP_TIMEOUT_MAX_MS)
		return -EINVAL;
	listener = dmaplane_ep_lookup(ctx, req->handle);
	if (!listener)
		return -ENOENT;
	ms = req->timeout_ms ? req->timeout_ms : listener->params.timeout_ms;
	if (READ_ONCE(listener->state) != DMAPLANE_EP_LISTENING) {
		/* A listener that failed says why; others never listened. */
		ret = READ_ONCE(listener->listened) ?
		      READ_ONCE(listener->error) ?: -EINVAL : -EINVAL;
		goto out;
	}
	left = wait_event_interruptible_timeout(listener->wq,
						!list_empty_careful(&listener->pending) ||
						READ_ONCE(listener->error),
						msecs_to_jiffies(ms));
	child = dmaplane_ep_dequeue(listener);
	if (!child) {
		ret = left < 0 ? -EINTR : READ_ONCE(listener->error) ?:
		      -ETIMEDOUT;
		goto out;
	}
	ret = dmaplane_ep_accept_one(child, ms, &req->peer);
	if (!ret)
		ret = dmaplane_ctx_reserve(ctx, &child->obj);
	if (ret)
		goto out;
	req->new_handle = child->obj.handle;
	commit->created = &child->obj;
	child = NULL;
out:
	if (child)
		dmaplane_ep_put(child);
	dmaplane_ep_put(listener);
	return ret;
}

int dmaplane_ioc_ep_info(struct dmaplane_ctx *ctx, void *arg,
			 struct dmaplane_commit *commit)
{
	struct dmaplane_ep_info *info = arg;
	struct dmaplane_ep *ep;
	u32 handle = info->handle;

	ep = dmaplane_ep_lookup(ctx, handle);
	if (!ep)
		return -ENOENT;
	memset(info, 0, sizeof(*info));
	info->handle = handle;
	info->device_index = -1;
	/* op_lock: the id and its QP cannot be torn down under us. */
	mutex_lock(&ep->op_lock);
	spin_lock(&ep->lock);
	info->state = ep->state;
	info->error = ep->error;
	spin_unlock(&ep->lock);
	info->send_depth = ep->params.send_depth;
	info->recv_depth = ep->params.recv_depth;
	info->peer_send_depth = ep->peer_send_depth;
	info->peer_recv_depth = ep->peer_recv_depth;
	spin_lock_bh(&ep->post_lock);
	if (ep->credits_on)
		info->flags |= DMAPLANE_EP_INFO_CREDITS;
	info->credit_window = ep->params.credit_window;
	info->credits = dmaplane_credit_avail(&ep->credits);
	info->peer_credits = ep->credits.granted - ep->credits.consumed;
	info->queued = ep->queued;
	info->inflight = ep->send_busy + ep->recv_busy - ep->ring_count;
	info->stalls = ep->stalls;
	info->stall_ns = ep->stall_ns;
	info->id = ep->id;
	spin_unlock_bh(&ep->post_lock);
	if (ep->cm_id) {
		if (ep->cm_id->device)
			info->device_index = ep->cm_id->device->index;
		if (ep->cm_id->qp)
			info->qp_num = ep->cm_id->qp->qp_num;
		dmaplane_sockaddr_to_addr((struct sockaddr *)
					  &ep->cm_id->route.addr.src_addr,
					  &info->local);
		dmaplane_sockaddr_to_addr((struct sockaddr *)
					  &ep->cm_id->route.addr.dst_addr,
					  &info->peer);
	}
	mutex_unlock(&ep->op_lock);
	dmaplane_ep_put(ep);
	return 0;
}

static void dmaplane_ep_release(struct dmaplane_obj *obj)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);
	struct dmaplane_ep *child;

	/* Destroying the id waits for its handler: no new requests after. */
	mutex_lock(&ep->op_lock);
	dmaplane_ep_teardown(ep);
	mutex_unlock(&ep->op_lock);
	while ((child = dmaplane_ep_dequeue(ep)))
		dmaplane_ep_put(child);
	spin_lock(&dmaplane_eps_lock);
	list_del(&ep->all_node);
	spin_unlock(&dmaplane_eps_lock);
	dmaplane_ep_verbs_free(ep);
	mutex_destroy(&ep->op_lock);
	atomic_dec(&dmaplane_stats.endpoints);
	kfree(ep);
}

int dmaplane_ep_init(void)
{
	dmaplane_ep_wq = alloc_workqueue("dmaplane_ep", WQ_UNBOUND, 0);
	return dmaplane_ep_wq ? 0 : -ENOMEM;
}

void dmaplane_ep_exit(void)
{
	destroy_workqueue(dmaplane_ep_wq);
}
