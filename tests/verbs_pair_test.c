// SPDX-License-Identifier: GPL-2.0
/*
 * verbs_pair: data integrity of every verb between two hosts (two sim
 * guests on a soft-RoCE link, or two lab hosts).
 *
 *   verbs_pair_test --serve IP PORT      (guest0)
 *   verbs_pair_test --connect PEER PORT  (guest1)
 *   verbs_pair_test --vanish IP PORT     (guest0, last: takes its link down)
 *   verbs_pair_test --outlive PEER PORT  (guest1, last)
 *
 * With --gpu after PORT (serve/connect) the window on both sides is GPU
 * memory (the sim GPU's first MiB, GPU_PIN) instead of host pages: GPU
 * memory as the source and the destination of every verb.
 *
 * The server announces a window (rkey, length: no address) holding
 * pattern SEED_READ and posts two receives. The client READs the window
 * and checks it, SENDs a pattern (into the server's landing buffer),
 * WRITEs another over the window and marks the end with a zero-length
 * WRITE_WITH_IMM. The server checks what
 * arrived and SENDs its verdict back; each side reports KTAP.
 *
 * The client also captures the RoCE packets on its link while it works
 * and checks every RDMA address on the wire (the RETH of WRITE and READ
 * requests): each one is an offset inside the announced window, never a
 * kernel or bus address.
 *
 * --vanish / --outlive: a peer that disappears without a word. The
 * vanishing side connects, announces its window, waits for the other's
 * "ready" and takes its network link down. The other side keeps writing:
 * its transport retries run out, the WRITE completes with -ETIMEDOUT and
 * the endpoint reports it; nothing waits forever.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "libdmaplane.h"
#include "testutil.h"

#define WINDOW		(1024 * 1024)
#define LANDING		(512 * 1024)
#define SEND_LEN	300001u		/* odd on purpose */
#define SEED_READ	11
#define SEED_SEND	12
#define SEED_WRITE	13
#define IMM_DONE	0xc0ffee01u
#define MAGIC		0x44505650u	/* "DPVP" */
#define WAIT_MS		30000u
#define PEER_WAIT_MS	300000u

struct announce {
	uint32_t magic;
	uint32_t rkey;
	uint64_t length;
};

struct verdict {
	uint32_t magic;
	uint32_t send_ok;
	uint32_t imm_ok;
	uint32_t write_ok;
};

static int fd = -1;
static bool serving;
static bool gpu;		/* the data window is sim GPU memory */
static const char *addr;
static uint16_t port;
static uint32_t ep;
/*
 * --outlive: a short ACK timeout and few retries, so the dead peer is
 * found in about (3 + 1) * 4.096 us * 2^16 = 1 s of retries.
 */
static struct dmaplane_ep_create outlive_params = {
	.retry_count = 3, .ack_timeout = 16,
};
static const struct dmaplane_ep_create *params;
static bool up;			/* connected, buffers registered */
static uint32_t data_buf, data_mr, ctrl_buf, ctrl_mr, rkey;
static unsigned char *data, *ctrl;
static uint32_t land_buf, land_mr;	/* server: where the SEND lands */
static unsigned char *land;
static struct announce window;

static unsigned char *map_buffer(uint32_t *handle, size_t size)
{
	struct dmaplane_buffer_create req = {
		.size = size, .numa_node = DMAPLANE_NUMA_ANY,
	};
	void *p;

	if (dmaplane_buffer_create_req(fd, &req))
		return NULL;
	*handle = req.handle;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 req.mmap_offset);
	return p == MAP_FAILED ? NULL : p;
}

/* The first @size bytes of sim GPU 0, pinned and mapped. */
static unsigned char *map_gpu(uint32_t *handle, size_t size)
{
	struct dmaplane_gpu_pin req = {
		.provider = DMAPLANE_GPU_SIM, .length = size,
	};
	void *p;

	if (dmaplane_gpu_pin(fd, &req))
		return NULL;
	*handle = req.handle;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 req.mmap_offset);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * Wait for one completion, up to PEER_WAIT_MS for a slow peer; -ETIME if
 * none came.
 */
static int wait_one(struct dmaplane_completion *c)
{
	uint32_t got = 0, waited = 0;
	int ret;

	do {
		ret = dmaplane_reap(fd, ep, c, 1, 1, WAIT_MS, &got);
		waited += WAIT_MS;
	} while (ret == -ETIMEDOUT && waited < PEER_WAIT_MS);
	/* Nothing came: not to be taken for a completion's -ETIMEDOUT. */
	return ret == -ETIMEDOUT ? -ETIME : ret;
}

static int post(struct dmaplane_op op)
{
	return dmaplane_post(fd, ep, &op, 1, NULL);
}

/* Accept (server) or connect (client), then buffers and MRs. */
static void connect_and_register(void)
{
	struct dmaplane_addr a;
	uint32_t lh;

	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", strerror(-fd));
	KTAP_EXPECT_RET(dmaplane_addr_parse(addr, port, &a), 0);
	if (ktap_case_failed())
		return;
	if (serving) {
		KTAP_EXPECT_RET(dmaplane_ep_create(fd, NULL, &lh), 0);
		KTAP_EXPECT_RET(dmaplane_ep_listen(fd, lh, 1, &a), 0);
		KTAP_EXPECT_RET(dmaplane_ep_accept_wait(fd, lh, PEER_WAIT_MS,
							&ep), 0);
	} else {
		KTAP_EXPECT_RET(dmaplane_ep_dial(fd, params, &a, PEER_WAIT_MS,
						 &ep), 0);
	}
	data = gpu ? map_gpu(&data_buf, WINDOW) : map_buffer(&data_buf, WINDOW);
	ctrl = map_buffer(&ctrl_buf, 4096);
	KTAP_EXPECT(data && ctrl, "buffers: %s", strerror(errno));
	if (ktap_case_failed())
		return;
	KTAP_EXPECT_RET(dmaplane_mr_reg(fd, ep, data_buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE |
					(serving ? DMAPLANE_MR_REMOTE_WRITE |
					 DMAPLANE_MR_REMOTE_READ : 0),
					&data_mr, &rkey), 0);
	KTAP_EXPECT_RET(dmaplane_mr_reg(fd, ep, ctrl_buf, 0, 0,
					DMAPLANE_MR_LOCAL_WRITE, &ctrl_mr, NULL),
			0);
	if (serving) {
		land = map_buffer(&land_buf, LANDING);
		KTAP_EXPECT(land, "landing buffer: %s", strerror(errno));
		if (land)
			KTAP_EXPECT_RET(dmaplane_mr_reg(fd, ep, land_buf, 0, 0,
							DMAPLANE_MR_LOCAL_WRITE,
							&land_mr, NULL), 0);
	}
	up = !ktap_case_failed();
}

static bool need_up(void)
{
	if (!up)
		KTAP_EXPECT(0, "no connection");
	return up;
}

/* Server: the window, two receives, the announcement. */
static void serve_window(void)
{
	struct dmaplane_completion c;
	struct announce w = { .magic = MAGIC, .length = WINDOW };

	if (!need_up())
		return;
	fill_pattern(data, WINDOW, SEED_READ);
	memset(land, 0, LANDING);
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 1, .opcode = DMAPLANE_OP_RECV, .mr = land_mr,
		.offset = 0, .length = LANDING }), 0);
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 2, .opcode = DMAPLANE_OP_RECV }), 0);
	w.rkey = rkey;
	memcpy(ctrl + 2048, &w, sizeof(w));
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 3, .opcode = DMAPLANE_OP_SEND, .mr = ctrl_mr,
		.offset = 2048, .length = sizeof(w) }), 0);
	KTAP_EXPECT_RET(wait_one(&c), 0);
	KTAP_EXPECT(c.cookie == 3 && c.status == 0, "announce: cookie %llu status %d",
		    (unsigned long long)c.cookie, c.status);
}

/* Server: the client's SEND, then its WRITEs and the WRITE_WITH_IMM. */
static void serve_check(void)
{
	struct dmaplane_completion c;
	struct verdict v = { .magic = MAGIC };
	size_t bad;

	if (!need_up())
		return;
	KTAP_EXPECT_RET(wait_one(&c), 0);
	bad = pattern_mismatch(land, SEND_LEN, SEED_SEND, 0);
	v.send_ok = c.cookie == 1 && c.status == 0 && c.bytes == SEND_LEN &&
		    bad == SEND_LEN && land[SEND_LEN] == 0;
	KTAP_EXPECT(v.send_ok, "SEND: cookie %llu status %d bytes %u, data differs at %zu",
		    (unsigned long long)c.cookie, c.status, c.bytes, bad);
	KTAP_EXPECT_RET(wait_one(&c), 0);
	v.imm_ok = c.cookie == 2 && c.status == 0 &&
		   c.flags == (DMAPLANE_COMP_IMM | DMAPLANE_COMP_WRITE_IMM) &&
		   c.imm == IMM_DONE;
	KTAP_EXPECT(v.imm_ok, "WRITE_IMM: cookie %llu status %d flags %#x imm %#x",
		    (unsigned long long)c.cookie, c.status, c.flags, c.imm);
	/* The WRITE_IMM came after the WRITEs on the same QP: they are all here. */
	bad = pattern_mismatch(data, WINDOW, SEED_WRITE, 0);
	v.write_ok = bad == WINDOW;
	KTAP_EXPECT(v.write_ok, "window differs from the written pattern at %zu",
		    bad);
	memcpy(ctrl + 2048, &v, sizeof(v));
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 4, .opcode = DMAPLANE_OP_SEND, .mr = ctrl_mr,
		.offset = 2048, .length = sizeof(v) }), 0);
	KTAP_EXPECT_RET(wait_one(&c), 0);
	KTAP_EXPECT(c.cookie == 4 && c.status == 0, "verdict SEND status %d",
		    c.status);
}

/* Client: receives for the announcement and the verdict; the window. */
static void learn_window(void)
{
	struct dmaplane_completion c;

	if (!need_up())
		return;
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 1, .opcode = DMAPLANE_OP_RECV, .mr = ctrl_mr,
		.offset = 0, .length = 64 }), 0);
	KTAP_EXPECT_RET(post((struct dmaplane_op){
		.cookie = 2, .opcode = DMAPLANE_OP_RECV, .mr = ctrl_mr,
		.offset = 64, .length = 64 }), 0);
	KTAP_EXPECT_RET(wait_one(&c), 0);
	memcpy(&window, ctrl, sizeof(window));
	KTAP_EXPECT(c.cookie == 1 && c.status == 0 && c.bytes == sizeof(window) &&
		    window.magic == MAGIC && window.rkey &&
		    window.length == WINDOW,
		    "announcement: status %d bytes %u magic %#x length %llu",
		    c.status, c.bytes, window.magic,
		    (unsigned long long)window.length);
	if (ktap_case_failed())
		up = false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(struct dmaplane_op op)
{
	struct dmaplane_completion c;
	int ret = post(op);

	if (!ret)
		ret = wait_one(&c);
	if (!ret && (c.cookie != op.cookie || c.opcode != op.opcode))
		ret = -EPROTO;
	return ret ? ret : c.status;
}

static void read_integrity(void)
{
	size_t bad;

	if (!need_up())
		return;
	memset(data, 0, WINDOW);
	/* In pieces, unaligned, then whole: every byte of the window. */
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 10, .opcode = DMAPLANE_OP_READ, .mr = data_mr,
		.offset = 0, .length = 4097, .remote_offset = 0,
		.rkey = window.rkey }), 0);
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 11, .opcode = DMAPLANE_OP_READ, .mr = data_mr,
		.offset = 4097, .length = WINDOW - 4097, .remote_offset = 4097,
		.rkey = window.rkey }), 0);
	bad = pattern_mismatch(data, WINDOW, SEED_READ, 0);
	KTAP_EXPECT(bad == WINDOW, "READ data differs at %zu", bad);
}

static void send_integrity(void)
{
	if (!need_up())
		return;
	fill_pattern(data, WINDOW, SEED_SEND);
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 20, .opcode = DMAPLANE_OP_SEND, .mr = data_mr,
		.offset = 0, .length = SEND_LEN }), 0);
}

static void write_integrity(void)
{
	if (!need_up())
		return;
	fill_pattern(data, WINDOW, SEED_WRITE);
	/* Three WRITEs that tile the window, then the marker. */
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 30, .opcode = DMAPLANE_OP_WRITE, .mr = data_mr,
		.offset = 0, .length = 12345, .remote_offset = 0,
		.rkey = window.rkey }), 0);
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 31, .opcode = DMAPLANE_OP_WRITE, .mr = data_mr,
		.offset = 12345, .length = SEND_LEN, .remote_offset = 12345,
		.rkey = window.rkey }), 0);
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 32, .opcode = DMAPLANE_OP_WRITE, .mr = data_mr,
		.offset = 12345 + SEND_LEN,
		.length = WINDOW - 12345 - SEND_LEN,
		.remote_offset = 12345 + SEND_LEN, .rkey = window.rkey }), 0);
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 33, .opcode = DMAPLANE_OP_WRITE_IMM, .imm = IMM_DONE,
		.rkey = window.rkey }), 0);
}

static void server_verdict(void)
{
	struct dmaplane_completion c;
	struct verdict v;

	if (!need_up())
		return;
	KTAP_EXPECT_RET(wait_one(&c), 0);
	memcpy(&v, ctrl + 64, sizeof(v));
	KTAP_EXPECT(c.cookie == 2 && c.status == 0 && v.magic == MAGIC,
		    "verdict: status %d magic %#x", c.status, v.magic);
	KTAP_EXPECT(v.send_ok && v.imm_ok && v.write_ok,
		    "server saw: send %u, write_imm %u, written data %u",
		    v.send_ok, v.imm_ok, v.write_ok);
}

/* Vanishing side: wait for "ready", then take the link away. */
static void vanish(void)
{
	struct dmaplane_completion c;
	char cmd[64];

	if (!need_up())
		return;
	serve_window();
	if (ktap_case_failed())
		return;
	/* serve_window posted two receives: "ready" lands in the first. */
	KTAP_EXPECT_RET(wait_one(&c), 0);
	KTAP_EXPECT(c.cookie == 1 && c.status == 0, "ready: status %d", c.status);
	/* The sim's soft-RoCE rides eth0. */
	snprintf(cmd, sizeof(cmd), "ip link set eth0 down");
	KTAP_EXPECT(system(cmd) == 0, "%s failed", cmd);
	printf("# %s: gone without a disconnect\n", cmd);
	/*
	 * Come back before tearing down: soft-RoCE in 6.1 cannot destroy a
	 * QP of a port whose link is down (it waits for references that
	 * never drop). The other side gives up after about a second of
	 * retries (see outlive_params); a minute is far past that.
	 */
	sleep(60);
	KTAP_EXPECT(system("ip link set eth0 up") == 0, "ip link set eth0 up");
	KTAP_EXPECT_RET(rdma_port_wait_active("rxe0"), 0);
}

/* Outliving side: "ready", then WRITEs until the dead peer is noticed. */
static void dead_peer_detected(void)
{
	struct dmaplane_ep_info info;
	double start;
	int status = 0, n = 0;

	if (!need_up())
		return;
	learn_window();
	if (ktap_case_failed())
		return;
	KTAP_EXPECT_RET(run((struct dmaplane_op){
		.cookie = 40, .opcode = DMAPLANE_OP_SEND }), 0);
	start = now_s();
	while (!status && now_s() - start < 600) {
		status = run((struct dmaplane_op){
			.cookie = 41, .opcode = DMAPLANE_OP_WRITE,
			.mr = data_mr, .length = 65536, .rkey = window.rkey });
		n++;
	}
	KTAP_EXPECT(status == -ETIMEDOUT, "after %d WRITEs: %d (%s)", n, status,
		    ktap_errname(status));
	KTAP_EXPECT_RET(dmaplane_ep_info(fd, ep, &info), 0);
	KTAP_EXPECT(info.error == -ETIMEDOUT, "endpoint error %d", info.error);
	printf("# dead peer reported after %d WRITEs, %.1f s (retry_count %u, ack_timeout %u)\n",
	       n, now_s() - start, outlive_params.retry_count,
	       outlive_params.ack_timeout);
}

/* RoCE v2 on the wire: UDP port 4791, then the base transport header. */
#define ROCE_PORT	4791
#define BTH_LEN		12

struct wire {
	pthread_t thread;
	int sock;
	atomic_bool stop;
	unsigned long packets, reths, outside;
	uint64_t worst_end;	/* the largest VA + length seen */
};

static struct wire wire = { .sock = -1 };

/* RC opcodes that carry an RDMA extended transport header (RETH). */
static bool has_reth(uint8_t opcode)
{
	return opcode == 0x06 || opcode == 0x0a || opcode == 0x0b ||
	       opcode == 0x0c;
}

static void wire_packet(const uint8_t *p, ssize_t n)
{
	const uint8_t *ip = p + ETH_HLEN, *udp, *bth;
	uint64_t va;
	uint32_t len;

	if (n < ETH_HLEN + 20 || p[12] != 0x08 || p[13] != 0x00 || ip[9] != 17)
		return;
	udp = ip + (ip[0] & 0x0f) * 4;
	bth = udp + 8;
	if (bth + BTH_LEN > p + n || (udp[2] << 8 | udp[3]) != ROCE_PORT)
		return;
	wire.packets++;
	if (!has_reth(bth[0]) || bth + BTH_LEN + 16 > p + n)
		return;
	memcpy(&va, bth + BTH_LEN, 8);
	memcpy(&len, bth + BTH_LEN + 12, 4);
	va = be64toh(va);
	len = ntohl(len);
	wire.reths++;
	if (va > WINDOW || len > WINDOW - va)
		wire.outside++;
	if (va + len > wire.worst_end)
		wire.worst_end = va + len;
}

static void *wire_capture(void *arg)
{
	static uint8_t pkt[65536];

	(void)arg;
	while (!atomic_load(&wire.stop)) {
		ssize_t n = recv(wire.sock, pkt, sizeof(pkt), 0);

		if (n > 0)
			wire_packet(pkt, n);
	}
	return NULL;
}

/* Capture the link's RoCE packets (both directions) from now on. */
static void wire_start(void)
{
	struct timeval tv = { .tv_usec = 100 * 1000 };
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = if_nametoindex("eth0"),
	};

	if (!need_up())
		return;
	wire.sock = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	KTAP_EXPECT(wire.sock >= 0 && sll.sll_ifindex &&
		    !setsockopt(wire.sock, SOL_SOCKET, SO_RCVTIMEO, &tv,
				sizeof(tv)) &&
		    !bind(wire.sock, (struct sockaddr *)&sll, sizeof(sll)),
		    "packet socket on eth0: %s", strerror(errno));
	if (!ktap_case_failed())
		KTAP_EXPECT(!pthread_create(&wire.thread, NULL, wire_capture,
					    NULL), "capture thread");
	if (ktap_case_failed() && wire.sock >= 0) {
		close(wire.sock);
		wire.sock = -1;
	}
}

/*
 * Every RDMA address the READs and WRITEs put on the wire is an offset
 * in the peer's window: the zero-based registration at work.
 */
static void wire_carries_no_address(void)
{
	if (wire.sock < 0) {
		KTAP_EXPECT(0, "no capture");
		return;
	}
	atomic_store(&wire.stop, true);
	pthread_join(wire.thread, NULL);
	close(wire.sock);
	wire.sock = -1;
	printf("# %lu RoCE packets, %lu RDMA addresses, highest end %llu of a %u-byte window\n",
	       wire.packets, wire.reths, (unsigned long long)wire.worst_end,
	       WINDOW);
	KTAP_EXPECT(wire.reths >= 5, "only %lu READ/WRITE requests seen",
		    wire.reths);
	KTAP_EXPECT(wire.outside == 0, "%lu RDMA addresses outside the window",
		    wire.outside);
}

static void teardown(void)
{
	if (fd < 0)
		return;
	close(fd);
	fd = -1;
}

static const struct ktap_case server_cases[] = {
	KTAP_CASE(connect_and_register),
	KTAP_CASE(serve_window),
	KTAP_CASE(serve_check),
	KTAP_CASE(teardown),
};

static const struct ktap_case client_cases[] = {
	KTAP_CASE(connect_and_register),
	KTAP_CASE(learn_window),
	KTAP_CASE(wire_start),
	KTAP_CASE(read_integrity),
	KTAP_CASE(send_integrity),
	KTAP_CASE(write_integrity),
	KTAP_CASE(server_verdict),
	KTAP_CASE(wire_carries_no_address),
	KTAP_CASE(teardown),
};

static const struct ktap_case vanish_cases[] = {
	KTAP_CASE(connect_and_register),
	KTAP_CASE(vanish),
	KTAP_CASE(teardown),
};

static const struct ktap_case outlive_cases[] = {
	KTAP_CASE(connect_and_register),
	KTAP_CASE(dead_peer_detected),
	KTAP_CASE(teardown),
};

#define SUITE(name, cases) \
	ktap_run_suite(name, cases, sizeof(cases) / sizeof(cases[0]))

int main(int argc, char **argv)
{
	bool args = argc == 4 || (argc == 5 && !strcmp(argv[4], "--gpu"));
	const char *mode = args ? argv[1] : "";

	addr = args ? argv[2] : NULL;
	port = args ? (uint16_t)strtoul(argv[3], NULL, 0) : 0;
	gpu = argc == 5;
	serving = !strcmp(mode, "--serve") || !strcmp(mode, "--vanish");
	if (!strcmp(mode, "--serve"))
		return SUITE("verbs_pair_serve", server_cases);
	if (!strcmp(mode, "--connect"))
		return SUITE("verbs_pair_connect", client_cases);
	if (!strcmp(mode, "--vanish"))
		return SUITE("verbs_pair_vanish", vanish_cases);
	if (!strcmp(mode, "--outlive")) {
		params = &outlive_params;
		return SUITE("verbs_pair_outlive", outlive_cases);
	}
	fprintf(stderr, "usage: %s --serve|--vanish IP PORT [--gpu] | --connect|--outlive PEER PORT [--gpu]\n",
		argv[0]);
	return 2;
}
