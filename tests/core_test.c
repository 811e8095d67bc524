// SPDX-License-Identifier: GPL-2.0
/*
 * core: the device node, GET_INFO, ECHO, the dispatcher's size/direction
 * rules and the per-file handle table, through the public UAPI.
 * Needs dmaplane.ko loaded and debugfs mounted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdmaplane.h"
#include "ktap.h"
#include "testutil.h"

#define IOWR_SIZED(nr, size) \
	_IOC(_IOC_READ | _IOC_WRITE, DMAPLANE_IOC_MAGIC, (nr), (size))

static int dev_fd = -1;

static long raw_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static void open_device(void)
{
	dev_fd = dmaplane_open();
	KTAP_EXPECT(dev_fd >= 0, "open %s: %s", DMAPLANE_DEV_PATH,
		    ktap_errname(dev_fd));
}

static void info_reports_versions(void)
{
	struct dmaplane_info info;

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(info.uapi_version == DMAPLANE_UAPI_VERSION, "got %u",
		    info.uapi_version);
	KTAP_EXPECT(memchr(info.module_version, '\0',
			   sizeof(info.module_version)) != NULL,
		    "module_version not NUL-terminated");
	KTAP_EXPECT(info.module_version[0] != '\0', "empty module_version");
	printf("# module %s, uapi %u, capabilities 0x%llx\n",
	       info.module_version, info.uapi_version,
	       (unsigned long long)info.capabilities);
}

static void info_numa_nodes_match_sysfs(void)
{
	struct dmaplane_info info;
	int nodes = count_online_nodes();

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(nodes > 0, "reading sysfs: %s", ktap_errname(nodes));
	KTAP_EXPECT((int)info.numa_nodes_online == nodes,
		    "module says %u, sysfs says %d", info.numa_nodes_online,
		    nodes);
	KTAP_EXPECT(info.numa_nodes_possible >= info.numa_nodes_online,
		    "possible %u < online %u", info.numa_nodes_possible,
		    info.numa_nodes_online);
	printf("# numa nodes online: %u\n", info.numa_nodes_online);
}

static void info_rdma_devices_match_sysfs(void)
{
	struct dmaplane_info info;
	int devs = count_rdma_devices();

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(devs >= 0, "reading sysfs: %s", ktap_errname(devs));
	KTAP_EXPECT((int)info.rdma_devices == devs,
		    "module says %u, sysfs says %d", info.rdma_devices, devs);
	printf("# rdma devices: %u\n", info.rdma_devices);
}

static void info_capabilities(void)
{
	struct dmaplane_info info;
	int numa = access("/sys/devices/system/node", F_OK) == 0;

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_BUFFER_PAGES, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_RDMA, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_BUFFER_COHERENT, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_BUFFER_HUGE, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_BUFFER_USER, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_MMAP, "");
	KTAP_EXPECT(info.capabilities & DMAPLANE_CAP_TOPOLOGY, "");
	KTAP_EXPECT(!!(info.capabilities & DMAPLANE_CAP_NUMA) == numa,
		    "NUMA capability disagrees with sysfs");
}

static void info_rejects_unknown_flags(void)
{
	struct dmaplane_info info = { .flags = 1 };

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_GET_INFO, &info),
			-EINVAL);
	info.flags = 1U << 31;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_GET_INFO, &info),
			-EINVAL);
	info.flags = 0;
	info.reserved = 1;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_GET_INFO, &info),
			-EINVAL);
	info.reserved = 0;
	info.reserved2 = 1;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_GET_INFO, &info),
			-EINVAL);
}

static void unknown_command_is_enotty(void)
{
	struct dmaplane_info info = {};
	struct dmaplane_echo echo = {};

	/* A number past the table, one inside it unused, a foreign magic. */
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0xff, 8), &echo),
			-ENOTTY);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x3f, 8), &echo),
			-ENOTTY);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, _IOWR('x', 0, struct dmaplane_info),
				  &info), -ENOTTY);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, FIONREAD, &info), -ENOTTY);
}

static void wrong_direction_is_enotty(void)
{
	struct dmaplane_echo echo = {};

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, _IOR(DMAPLANE_IOC_MAGIC, 0x01,
					       struct dmaplane_echo), &echo),
			-ENOTTY);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, _IOW(DMAPLANE_IOC_MAGIC, 0x01,
					       struct dmaplane_echo), &echo),
			-ENOTTY);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, _IO(DMAPLANE_IOC_MAGIC, 0x01), NULL),
			-ENOTTY);
}

static void short_struct_is_einval(void)
{
	struct dmaplane_echo echo = {};
	struct dmaplane_info info = {};

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x01, 8), &echo), -EINVAL);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x01, 0), &echo), -EINVAL);
	/* GET_INFO's first version ends with module_version. */
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x00,
						     offsetof(struct dmaplane_info,
							      gpu_providers) - 1),
				  &info), -EINVAL);
}

/* A newer caller's longer struct: fine while the extra bytes are zero. */
static void oversized_struct_zero_tail_accepted(void)
{
	struct {
		struct dmaplane_echo echo;
		uint64_t future[4];
	} big = { .echo = { .value = 0x1234, .flags = DMAPLANE_ECHO_INVERT } };

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x01, sizeof(big)), &big),
			0);
	KTAP_EXPECT(big.echo.value == ~0x1234ULL, "got 0x%llx",
		    (unsigned long long)big.echo.value);
	for (int i = 0; i < 4; i++)
		KTAP_EXPECT(big.future[i] == 0, "tail word %d changed", i);
}

static void oversized_struct_nonzero_tail_e2big(void)
{
	struct {
		struct dmaplane_echo echo;
		uint64_t future[4];
	} big = { .echo = { .value = 7 } };

	big.future[3] = 1;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, IOWR_SIZED(0x01, sizeof(big)), &big),
			-E2BIG);
	KTAP_EXPECT(big.echo.value == 7, "struct written on failure");
}

static void bad_pointer_is_efault(void)
{
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_ECHO, (void *)8),
			-EFAULT);
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_GET_INFO, NULL),
			-EFAULT);
}

static void echo_round_trip(void)
{
	const uint64_t v = 0x0123456789abcdefULL;
	uint64_t out = 0;

	KTAP_EXPECT_RET(dmaplane_echo(dev_fd, v, 0, &out), 0);
	KTAP_EXPECT(out == v, "got 0x%llx", (unsigned long long)out);
	KTAP_EXPECT_RET(dmaplane_echo(dev_fd, v, DMAPLANE_ECHO_INVERT, &out),
			0);
	KTAP_EXPECT(out == ~v, "got 0x%llx", (unsigned long long)out);
}

static void echo_rejects_bad_fields(void)
{
	struct dmaplane_echo echo = { .flags = 1U << 1 };

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_ECHO, &echo), -EINVAL);
	echo.flags = 0;
	echo.reserved = 0x80000000;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_ECHO, &echo), -EINVAL);
}

static void buffer_create_destroy(void)
{
	uint32_t handle = 0;
	uint64_t alloc = 0;
	long page = sysconf(_SC_PAGESIZE);

	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 1, DMAPLANE_NUMA_ANY, 0,
					       &handle, &alloc), 0);
	KTAP_EXPECT(handle != 0, "handle 0 is never valid");
	KTAP_EXPECT(alloc == (uint64_t)page, "1 byte rounded to %llu",
		    (unsigned long long)alloc);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, handle), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, handle), -ENOENT);
}

static void buffer_on_every_online_node(void)
{
	struct dmaplane_info info;
	uint32_t handle;
	int nodes = count_online_nodes();

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	/* Node ids are dense in every topology the sim boots. */
	for (int n = 0; n < nodes; n++) {
		KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 1 << 20, n, 0,
						       &handle, NULL), 0);
		if (!ktap_case_failed())
			KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, handle),
					0);
	}
}

static void buffer_rejects_bad_input(void)
{
	struct dmaplane_buffer_create req;
	struct dmaplane_info info;
	uint64_t max = 0;
	uint32_t h;

	KTAP_EXPECT_RET(dmaplane_get_info(dev_fd, &info), 0);
	KTAP_EXPECT_RET(read_u64_file(DMAPLANE_PARAM("max_buffer_size"), &max),
			0);

	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 0, -1, 0, &h, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 1U << 4, &h,
					       NULL), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 1U << 31, &h,
					       NULL), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, max + 1, -1, 0, &h,
					       NULL), -EFBIG);
	/* Would wrap to 0 if the module rounded before checking. */
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, UINT64_MAX, -1, 0, &h,
					       NULL), -EFBIG);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -2, 0, &h, NULL),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096,
					       (int)info.numa_nodes_possible,
					       0, &h, NULL), -EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, 1 << 30, 0, &h,
					       NULL), -EINVAL);

	req = (struct dmaplane_buffer_create){ .size = 4096, .numa_node = -1,
					       .reserved = 1 };
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_BUFFER_CREATE, &req),
			-EINVAL);
}

static void destroy_rejects_bad_input(void)
{
	struct dmaplane_handle_op op = { .handle = 0 };
	uint32_t h;

	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_BUFFER_DESTROY, &op),
			-ENOENT);
	op.handle = UINT32_MAX;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_BUFFER_DESTROY, &op),
			-ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 0, &h, NULL),
			0);
	op.handle = h;
	op.flags = 1;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_BUFFER_DESTROY, &op),
			-EINVAL);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
}

static void handles_are_per_open_file(void)
{
	int other = dmaplane_open();
	uint32_t h = 0, h_other = 0;

	KTAP_EXPECT(other >= 0, "second open: %s", ktap_errname(other));
	if (other < 0)
		return;
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 0, &h, NULL),
			0);
	/* The new file holds nothing, whatever number we try. */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(other, h), -ENOENT);
	KTAP_EXPECT_RET(dmaplane_buffer_create(other, 4096, -1, 0, &h_other,
					       NULL), 0);
	/* Destroying in one file never touches the other's object, even
	 * when both numbers are the same.
	 */
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(other, h_other), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, h), 0);
	close(other);
}

static void handles_not_reused_at_once(void)
{
	uint32_t a = 0, b = 0;

	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 0, &a, NULL),
			0);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, a), 0);
	KTAP_EXPECT_RET(dmaplane_buffer_create(dev_fd, 4096, -1, 0, &b, NULL),
			0);
	KTAP_EXPECT(a != b, "handle %u handed out again", a);
	KTAP_EXPECT_RET(dmaplane_buffer_destroy(dev_fd, b), 0);
}

/* A create whose handle cannot be copied back must leave nothing behind. */
static void failed_copy_out_leaves_no_object(void)
{
	uint64_t before = 0, after = 0;
	void *ro;
	struct dmaplane_buffer_create req = { .size = 4096, .numa_node = -1 };

	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &before), 0);
	/* Readable but not writable: the copy-in works, the copy-out fails. */
	ro = readonly_arg(&req, sizeof(req));
	if (!ro)
		return;
	KTAP_EXPECT_RET(raw_ioctl(dev_fd, DMAPLANE_IOC_BUFFER_CREATE, ro),
			-EFAULT);
	munmap(ro, 4096);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &after), 0);
	KTAP_EXPECT(after == before, "buffers %llu -> %llu",
		    (unsigned long long)before, (unsigned long long)after);
}

static void close_releases_objects(void)
{
	uint64_t before = 0, during = 0, after = 0, bytes = 0;
	int fd = dmaplane_open();
	uint32_t h;

	KTAP_EXPECT(fd >= 0, "open: %s", ktap_errname(fd));
	if (fd < 0)
		return;
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &before), 0);
	for (int i = 0; i < 3; i++)
		KTAP_EXPECT_RET(dmaplane_buffer_create(fd, 1 << 16, -1, 0, &h,
						       NULL), 0);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &during), 0);
	KTAP_EXPECT(during == before + 3, "buffers %llu -> %llu",
		    (unsigned long long)before, (unsigned long long)during);
	close(fd);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffers",
				       &after), 0);
	KTAP_EXPECT(after == before, "buffers after close %llu, before %llu",
		    (unsigned long long)after, (unsigned long long)before);
	KTAP_EXPECT_RET(read_keyed_u64(DMAPLANE_DEBUGFS_INFO, "buffer_bytes",
				       &bytes), 0);
	if (before == 0)
		KTAP_EXPECT(bytes == 0, "%llu bytes still charged",
			    (unsigned long long)bytes);
}

static const struct ktap_case cases[] = {
	KTAP_CASE(open_device),
	KTAP_CASE(info_reports_versions),
	KTAP_CASE(info_numa_nodes_match_sysfs),
	KTAP_CASE(info_rdma_devices_match_sysfs),
	KTAP_CASE(info_capabilities),
	KTAP_CASE(info_rejects_unknown_flags),
	KTAP_CASE(unknown_command_is_enotty),
	KTAP_CASE(wrong_direction_is_enotty),
	KTAP_CASE(short_struct_is_einval),
	KTAP_CASE(oversized_struct_zero_tail_accepted),
	KTAP_CASE(oversized_struct_nonzero_tail_e2big),
	KTAP_CASE(bad_pointer_is_efault),
	KTAP_CASE(echo_round_trip),
	KTAP_CASE(echo_rejects_bad_fields),
	KTAP_CASE(buffer_create_destroy),
	KTAP_CASE(buffer_on_every_online_node),
	KTAP_CASE(buffer_rejects_bad_input),
	KTAP_CASE(destroy_rejects_bad_input),
	KTAP_CASE(handles_are_per_open_file),
	KTAP_CASE(handles_not_reused_at_once),
	KTAP_CASE(failed_copy_out_leaves_no_object),
	KTAP_CASE(close_releases_objects),
};

int main(void)
{
	return ktap_run_suite("core", cases, sizeof(cases) / sizeof(cases[0]));
}
