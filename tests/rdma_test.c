// SPDX-License-Identifier: GPL-2.0
/*
 * rdma: the RDMA device registry. RDMA_DEVICES against sysfs, its bad
 * inputs, and a device removed and added back (`rdma link delete/add`)
 * leaving and re-entering the list. Guests without an RDMA device check
 * that the list is empty; the hotplug case needs a soft-RoCE device.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define SYSFS_IB "/sys/class/infiniband"

static int dev_fd = -1;

static void open_device(void)
{
	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open: %s", ktap_errname(dev_fd));
}

static const struct dmaplane_rdma_device *
find(const struct dmaplane_rdma_device *devs, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(devs[i].name, name))
			return &devs[i];
	return NULL;
}

/* Every device sysfs knows, with its GUID and port 1 state; nothing more. */
static void devices_match_sysfs(void)
{
	struct dmaplane_rdma_device *devs = NULL;
	struct dmaplane_info info;
	char path[512], val[128];
	struct dirent *de;
	uint32_t n = 0;
	int seen = 0;
	DIR *d;

	KTAP_EXPECT_RET(dmaplane_rdma_devices(dev_fd, &devs, &n), 0);
	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(n == info.rdma_devices, "%u listed, GET_INFO says %u", n,
		    info.rdma_devices);
	d = opendir(SYSFS_IB);
	while (d && (de = readdir(d))) {
		const struct dmaplane_rdma_device *dev;
		unsigned int a, b, c, e, state = 0;
		uint64_t guid;

		if (de->d_name[0] == '.')
			continue;
		seen++;
		dev = find(devs, n, de->d_name);
		KTAP_EXPECT(dev, "%s not listed", de->d_name);
		if (!dev)
			continue;
		snprintf(path, sizeof(path), SYSFS_IB "/%s/node_guid",
			 de->d_name);
		KTAP_EXPECT_RET(read_first_line(path, val, sizeof(val)), 0);
		KTAP_EXPECT(sscanf(val, "%x:%x:%x:%x", &a, &b, &c, &e) == 4, "");
		guid = (uint64_t)a << 48 | (uint64_t)b << 32 | c << 16 | e;
		KTAP_EXPECT(dev->node_guid == guid, "%s guid %" PRIx64 ", sysfs %s",
			    dev->name, (uint64_t)dev->node_guid, val);
		snprintf(path, sizeof(path), SYSFS_IB "/%s/ports/1/state",
			 de->d_name);
		KTAP_EXPECT_RET(read_first_line(path, val, sizeof(val)), 0);
		sscanf(val, "%u", &state);
		KTAP_EXPECT(dev->port_state == state, "%s port state %u, sysfs %s",
			    dev->name, dev->port_state, val);
		snprintf(path, sizeof(path), SYSFS_IB "/%s/ports/1/link_layer",
			 de->d_name);
		KTAP_EXPECT_RET(read_first_line(path, val, sizeof(val)), 0);
		KTAP_EXPECT(dev->port_link_layer == (strcmp(val, "Ethernet") ? 1U : 2U),
			    "%s link layer %u, sysfs %s", dev->name,
			    dev->port_link_layer, val);
		KTAP_EXPECT(dev->phys_port_cnt >= 1 && dev->max_mr_size > 0 &&
			    dev->max_qp_wr > 0 && dev->max_cqe > 0,
			    "%s limits look empty", dev->name);
		printf("# %s: index %u, guid %016" PRIx64 ", mtu %u, max_qp_wr %u, max_mr_size %" PRIu64 "\n",
		       dev->name, dev->index, (uint64_t)dev->node_guid,
		       dev->port_active_mtu, dev->max_qp_wr,
		       (uint64_t)dev->max_mr_size);
	}
	if (d)
		closedir(d);
	KTAP_EXPECT((uint32_t)seen == n, "%u listed, sysfs has %d", n, seen);
	free(devs);
}

static long devices_ioctl(struct dmaplane_rdma_devices *req)
{
	return ioctl(dev_fd, DMAPLANE_IOC_RDMA_DEVICES, req) ? -errno : 0;
}

static void devices_rejects_bad_input(void)
{
	struct dmaplane_rdma_devices req = { .flags = 1 };
	struct dmaplane_rdma_device one[2];

	KTAP_EXPECT_RET(devices_ioctl(&req), -EINVAL);
	req = (struct dmaplane_rdma_devices){ .reserved = 1 };
	KTAP_EXPECT_RET(devices_ioctl(&req), -EINVAL);
	req = (struct dmaplane_rdma_devices){ .devices_len = 1 };
	KTAP_EXPECT_RET(devices_ioctl(&req), -EINVAL);
	req = (struct dmaplane_rdma_devices){ .devices_len = 1,
					      .devices_ptr = 8 };
	KTAP_EXPECT_RET(devices_ioctl(&req), count_rdma_devices() ? -EFAULT : 0);
	/* One entry asked for: at most one written, the count in full. */
	memset(one, 0xff, sizeof(one));
	req = (struct dmaplane_rdma_devices){ .devices_len = 1,
					      .devices_ptr = (uintptr_t)one };
	KTAP_EXPECT_RET(devices_ioctl(&req), 0);
	KTAP_EXPECT((int)req.nr_devices == count_rdma_devices(), "count %u",
		    req.nr_devices);
	KTAP_EXPECT(one[1].index == 0xffffffff, "wrote past devices_len");
}

static bool listed(const char *name, uint32_t *count)
{
	struct dmaplane_rdma_device *devs = NULL;
	bool found;

	KTAP_EXPECT_RET(dmaplane_rdma_devices(dev_fd, &devs, count), 0);
	found = devs && find(devs, *count, name);
	free(devs);
	return found;
}

/* This guest's address (soft-RoCE runs on its eth0), or NULL: skip. */
static const char *rdma_ip(void)
{
	const char *ip = getenv("DP_GUEST_IP");

	if (!ip || count_rdma_devices() <= 0) {
		ktap_skip("no RDMA device and guest address (guests get soft-RoCE with --rxe)");
		return NULL;
	}
	return ip;
}

static uint64_t endpoints(void)
{
	return dmaplane_counter("endpoints");
}

static long ep_ioctl(unsigned long cmd, void *arg)
{
	return ioctl(dev_fd, cmd, arg) ? -errno : 0;
}

static void endpoint_rejects_bad_input(void)
{
	struct dmaplane_ep_create bad;
	struct dmaplane_ep_info info;
	struct dmaplane_addr a = { .family = 99 };
	uint32_t h = 0, buf = 0;

#define EXPECT_EP_CREATE(change)					\
	do {								\
		bad = (struct dmaplane_ep_create){ 0 };			\
		change;							\
		KTAP_EXPECT_RET(ep_ioctl(DMAPLANE_IOC_ENDPOINT_CREATE, &bad), \
				-EINVAL);				\
	} while (0)
	EXPECT_EP_CREATE(bad.flags = (uint32_t)~DMAPLANE_EP_CREATE_VALID_FLAGS);
	EXPECT_EP_CREATE(bad.reserved = 1);
	EXPECT_EP_CREATE(bad.reserved2 = 1);
	/* Credits: a window within the receive queue, low < window >= high */
	EXPECT_EP_CREATE(bad.credit_window = DMAPLANE_EP_DEPTH_DEFAULT + 1);
	EXPECT_EP_CREATE(bad.recv_depth = 8; bad.credit_window = 9);
	EXPECT_EP_CREATE(bad.credit_window = 8; bad.credit_low = 8);
	EXPECT_EP_CREATE(bad.credit_window = 8; bad.credit_high = 9);
	EXPECT_EP_CREATE(bad.credit_low = DMAPLANE_EP_DEPTH_DEFAULT);
	EXPECT_EP_CREATE(bad.send_depth = DMAPLANE_EP_DEPTH_MAX + 1);
	EXPECT_EP_CREATE(bad.recv_depth = DMAPLANE_EP_DEPTH_MAX + 1);
	EXPECT_EP_CREATE(bad.timeout_ms = DMAPLANE_EP_TIMEOUT_MAX_MS + 1);
	EXPECT_EP_CREATE(bad.retry_count = 8);
	EXPECT_EP_CREATE(bad.rnr_retry_count = 8);
	EXPECT_EP_CREATE(bad.ack_timeout = DMAPLANE_EP_ACK_TIMEOUT_MAX + 1);
#undef EXPECT_EP_CREATE
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, h, &info), 0);
	KTAP_EXPECT(info.state == DMAPLANE_EP_IDLE && info.error == 0 &&
		    info.send_depth == DMAPLANE_EP_DEPTH_DEFAULT &&
		    info.recv_depth == DMAPLANE_EP_DEPTH_DEFAULT &&
		    info.qp_num == 0 && info.device_index == -1,
		    "new endpoint: state %u error %d depths %u/%u qp %u dev %d",
		    info.state, info.error, info.send_depth, info.recv_depth,
		    info.qp_num, info.device_index);
	/* Flow control is on by default, over the whole receive queue. */
	KTAP_EXPECT(info.flags == DMAPLANE_EP_INFO_CREDITS &&
		    info.credit_window == DMAPLANE_EP_DEPTH_DEFAULT &&
		    !info.credits && !info.peer_credits && !info.queued &&
		    !info.inflight && !info.stalls && !info.stall_ns,
		    "new endpoint: flags 0x%x window %u credits %u/%u queued %u inflight %u stalls %llu",
		    info.flags, info.credit_window, info.credits,
		    info.peer_credits, info.queued, info.inflight,
		    (unsigned long long)info.stalls);
	/* Bad listens and connects leave it idle and usable. */
	KTAP_EXPECT_RET(dmaplane_ep_listen(dev_fd, h, 0, &a), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_listen(dev_fd, h, 16, &a), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_connect(dev_fd, h, &a, 0), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_addr_parse("127.0.0.1", 1, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_connect(dev_fd, h, &a,
					    DMAPLANE_EP_TIMEOUT_MAX_MS + 1),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, h, 1, &buf, NULL), -EINVAL);
	{
		struct dmaplane_ep_accept acc = { .handle = h, .reserved = 1 };
		struct dmaplane_handle_op op = { .handle = h, .flags = 1 };

		KTAP_EXPECT_RET(ep_ioctl(DMAPLANE_IOC_ENDPOINT_ACCEPT, &acc),
				-EINVAL);
		KTAP_EXPECT_RET(ep_ioctl(DMAPLANE_IOC_ENDPOINT_DESTROY, &op),
				-EINVAL);
	}
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, h, &info), 0);
	KTAP_EXPECT(info.state == DMAPLANE_EP_IDLE, "state %u", info.state);
	/* Handles are typed: a buffer is not an endpoint, nor the reverse. */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 0, &buf, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, buf), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_ep_info(dev_fd, buf, &info), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, buf), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), -ENOENT);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
		    (unsigned long long)endpoints());
}

/* A listener on this guest's address; *port gets the bound port. */
static uint32_t listen_on(const char *ip, uint16_t *port)
{
	struct dmaplane_addr a;
	uint32_t h = 0;

	KTAP_EXPECT_RET(dmaplane_addr_parse(ip, 0, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_listen(dev_fd, h, 16, &a), 0);
	KTAP_EXPECT(a.port != 0, "no port bound");
	*port = a.port;
	return h;
}

static struct dmaplane_ep_info ep_info(int fd, uint32_t h)
{
	struct dmaplane_ep_info info;

	KTAP_EXPECT_RET(dmaplane_ep_info(fd, h, &info), 0);
	return info;
}

/*
 * A child process connects to (@ip, @port) and reports on @report: 'c'
 * when connected; then it waits for @go and polls its endpoint until it
 * leaves CONNECTED, and exits 0 when the error is @want1 or @want2. It
 * closes its copy of @parent_fd first.
 */
static pid_t connector(const char *ip, uint16_t port, int report, int go,
		       int want1, int want2, int parent_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct dmaplane_ep_info info;
		struct dmaplane_addr a;
		int fd = dmaplane_open();
		uint32_t h;
		char c;

		/* The parent's file must close when the parent closes it. */
		if (parent_fd >= 0)
			close(parent_fd);
		if (fd < 0 || dmaplane_ep_create(fd, NULL, &h) ||
		    dmaplane_addr_parse(ip, port, &a))
			_exit(2);
		if (dmaplane_ep_connect(fd, h, &a, 20000))
			_exit(3);
		if (write(report, "c", 1) != 1 || read(go, &c, 1) != 1)
			_exit(4);
		for (int i = 0; i < 300; i++) {
			if (dmaplane_ep_info(fd, h, &info))
				_exit(5);
			if (info.state != DMAPLANE_EP_CONNECTED)
				_exit(info.error == want1 || info.error == want2 ?
				      0 : 6);
			usleep(100 * 1000);
		}
		_exit(7);
	}
	return pid;
}

/*
 * A request whose connecting side gave up (its connect timed out and its
 * process exited, so its CM rejected) before ENDPOINT_ACCEPT: the accept
 * says -ECONNABORTED, and the listener goes on listening.
 */
static void accept_after_peer_gave_up(void)
{
	const char *ip = rdma_ip();
	uint32_t lh, child = 0;
	uint16_t port = 0;
	pid_t pid;

	if (!ip)
		return;
	lh = listen_on(ip, &port);
	pid = fork();
	if (pid == 0) {
		struct dmaplane_addr a;
		int fd = dmaplane_open();
		uint32_t h;

		if (fd < 0 || dmaplane_ep_create(fd, NULL, &h) ||
		    dmaplane_addr_parse(ip, port, &a))
			_exit(2);
		/* Nobody accepts: it times out, and its exit rejects. */
		_exit(dmaplane_ep_connect(fd, h, &a, 1000) == -ETIMEDOUT ?
		      0 : 3);
	}
	KTAP_EXPECT(child_exited_ok(pid), "connecting child failed");
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, 20000, &child, NULL),
			-ECONNABORTED);
	KTAP_EXPECT(ep_info(dev_fd, lh).state == DMAPLANE_EP_LISTENING,
		    "listener state %u", ep_info(dev_fd, lh).state);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
		    (unsigned long long)endpoints());
}

/* Loopback: listen, connect from another process, accept, disconnect. */
static void loopback_connect_accept(void)
{
	const char *ip = rdma_ip();
	struct dmaplane_ep_info info;
	struct dmaplane_addr peer;
	int report[2], go[2];
	uint32_t lh, ch = 0;
	uint16_t port = 0;
	char c = 0;
	pid_t pid;

	if (!ip)
		return;
	lh = listen_on(ip, &port);
	info = ep_info(dev_fd, lh);
	KTAP_EXPECT(info.state == DMAPLANE_EP_LISTENING &&
		    info.local.port == port, "listener state %u port %u",
		    info.state, info.local.port);
	KTAP_EXPECT_RET(pipe(report), 0);
	KTAP_EXPECT_RET(pipe(go), 0);
	pid = connector(ip, port, report[1], go[0], -ECONNRESET, -ECONNRESET,
			-1);
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, 20000, &ch, &peer), 0);
	KTAP_EXPECT(read(report[0], &c, 1) == 1 && c == 'c',
		    "the connecting side did not connect");
	info = ep_info(dev_fd, ch);
	KTAP_EXPECT(info.state == DMAPLANE_EP_CONNECTED && info.qp_num != 0 &&
		    info.device_index >= 0 && info.local.port == port,
		    "accepted: state %u qp %u device %d port %u", info.state,
		    info.qp_num, info.device_index, info.local.port);
	KTAP_EXPECT(peer.family == info.peer.family && peer.port &&
		    !memcmp(peer.addr, info.peer.addr, 16) &&
		    !memcmp(peer.addr, info.local.addr, 4),
		    "peer address not this guest's");
	printf("# connected on %s:%u, qp %u\n", ip, port, info.qp_num);
	/* Our side goes: the peer sees the disconnect. */
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, ch), 0);
	KTAP_EXPECT(write(go[1], "d", 1) == 1, "");
	child_exited_ok(pid);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);
	close(report[0]);
	close(report[1]);
	close(go[0]);
	close(go[1]);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
		    (unsigned long long)endpoints());
}

static void connect_failures_are_reported(void)
{
	const char *ip = rdma_ip();
	struct dmaplane_ep_info info;
	struct dmaplane_addr a;
	uint16_t port = 0;
	uint32_t lh, child, h = 0;
	long ret;

	if (!ip)
		return;
	lh = listen_on(ip, &port);
	/* A second listener there is refused; it never listened. */
	KTAP_EXPECT_RET(dmaplane_addr_parse(ip, port, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_listen(dev_fd, h, 16, &a), -EADDRINUSE);
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, h, 1, &child, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);
	/* A port that was just released: nobody listens there. */
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
	KTAP_EXPECT_RET(dmaplane_ep_connect(dev_fd, h, &a, 10000),
			-ECONNREFUSED);
	info = ep_info(dev_fd, h);
	KTAP_EXPECT(info.state == DMAPLANE_EP_ERROR &&
		    info.error == -ECONNREFUSED, "state %u error %d",
		    info.state, info.error);
	/* A failed endpoint is not reused, nor taken for a listener. */
	KTAP_EXPECT_RET(dmaplane_ep_connect(dev_fd, h, &a, 10000), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, h, 1, &child, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);

	/* Nobody at this address on the link: resolution gives up. */
	KTAP_EXPECT_RET(dmaplane_addr_parse("10.77.0.250", 4791, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
	ret = dmaplane_ep_connect(dev_fd, h, &a, 2000);
	KTAP_EXPECT(ret == -EHOSTUNREACH || ret == -ETIMEDOUT ||
		    ret == -ENETUNREACH, "unreachable peer: %s",
		    ktap_errname(ret));
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
		    (unsigned long long)endpoints());
}

/*
 * Only dmaplane endpoints connect: a plain rdma_cm client (rping) is
 * refused by a dmaplane listener, and a dmaplane connect to a plain
 * rdma_cm server fails with -EPROTO. Both are counted.
 */
static void foreign_peers_refused(void)
{
	const char *ip = rdma_ip();
	uint64_t refused = dmaplane_counter("handshakes_refused");
	struct dmaplane_addr a;
	char cmd[192];
	uint16_t port = 0;
	uint32_t lh, h = 0, ch;
	pid_t pid;

	if (!ip)
		return;
	lh = listen_on(ip, &port);
	snprintf(cmd, sizeof(cmd),
		 "timeout 60 rping -c -a %s -p %u -C 1 >/dev/null 2>&1", ip,
		 port);
	KTAP_EXPECT(system(cmd) != 0, "rping connected to a dmaplane listener");
	KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, 100, &ch, NULL),
			-ETIMEDOUT);
	KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);

	/* An rping server on the port just released. */
	pid = fork();
	if (pid == 0) {
		char p[8];

		snprintf(p, sizeof(p), "%u", port);
		execlp("timeout", "timeout", "60", "rping", "-s", "-a", ip, "-p",
		       p, "-C", "1", (char *)NULL);
		_exit(127);
	}
	KTAP_EXPECT_RET(dmaplane_addr_parse(ip, port, &a), 0);
	for (int i = 0; i < 100; i++) {
		long ret;

		KTAP_EXPECT_RET(dmaplane_ep_create(dev_fd, NULL, &h), 0);
		ret = dmaplane_ep_connect(dev_fd, h, &a, 10000);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, h), 0);
		if (ret != -ECONNREFUSED) {	/* rping is up */
			KTAP_EXPECT_RET(ret, -EPROTO);
			break;
		}
		usleep(100 * 1000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	KTAP_EXPECT(dmaplane_counter("handshakes_refused") >= refused + 2,
		    "handshakes_refused %llu, was %llu",
		    (unsigned long long)dmaplane_counter("handshakes_refused"),
		    (unsigned long long)refused);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
		    (unsigned long long)endpoints());
}

/* Closing the file releases listeners, pending and connected endpoints. */
static void close_releases_endpoints(void)
{
	const char *ip = rdma_ip();
	int fd, report[2], go[2];
	struct dmaplane_addr a;
	uint32_t lh, ch;
	char c;
	pid_t pid;

	if (!ip)
		return;
	fd = dmaplane_open();
	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_addr_parse(ip, 0, &a), 0);
	KTAP_EXPECT_RET(dmaplane_ep_create(fd, NULL, &lh), 0);
	KTAP_EXPECT_RET(dmaplane_ep_listen(fd, lh, 16, &a), 0);
	KTAP_EXPECT_RET(pipe(report), 0);
	KTAP_EXPECT_RET(pipe(go), 0);
	pid = connector(ip, a.port, report[1], go[0], -ECONNRESET, -ECONNRESET,
			fd);
	KTAP_EXPECT_RET(dmaplane_ep_accept(fd, lh, 20000, &ch, NULL), 0);
	KTAP_EXPECT(read(report[0], &c, 1) == 1, "");
	close(fd);
	KTAP_EXPECT(write(go[1], "d", 1) == 1, "");
	child_exited_ok(pid);
	KTAP_EXPECT(endpoints() == 0, "%llu endpoints left after close",
		    (unsigned long long)endpoints());
	close(report[0]);
	close(report[1]);
	close(go[0]);
	close(go[1]);
}

/*
 * Removing a soft-RoCE device with a connection and a listener on it:
 * every endpoint on it fails with -ENODEV, the device leaves the list;
 * adding it back brings it back.
 */
static void device_removal_is_tracked(void)
{
	char netdev[64], cmd[256], c;
	struct dmaplane_rdma_device *devs = NULL;
	uint32_t n = 0, during = 0, after = 0, lh = 0, ch = 0, again;
	int report[2] = { -1, -1 }, go[2] = { -1, -1 };
	const char *name = NULL, *ip;
	uint16_t port = 0;
	pid_t pid = -1;

	KTAP_EXPECT_RET(dmaplane_rdma_devices(dev_fd, &devs, &n), 0);
	for (uint32_t i = 0; i < n && !name; i++)
		if (!strncmp(devs[i].name, "rxe", 3))
			name = devs[i].name;
	if (!name || rdma_netdev_of(name, netdev, sizeof(netdev))) {
		ktap_skip("no soft-RoCE device (guests get one with --rxe)");
		free(devs);
		return;
	}
	/* A live connection on it (loopback), and a listener. */
	ip = getenv("DP_GUEST_IP");
	if (ip) {
		lh = listen_on(ip, &port);
		KTAP_EXPECT_RET(pipe(report), 0);
		KTAP_EXPECT_RET(pipe(go), 0);
		/*
		 * Both ends are on the device: whichever end hears of the
		 * removal first disconnects, so the other may end with the
		 * disconnect (-ECONNRESET) before its own removal event.
		 */
		pid = connector(ip, port, report[1], go[0], -ENODEV,
				-ECONNRESET, -1);
		KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, 20000, &ch, NULL),
				0);
		KTAP_EXPECT(read(report[0], &c, 1) == 1, "");
	}
	snprintf(cmd, sizeof(cmd), "rdma link delete %s", name);
	KTAP_EXPECT(system(cmd) == 0, "%s failed", cmd);
	if (ip) {
		/* Every endpoint on the device ends, with -ENODEV or its peer's disconnect: nothing hangs. */
		KTAP_EXPECT(write(go[1], "d", 1) == 1, "");
		child_exited_ok(pid);
		for (int i = 0; i < 300 && !ep_info(dev_fd, ch).error; i++)
			usleep(100 * 1000);
		KTAP_EXPECT((ep_info(dev_fd, ch).error == -ENODEV ||
			     ep_info(dev_fd, ch).error == -ECONNRESET) &&
			    ep_info(dev_fd, lh).error == -ENODEV,
			    "after removal: accepted %d, listener %d",
			    ep_info(dev_fd, ch).error, ep_info(dev_fd, lh).error);
		/* The listener says why it no longer accepts. */
		KTAP_EXPECT_RET(dmaplane_ep_accept(dev_fd, lh, 1, &again, NULL),
				-ENODEV);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, ch), 0);
		KTAP_EXPECT_RET(dmaplane_ep_destroy(dev_fd, lh), 0);
		KTAP_EXPECT(endpoints() == 0, "%llu endpoints left",
			    (unsigned long long)endpoints());
		for (int i = 0; i < 4; i++)
			close(i < 2 ? report[i] : go[i - 2]);
	}
	KTAP_EXPECT(!listed(name, &during), "%s still listed after delete",
		    name);
	KTAP_EXPECT(during == n - 1, "%u devices after delete, was %u", during,
		    n);
	/* Leave it as it was found: up, for whatever runs next. */
	KTAP_EXPECT_RET(rxe_link_add(name, netdev), 0);
	KTAP_EXPECT(listed(name, &after), "%s not listed after add", name);
	KTAP_EXPECT(after == n, "%u devices after add, was %u", after, n);
	printf("# %s on %s: deleted and added back\n", name, netdev);
	free(devs);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_device),
	KTAP_CASE(devices_match_sysfs),
	KTAP_CASE(devices_rejects_bad_input),
	KTAP_CASE(endpoint_rejects_bad_input),
	KTAP_CASE(loopback_connect_accept),
	KTAP_CASE(accept_after_peer_gave_up),
	KTAP_CASE(connect_failures_are_reported),
	KTAP_CASE(foreign_peers_refused),
	KTAP_CASE(close_releases_endpoints),
	KTAP_CASE(device_removal_is_tracked),
};

int main(void)
{
	return ktap_run_suite("rdma", cases, sizeof(cases) / sizeof(cases[0]));
}
