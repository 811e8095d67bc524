// SPDX-License-Identifier: GPL-2.0
/*
 * hostile: a remote peer that speaks dmaplane's connection handshake with
 * plain verbs (librdmacm, libibverbs: the kernel module is not on its
 * side) and then breaks the rules. The dmaplane side (a listener of this
 * process) must refuse each misdeed with a counted, logged error
 * (handshakes_refused or peer_errors in debugfs, a kernel log line), end
 * only the connection that misbehaved, and never let a byte outside a
 * registered window change: every window lies between two canary ranges
 * of its buffer, checked after each attack. A second, well-behaved
 * connection of the module carries data after every case, and the
 * listener accepts a good client at the end.
 *
 * The peer's hello mirrors struct dmaplane_cm_hello (rdma_ep.c): magic
 * "DPLN", version 2, flags (bit 0: credits), two reserved bytes, then
 * send depth, receive depth, credit window, control QP number and first
 * PSN, all big-endian, 28 bytes. With credits the peer runs a control QP
 * connected by hand as flow.c describes: its first message tells the
 * module it is ready, and grants are cumulative counts in immediates.
 *
 * Needs soft-RoCE (or an RDMA NIC), a guest address (DP_GUEST_IP) and
 * the userspace RDMA CM (rdma_ucm); cases skip naming what is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"
#include "verbsutil.h"

#define PORT		18640
#define WAIT_MS		20000
#define WIN		(64u << 10)	/* a window, and each canary beside it */
#define PEER_MEM	(64u << 10)
#define CTRL_RECVS	16		/* DMAPLANE_CTRL_RECVS */
#define HELLO_LEN	28

/* The kernel log lines of the module's refusals. */
#define REFUSED_REQUEST	"the peer sent a request this side refused"

/* The canaries' and the window's fill patterns. */
enum { SEED_BEFORE = 11, SEED_WINDOW = 12, SEED_AFTER = 13 };

/* The peer's work request ids. */
enum { WR_DATA = 1, WR_GRANT, WR_CTRL_RECV };

static const char *ip;
static int vfd = -1;
static uint32_t listener;
static bool ready;		/* listener and good pair up */
static uint64_t base_endpoints;	/* with the listener and the good pair */

/* The well-behaved connection, and its receiving window. */
static uint32_t good_client, good_server, good_mr, good_rkey;
static struct region good_win;
static unsigned int good_seed = 100;

/* The module's endpoint parameters: more receives than credits. */
static const struct dmaplane_ep_create victim_params = {
	.send_depth = 16, .recv_depth = 16, .credit_window = 4,
	.timeout_ms = WAIT_MS,
};

/* --- the hostile peer --- */

struct hello {
	uint32_t magic;
	uint8_t version;
	uint8_t flags;
	uint32_t send_depth;
	uint32_t recv_depth;
	uint32_t window;
	uint32_t ctrl_qpn;
	uint32_t ctrl_psn;
};

#define HELLO_MAGIC	0x44504c4e
#define HELLO_CREDITS	1

static void put_be32(unsigned char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t get_be32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static void hello_encode(const struct hello *h, unsigned char *p)
{
	memset(p, 0, HELLO_LEN);
	put_be32(p, h->magic);
	p[4] = h->version;
	p[5] = h->flags;
	put_be32(p + 8, h->send_depth);
	put_be32(p + 12, h->recv_depth);
	put_be32(p + 16, h->window);
	put_be32(p + 20, h->ctrl_qpn);
	put_be32(p + 24, h->ctrl_psn);
}

struct peer {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *ctrl;		/* with credits: the control QP */
	struct ibv_mr *mr;
	unsigned char *mem;
	bool connected;
	uint32_t ctrl_psn;
	uint32_t victim_ctrl_qpn;	/* from the module's hello */
	uint32_t victim_ctrl_psn;
	uint32_t granted;		/* the module's latest grant */
};

/* The next CM event (the caller acks it); -ETIMEDOUT after WAIT_MS. */
static int peer_event(struct peer *p, struct rdma_cm_event **ev)
{
	struct pollfd pfd = { .fd = p->ch->fd, .events = POLLIN };
	int n = poll(&pfd, 1, WAIT_MS);

	if (n <= 0)
		return n ? -errno : -ETIMEDOUT;
	return rdma_get_cm_event(p->ch, ev) ? -errno : 0;
}

/* Wait for CM event @want; -EPROTO for any other. */
static int peer_expect(struct peer *p, enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev;
	int ret = peer_event(p, &ev);

	if (ret)
		return ret;
	if (ev->event != want) {
		printf("# peer: CM event %s, expected %s\n",
		       rdma_event_str(ev->event), rdma_event_str(want));
		ret = -EPROTO;
	}
	rdma_ack_cm_event(ev);
	return ret;
}

static void peer_close(struct peer *p)
{
	if (p->connected)
		rdma_disconnect(p->id);
	if (p->ctrl)
		ibv_destroy_qp(p->ctrl);
	if (p->id && p->id->qp)
		rdma_destroy_qp(p->id);
	if (p->mr)
		ibv_dereg_mr(p->mr);
	if (p->cq)
		ibv_destroy_cq(p->cq);
	if (p->pd)
		ibv_dealloc_pd(p->pd);
	if (p->id)
		rdma_destroy_id(p->id);
	if (p->ch)
		rdma_destroy_event_channel(p->ch);
	free(p->mem);
	memset(p, 0, sizeof(*p));
}

/* Resolve the module's listener, make the PD, CQ, data QP and memory. */
static int peer_open(struct peer *p)
{
	struct sockaddr_in dst = {
		.sin_family = AF_INET, .sin_port = htons(PORT),
	};
	struct ibv_qp_init_attr init = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 32, .max_recv_wr = 32,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	int ret;

	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1)
		return -EINVAL;
	p->ch = rdma_create_event_channel();
	if (!p->ch)
		return -errno;
	if (rdma_create_id(p->ch, &p->id, NULL, RDMA_PS_TCP))
		return -errno;
	if (rdma_resolve_addr(p->id, NULL, (struct sockaddr *)&dst, 2000))
		return -errno;
	ret = peer_expect(p, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (!ret && rdma_resolve_route(p->id, 2000))
		ret = -errno;
	if (!ret)
		ret = peer_expect(p, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (ret)
		return ret;
	p->pd = ibv_alloc_pd(p->id->verbs);
	p->cq = p->pd ? ibv_create_cq(p->id->verbs, 128, NULL, NULL, 0) : NULL;
	if (!p->cq)
		return -ENOMEM;
	init.send_cq = p->cq;
	init.recv_cq = p->cq;
	if (rdma_create_qp(p->id, p->pd, &init))
		return -errno;
	p->mem = aligned_alloc(4096, PEER_MEM);
	if (!p->mem)
		return -ENOMEM;
	memset(p->mem, 0xee, PEER_MEM);
	p->mr = ibv_reg_mr(p->pd, p->mem, PEER_MEM, IBV_ACCESS_LOCAL_WRITE);
	return p->mr ? 0 : -errno;
}

/* The control QP, in INIT, before the hello that names it. */
static int peer_add_ctrl(struct peer *p)
{
	struct ibv_qp_init_attr init = {
		.qp_type = IBV_QPT_RC, .send_cq = p->cq, .recv_cq = p->cq,
		.cap = { .max_send_wr = 4, .max_recv_wr = CTRL_RECVS + 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_INIT };
	int mask;

	p->ctrl = ibv_create_qp(p->pd, &init);
	if (!p->ctrl)
		return -errno;
	p->ctrl_psn = (uint32_t)random() & 0xffffff;
	if (rdma_init_qp_attr(p->id, &attr, &mask))
		return -errno;
	return -ibv_modify_qp(p->ctrl, &attr, mask);
}

static struct hello good_hello(const struct peer *p)
{
	struct hello h = {
		.magic = HELLO_MAGIC, .version = 2, .send_depth = 32,
		.recv_depth = 32, .window = 4,
	};

	if (p->ctrl) {
		h.flags = HELLO_CREDITS;
		h.ctrl_qpn = p->ctrl->qp_num;
		h.ctrl_psn = p->ctrl_psn;
	}
	return h;
}

/*
 * Connect with @len bytes of @priv as the hello. 0 when established (the
 * module's hello parsed), -ECONNREFUSED when refused.
 */
/* Send the connection request with @len bytes of @priv as the hello. */
static int peer_request(struct peer *p, const void *priv, uint8_t len)
{
	struct rdma_conn_param param = {
		.private_data = priv, .private_data_len = len,
		.responder_resources = 1, .initiator_depth = 1,
		.retry_count = 7, .rnr_retry_count = 7,
	};

	return rdma_connect(p->id, &param) ? -errno : 0;
}

static int peer_connect_raw(struct peer *p, const void *priv, uint8_t len)
{
	struct rdma_cm_event *ev;
	int ret = peer_request(p, priv, len);

	if (ret)
		return ret;
	ret = peer_event(p, &ev);
	if (ret)
		return ret;
	if (ev->event == RDMA_CM_EVENT_ESTABLISHED &&
	    ev->param.conn.private_data_len >= HELLO_LEN) {
		const unsigned char *h = ev->param.conn.private_data;

		p->victim_ctrl_qpn = get_be32(h + 20);
		p->victim_ctrl_psn = get_be32(h + 24);
		p->connected = true;
	} else {
		ret = ev->event == RDMA_CM_EVENT_REJECTED ? -ECONNREFUSED :
			-EPROTO;
	}
	rdma_ack_cm_event(ev);
	return ret;
}

static int peer_post(struct ibv_qp *qp, enum ibv_wr_opcode opcode,
		     struct peer *p, uint32_t len, uint64_t remote,
		     uint32_t rkey, uint32_t imm)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)p->mem, .length = len, .lkey = p->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = qp == p->ctrl ? WR_GRANT : WR_DATA,
		.sg_list = &sge, .num_sge = len ? 1 : 0, .opcode = opcode,
		.send_flags = IBV_SEND_SIGNALED, .imm_data = htonl(imm),
		.wr.rdma = { .remote_addr = remote, .rkey = rkey },
	}, *bad;

	return -ibv_post_send(qp, &wr, &bad);
}

static int peer_post_ctrl_recv(struct peer *p)
{
	struct ibv_recv_wr wr = { .wr_id = WR_CTRL_RECV }, *bad;

	return -ibv_post_recv(p->ctrl, &wr, &bad);
}

/* One completion into *@wc, the module's grants taken on the way: 1, 0, -EIO. */
static int peer_poll(struct peer *p, struct ibv_wc *wc)
{
	int n = ibv_poll_cq(p->cq, 1, wc);

	if (n < 0)
		return -EIO;
	if (n && wc->wr_id == WR_CTRL_RECV && wc->status == IBV_WC_SUCCESS) {
		p->granted = ntohl(wc->imm_data);
		peer_post_ctrl_recv(p);
	}
	return n;
}

/* Work request @wr_id's completion status (IBV_WC_*), or -ETIMEDOUT. */
static int peer_wait(struct peer *p, uint64_t wr_id)
{
	struct ibv_wc wc;

	for (unsigned int ms = 0; ms < WAIT_MS; ) {
		int n = peer_poll(p, &wc);

		if (n < 0)
			return n;
		if (n && wc.wr_id == wr_id)
			return wc.status;
		if (!n) {
			usleep(1000);
			ms++;
		}
	}
	return -ETIMEDOUT;
}

/* Wait until the module granted at least @n credits. */
static bool peer_wait_grant(struct peer *p, uint32_t n)
{
	struct ibv_wc wc;

	for (unsigned int ms = 0; p->granted < n && ms < WAIT_MS; ) {
		int got = peer_poll(p, &wc);

		if (got < 0)
			break;
		if (!got) {
			usleep(1000);
			ms++;
		}
	}
	return p->granted >= n;
}

/*
 * The control QP connected to the module's, as flow.c does it: RTR with
 * its QP number and PSN, receives posted, RTS.
 */
static int peer_connect_ctrl(struct peer *p)
{
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_RTR };
	int mask, ret;

	if (rdma_init_qp_attr(p->id, &attr, &mask))
		return -errno;
	attr.dest_qp_num = p->victim_ctrl_qpn;
	attr.rq_psn = p->victim_ctrl_psn;
	ret = -ibv_modify_qp(p->ctrl, &attr, mask);
	for (int i = 0; !ret && i < CTRL_RECVS; i++)
		ret = peer_post_ctrl_recv(p);
	if (ret)
		return ret;
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTS;
	if (rdma_init_qp_attr(p->id, &attr, &mask))
		return -errno;
	attr.sq_psn = p->ctrl_psn;
	attr.rnr_retry = 7;
	return -ibv_modify_qp(p->ctrl, &attr, mask | IBV_QP_RNR_RETRY);
}

/* A control message: zero-length SEND_WITH_IMM of @grant (a grant). */
static int peer_grant(struct peer *p, uint32_t grant)
{
	int ret = peer_post(p->ctrl, IBV_WR_SEND_WITH_IMM, p, 0, 0, 0, grant);

	return ret ?: peer_wait(p, WR_GRANT);
}

/* One data operation on the data QP and its completion status. */
static int peer_op(struct peer *p, enum ibv_wr_opcode opcode, uint32_t len,
		   uint64_t remote, uint32_t rkey, uint32_t imm)
{
	int ret = peer_post(p->id->qp, opcode, p, len, remote, rkey, imm);

	return ret ?: peer_wait(p, WR_DATA);
}

/* --- the module's side --- */

struct acceptor {
	pthread_t thread;
	uint32_t ep;
	int ret;
};

static void *accept_one(void *arg)
{
	struct acceptor *a = arg;

	a->ret = dmaplane_ep_accept(vfd, listener, WAIT_MS, &a->ep, NULL);
	return NULL;
}

/*
 * A hostile connection: the peer (opened, with a control QP when
 * @credits) connects with its good hello, which the module accepts;
 * *@ep gets the module's endpoint. With credits the control QP is
 * connected but has said nothing yet.
 */
static bool hostile_connect(struct peer *p, bool credits, uint32_t *ep)
{
	unsigned char hello[HELLO_LEN];
	struct acceptor a = { 0 };
	struct hello h;
	int ret;

	ret = peer_open(p);
	if (!ret && credits)
		ret = peer_add_ctrl(p);
	KTAP_EXPECT_RET(ret, 0);
	if (ret)
		return false;
	h = good_hello(p);
	hello_encode(&h, hello);
	if (pthread_create(&a.thread, NULL, accept_one, &a))
		return false;
	ret = peer_connect_raw(p, hello, HELLO_LEN);
	pthread_join(a.thread, NULL);
	KTAP_EXPECT_RET(ret, 0);
	KTAP_EXPECT_RET(a.ret, 0);
	if (!ret && credits)
		ret = peer_connect_ctrl(p);
	if (!a.ret)
		*ep = a.ep;
	if (!ret && !a.ret)
		return true;
	if (!a.ret)
		dmaplane_ep_destroy(vfd, a.ep);
	return false;
}

/*
 * @n zero-length receives on the module's endpoint @ep, as a receiver
 * waiting for messages has: a QP the peer takes down flushes them, which
 * is how the module learns of it (cookies 0 .. n - 1).
 */
static void post_recvs(uint32_t ep, uint32_t n)
{
	struct dmaplane_op recv[16];

	for (uint32_t i = 0; i < n; i++)
		recv[i] = (struct dmaplane_op){ .cookie = i,
						.opcode = DMAPLANE_OP_RECV };
	KTAP_EXPECT_RET(dmaplane_post(vfd, ep, recv, n, NULL), 0);
}

/* The module's endpoint @ep has failed: its error, or 0 after WAIT_MS. */
static int ep_error(uint32_t ep)
{
	struct dmaplane_ep_info info;

	for (unsigned int ms = 0; ms < WAIT_MS; ms += 10) {
		if (dmaplane_ep_info(vfd, ep, &info))
			return 0;
		if (info.error)
			return info.error;
		usleep(10 * 1000);
	}
	return 0;
}

/* A window of WIN bytes between two canaries of WIN bytes each. */
struct window {
	struct region r;
	uint32_t mr;
	uint32_t rkey;
};

static bool window_open(struct window *w, uint32_t ep, uint32_t access)
{
	int ret;

	memset(w, 0, sizeof(*w));
	if (!region_make(vfd, &w->r, 3 * WIN))
		return false;
	fill_pattern(w->r.p, WIN, SEED_BEFORE);
	fill_pattern(w->r.p + WIN, WIN, SEED_WINDOW);
	fill_pattern(w->r.p + 2 * WIN, WIN, SEED_AFTER);
	ret = dmaplane_mr_reg(vfd, ep, w->r.buf, WIN, WIN, access, &w->mr,
			      &w->rkey);
	KTAP_EXPECT_RET(ret, 0);
	return !ret;
}

/* Both canaries, and the window from byte @from on, as filled. */
static void window_check(const struct window *w, size_t from)
{
	size_t bad;

	KTAP_EXPECT(pattern_holds(w->r.p, WIN, SEED_BEFORE),
		    "the canary before the window changed");
	KTAP_EXPECT(pattern_holds(w->r.p + 2 * WIN, WIN, SEED_AFTER),
		    "the canary after the window changed");
	bad = pattern_mismatch(w->r.p + WIN + from, WIN - from, SEED_WINDOW,
			       from);
	KTAP_EXPECT(bad == WIN - from, "window byte %zu changed", from + bad);
}

static void window_close(struct window *w)
{
	if (w->mr)
		dmaplane_mr_dereg(vfd, w->mr);
	region_free(vfd, &w->r);
}

/*
 * The module refused what the peer did: its endpoint failed with
 * -EPROTO, one more peer error, and the kernel log says @why.
 */
static void refused_as_peer_error(uint32_t ep, uint64_t errors_before,
				  const char *why)
{
	char *log;

	KTAP_EXPECT_RET(ep_error(ep), -EPROTO);
	KTAP_EXPECT(dmaplane_counter("peer_errors") == errors_before + 1,
		    "peer_errors %" PRIu64 ", was %" PRIu64,
		    dmaplane_counter("peer_errors"), errors_before);
	log = kmsg_since_mark();
	KTAP_EXPECT(log && strstr(log, why), "no kernel log line \"%s\"", why);
	free(log);
}

/* Data through the good connection: it still serves. */
static void good_still_serves(void)
{
	struct dmaplane_completion c;
	struct region src;
	uint32_t mr;
	int ret;

	if (!region_make(vfd, &src, 4096))
		return;
	fill_pattern(src.p, 4096, ++good_seed);
	ret = dmaplane_mr_reg(vfd, good_client, src.buf, 0, 4096, 0, &mr,
			      NULL);
	KTAP_EXPECT_RET(ret, 0);
	KTAP_EXPECT_RET(dmaplane_post(vfd, good_server, &(struct dmaplane_op){
				.cookie = 1, .opcode = DMAPLANE_OP_RECV }, 1,
			NULL), 0);
	if (!ret)
		KTAP_EXPECT_RET(dmaplane_post(vfd, good_client,
					      &(struct dmaplane_op){
				.cookie = 2, .opcode = DMAPLANE_OP_WRITE_IMM,
				.mr = mr, .length = 4096, .rkey = good_rkey,
				.imm = good_seed }, 1, NULL), 0);
	KTAP_EXPECT(reap_n(vfd, good_client, &c, 1) == 1 && !c.status,
		    "the good connection's write failed");
	KTAP_EXPECT(reap_n(vfd, good_server, &c, 1) == 1 && !c.status &&
		    c.imm == good_seed, "the good connection's receiver");
	KTAP_EXPECT(pattern_holds(good_win.p, 4096, good_seed),
		    "the good connection's data");
	if (!ret)
		dmaplane_mr_dereg(vfd, mr);
	region_free(vfd, &src);
}

/* Whatever a case made is gone again. */
static void nothing_left(void)
{
	KTAP_EXPECT(counter_settled("endpoints", base_endpoints) ==
		    base_endpoints, "endpoints %" PRIu64 ", want %" PRIu64,
		    dmaplane_counter("endpoints"), base_endpoints);
	KTAP_EXPECT(counter_settled("mrs", 1) == 1, "MRs %" PRIu64 ", want 1",
		    dmaplane_counter("mrs"));
}

static bool have_peer(void)
{
	if (!ready)
		ktap_skip("needs soft-RoCE, DP_GUEST_IP and rdma_ucm (/dev/infiniband/rdma_cm)");
	return ready;
}

/* --- cases --- */

static void setup(void)
{
	struct dmaplane_addr a;

	ip = getenv("DP_GUEST_IP");
	if (!ip || count_rdma_devices() <= 0)
		return;
	if (access("/dev/infiniband/rdma_cm", R_OK | W_OK))
		KTAP_EXPECT(system("modprobe -a rdma_ucm ib_uverbs") == 0,
			    "modprobe rdma_ucm ib_uverbs");
	if (access("/dev/infiniband/rdma_cm", R_OK | W_OK))
		return;
	vfd = dmaplane_open();
	KTAP_EXPECT(vfd >= 0, "open: %s", ktap_errname(vfd));
	if (vfd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_addr_parse(ip, PORT, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(vfd, &victim_params, &listener), 0);
	KTAP_EXPECT_RET(dmaplane_ep_listen(vfd, listener, 8, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_loopback(vfd, ip, NULL, &good_client,
					     &good_server), 0);
	if (!region_make(vfd, &good_win, 4096))
		return;
	KTAP_EXPECT_RET(dmaplane_mr_reg(vfd, good_server, good_win.buf, 0,
					4096, DMAPLANE_MR_LOCAL_WRITE |
					DMAPLANE_MR_REMOTE_WRITE, &good_mr,
					&good_rkey), 0);
	if (ktap_case_failed())
		return;
	ready = true;
	base_endpoints = dmaplane_counter("endpoints");
	srandom(getpid());
	good_still_serves();
}

/*
 * Connection requests whose hello is not dmaplane's: refused, counted.
 * (A short one is not among them: the CM pads private data with zeros.)
 */
static void bad_hellos_refused(void)
{
	static const struct {
		const char *name;
		uint8_t len;
		struct hello h;
	} bad[] = {
		{ .name = "no hello" },
		{ .name = "bad magic", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC + 1, .version = 2 } },
		{ .name = "old version", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 1 } },
		{ .name = "newer version", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 3 } },
		{ .name = "control QP 1", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 2,
			 .flags = HELLO_CREDITS, .window = 4, .ctrl_qpn = 1 } },
		{ .name = "control QP past 24 bits", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 2,
			 .flags = HELLO_CREDITS, .window = 4,
			 .ctrl_qpn = 0x1000000 } },
		{ .name = "PSN past 24 bits", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 2,
			 .flags = HELLO_CREDITS, .window = 4, .ctrl_qpn = 100,
			 .ctrl_psn = 0x1000000 } },
		{ .name = "no credit window", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 2,
			 .flags = HELLO_CREDITS, .ctrl_qpn = 100 } },
		{ .name = "credit window past the limit", .len = HELLO_LEN,
		  .h = { .magic = HELLO_MAGIC, .version = 2,
			 .flags = HELLO_CREDITS, .window = 4097,
			 .ctrl_qpn = 100 } },
	};
	uint64_t refused = dmaplane_counter("handshakes_refused");
	unsigned char hello[HELLO_LEN];
	uint32_t ep;
	char *log;

	if (!have_peer())
		return;
	kmsg_mark();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct peer p;
		int ret = peer_open(&p);

		hello_encode(&bad[i].h, hello);
		if (!ret)
			ret = peer_connect_raw(&p, bad[i].len ? hello : NULL,
					       bad[i].len);
		KTAP_EXPECT(ret == -ECONNREFUSED, "%s: %s", bad[i].name,
			    ktap_errname(ret));
		peer_close(&p);
		KTAP_EXPECT(dmaplane_counter("handshakes_refused") ==
			    refused + i + 1, "%s: not counted", bad[i].name);
	}
	/* Nothing was queued for ACCEPT. */
	KTAP_EXPECT_RET(dmaplane_ep_accept(vfd, listener, 200, &ep, NULL),
			-ETIMEDOUT);
	log = kmsg_since_mark();
	KTAP_EXPECT(log && strstr(log, "dmaplane: refused a connection with ") &&
		    strstr(log, ": no dmaplane hello"),
		    "no kernel log line for the refusal");
	free(log);
	good_still_serves();
	nothing_left();
}

/*
 * The peer leaves mid-handshake: before the module accepted (ACCEPT
 * fails, nothing queued is left), and once connected before its first
 * control message (the endpoint ends disconnected, not as a peer error).
 */
static void peer_leaves_mid_handshake(void)
{
	uint64_t errors = dmaplane_counter("peer_errors");
	unsigned char hello[HELLO_LEN];
	struct dmaplane_ep_info info;
	struct peer p;
	struct hello h;
	uint32_t ep;
	int ret;

	if (!have_peer())
		return;
	ret = peer_open(&p);
	KTAP_EXPECT_RET(ret, 0);
	h = good_hello(&p);
	hello_encode(&h, hello);
	if (!ret)
		KTAP_EXPECT_RET(peer_request(&p, hello, HELLO_LEN), 0);
	/* The request is queued on the listener: a new endpoint. */
	KTAP_EXPECT(counter_settled("endpoints", base_endpoints + 1) ==
		    base_endpoints + 1, "no request arrived");
	peer_close(&p);
	KTAP_EXPECT_RET(dmaplane_ep_accept(vfd, listener, WAIT_MS, &ep, NULL),
			-ECONNABORTED);
	nothing_left();

	if (hostile_connect(&p, true, &ep)) {
		peer_close(&p);
		ret = ep_error(ep);
		KTAP_EXPECT(ret == -ECONNRESET, "endpoint error %s",
			    ktap_errname(ret));
		KTAP_EXPECT_RET(dmaplane_ep_info(vfd, ep, &info), 0);
		KTAP_EXPECT(info.state == DMAPLANE_EP_DISCONNECTED,
			    "state %u", info.state);
		dmaplane_ep_destroy(vfd, ep);
	}
	KTAP_EXPECT(dmaplane_counter("peer_errors") == errors,
		    "leaving is not a protocol error");
	good_still_serves();
	nothing_left();
}

/* Which rkey an attack uses. */
enum attack_key {
	KEY_OWN,	/* its window's */
	KEY_OTHER_BYTE,	/* its window's index with another key byte */
	KEY_NEXT_INDEX,	/* the next MR index, same key byte */
	KEY_GOOD,	/* the good connection's window's */
};

static uint32_t attack_rkey(enum attack_key key, uint32_t own)
{
	switch (key) {
	case KEY_OTHER_BYTE:
		return own ^ 0x5a;
	case KEY_NEXT_INDEX:
		return own + 0x100;
	case KEY_GOOD:
		return good_rkey;
	default:
		return own;
	}
}

/*
 * One attack on a fresh connection with a window of @access: after
 * @legal bytes written inside the window (the window's own bytes, so it
 * stays as filled), the peer does @opcode of @len bytes at @remote with
 * rkey @key. Its QP reports a remote error, the module ends the
 * connection as a peer error, the canaries and the window hold, and a
 * read brought nothing back.
 */
static void attack(const char *what, uint32_t access, uint32_t legal,
		   enum ibv_wr_opcode opcode, uint32_t len, uint64_t remote,
		   enum attack_key key)
{
	uint64_t errors = dmaplane_counter("peer_errors");
	struct window w;
	struct peer p;
	uint32_t ep;
	int st;

	printf("# %s\n", what);
	kmsg_mark();
	if (!hostile_connect(&p, false, &ep))
		return;
	post_recvs(ep, 2);
	if (window_open(&w, ep, access)) {
		if (legal) {
			memcpy(p.mem, w.r.p + WIN, legal);
			st = peer_op(&p, IBV_WR_RDMA_WRITE, legal, 0, w.rkey,
				     0);
			KTAP_EXPECT(st == IBV_WC_SUCCESS,
				    "%s: the legal write: %s", what,
				    ibv_wc_status_str(st));
		}
		st = peer_op(&p, opcode, len, remote,
			     attack_rkey(key, w.rkey), 0);
		KTAP_EXPECT(st == IBV_WC_REM_ACCESS_ERR ||
			    st == IBV_WC_REM_INV_REQ_ERR,
			    "%s: the peer's operation ended %s", what,
			    st < 0 ? ktap_errname(st) :
			    ibv_wc_status_str(st));
		refused_as_peer_error(ep, errors, REFUSED_REQUEST);
		window_check(&w, 0);
		if (opcode == IBV_WR_RDMA_READ)
			KTAP_EXPECT(p.mem[0] == 0xee &&
				    !memcmp(p.mem, p.mem + 1, len - 1),
				    "%s: the peer read something", what);
	}
	peer_close(&p);
	window_close(&w);
	dmaplane_ep_destroy(vfd, ep);
}

static void writes_outside_the_window(void)
{
	const uint32_t rw = DMAPLANE_MR_LOCAL_WRITE | DMAPLANE_MR_REMOTE_WRITE;

	if (!have_peer())
		return;
	/* The legal write copies the window's own bytes: they still hold. */
	attack("write just past the end", rw, 4096, IBV_WR_RDMA_WRITE, 4096,
	       WIN, KEY_OWN);
	attack("write across the end", rw, 0, IBV_WR_RDMA_WRITE, 8192,
	       WIN - 4096, KEY_OWN);
	attack("write before the start (offset wraps)", rw, 0,
	       IBV_WR_RDMA_WRITE, 4096, UINT64_MAX - 4095, KEY_OWN);
	attack("write far past the end", rw, 0, IBV_WR_RDMA_WRITE, 4096,
	       1ull << 40, KEY_OWN);
	attack("write to a window without remote write",
	       DMAPLANE_MR_REMOTE_READ, 0, IBV_WR_RDMA_WRITE, 4096, 0, KEY_OWN);
	attack("read past the end", rw | DMAPLANE_MR_REMOTE_READ, 0,
	       IBV_WR_RDMA_READ, 4096, WIN, KEY_OWN);
	attack("read from a window without remote read", rw, 0,
	       IBV_WR_RDMA_READ, 4096, 0, KEY_OWN);
	good_still_serves();
	nothing_left();
}

/*
 * rkeys: one the module replaced (deregistered and registered again),
 * neighbours of a live one, and another connection's.
 */
static void stale_and_guessed_rkeys(void)
{
	const uint32_t rw = DMAPLANE_MR_LOCAL_WRITE | DMAPLANE_MR_REMOTE_WRITE;
	uint64_t errors = dmaplane_counter("peer_errors");
	uint32_t ep, old;
	struct window w;
	struct peer p;
	int st;

	if (!have_peer())
		return;
	kmsg_mark();
	if (!hostile_connect(&p, false, &ep))
		return;
	post_recvs(ep, 2);
	if (window_open(&w, ep, rw)) {
		memcpy(p.mem, w.r.p + WIN, 8192);
		st = peer_op(&p, IBV_WR_RDMA_WRITE, 4096, 0, w.rkey, 0);
		KTAP_EXPECT(st == IBV_WC_SUCCESS, "first rkey: %s",
			    ibv_wc_status_str(st));
		/*
		 * The same window again. The key byte is 8 bits: should the
		 * device reuse the MR index and the key come round to the
		 * old one, register once more (the peer's old rkey would
		 * simply be the new one's).
		 */
		old = w.rkey;
		for (int i = 0; i < 3 && w.rkey == old; i++) {
			KTAP_EXPECT_RET(dmaplane_mr_dereg(vfd, w.mr), 0);
			KTAP_EXPECT_RET(dmaplane_mr_reg(vfd, ep, w.r.buf, WIN,
							WIN, rw, &w.mr,
							&w.rkey), 0);
		}
		KTAP_EXPECT(w.rkey != old, "the same rkey again: 0x%x", old);
		st = peer_op(&p, IBV_WR_RDMA_WRITE, 8192, 0, w.rkey, 0);
		KTAP_EXPECT(st == IBV_WC_SUCCESS, "second rkey: %s",
			    ibv_wc_status_str(st));
		st = peer_op(&p, IBV_WR_RDMA_WRITE, 4096, 8192, old, 0);
		KTAP_EXPECT(st == IBV_WC_REM_ACCESS_ERR, "stale rkey: %s",
			    st < 0 ? ktap_errname(st) : ibv_wc_status_str(st));
		refused_as_peer_error(ep, errors, REFUSED_REQUEST);
		window_check(&w, 0);
	}
	peer_close(&p);
	window_close(&w);
	dmaplane_ep_destroy(vfd, ep);

	attack("rkey with another key byte", rw, 0, IBV_WR_RDMA_WRITE, 4096, 0,
	       KEY_OTHER_BYTE);
	attack("rkey of the next MR index", rw, 0, IBV_WR_RDMA_WRITE, 4096, 0,
	       KEY_NEXT_INDEX);
	attack("another connection's rkey", rw, 0, IBV_WR_RDMA_WRITE, 4096, 0,
	       KEY_GOOD);
	KTAP_EXPECT(pattern_holds(good_win.p, 4096, good_seed),
		    "the other connection's window changed");
	good_still_serves();
	nothing_left();
}

/*
 * Flow control: a peer that declares credits must be granted before it
 * sends. Sending with none granted, an invalid grant (more than the
 * window it declared, a grant that goes back, one without an
 * immediate) and a control message with data each end the connection.
 */
static void misbehaving_flow_control(void)
{
	static const struct {
		const char *what;
		const char *log;
		int kind;
	} cases[] = {
		{ "a message without a credit",
		  "the peer sent a message without a credit", 0 },
		{ "a grant past the declared window",
		  "the peer sent an invalid credit grant", 1 },
		{ "a grant that goes back",
		  "the peer sent an invalid credit grant", 2 },
		{ "a control message without a grant",
		  "the peer sent an invalid credit grant", 3 },
		{ "a control message with data",
		  "the peer sent a control message this side refused", 4 },
	};

	if (!have_peer())
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t errors = dmaplane_counter("peer_errors");
		struct peer p;
		uint32_t ep;
		int st = 0;

		printf("# %s\n", cases[i].what);
		kmsg_mark();
		if (!hostile_connect(&p, true, &ep))
			continue;
		post_recvs(ep, 4);
		switch (cases[i].kind) {
		case 0:	/* never says it is ready: the module grants nothing */
			st = peer_op(&p, IBV_WR_SEND, 0, 0, 0, 0);
			break;
		case 1:	/* it declared a window of 4 */
			st = peer_grant(&p, 5);
			break;
		case 2:
			st = peer_grant(&p, 3);
			if (st == IBV_WC_SUCCESS)
				st = peer_grant(&p, 2);
			break;
		case 3:
			st = peer_post(p.ctrl, IBV_WR_SEND, &p, 0, 0, 0, 0) ?:
				peer_wait(&p, WR_GRANT);
			break;
		case 4:
			st = peer_post(p.ctrl, IBV_WR_SEND_WITH_IMM, &p, 64, 0,
				       0, 0) ?: peer_wait(&p, WR_GRANT);
			break;
		}
		KTAP_EXPECT(st >= 0, "%s: %s", cases[i].what, ktap_errname(st));
		refused_as_peer_error(ep, errors, cases[i].log);
		peer_close(&p);
		dmaplane_ep_destroy(vfd, ep);
	}
	good_still_serves();
	nothing_left();
}

/* The control: a peer that keeps the rules is served, not flagged. */
static void rule_keeping_peer_served(void)
{
	uint64_t errors = dmaplane_counter("peer_errors");
	struct dmaplane_completion c[4];
	struct peer p;
	uint32_t ep;

	if (!have_peer() || !hostile_connect(&p, true, &ep))
		return;
	post_recvs(ep, 4);
	KTAP_EXPECT(peer_grant(&p, 0) == IBV_WC_SUCCESS, "first grant");
	KTAP_EXPECT(peer_wait_grant(&p, 4), "granted %u, want 4", p.granted);
	for (uint32_t i = 0; i < p.granted && i < 4; i++)
		KTAP_EXPECT(peer_op(&p, IBV_WR_SEND_WITH_IMM, 0, 0, 0, i) ==
			    IBV_WC_SUCCESS, "send %u", i);
	KTAP_EXPECT(reap_n(vfd, ep, c, 4) == 4, "the module received");
	for (int i = 0; i < 4; i++)
		KTAP_EXPECT(!c[i].status && c[i].imm == (uint32_t)i,
			    "receive %d: %d imm %u", i, c[i].status, c[i].imm);
	KTAP_EXPECT(dmaplane_counter("peer_errors") == errors,
		    "a rule-keeping peer counted as an error");
	peer_close(&p);
	dmaplane_ep_destroy(vfd, ep);
	nothing_left();
}

struct dialer {
	uint32_t ep;
	int ret;
};

static void *dial(void *arg)
{
	struct dialer *d = arg;
	struct dmaplane_addr a;

	d->ret = dmaplane_addr_parse(ip, PORT, &a) ?:
		dmaplane_ep_dial(vfd, &victim_params, &a, WAIT_MS, &d->ep);
	return NULL;
}

/* After all of it the listener accepts a dmaplane client. */
static void listener_still_accepts(void)
{
	struct dialer d = { 0 };
	pthread_t thread;
	uint32_t ep;
	int ret;

	if (!have_peer())
		return;
	KTAP_EXPECT(!pthread_create(&thread, NULL, dial, &d), "thread");
	ret = dmaplane_ep_accept(vfd, listener, WAIT_MS, &ep, NULL);
	pthread_join(thread, NULL);
	KTAP_EXPECT_RET(ret, 0);
	KTAP_EXPECT_RET(d.ret, 0);
	if (!ret)
		dmaplane_ep_destroy(vfd, ep);
	if (!d.ret)
		dmaplane_ep_destroy(vfd, d.ep);
	nothing_left();
}

static void teardown(void)
{
	if (vfd < 0)
		return;
	if (good_mr)
		dmaplane_mr_dereg(vfd, good_mr);
	region_free(vfd, &good_win);
	close(vfd);
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0,
		    "endpoints left: %" PRIu64, dmaplane_counter("endpoints"));
}

static const struct ktap_case cases[] = {
	KTAP_CASE(setup),
	KTAP_CASE(bad_hellos_refused),
	KTAP_CASE(peer_leaves_mid_handshake),
	KTAP_CASE(writes_outside_the_window),
	KTAP_CASE(stale_and_guessed_rkeys),
	KTAP_CASE(misbehaving_flow_control),
	KTAP_CASE(rule_keeping_peer_served),
	KTAP_CASE(listener_still_accepts),
	KTAP_CASE(teardown),
};

int main(void)
{
	return ktap_run_suite("hostile", cases, sizeof(cases) / sizeof(cases[0]));
}
