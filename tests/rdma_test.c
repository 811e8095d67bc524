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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

static int read_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ret = f && fgets(buf, len, f) ? 0 : -ENOENT;

	if (f)
		fclose(f);
	if (!ret)
		buf[strcspn(buf, "\n")] = '\0';
	return ret;
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
		KTAP_EXPECT_RET(read_str(path, val, sizeof(val)), 0);
		KTAP_EXPECT(sscanf(val, "%x:%x:%x:%x", &a, &b, &c, &e) == 4, "");
		guid = (uint64_t)a << 48 | (uint64_t)b << 32 | c << 16 | e;
		KTAP_EXPECT(dev->node_guid == guid, "%s guid %" PRIx64 ", sysfs %s",
			    dev->name, (uint64_t)dev->node_guid, val);
		snprintf(path, sizeof(path), SYSFS_IB "/%s/ports/1/state",
			 de->d_name);
		KTAP_EXPECT_RET(read_str(path, val, sizeof(val)), 0);
		sscanf(val, "%u", &state);
		KTAP_EXPECT(dev->port_state == state, "%s port state %u, sysfs %s",
			    dev->name, dev->port_state, val);
		snprintf(path, sizeof(path), SYSFS_IB "/%s/ports/1/link_layer",
			 de->d_name);
		KTAP_EXPECT_RET(read_str(path, val, sizeof(val)), 0);
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

/* The netdev under @dev, from `rdma link show DEV/1`. */
static int netdev_of(const char *dev, char *netdev, size_t len)
{
	char cmd[128], line[512], *p;
	FILE *f;
	int ret = -ENOENT;

	snprintf(cmd, sizeof(cmd), "rdma link show %s/1 2>/dev/null", dev);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f))
		if ((p = strstr(line, " netdev ")) &&
		    sscanf(p + 8, "%63s", netdev) == 1 && strlen(netdev) < len)
			ret = 0;
	if (f)
		pclose(f);
	return ret;
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

/* Removing a soft-RoCE device drops it from the list; adding it brings it back. */
static void device_removal_is_tracked(void)
{
	char netdev[64], cmd[256], path[256], state[64] = "";
	struct dmaplane_rdma_device *devs = NULL;
	uint32_t n = 0, during = 0, after = 0;
	const char *name = NULL;

	KTAP_EXPECT_RET(dmaplane_rdma_devices(dev_fd, &devs, &n), 0);
	for (uint32_t i = 0; i < n && !name; i++)
		if (!strncmp(devs[i].name, "rxe", 3))
			name = devs[i].name;
	if (!name || netdev_of(name, netdev, sizeof(netdev))) {
		ktap_skip("no soft-RoCE device (guests get one with --rxe)");
		free(devs);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rdma link delete %s", name);
	KTAP_EXPECT(system(cmd) == 0, "%s failed", cmd);
	KTAP_EXPECT(!listed(name, &during), "%s still listed after delete",
		    name);
	KTAP_EXPECT(during == n - 1, "%u devices after delete, was %u", during,
		    n);
	snprintf(cmd, sizeof(cmd), "rdma link add %s type rxe netdev %s", name,
		 netdev);
	KTAP_EXPECT(system(cmd) == 0, "%s failed", cmd);
	KTAP_EXPECT(listed(name, &after), "%s not listed after add", name);
	KTAP_EXPECT(after == n, "%u devices after add, was %u", after, n);
	/* Leave it as it was found: up, for whatever runs next. */
	snprintf(path, sizeof(path), SYSFS_IB "/%s/ports/1/state", name);
	for (int i = 0; i < 300 && !strstr(state, "ACTIVE"); i++) {
		read_str(path, state, sizeof(state));
		usleep(100 * 1000);
	}
	KTAP_EXPECT(strstr(state, "ACTIVE"), "%s port %s after re-add", name,
		    state);
	printf("# %s on %s: deleted and added back\n", name, netdev);
	free(devs);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_device),
	KTAP_CASE(devices_match_sysfs),
	KTAP_CASE(devices_rejects_bad_input),
	KTAP_CASE(device_removal_is_tracked),
};

int main(void)
{
	return ktap_run_suite("rdma", cases, sizeof(cases) / sizeof(cases[0]));
}
