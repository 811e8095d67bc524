// SPDX-License-Identifier: GPL-2.0
/*
 * What the spec cannot say: per-command hooks (the resources a call makes
 * or consumes, the rules that tie fields to objects, the checks of its
 * results), and every operation that is not one ioctl: mmap and what can
 * be done to a mapping, dma-buf and eventfd fds, loopback connections and
 * traffic over them, fork, close and reopen, debugfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/dmaplane.h>
#include <linux/udmabuf.h>

#include "dpfuzz.h"

#define PAGE		((uint64_t)4096)
#define MMAP_SHIFT	40	/* DMAPLANE_MMAP_SHIFT, checked by the spec */
#define UDMABUF_MAX_PAGES 16	/* 64 KiB: new_foreign() says why */

/* Limits of what one process keeps alive at once. */
static const int res_limit[R_NTYPES] = {
	[R_BUFFER] = 160, [R_ENDPOINT] = 40, [R_MR] = 96, [R_DMABUF] = 48,
	[R_EVENTFD] = 16, [R_MAPPING] = 160, [R_UREGION] = 48,
};

static const char *const op_names[OP_NR] = {
	[OP_MMAP] = "mmap", [OP_MUNMAP] = "munmap", [OP_MREMAP] = "mremap",
	[OP_MPROTECT] = "mprotect", [OP_MADVISE] = "madvise",
	[OP_TOUCH] = "touch", [OP_DMABUF_MMAP] = "dmabuf-mmap",
	[OP_DMABUF_SYNC] = "dmabuf-ioctl", [OP_DMABUF_MISC] = "dmabuf-misc",
	[OP_DMABUF_CLOSE] = "dmabuf-close", [OP_EVENTFD_NEW] = "eventfd-new",
	[OP_EVENTFD_IO] = "eventfd-io", [OP_EVENTFD_CLOSE] = "eventfd-close",
	[OP_CONNECT_PAIR] = "connect-pair", [OP_TRAFFIC] = "traffic",
	[OP_FORK] = "fork", [OP_REOPEN] = "close-reopen",
	[OP_DEBUGFS] = "debugfs", [OP_UREGION] = "user-region",
};

const char *op_name(int op)
{
	return op >= 0 && op < OP_NR ? op_names[op] : "?";
}

static int slot(int op)
{
	return g.spec.ncmd + op;
}

static int full(int type)
{
	int n;

	pool_lock();
	n = g.nres[type];
	pool_unlock();
	return n >= res_limit[type];
}

/* The live res of handle @h of @type on @dev, or -1. Locked by caller. */
static int find_handle(int dev, int type, uint32_t h)
{
	int i;

	if (dev < 0)
		return -1;
	for (i = 0; i < MAX_RES; i++)
		if (g.res[i].type == type && g.res[i].dev == dev &&
		    g.res[i].devgen == g.dev[dev].gen && g.res[i].handle == h)
			return i;
	return -1;
}

static int out_has(const struct call *c, const char *name)
{
	const struct spec_field *f = cf(c, name);
	unsigned int n = c->usize < c->ksize ? c->usize : c->ksize;

	return c->out_valid && f && f->off + f->size <= n;
}

static void bad(struct tstate *t, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bad(struct tstate *t, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	finding(t, 1, key, "%s", msg);
}

static int own_kind(int kind)
{
	return kind == BK_PAGES || kind == BK_HUGE || kind == BK_COHERENT ||
	       kind == BK_USER;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* ---- hooks ---- */

static void echo_post(struct call *c)
{
	uint64_t in, out, flags;

	if (c->ret || !out_has(c, "value") || !out_has(c, "flags"))
		return;
	in = fget_in(c, "value");
	flags = fget_in(c, "flags");
	out = fget_out(c, "value");
	if (out != ((flags & 1) ? ~in : in))
		bad(c->t, "echo", "ECHO of 0x%" PRIx64 " (flags 0x%" PRIx64 ") returned 0x%" PRIx64,
		    in, flags, out);
}

static void create_pre(struct call *c)
{
	uint64_t flags = fget(c, "flags"), size = fget(c, "size");
	int i;

	c->aux = -1;
	if (!(flags & DMAPLANE_BUF_USER) || fget(c, "user_addr") ||
	    c->bad_field == spec_field_index(c->st, "user_addr"))
		return;
	if (size > g.o.mem_budget || full(R_UREGION))
		return;
	if (rchance(c->r, 10)) {
		/* pin pages of a dmaplane or dma-buf mapping: may fail */
		i = res_pick(c->r, R_MAPPING, NULL, NULL, 1);
		if (i >= 0) {
			call_checkout(c, i);
			fset(c, "user_addr", (uint64_t)(uintptr_t)g.res[i].addr);
			return;
		}
	}
	{
		size_t len = round_up(size ? size : 1, PAGE);
		int prot = rchance(c->r, 5) ? PROT_READ : PROT_READ | PROT_WRITE;
		void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return;
		if (rchance(c->r, 50))
			memset(p, 0x11, prot & PROT_WRITE ? len : 0);
		pool_lock();
		i = res_new(R_UREGION);
		if (i >= 0) {
			g.res[i].addr = p;
			g.res[i].size = len;
			g.res[i].busy = 1;
			g.res[i].owner = c->t->id;
		}
		pool_unlock();
		if (i < 0) {
			munmap(p, len);
			return;
		}
		c->aux = i;
		fset(c, "user_addr", (uint64_t)(uintptr_t)p +
		     (rchance(c->r, 3) ? 1 : 0));
	}
}

static void create_classify(struct call *c)
{
	uint64_t flags = fget_in(c, "flags"), size = fget_in(c, "size");
	int64_t max = spec_param(&g.spec, "max_buffer_size");

	if ((flags & DMAPLANE_BUF_KIND_MASK) == DMAPLANE_BUF_COHERENT &&
	    size > DMAPLANE_COHERENT_MAX)
		must(c, "size: %" PRIu64 " over the coherent limit", size);
	if ((flags & DMAPLANE_BUF_KIND_MASK) == DMAPLANE_BUF_HUGE &&
	    size <= (uint64_t)max && round_up(size, DMAPLANE_HUGE_CHUNK) > (uint64_t)max)
		must(c, "size: %" PRIu64 " rounds over max_buffer_size", size);
	if ((int32_t)fget_in(c, "numa_node") == -1 &&
	    (flags & DMAPLANE_BUF_NUMA_STRICT))
		must(c, "numa_node: strict without a node");
}

static int kind_of_flags(uint64_t flags)
{
	switch (flags & DMAPLANE_BUF_KIND_MASK) {
	case DMAPLANE_BUF_COHERENT: return BK_COHERENT;
	case DMAPLANE_BUF_HUGE: return BK_HUGE;
	case DMAPLANE_BUF_USER: return BK_USER;
	default: return BK_PAGES;
	}
}

static void add_buffer(struct call *c, uint32_t h, uint64_t size, uint32_t flags,
		       int kind, int node)
{
	int i;

	if (!h || c->dev < 0)
		return;
	pool_lock();
	i = res_new(R_BUFFER);
	if (i >= 0) {
		g.res[i].dev = c->dev;
		g.res[i].devgen = g.dev[c->dev].gen;
		g.res[i].handle = h;
		g.res[i].size = size;
		g.res[i].flags = flags;
		g.res[i].kind = kind;
		g.res[i].node = node;
	}
	if (own_kind(kind))
		g.budget_used += (int64_t)size;
	pool_unlock();
}

static void count_create(struct call *c)
{
	if (c->dev >= 0) {
		pool_lock();
		g.dev[c->dev].creates++;
		pool_unlock();
	}
}

static void check_mmap_offset(struct call *c, uint32_t h)
{
	if (out_has(c, "mmap_offset") &&
	    fget_out(c, "mmap_offset") != (uint64_t)h << MMAP_SHIFT)
		bad(c->t, "mmap_offset", "%s: handle %u has mmap_offset 0x%" PRIx64 ", not handle << 40",
		    c->cmd->name, h, fget_out(c, "mmap_offset"));
}

static void create_post(struct call *c)
{
	uint64_t size = fget_in(c, "size"), flags = fget_in(c, "flags");
	uint64_t alloc, want;
	uint32_t h;

	count_create(c);
	if (c->aux >= 0) {
		pool_lock();
		if (c->ret) {
			munmap(g.res[c->aux].addr, g.res[c->aux].size);
			res_free(c->aux);
		} else {
			g.res[c->aux].busy = 0;
		}
		pool_unlock();
	}
	if (c->ret || !out_has(c, "handle"))
		return;
	h = (uint32_t)fget_out(c, "handle");
	alloc = fget_out(c, "alloc_size");
	want = round_up(size, kind_of_flags(flags) == BK_HUGE ?
			DMAPLANE_HUGE_CHUNK : PAGE);
	if (!h)
		bad(c->t, "create-handle0", "BUFFER_CREATE returned handle 0");
	if (alloc != want)
		bad(c->t, "create-alloc", "BUFFER_CREATE of %" PRIu64 " bytes (flags 0x%" PRIx64 ") allocated %" PRIu64 ", expected %" PRIu64,
		    size, flags, alloc, want);
	if (out_has(c, "nr_pages") && fget_out(c, "nr_pages") != alloc / PAGE)
		bad(c->t, "create-pages", "BUFFER_CREATE: nr_pages %" PRIu64 " for %" PRIu64 " bytes",
		    fget_out(c, "nr_pages"), alloc);
	if (out_has(c, "pages_on_node") &&
	    fget_out(c, "pages_on_node") > alloc / PAGE)
		bad(c->t, "create-onnode", "BUFFER_CREATE: pages_on_node %" PRIu64 " above nr_pages",
		    fget_out(c, "pages_on_node"));
	if (out_has(c, "result_flags") && (fget_out(c, "result_flags") & ~3ULL))
		bad(c->t, "create-resflags", "BUFFER_CREATE: result_flags 0x%" PRIx64 " of an import, revocation or GPU",
		    fget_out(c, "result_flags"));
	check_mmap_offset(c, h);
	add_buffer(c, h, alloc, (uint32_t)flags, kind_of_flags(flags),
		   (int32_t)fget_in(c, "numa_node"));
}

/* Destroy-like calls: a handle that is gone becomes stale. */
static void drop_handle(struct call *c, int type)
{
	uint32_t h = (uint32_t)fget_in(c, "handle");
	int i, j;

	pool_lock();
	i = find_handle(c->dev, type, h);
	if (i >= 0) {
		struct res *x = &g.res[i];

		if (type == R_BUFFER && own_kind(x->kind))
			g.budget_used -= (int64_t)x->size;
		if (type == R_MR) {
			j = find_handle(c->dev, R_BUFFER, x->buf);
			if (j >= 0)
				g.res[j].mrs--;
			j = find_handle(c->dev, R_ENDPOINT, x->ep);
			if (j >= 0)
				g.res[j].mrs--;
		}
		if (type == R_ENDPOINT && x->peer >= 0 &&
		    g.res[x->peer].gen == x->peergen)
			g.res[x->peer].peer = -1;
		res_free(i);
	}
	dev_mark_stale(c->dev, h);
	pool_unlock();
}

static void destroy_classify_type(struct call *c, int type)
{
	uint32_t h = (uint32_t)fget_in(c, "handle");
	int i, busy = 0;

	if (!c->excl)
		return;
	pool_lock();
	i = find_handle(c->dev, type, h);
	if (i >= 0)
		busy = g.res[i].maps > 0 || g.res[i].mrs > 0;
	pool_unlock();
	if (busy)
		must(c, "handle: %u is mapped or has MRs (EBUSY)", h);
}

static void bdestroy_classify(struct call *c)
{
	destroy_classify_type(c, R_BUFFER);
}

static void bdestroy_post(struct call *c)
{
	if (!c->ret && c->dev >= 0)
		drop_handle(c, R_BUFFER);
}

static void binfo_post(struct call *c)
{
	uint32_t h = (uint32_t)fget_in(c, "handle");
	struct res x = { 0 };
	int i;

	if (c->ret || !out_has(c, "mrs"))
		return;
	pool_lock();
	i = find_handle(c->dev, R_BUFFER, h);
	if (i >= 0)
		x = g.res[i];
	pool_unlock();
	if (i < 0)
		return;
	if (fget_out(c, "size") != x.size)
		bad(c->t, "info-size", "BUFFER_INFO: size %" PRIu64 ", created with %" PRIu64,
		    fget_out(c, "size"), x.size);
	check_mmap_offset(c, h);
	if (fget_out(c, "nr_pages") != x.size / PAGE)
		bad(c->t, "info-pages", "BUFFER_INFO: nr_pages %" PRIu64 " for %" PRIu64 " bytes",
		    fget_out(c, "nr_pages"), x.size);
	if (own_kind(x.kind) && fget_out(c, "buf_flags") != x.flags)
		bad(c->t, "info-flags", "BUFFER_INFO: buf_flags 0x%" PRIx64 ", created with 0x%x",
		    fget_out(c, "buf_flags"), x.flags);
	if (!!(fget_out(c, "result_flags") & DMAPLANE_BUF_RES_IMPORTED) !=
	    (x.kind == BK_IMPORT))
		bad(c->t, "info-imported", "BUFFER_INFO: result_flags 0x%" PRIx64 " for a buffer of kind %d",
		    fget_out(c, "result_flags"), x.kind);
	if (c->excl && fget_out(c, "mrs") != (uint64_t)x.mrs)
		bad(c->t, "info-mrs", "BUFFER_INFO: mrs %" PRIu64 ", this file registered %d",
		    fget_out(c, "mrs"), x.mrs);
	if (c->excl && fget_out(c, "mappings") < (uint64_t)x.maps)
		bad(c->t, "info-mappings", "BUFFER_INFO: mappings %" PRIu64 ", this process holds %d",
		    fget_out(c, "mappings"), x.maps);
	/* The histogram covers every page. */
	if (own_kind(x.kind) && c->narr == 1 &&
	    (uintptr_t)fget_in(c, "node_pages_ptr") == (uintptr_t)c->arr[0].p &&
	    fget_in(c, "node_pages_len") >= fget_out(c, "nr_node_ids") &&
	    fget_out(c, "nr_node_ids") <= 64) {
		uint64_t sum = 0, v;
		uint64_t n = fget_out(c, "nr_node_ids"), k;

		for (k = 0; k < n; k++) {
			memcpy(&v, c->arr[0].p + 8 * k, 8);
			sum += v;
		}
		if (sum != x.size / PAGE)
			bad(c->t, "info-histogram", "BUFFER_INFO: the node histogram sums to %" PRIu64 " pages of %" PRIu64,
			    sum, x.size / PAGE);
	}
}

static void topo_post(struct call *c)
{
	if (!c->ret && g.nodes_known && out_has(c, "nr_nodes") &&
	    fget_out(c, "nr_nodes") != (uint64_t)g.nr_nodes)
		bad(c->t, "topo-nodes", "GET_TOPOLOGY: nr_nodes %" PRIu64 ", %d at start",
		    fget_out(c, "nr_nodes"), g.nr_nodes);
}

static void priv_classify(struct call *c)
{
	if (g.child_unpriv && !c->must[0])
		must(c, "caller without CAP_SYS_ADMIN (EPERM)");
}

static void bench_pre(struct call *c)
{
	if (c->mode != M_VALID)
		return;
	fset(c, "size", 1 << 20);
	fset(c, "passes", 1);
	fset(c, "time_limit_ms", 1 + rbelow(c->r, 5));
	if (fget(c, "cells_len") > 2)
		fset(c, "cells_len", 1);
}

/* 1 and a copy of the pooled @type that handle @h names on the call's fd, or 0. */
static int pooled(struct call *c, int type, uint32_t h, struct res *out)
{
	int i;

	pool_lock();
	i = find_handle(c->dev, type, h);
	if (i >= 0)
		*out = g.res[i];
	pool_unlock();
	return i >= 0;
}

static int buffer_kind(struct call *c, uint32_t h)
{
	struct res b;

	return pooled(c, R_BUFFER, h, &b) ? b.kind : -1;
}

static void mapbench_pre(struct call *c)
{
	int fi = spec_field_index(c->st, "handle");

	if (c->fres[fi] >= 0 && c->fcopy[fi].size > (64ULL << 20) &&
	    fget(c, "iterations") > 4)
		fset(c, "iterations", 2);
}

static void mapbench_classify(struct call *c)
{
	int k = buffer_kind(c, (uint32_t)fget_in(c, "handle"));

	if (k == BK_COHERENT || k == BK_IMPORT || k == BK_GPU)
		must(c, "handle: a buffer of kind %d has no scatterlist to bench", k);
}

static void export_classify(struct call *c)
{
	if (buffer_kind(c, (uint32_t)fget_in(c, "handle")) == BK_IMPORT)
		must(c, "handle: an import cannot be exported");
}

static void export_post(struct call *c)
{
	uint32_t h = (uint32_t)fget_in(c, "handle"), flags;
	int fd, i, bi, fl;
	off_t end;
	struct res b = { 0 };

	if (c->ret || !out_has(c, "fd"))
		return;
	fd = (int)(int32_t)fget_out(c, "fd");
	flags = (uint32_t)fget_in(c, "flags");
	if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
		bad(c->t, "export-fd", "EXPORT_DMABUF returned fd %d, which is not open", fd);
		return;
	}
	pool_lock();
	bi = find_handle(c->dev, R_BUFFER, h);
	if (bi >= 0)
		b = g.res[bi];
	pool_unlock();
	end = lseek(fd, 0, SEEK_END);
	if (bi >= 0 && end != (off_t)b.size)
		bad(c->t, "export-size", "EXPORT_DMABUF: the dma-buf has %lld bytes, the buffer %" PRIu64,
		    (long long)end, b.size);
	fl = fcntl(fd, F_GETFD);
	if (!!(fl & FD_CLOEXEC) != !!(flags & DMAPLANE_EXPORT_CLOEXEC))
		bad(c->t, "export-cloexec", "EXPORT_DMABUF: FD_CLOEXEC is %d with flags 0x%x",
		    !!(fl & FD_CLOEXEC), flags);
	fl = fcntl(fd, F_GETFL);
	if (((fl & O_ACCMODE) == O_RDONLY) != !!(flags & DMAPLANE_EXPORT_READ_ONLY))
		bad(c->t, "export-mode", "EXPORT_DMABUF: access mode 0%o with flags 0x%x",
		    fl & O_ACCMODE, flags);
	if (full(R_DMABUF)) {
		close(fd);
		return;
	}
	pool_lock();
	i = res_new(R_DMABUF);
	if (i >= 0) {
		g.res[i].fd = fd;
		g.res[i].dev = -1;
		g.res[i].buf = h;
		g.res[i].size = bi >= 0 ? b.size : (uint64_t)end;
		g.res[i].kind = bi >= 0 ? b.kind : BK_PAGES;
		g.res[i].readonly = !!(flags & DMAPLANE_EXPORT_READ_ONLY);
		/* the buffer, to count its mappings through the dma-buf */
		g.res[i].ep = (uint32_t)c->dev;
		g.res[i].devgen = g.dev[c->dev].gen;
	}
	pool_unlock();
	if (i < 0)
		close(fd);
}

static void import_classify(struct call *c)
{
	int fi = spec_field_index(c->st, "fd");

	if (c->fres[fi] >= 0 && c->fcopy[fi].type == R_DMABUF &&
	    c->fcopy[fi].readonly)
		must(c, "fd: a read-only dma-buf (EACCES)");
}

static void import_post(struct call *c)
{
	int fi = spec_field_index(c->st, "fd");
	uint32_t h;

	count_create(c);
	if (c->ret || !out_has(c, "mmap_offset"))
		return;
	h = (uint32_t)fget_out(c, "handle");
	if (c->fres[fi] >= 0 && c->fcopy[fi].type == R_DMABUF &&
	    fget_out(c, "size") != c->fcopy[fi].size)
		bad(c->t, "import-size", "IMPORT_DMABUF: size %" PRIu64 " of a %" PRIu64 "-byte dma-buf",
		    fget_out(c, "size"), c->fcopy[fi].size);
	if (!(fget_out(c, "result_flags") & DMAPLANE_BUF_RES_IMPORTED))
		bad(c->t, "import-flags", "IMPORT_DMABUF: result_flags 0x%" PRIx64 " without IMPORTED",
		    fget_out(c, "result_flags"));
	check_mmap_offset(c, h);
	add_buffer(c, h, fget_out(c, "size"), 0, BK_IMPORT, -1);
}

static void revoke_classify(struct call *c)
{
	if (buffer_kind(c, (uint32_t)fget_in(c, "handle")) == BK_IMPORT)
		must(c, "handle: an import cannot be revoked");
}

static void epc_pre(struct call *c)
{
	uint64_t rd, win;

	if (c->mode != M_VALID)
		return;
	rd = fget(c, "recv_depth") ? fget(c, "recv_depth") : 128;
	win = fget(c, "credit_window");
	if (win > rd)
		fset(c, "credit_window", win = rd);
	if (!win)
		win = rd;
	if (fget(c, "credit_low") >= win)
		fset(c, "credit_low", rbelow(c->r, win));
	if (fget(c, "credit_high") > win)
		fset(c, "credit_high", rbelow(c->r, win + 1));
}

static void epc_classify(struct call *c)
{
	uint64_t rd = fget_in(c, "recv_depth"), win = fget_in(c, "credit_window");
	uint64_t lo = fget_in(c, "credit_low"), hi = fget_in(c, "credit_high");

	if (!rd)
		rd = 128;
	if (rd > 4096)
		return;		/* the range already says so */
	if (win > rd)
		must(c, "credit_window: %" PRIu64 " above recv_depth %" PRIu64, win, rd);
	if (!win)
		win = rd;
	if (lo >= win)
		must(c, "credit_low: %" PRIu64 " not below the window %" PRIu64, lo, win);
	if (hi > win)
		must(c, "credit_high: %" PRIu64 " above the window %" PRIu64, hi, win);
}

static void add_endpoint(struct call *c, uint32_t h, int state)
{
	int i;

	if (!h || c->dev < 0)
		return;
	pool_lock();
	i = res_new(R_ENDPOINT);
	if (i >= 0) {
		g.res[i].dev = c->dev;
		g.res[i].devgen = g.dev[c->dev].gen;
		g.res[i].handle = h;
		g.res[i].state = state;
	}
	pool_unlock();
}

static void epc_post(struct call *c)
{
	count_create(c);
	if (!c->ret && out_has(c, "handle"))
		add_endpoint(c, (uint32_t)fget_out(c, "handle"), EP_IDLE);
}

static void epd_classify(struct call *c)
{
	destroy_classify_type(c, R_ENDPOINT);
}

static void epd_post(struct call *c)
{
	if (!c->ret && c->dev >= 0)
		drop_handle(c, R_ENDPOINT);
}

static void set_ep_state(struct call *c, uint32_t h, int state, uint16_t port)
{
	int i;

	pool_lock();
	i = find_handle(c->dev, R_ENDPOINT, h);
	if (i >= 0) {
		g.res[i].state = state;
		if (port)
			g.res[i].port = port;
	}
	pool_unlock();
}

static void set_ipv4(struct call *c, const char *prefix, const char *ip)
{
	unsigned int a, b, d, e;
	char name[64];
	int i;

	if (sscanf(ip, "%u.%u.%u.%u", &a, &b, &d, &e) != 4)
		return;
	snprintf(name, sizeof(name), "%s.family", prefix);
	fset(c, name, 2);
	for (i = 0; i < 16; i++) {
		const struct spec_field *f = cf(c, prefix);

		c->buf[f->off + 8 + i] = 0;
	}
	{
		const struct spec_field *f = cf(c, prefix);

		c->buf[f->off + 8] = (uint8_t)a;
		c->buf[f->off + 9] = (uint8_t)b;
		c->buf[f->off + 10] = (uint8_t)d;
		c->buf[f->off + 11] = (uint8_t)e;
	}
}

static void listen_pre(struct call *c)
{
	if (c->mode != M_VALID)
		return;
	set_ipv4(c, "addr", g.guest_ip[0] ? g.guest_ip : "127.0.0.1");
	if (rchance(c->r, 70))
		fset(c, "addr.port", 0);
	fset(c, "addr.scope_id", 0);
	if (fget(c, "backlog") > 16)
		fset(c, "backlog", 1 + rbelow(c->r, 8));
}

static int ep_state(struct call *c, uint32_t h)
{
	struct res e;

	return pooled(c, R_ENDPOINT, h, &e) ? e.state : -1;
}

static void idle_classify(struct call *c)
{
	int s = ep_state(c, (uint32_t)fget_in(c, "handle"));

	if (c->excl && s >= 0 && s != EP_IDLE)
		must(c, "handle: endpoint not idle (state %d)", s);
}

/* Errors that come before the endpoint leaves its idle state. */
static int early_error(int e)
{
	return e == ENOENT || e == EINVAL || e == EFAULT || e == E2BIG ||
	       e == ENOTTY;
}

static void listen_post(struct call *c)
{
	uint32_t h = (uint32_t)fget_in(c, "handle");

	if (c->expect)
		return;
	if (!c->ret) {
		uint16_t port = out_has(c, "addr") ?
				(uint16_t)fget_out(c, "addr.port") : 0;

		if (out_has(c, "addr") && !fget_in(c, "addr.port") && !port)
			bad(c->t, "listen-port", "ENDPOINT_LISTEN on port 0 did not report the bound port");
		set_ep_state(c, h, EP_LISTENING, port);
	} else if (!early_error(c->err)) {
		set_ep_state(c, h, EP_DEAD, 0);
	}
}

static int pred_listening(const struct res *x, void *a)
{
	(void)a;
	return x->state == EP_LISTENING && x->port;
}

static void connect_pre(struct call *c)
{
	int i;

	if (c->mode != M_VALID)
		return;
	set_ipv4(c, "addr", g.guest_ip[0] && rchance(c->r, 90) ? g.guest_ip :
		 rchance(c->r, 50) ? "127.0.0.1" : "10.77.0.250");
	fset(c, "addr.scope_id", 0);
	i = res_pick(c->r, R_ENDPOINT, pred_listening, NULL, 0);
	fset(c, "addr.port", i >= 0 && rchance(c->r, 80) ? g.res[i].port :
	     20000 + rbelow(c->r, 20000));
	if (!fget(c, "timeout_ms") || fget(c, "timeout_ms") > 500)
		fset(c, "timeout_ms", 1 + rbelow(c->r, 300));
	c->deadline_ms = fget(c, "timeout_ms") + 3000;
	if (rchance(c->r, 15)) {
		/* nobody answers there: a signal ends the wait (EINTR) */
		set_ipv4(c, "addr", "10.77.0.250");
		fset(c, "timeout_ms", 5000);
		c->deadline_ms = 1 + rbelow(c->r, 100);
	}
}

static void connect_post(struct call *c)
{
	uint32_t h = (uint32_t)fget_in(c, "handle");

	if (c->expect)
		return;
	if (!c->ret)
		set_ep_state(c, h, EP_CONNECTED, 0);
	else if (!early_error(c->err))
		set_ep_state(c, h, EP_DEAD, 0);
}

static void accept_pre(struct call *c)
{
	uint64_t ms = fget(c, "timeout_ms");

	c->deadline_ms = (ms ? ms : 5000) + 2000;
	if (c->deadline_ms > 6000)
		c->deadline_ms = 6000;	/* long waits end in EINTR */
	if (rchance(c->r, 20)) {
		c->deadline_ms = 1 + rbelow(c->r, 50);	/* interrupt it */
		if (c->mode == M_VALID)
			fset(c, "timeout_ms", 1000 + rbelow(c->r, 59000));
	}
}

static void accept_post(struct call *c)
{
	count_create(c);
	if (!c->ret && out_has(c, "new_handle"))
		add_endpoint(c, (uint32_t)fget_out(c, "new_handle"), EP_CONNECTED);
}

static void block_pre(struct call *c)
{
	if (rchance(c->r, 25))
		c->deadline_ms = 1 + rbelow(c->r, 100);
	else
		c->deadline_ms = 5000;	/* longer waits end in EINTR */
}

static void mr_post(struct call *c)
{
	uint32_t h, ep = (uint32_t)fget_in(c, "endpoint");
	uint32_t bh = (uint32_t)fget_in(c, "buffer");
	uint64_t access = fget_in(c, "access"), off = fget_in(c, "offset");
	uint64_t len = fget_in(c, "length"), rkey;
	int i, bi;

	count_create(c);
	if (c->ret || !out_has(c, "rkey"))
		return;
	h = (uint32_t)fget_out(c, "handle");
	rkey = fget_out(c, "rkey");
	if (!(access & (DMAPLANE_MR_REMOTE_WRITE | DMAPLANE_MR_REMOTE_READ)) && rkey)
		bad(c->t, "mr-rkey", "MR_REG without remote access returned rkey 0x%" PRIx64, rkey);
	if ((access & (DMAPLANE_MR_REMOTE_WRITE | DMAPLANE_MR_REMOTE_READ)) && !rkey)
		bad(c->t, "mr-rkey0", "MR_REG with remote access 0x%" PRIx64 " returned rkey 0", access);
	pool_lock();
	bi = find_handle(c->dev, R_BUFFER, bh);
	if (bi >= 0) {
		g.res[bi].mrs++;
		if (!len)
			len = g.res[bi].size - off;
	}
	i = find_handle(c->dev, R_ENDPOINT, ep);
	if (i >= 0)
		g.res[i].mrs++;
	i = res_new(R_MR);
	if (i >= 0) {
		g.res[i].dev = c->dev;
		g.res[i].devgen = g.dev[c->dev].gen;
		g.res[i].handle = h;
		g.res[i].ep = ep;
		g.res[i].buf = bh;
		g.res[i].size = len;
		g.res[i].flags = (uint32_t)access;
		g.res[i].rkey = (uint32_t)rkey;
	}
	pool_unlock();
}

static void mrd_post(struct call *c)
{
	if (!c->ret && c->dev >= 0)
		drop_handle(c, R_MR);
}

/* ---- POST and REAP ---- */

struct mr_pick {
	int dev;
	unsigned int devgen;
	uint32_t ep;
	uint32_t need;		/* access bits it must have */
	int other_ep;		/* 1: an MR of another endpoint */
};

static int pred_mr(const struct res *x, void *a)
{
	const struct mr_pick *p = a;

	if (x->dev != p->dev || x->devgen != p->devgen)
		return 0;
	if (p->other_ep ? x->ep == p->ep : x->ep != p->ep)
		return 0;
	return (x->flags & p->need) == p->need;
}

static int pred_rkey(const struct res *x, void *a)
{
	const struct mr_pick *p = a;

	/* an MR of the peer endpoint with the access asked for */
	return x->dev == p->dev && x->devgen == p->devgen && x->ep == p->ep &&
	       x->rkey && (x->flags & p->need) == p->need;
}

/* One valid operation for endpoint @ep (res @epi) of @c into @op. */
static void valid_op(struct call *c, int epi, uint32_t ep, uint8_t *op,
		     const struct spec_struct *os, uint64_t cookie)
{
	struct mr_pick m = { .dev = c->dev, .ep = ep };
	struct mr_pick pr = { 0 };
	int opc = (int)rbelow(c->r, 6), mi = -1, ri = -1;
	struct res mr = { 0 }, rmr = { 0 };
	uint64_t len = 0, off = 0;

	memset(op, 0, os->size);
	fld_set(op, spec_field(os, "cookie"), cookie);
	if (c->dev >= 0)
		m.devgen = g.dev[c->dev].gen;
	if (opc == DMAPLANE_OP_NOOP)
		goto noop;
	if (opc == DMAPLANE_OP_RECV || opc == DMAPLANE_OP_READ)
		m.need = DMAPLANE_MR_LOCAL_WRITE;
	if (!((opc == DMAPLANE_OP_SEND || opc == DMAPLANE_OP_RECV ||
	       opc == DMAPLANE_OP_WRITE_IMM) && rchance(c->r, 15))) {
		mi = res_pick(c->r, R_MR, pred_mr, &m, 0);
		if (mi < 0) {
			if (opc == DMAPLANE_OP_WRITE || opc == DMAPLANE_OP_READ)
				goto noop;
		} else {
			pool_lock();
			mr = g.res[mi];
			pool_unlock();
			off = rbelow(c->r, mr.size);
			len = 1 + rbelow(c->r, mr.size - off < 65536 ?
					 mr.size - off : 65536);
		}
	}
	if (opc == DMAPLANE_OP_WRITE || opc == DMAPLANE_OP_WRITE_IMM ||
	    opc == DMAPLANE_OP_READ) {
		pool_lock();
		if (epi >= 0 && g.res[epi].peer >= 0 &&
		    g.res[g.res[epi].peer].gen == g.res[epi].peergen) {
			const struct res *p = &g.res[g.res[epi].peer];

			pr.dev = p->dev;
			pr.devgen = p->devgen;
			pr.ep = p->handle;
		}
		pool_unlock();
		pr.need = opc == DMAPLANE_OP_READ ? DMAPLANE_MR_REMOTE_READ :
			  DMAPLANE_MR_REMOTE_WRITE;
		if (pr.ep)
			ri = res_pick(c->r, R_MR, pred_rkey, &pr, 0);
		if (ri >= 0) {
			pool_lock();
			rmr = g.res[ri];
			pool_unlock();
			if (len > rmr.size)
				len = rmr.size;
		} else {
			goto noop;
		}
	}
	fld_set(op, spec_field(os, "opcode"), (uint64_t)opc);
	if (mi >= 0 && len) {
		fld_set(op, spec_field(os, "mr"), mr.handle);
		fld_set(op, spec_field(os, "offset"), off);
		fld_set(op, spec_field(os, "length"), len);
	}
	if (ri >= 0) {
		fld_set(op, spec_field(os, "rkey"), rmr.rkey);
		fld_set(op, spec_field(os, "remote_offset"),
			rbelow(c->r, rmr.size - len + 1));
	}
	if (opc == DMAPLANE_OP_WRITE_IMM)
		fld_set(op, spec_field(os, "imm"), rnext(c->r) & 0xffffffff);
	return;
noop:
	memset(op, 0, os->size);
	fld_set(op, spec_field(os, "cookie"), cookie);
}

/* Make op @op invalid in one way that must stop the batch there. */
static void break_op(struct call *c, uint8_t *op, const struct spec_struct *os,
		     char *why, size_t len)
{
	uint64_t opc = fld_get(op, spec_field(os, "opcode"));

	switch (rbelow(c->r, 9)) {
	case 0:
		fld_set(op, spec_field(os, "opcode"), 6 + rbelow(c->r, 1000));
		snprintf(why, len, "opcode");
		break;
	case 1:
		fld_set(op, spec_field(os, "flags"), 1ULL << rbelow(c->r, 32));
		snprintf(why, len, "flags");
		break;
	case 2:
		fld_set(op, spec_field(os, "reserved"), 1 + rbelow(c->r, 100));
		snprintf(why, len, "reserved");
		break;
	case 3:
		if (opc == DMAPLANE_OP_WRITE_IMM)
			fld_set(op, spec_field(os, "opcode"), DMAPLANE_OP_SEND);
		fld_set(op, spec_field(os, "imm"), 1 + rbelow(c->r, 1000));
		if (fld_get(op, spec_field(os, "opcode")) == DMAPLANE_OP_NOOP ||
		    fld_get(op, spec_field(os, "opcode")) == DMAPLANE_OP_SEND ||
		    fld_get(op, spec_field(os, "opcode")) == DMAPLANE_OP_RECV ||
		    fld_get(op, spec_field(os, "opcode")) == DMAPLANE_OP_WRITE ||
		    fld_get(op, spec_field(os, "opcode")) == DMAPLANE_OP_READ)
			snprintf(why, len, "imm on opcode %" PRIu64,
				 fld_get(op, spec_field(os, "opcode")));
		break;
	case 4:
		fld_set(op, spec_field(os, "opcode"), rchance(c->r, 50) ?
			DMAPLANE_OP_SEND : DMAPLANE_OP_RECV);
		fld_set(op, spec_field(os, "imm"), 0);
		fld_set(op, spec_field(os, "rkey"), 1 + rbelow(c->r, 1000));
		snprintf(why, len, "rkey on SEND/RECV");
		break;
	case 5:
		fld_set(op, spec_field(os, "opcode"), rchance(c->r, 50) ?
			DMAPLANE_OP_WRITE : DMAPLANE_OP_READ);
		fld_set(op, spec_field(os, "imm"), 0);
		fld_set(op, spec_field(os, "length"), 0);
		fld_set(op, spec_field(os, "mr"), 0);
		fld_set(op, spec_field(os, "offset"), 0);
		snprintf(why, len, "WRITE/READ of length 0");
		break;
	case 6:
		fld_set(op, spec_field(os, "length"), (1ULL << 31) + 1 +
			rbelow(c->r, 1ULL << 40));
		snprintf(why, len, "length over 2^31");
		break;
	case 7:	/* no MR, some data: outside the (empty) window */
		fld_set(op, spec_field(os, "mr"), 0);
		fld_set(op, spec_field(os, "offset"), 0);
		if (opc == DMAPLANE_OP_NOOP)
			fld_set(op, spec_field(os, "opcode"), DMAPLANE_OP_SEND);
		fld_set(op, spec_field(os, "length"), 1 + rbelow(c->r, 4096));
		snprintf(why, len, "data without an MR");
		break;
	default:	/* past the end of the MR */
		if (fld_get(op, spec_field(os, "mr"))) {
			fld_set(op, spec_field(os, "offset"), ~0ULL - rbelow(c->r, 4096));
			snprintf(why, len, "offset past the MR");
		} else {
			fld_set(op, spec_field(os, "opcode"), 9);
			snprintf(why, len, "opcode 9");
		}
		break;
	}
	if (!why[0])
		snprintf(why, len, "opcode 7");
	if (!strcmp(why, "opcode 7"))
		fld_set(op, spec_field(os, "opcode"), 7);
}

static void post_pre(struct call *c)
{
	const struct spec_field *pf = cf(c, "ops");
	const struct spec_struct *os = pf->elem_st;
	int efi = spec_field_index(c->st, "endpoint"), epi = c->fres[efi];
	uint32_t ep = (uint32_t)fget(c, "endpoint");
	uint64_t n = fget(c, "count"), k, alloc_n;
	uint8_t *ops;
	char why[64] = "";

	if (c->mode == M_VALID && n > 16)
		fset(c, "count", n = 1 + rbelow(c->r, 16));
	alloc_n = n > 256 ? 256 : n;
	ops = arena_alloc(c->t, (alloc_n + 1) * os->size);
	if (!ops)
		return;
	c->cookie_base = ((uint64_t)(c->t->id & 0xff) << 48) |
			 ((c->t->opno & 0xffffffffULL) << 12);
	for (k = 0; k < alloc_n; k++) {
		if (c->mode == M_CHAOS && rchance(c->r, 30)) {
			uint64_t *w = (uint64_t *)(ops + k * os->size);
			size_t q;

			for (q = 0; q < os->size / 8; q++)
				w[q] = rchance(c->r, 50) ? rnext(c->r) : rbelow(c->r, 8);
			fld_set(ops + k * os->size, spec_field(os, "cookie"),
				c->cookie_base + k);
			if (c->post_first_bad < 0)
				c->post_first_bad = -2;	/* unknown validity */
			continue;
		}
		valid_op(c, epi, ep, ops + k * os->size, os, c->cookie_base + k);
	}
	if (c->mode == M_ONEBAD && alloc_n && c->bad_field == spec_field_index(c->st, "ops")) {
		k = rbelow(c->r, alloc_n);
		break_op(c, ops + k * os->size, os, why, sizeof(why));
		c->post_first_bad = (int)k;
		c->aux64 = (int64_t)k;
	}
	fset(c, "ops", (uint64_t)(uintptr_t)ops);
	if (c->mode != M_VALID && rchance(c->r, 10)) {
		switch (rbelow(c->r, 3)) {
		case 0:
			fset(c, "ops", 0);
			c->post_first_bad = 0;
			break;
		case 1:
			fset(c, "ops", 0xffff888000000000ULL);
			c->post_first_bad = 0;
			break;
		default: {
			/* element k crosses into the guard page */
			uint64_t fit = (4096 - os->size / 2) / os->size;
			uint64_t j = rbelow(c->r, alloc_n < fit ? alloc_n + 1 : fit);
			uint8_t *p = c->t->guard + 4096 - j * os->size - os->size / 2;

			memcpy(p, ops, j * os->size + os->size / 2);
			fset(c, "ops", (uint64_t)(uintptr_t)p);
			if (c->post_first_bad < 0 || (uint64_t)c->post_first_bad > j)
				c->post_first_bad = (int)j;
			break;
		}
		}
	}
	if (c->mode == M_VALID && rchance(c->r, 30))
		fset(c, "flags", DMAPLANE_POST_NOWAIT);
	c->aux = epi;
}

static void post_classify(struct call *c)
{
	uint64_t n = fget_in(c, "count");

	if (c->post_first_bad == 0 && n >= 1 && n <= 256)
		must(c, "ops[0]: an operation that must fail (nothing posted)");
}

/* Cookies of the operations a POST posted, to match against completions;
 * an endpoint whose posts cannot all be followed is not checked again. */
static void track(struct call *c, uint32_t ep, const uint8_t *ops,
		  uint32_t posted, int can)
{
	const struct spec_struct *os = cf(c, "ops")->elem_st;
	int i;
	uint32_t k;

	pool_lock();
	i = find_handle(c->dev, R_ENDPOINT, ep);
	if (i >= 0 && !can)
		g.res[i].untracked = 1;
	if (i >= 0 && can && !g.res[i].untracked) {
		struct res *x = &g.res[i];

		for (k = 0; k < posted; k++) {
			if (x->ncookies == x->capcookies) {
				int cap = x->capcookies ? 2 * x->capcookies : 64;
				uint64_t *p = cap <= 8192 ?
					realloc(x->cookies, cap * sizeof(*p)) : NULL;

				if (!p) {
					x->untracked = 1;
					break;
				}
				x->cookies = p;
				x->capcookies = cap;
			}
			x->cookies[x->ncookies++] =
				fld_get(ops + k * os->size, spec_field(os, "cookie"));
		}
	}
	pool_unlock();
}

static void post_post(struct call *c)
{
	uint64_t n = fget_in(c, "count"), posted;
	int64_t error;
	uint8_t *ops = (uint8_t *)(uintptr_t)fget_in(c, "ops");
	uint32_t ep = (uint32_t)fget_in(c, "endpoint");

	if (c->expect || c->ret) {
		/* a post the kernel may have taken part of: stop following */
		if (c->expect && c->dev >= 0)
			track(c, ep, NULL, 0, 0);
		return;
	}
	if (!out_has(c, "error"))
		return;
	posted = fget_out(c, "posted");
	error = (int64_t)fget_out(c, "error");
	if (!posted || posted > n)
		bad(c->t, "post-posted", "POST of %" PRIu64 " succeeded with posted %" PRIu64,
		    n, posted);
	if (posted < n && !error)
		bad(c->t, "post-error0", "POST posted %" PRIu64 " of %" PRIu64 " and says nothing went wrong",
		    posted, n);
	if (posted == n && error)
		bad(c->t, "post-error", "POST posted all %" PRIu64 " and reports error %" PRId64,
		    n, error);
	if (c->post_first_bad >= 0 && posted > (uint64_t)c->post_first_bad)
		bad(c->t, "post-invalid", "POST posted %" PRIu64 " operations though ops[%d] must fail (%s)",
		    posted, c->post_first_bad, c->t->cur);
	if (posted > n)
		posted = n;
	/* the kernel read ops[0..posted): so can we */
	track(c, ep, ops, (uint32_t)posted, c->excl && ops);
}

static void reap_pre(struct call *c)
{
	block_pre(c);
	if (fget(c, "min") > fget(c, "max") && c->mode == M_VALID)
		fset(c, "min", fget(c, "max"));
	/* a wait the watchdog's signal cuts short: the -EINTR path */
	if (c->deadline_ms < 200 && c->mode == M_VALID) {
		fset(c, "min", fget(c, "max"));
		fset(c, "timeout_ms", 1000 + rbelow(c->r, 59000));
	}
}

static void reap_post(struct call *c)
{
	uint64_t max = fget_in(c, "max"), count, k;
	uint32_t ep = (uint32_t)fget_in(c, "endpoint");
	const struct spec_field *ef = cf(c, "entries");
	const uint8_t *ent = (const uint8_t *)(uintptr_t)fget_in(c, "entries");
	int i;

	if (c->ret || c->expect || !out_has(c, "count"))
		return;
	count = fget_out(c, "count");
	if (count > max)
		bad(c->t, "reap-count", "REAP returned %" PRIu64 " completions for max %" PRIu64,
		    count, max);
	if (!count && fget_in(c, "min"))
		bad(c->t, "reap-empty", "REAP with min %" PRIu64 " succeeded with nothing",
		    fget_in(c, "min"));
	pool_lock();
	i = find_handle(c->dev, R_ENDPOINT, ep);
	if (i >= 0 && (!c->excl || c->narr != 1 || ent != c->arr[0].p))
		g.res[i].untracked = 1;	/* taken without looking */
	if (i >= 0 && !g.res[i].untracked) {
		struct res *x = &g.res[i];

		for (k = 0; k < count && k < max; k++) {
			uint64_t ck = fld_get(ent + k * ef->elem_size,
					      spec_field(ef->elem_st, "cookie"));
			int j, found = 0;

			for (j = 0; j < x->ncookies; j++) {
				if (x->cookies[j] == ck) {
					x->cookies[j] = x->cookies[--x->ncookies];
					found = 1;
					break;
				}
			}
			if (!found) {
				pool_unlock();
				bad(c->t, "reap-cookie", "REAP returned a completion with cookie 0x%" PRIx64 " that was never posted on endpoint %u or came back twice",
				    ck, ep);
				return;
			}
		}
	}
	pool_unlock();
}

static void gpu_pre(struct call *c)
{
	uint64_t prov;
	int i;

	if (c->mode == M_ONEBAD && c->bad_field == spec_field_index(c->st, "provider"))
		return;
	prov = (g.gpu_ready & (1 << DMAPLANE_GPU_SIM)) && rchance(c->r, 60) ?
	       DMAPLANE_GPU_SIM : rchance(c->r, 80) ? DMAPLANE_GPU_DMABUF :
	       fget(c, "provider");
	if (c->mode == M_CHAOS)
		prov = fget(c, "provider");
	fset(c, "provider", prov);
	if (prov == DMAPLANE_GPU_DMABUF) {
		i = res_pick(c->r, R_DMABUF, NULL, NULL, 1);
		if (i >= 0) {
			call_checkout(c, i);
			fset(c, "device", (uint64_t)(int64_t)g.res[i].fd);
			c->aux = i;
		}
		if (c->mode == M_VALID) {
			fset(c, "flags", 0);
			fset(c, "addr", 0);
			fset(c, "length", 0);
		}
	} else if (c->mode == M_VALID) {
		fset(c, "device", g.gpu_sim_devices ? rbelow(c->r, g.gpu_sim_devices) : 0);
		fset(c, "addr", 65536 * rbelow(c->r, 32));
		fset(c, "length", 65536 * (1 + rbelow(c->r, 16)));
	}
}

static void gpu_classify(struct call *c)
{
	uint64_t prov = fget_in(c, "provider"), addr = fget_in(c, "addr");
	uint64_t len = fget_in(c, "length"), end;

	if (prov == DMAPLANE_GPU_DMABUF) {
		if (fget_in(c, "flags") || addr || len)
			must(c, "flags/addr/length: not 0 for the dma-buf provider");
		return;
	}
	if (prov != DMAPLANE_GPU_SIM && prov != DMAPLANE_GPU_NVIDIA_P2P)
		return;
	if (addr % 65536 || len % 65536 || !len ||
	    __builtin_add_overflow(addr, len, &end))
		must(c, "addr/length: 0x%" PRIx64 "+0x%" PRIx64 " unaligned, empty or wrapping",
		     addr, len);
	if ((int32_t)fget_in(c, "device") < 0)
		must(c, "device: negative");
}

static void gpu_classify_all(struct call *c)
{
	if (fget_in(c, "provider") == DMAPLANE_GPU_DMABUF && c->aux >= 0 &&
	    g.res[c->aux].type == R_DMABUF && g.res[c->aux].readonly &&
	    (uint64_t)(int64_t)g.res[c->aux].fd == fget_in(c, "device"))
		must(c, "device: a read-only dma-buf (EACCES)");
	gpu_classify(c);
}

static void gpu_post(struct call *c)
{
	count_create(c);
	if (c->ret || !out_has(c, "result_flags"))
		return;
	check_mmap_offset(c, (uint32_t)fget_out(c, "handle"));
	add_buffer(c, (uint32_t)fget_out(c, "handle"), fget_out(c, "length"), 0,
		   fget_in(c, "provider") == DMAPLANE_GPU_DMABUF ? BK_IMPORT : BK_GPU,
		   -1);
}

static void simfree_pre(struct call *c)
{
	if (c->mode != M_VALID)
		return;
	fset(c, "device", g.gpu_sim_devices ? rbelow(c->r, g.gpu_sim_devices) : 0);
	fset(c, "addr", 65536 * rbelow(c->r, 32));
	fset(c, "length", 65536 * (1 + rbelow(c->r, 16)));
}

static const struct { const char *cmd; struct hooks h; int weight; } hook_table[] = {
	{ "GET_INFO", { NULL, NULL, NULL }, 2 },
	{ "ECHO", { NULL, NULL, echo_post }, 3 },
	{ "BUFFER_CREATE", { create_pre, create_classify, create_post }, 14 },
	{ "BUFFER_DESTROY", { NULL, bdestroy_classify, bdestroy_post }, 7 },
	{ "BUFFER_INFO", { NULL, NULL, binfo_post }, 6 },
	{ "GET_TOPOLOGY", { NULL, NULL, topo_post }, 2 },
	{ "NUMA_BENCH", { bench_pre, priv_classify, NULL }, 1 },
	{ "MAP_BENCH", { mapbench_pre, mapbench_classify, NULL }, 2 },
	{ "EXPORT_DMABUF", { NULL, export_classify, export_post }, 7 },
	{ "IMPORT_DMABUF", { NULL, import_classify, import_post }, 6 },
	{ "BUFFER_REVOKE", { NULL, revoke_classify, NULL }, 3 },
	{ "RDMA_DEVICES", { NULL, NULL, NULL }, 2 },
	{ "ENDPOINT_CREATE", { epc_pre, epc_classify, epc_post }, 4 },
	{ "ENDPOINT_DESTROY", { NULL, epd_classify, epd_post }, 3 },
	{ "ENDPOINT_LISTEN", { listen_pre, idle_classify, listen_post }, 3 },
	{ "ENDPOINT_CONNECT", { connect_pre, idle_classify, connect_post }, 2 },
	{ "ENDPOINT_ACCEPT", { accept_pre, NULL, accept_post }, 2 },
	{ "ENDPOINT_INFO", { NULL, NULL, NULL }, 4 },
	{ "MR_REG", { NULL, NULL, mr_post }, 6 },
	{ "MR_DEREG", { NULL, NULL, mrd_post }, 3 },
	{ "POST", { post_pre, post_classify, post_post }, 9 },
	{ "REAP", { reap_pre, NULL, reap_post }, 7 },
	{ "ENDPOINT_EVENTFD", { NULL, NULL, NULL }, 3 },
	{ "GPU_PIN", { gpu_pre, gpu_classify_all, gpu_post }, 3 },
	{ "GPU_SIM_FREE", { simfree_pre, priv_classify, NULL }, 1 },
};
#define NHOOKS (sizeof(hook_table) / sizeof(hook_table[0]))

const struct hooks *hooks_for(const char *cmd)
{
	size_t i;

	for (i = 0; i < NHOOKS; i++)
		if (!strcmp(hook_table[i].cmd, cmd))
			return &hook_table[i].h;
	return NULL;
}

static int creates_full(const char *cmd)
{
	if (!strcmp(cmd, "BUFFER_CREATE") || !strcmp(cmd, "IMPORT_DMABUF") ||
	    !strcmp(cmd, "GPU_PIN"))
		return full(R_BUFFER);
	if (!strcmp(cmd, "ENDPOINT_CREATE") || !strcmp(cmd, "ENDPOINT_ACCEPT"))
		return full(R_ENDPOINT);
	if (!strcmp(cmd, "MR_REG"))
		return full(R_MR);
	if (!strcmp(cmd, "EXPORT_DMABUF"))
		return full(R_DMABUF);
	return 0;
}

int op_ioctl(struct tstate *t, struct rng *r)
{
	int total = 0, pick, dev, mode, ci, ret;
	size_t i;
	struct call *c;

	for (i = 0; i < NHOOKS; i++)
		total += hook_table[i].weight;
	pick = (int)rbelow(r, total);
	for (i = 0; i < NHOOKS; i++) {
		pick -= hook_table[i].weight;
		if (pick < 0)
			break;
	}
	ci = cmdi(hook_table[i].cmd);
	if (ci < 0)
		return 0;
	mode = rchance(r, 55) ? M_VALID : rchance(r, 78) ? M_ONEBAD : M_CHAOS;
	/* At a limit, a create goes in invalid (it fails, nothing piles up). */
	if (creates_full(hook_table[i].cmd) && mode == M_VALID)
		mode = M_ONEBAD;
	dev = dev_pick(t, r);
	if (dev < 0)
		return 0;
	c = malloc(sizeof(*c));
	if (!c) {
		dev_release(dev);
		return 0;
	}
	call_init(c, t, r, ci, dev, mode);
	if (g.spec.cmd[ci].block && !strcmp(g.spec.cmd[ci].name, "NUMA_BENCH"))
		c->deadline_ms = 3000;
	call_generate(c);
	ret = call_run(c);
	free(c);
	dev_release(dev);
	return ret;
}

/* ---- mmap and what can be done to mappings ---- */

static int mmap_errno_ok(int e)
{
	return e == EINVAL || e == EPERM || e == ENOENT || e == ENOMEM ||
	       e == ENODEV || e == EOPNOTSUPP || e == EACCES || e == EAGAIN ||
	       e == EOVERFLOW;
}

static int pred_mine(const struct res *x, void *a)
{
	const struct tstate *t = a;

	return x->owner < 0 || x->owner == t->id;
}

static void add_mapping(struct tstate *t, int dev, uint32_t h, void *p,
			uint64_t len, uint64_t off, int prot, int kind, int owner,
			unsigned int devgen)
{
	int i, b;

	pool_lock();
	/* a dma-buf of a file closed since: its buffer is not in the pool */
	if (dev >= 0 && (!g.dev[dev].used || g.dev[dev].gen != devgen))
		dev = -1;
	i = res_new(R_MAPPING);
	if (i >= 0) {
		g.res[i].dev = dev;
		g.res[i].devgen = dev >= 0 ? g.dev[dev].gen : 0;
		g.res[i].buf = h;
		g.res[i].addr = p;
		g.res[i].size = len;
		g.res[i].off = off;
		g.res[i].flags = (uint32_t)prot;
		g.res[i].kind = kind;
		g.res[i].owner = owner;
		/* an import's mapping is the exporter's, not counted on it */
		b = kind == BK_IMPORT ? -1 : find_handle(dev, R_BUFFER, h);
		if (b >= 0)
			g.res[b].maps++;
	}
	pool_unlock();
	(void)t;
	if (i < 0)
		munmap(p, len);
}

static void unmap_count(int dev, unsigned int devgen, uint32_t h, int kind)
{
	int b;

	if (dev < 0 || !g.dev[dev].used || g.dev[dev].gen != devgen ||
	    kind == BK_IMPORT)
		return;
	b = find_handle(dev, R_BUFFER, h);
	if (b >= 0)
		g.res[b].maps--;
}

/* Touch a mapping: write a pattern, read it back. */
static void touch_check(struct tstate *t, const struct res *m, struct rng *r,
			const char *what)
{
	uint8_t pat = (uint8_t)(1 + rbelow(r, 254));
	uint64_t off = rbelow(r, m->size) & ~(PAGE - 1);
	volatile uint8_t *p = (uint8_t *)m->addr + off;
	int sig;

	if (!(m->flags & PROT_READ))
		return;
	if (m->flags & PROT_WRITE) {
		sig = touch_guarded((void *)p, 1, 1, pat);
		if (!sig && *p != pat && own_kind(m->kind))
			bad(t, "touch-data", "%s: wrote 0x%02x at +0x%" PRIx64 " of a mapping, read 0x%02x",
			    what, pat, off, *p);
	} else {
		sig = touch_guarded((void *)p, 1, 0, 0);
	}
	if (sig && own_kind(m->kind) && !m->zapped)
		bad(t, "touch-fault", "%s: signal %d touching +0x%" PRIx64 " of a valid mapping (kind %d, %" PRIu64 " bytes at buffer offset 0x%" PRIx64 ")",
		    what, sig, off, m->kind, m->size, m->off);
}

static void op_mmap(struct tstate *t, struct rng *r)
{
	int dev = dev_pick(t, r), bi, prot, flags, sig, must_fail = 0;
	uint64_t off, len, size = 0, pgoff;
	uint32_t h;
	struct res b = { 0 };
	char why[96] = "", desc[200];
	void *p;

	if (dev < 0)
		return;
	if (full(R_MAPPING)) {
		dev_release(dev);
		return;
	}
	{
		struct pick_arg_local { int dev; unsigned int gen; };
		int cand = -1, i, n = 0;

		pool_lock();
		for (i = 0; i < MAX_RES; i++) {
			if (g.res[i].type == R_BUFFER && g.res[i].dev == dev &&
			    g.res[i].devgen == g.dev[dev].gen &&
			    rbelow(r, ++n) == 0)
				cand = i;
		}
		if (cand >= 0)
			b = g.res[cand];
		pool_unlock();
		bi = cand;
	}
	if (bi >= 0 && rchance(r, 85)) {
		h = b.handle;
		size = b.size;
	} else {
		switch (rbelow(r, 4)) {
		case 0: h = 0; must_fail = 1; snprintf(why, sizeof(why), "handle 0"); break;
		case 1:
			h = g.dev[dev].nstale ? g.dev[dev].stale[0] : 1 + (uint32_t)rbelow(r, 8);
			if (g.dev[dev].nstale && !dev_wrapped(dev) &&
			    !g.dev[dev].tainted && !dev_handle_type(dev, h)) {
				must_fail = 1;
				snprintf(why, sizeof(why), "handle %u destroyed", h);
			}
			break;
		default: h = 1 + (uint32_t)rbelow(r, 64); break;
		}
		bi = -1;
		if (h && (dev_handle_type(dev, h) == R_ENDPOINT ||
			  dev_handle_type(dev, h) == R_MR) && !dev_wrapped(dev) &&
		    !g.dev[dev].tainted) {
			must_fail = 1;
			snprintf(why, sizeof(why), "handle %u is not a buffer", h);
		}
	}
	if (!size)
		size = PAGE * (1 + rbelow(r, 16));
	off = rchance(r, 50) ? 0 : rbelow(r, size / PAGE) * PAGE;
	len = rchance(r, 40) ? size - off : PAGE * (1 + rbelow(r, (size - off) / PAGE));
	prot = PROT_READ | PROT_WRITE;
	flags = MAP_SHARED;
	switch (rbelow(r, 24)) {
	case 0: off = size; break;
	case 1: len = size - off + PAGE; break;
	case 2: len = 0; break;
	case 3: off += 1; break;
	case 4: len = 1ULL << 40; break;
	case 5: prot |= PROT_EXEC; break;
	case 6: flags = MAP_PRIVATE; break;
	case 7: prot = PROT_READ; break;
	case 8: flags |= MAP_POPULATE; break;
	case 9: prot = PROT_NONE; break;
	case 10: off = (1ULL << MMAP_SHIFT) - PAGE; break;
	default: break;
	}
	if (bi >= 0 && !must_fail) {
		if (prot & PROT_EXEC) {
			must_fail = 1;
			snprintf(why, sizeof(why), "PROT_EXEC");
		} else if (flags & MAP_PRIVATE) {
			must_fail = 1;
			snprintf(why, sizeof(why), "MAP_PRIVATE");
		} else if (!len || off % PAGE || off >= size || len > size - off) {
			must_fail = 1;
			snprintf(why, sizeof(why), "window 0x%" PRIx64 "+0x%" PRIx64 " of 0x%" PRIx64,
				 off, len, size);
		}
	}
	pgoff = ((uint64_t)h << MMAP_SHIFT) + off;
	snprintf(desc, sizeof(desc), "mmap fd=%d handle=%u off=0x%" PRIx64 " len=0x%" PRIx64 " prot=%d flags=0x%x%s%s",
		 g.dev[dev].fd, h, off, len, prot, flags, must_fail ? " MUST-FAIL " : "", why);
	logf_(t, "%s", desc);
	call_begin(t, 3000, desc);
	p = mmap(NULL, len, prot, flags, g.dev[dev].fd, (off_t)pgoff);
	sig = p == MAP_FAILED ? errno : 0;
	call_end(t);
	stat_call(slot(OP_MMAP), sig);
	logf_(t, "  -> %s", sig ? strerror(sig) : "ok");
	if (p == MAP_FAILED) {
		if (!mmap_errno_ok(sig))
			bad(t, "mmap-errno", "mmap of a dmaplane buffer failed with %s (%s)",
			    errno_name(sig) ? errno_name(sig) : "?", desc);
		dev_release(dev);
		return;
	}
	if (must_fail) {
		bad(t, "mmap-accepted", "mmap succeeded with %s (%s)", why, desc);
		munmap(p, len);
		dev_release(dev);
		return;
	}
	{
		struct res m = { .addr = p, .size = len, .flags = (uint32_t)prot,
				 .kind = bi >= 0 ? b.kind : BK_GPU, .off = off };

		if (len <= (1ULL << 30))
			touch_check(t, &m, r, "mmap");
	}
	add_mapping(t, dev, h, p, len, off, prot, bi >= 0 ? b.kind : BK_GPU,
		    g.dev[dev].owner, g.dev[dev].gen);
	dev_release(dev);
}

static void op_munmap(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_MAPPING, pred_mine, t, 1), ret;
	struct res m;
	uint64_t cut;

	if (i < 0)
		return;
	pool_lock();
	m = g.res[i];
	pool_unlock();
	switch (rbelow(r, 4)) {
	case 0:	/* the first page */
	case 1:	/* the last page */
		if (m.size <= PAGE)
			goto whole;
		cut = rbelow(r, 2) ? 0 : m.size - PAGE;
		ret = munmap((uint8_t *)m.addr + cut, PAGE);
		stat_call(slot(OP_MUNMAP), ret ? errno : 0);
		if (!ret) {
			pool_lock();
			g.res[i].size -= PAGE;
			if (!cut) {
				g.res[i].addr = (uint8_t *)m.addr + PAGE;
				g.res[i].off += PAGE;
			}
			pool_unlock();
		}
		res_release(i);
		return;
	case 2:	/* a page in the middle: the mapping splits in two */
		if (m.size <= 2 * PAGE)
			goto whole;
		cut = PAGE * (1 + rbelow(r, m.size / PAGE - 2));
		ret = munmap((uint8_t *)m.addr + cut, PAGE);
		stat_call(slot(OP_MUNMAP), ret ? errno : 0);
		if (!ret) {
			int j;

			pool_lock();
			g.res[i].size = cut;
			j = res_new(R_MAPPING);
			if (j >= 0) {
				g.res[j] = g.res[i];
				g.res[j].cookies = NULL;
				g.res[j].busy = 0;
				g.res[j].gen = g.res[j].gen + 1;
				g.res[j].addr = (uint8_t *)m.addr + cut + PAGE;
				g.res[j].size = m.size - cut - PAGE;
				g.res[j].off = m.off + cut + PAGE;
				/* one more VMA: the buffer counts it */
				{
					int b = find_handle(m.dev, R_BUFFER, m.buf);

					if (b >= 0 && m.dev >= 0 &&
					    m.kind != BK_IMPORT &&
					    g.dev[m.dev].gen == m.devgen)
						g.res[b].maps++;
				}
			}
			pool_unlock();
		}
		res_release(i);
		return;
	default:
		break;
	}
whole:
	ret = munmap(m.addr, m.size);
	stat_call(slot(OP_MUNMAP), ret ? errno : 0);
	logf_(t, "munmap %p+0x%" PRIx64 " -> %d", m.addr, m.size, ret);
	pool_lock();
	if (!ret) {
		unmap_count(m.dev, m.devgen, m.buf, m.kind);
		res_free(i);
	} else {
		g.res[i].busy = 0;
	}
	pool_unlock();
}

static void op_mremap(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_MAPPING, pred_mine, t, 1);
	struct res m;
	void *p;

	if (i < 0)
		return;
	pool_lock();
	m = g.res[i];
	pool_unlock();
	if (rchance(r, 50)) {
		/* growing is refused (VM_DONTEXPAND) */
		p = mremap(m.addr, m.size, m.size + PAGE, MREMAP_MAYMOVE);
		stat_call(slot(OP_MREMAP), p == MAP_FAILED ? errno : 0);
		if (p != MAP_FAILED) {
			/* A foreign exporter's mapping (dev -1) follows its rules. */
			if (m.dev >= 0)
				bad(t, "mremap-grow", "mremap grew a dmaplane mapping of kind %d from %" PRIu64 " bytes",
				    m.kind, m.size);
			pool_lock();
			g.res[i].addr = p;
			g.res[i].size = m.size + PAGE;
			pool_unlock();
		}
	} else {
		void *dst = mmap(NULL, m.size, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (dst == MAP_FAILED) {
			res_release(i);
			return;
		}
		p = mremap(m.addr, m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		stat_call(slot(OP_MREMAP), p == MAP_FAILED ? errno : 0);
		if (p == MAP_FAILED) {
			munmap(dst, m.size);
		} else {
			pool_lock();
			g.res[i].addr = p;
			pool_unlock();
			touch_check(t, &g.res[i], r, "mremap");
		}
	}
	res_release(i);
}

static void op_mprotect(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_MAPPING, pred_mine, t, 1), prot, ret;
	struct res m;

	if (i < 0)
		return;
	pool_lock();
	m = g.res[i];
	pool_unlock();
	switch (rbelow(r, 3)) {
	case 0: prot = PROT_READ; break;
	case 1: prot = PROT_READ | PROT_WRITE; break;
	default: prot = m.flags | PROT_EXEC; break;
	}
	ret = mprotect(m.addr, m.size, prot);
	stat_call(slot(OP_MPROTECT), ret ? errno : 0);
	if (!ret && (prot & PROT_EXEC) && own_kind(m.kind))
		bad(t, "mprotect-exec", "mprotect made a dmaplane mapping (kind %d) executable",
		    m.kind);
	if (!ret) {
		pool_lock();
		g.res[i].flags = (uint32_t)prot;
		pool_unlock();
	}
	res_release(i);
}

static void op_madvise(struct tstate *t, struct rng *r)
{
	static const int advs[] = {
		MADV_DONTNEED, MADV_WILLNEED, MADV_DONTFORK, MADV_DOFORK,
		MADV_COLD, MADV_PAGEOUT, MADV_FREE, MADV_SEQUENTIAL,
		MADV_RANDOM, MADV_DONTDUMP, MADV_HUGEPAGE, MADV_MERGEABLE,
		MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_REMOVE,
	};
	int i = res_pick(r, R_MAPPING, pred_mine, t, 1), adv, ret;
	struct res m;
	uint8_t pat = (uint8_t)(1 + rbelow(r, 254));
	volatile uint8_t *p;

	if (i < 0)
		return;
	pool_lock();
	m = g.res[i];
	pool_unlock();
	adv = advs[rbelow(r, sizeof(advs) / sizeof(advs[0]))];
	p = m.addr;
	/* the data lives in the buffer: it must survive a DONTNEED */
	if ((m.flags & PROT_WRITE) && (m.kind == BK_PAGES || m.kind == BK_HUGE) &&
	    !m.zapped && touch_guarded((void *)p, 1, 1, pat))
		pat = 0;
	ret = madvise(m.addr, m.size, adv);
	stat_call(slot(OP_MADVISE), ret ? errno : 0);
	logf_(t, "madvise %p+0x%" PRIx64 " %d -> %d", m.addr, m.size, adv, ret);
	if (!ret && (adv == MADV_DONTNEED || adv == MADV_FREE ||
		     adv == MADV_REMOVE || adv == MADV_PAGEOUT)) {
		if (m.kind == BK_PAGES || m.kind == BK_HUGE) {
			if ((m.flags & PROT_WRITE) && pat && !m.zapped &&
			    !touch_guarded((void *)p, 1, 0, 0) && *p != pat)
				bad(t, "madvise-data", "after madvise(%d) a dmaplane page mapping reads 0x%02x, not the 0x%02x written before",
				    adv, *p, pat);
		} else {
			pool_lock();
			g.res[i].zapped = 1;	/* PFN maps have no fault handler */
			pool_unlock();
		}
	}
	res_release(i);
}

static void op_touch(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_MAPPING, pred_mine, t, 1);
	struct res m;

	if (i < 0)
		return;
	pool_lock();
	m = g.res[i];
	pool_unlock();
	stat_call(slot(OP_TOUCH), 0);
	touch_check(t, &m, r, "touch");
	res_release(i);
}

/* ---- dma-bufs and eventfds ---- */

static int pred_fd_ok(const struct res *x, void *a)
{
	(void)a;
	return x->fd >= 0;
}

static void op_dmabuf_mmap(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_DMABUF, pred_fd_ok, NULL, 1), prot, flags, e;
	uint64_t off, len;
	struct res d;
	char why[64] = "";
	void *p;

	if (i < 0)
		return;
	pool_lock();
	d = g.res[i];
	pool_unlock();
	if (full(R_MAPPING) || !d.size) {
		res_release(i);
		return;
	}
	off = rchance(r, 60) ? 0 : rbelow(r, d.size / PAGE) * PAGE;
	len = rchance(r, 50) ? d.size - off : PAGE * (1 + rbelow(r, (d.size - off) / PAGE));
	prot = d.readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	flags = MAP_SHARED;
	switch (rbelow(r, 12)) {
	case 0: len = d.size - off + PAGE; snprintf(why, sizeof(why), "past the end"); break;
	case 1: prot |= PROT_EXEC; snprintf(why, sizeof(why), "PROT_EXEC"); break;
	case 2: flags = MAP_PRIVATE; snprintf(why, sizeof(why), "MAP_PRIVATE"); break;
	case 3:
		if (d.readonly) {
			prot |= PROT_WRITE;
			snprintf(why, sizeof(why), "writable map of a read-only dma-buf");
		}
		break;
	default: break;
	}
	if (d.foreign && strcmp(why, "past the end"))
		why[0] = 0;	/* another exporter's rules */
	p = mmap(NULL, len, prot, flags, d.fd, (off_t)off);
	e = p == MAP_FAILED ? errno : 0;
	stat_call(slot(OP_DMABUF_MMAP), e);
	logf_(t, "dmabuf mmap fd=%d off=0x%" PRIx64 " len=0x%" PRIx64 " prot=%d flags=0x%x%s%s -> %s",
	      d.fd, off, len, prot, flags, why[0] ? " MUST-FAIL " : "", why,
	      e ? strerror(e) : "ok");
	if (p == MAP_FAILED) {
		if (!mmap_errno_ok(e))
			bad(t, "dmabuf-mmap-errno", "mmap of a dma-buf failed with %s",
			    errno_name(e) ? errno_name(e) : "?");
	} else if (why[0]) {
		bad(t, "dmabuf-mmap-accepted", "mmap of a dma-buf succeeded: %s", why);
		munmap(p, len);
	} else {
		struct res m = { .addr = p, .size = len, .flags = (uint32_t)prot,
				 .kind = d.foreign ? BK_GPU : d.kind };

		touch_check(t, &m, r, "dmabuf mmap");
		/* counted by the exporting buffer (own dma-bufs) */
		add_mapping(t, d.foreign ? -1 : (int)d.ep, d.foreign ? 0 : d.buf,
			    p, len, off, prot, m.kind, t->id, d.devgen);
	}
	res_release(i);
}

static void op_dmabuf_ioctl(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_DMABUF, pred_fd_ok, NULL, 1), ret, e;
	struct dma_buf_sync s = { 0 };
	struct res d;

	if (i < 0)
		return;
	pool_lock();
	d = g.res[i];
	pool_unlock();
	switch (rbelow(r, 4)) {
	case 0:
	case 1: {
		int inval = rchance(r, 20);

		/*
		 * 6.1's udmabuf maps at its first begin_cpu_access with that
		 * call's direction and syncs later calls with theirs, which
		 * DMA-API debug reports against udmabuf: foreign dma-bufs
		 * get one direction.
		 */
		s.flags = (rchance(r, 50) ? DMA_BUF_SYNC_START : DMA_BUF_SYNC_END) |
			  (d.foreign ? DMA_BUF_SYNC_RW : 1 + rbelow(r, 3));
		if (inval)
			s.flags |= 1ULL << (3 + rbelow(r, 60));
		ret = ioctl(d.fd, DMA_BUF_IOCTL_SYNC, &s);
		e = ret ? errno : 0;
		stat_call(slot(OP_DMABUF_SYNC), e);
		if (!ret && inval)
			bad(t, "dmabuf-sync", "DMA_BUF_IOCTL_SYNC accepted flags 0x%llx",
			    (unsigned long long)s.flags);
		break;
	}
	case 2: {
		char name[64];

		memset(name, 'a' + (int)rbelow(r, 26), sizeof(name));
		name[rbelow(r, sizeof(name))] = 0;
		ret = ioctl(d.fd, DMA_BUF_SET_NAME_B, name);
		stat_call(slot(OP_DMABUF_SYNC), ret ? errno : 0);
		break;
	}
	default: {
#ifdef DMA_BUF_IOCTL_EXPORT_SYNC_FILE
		struct dma_buf_export_sync_file x = {
			.flags = (uint32_t)(1 + rbelow(r, 3)),
		};

		ret = ioctl(d.fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &x);
		stat_call(slot(OP_DMABUF_SYNC), ret ? errno : 0);
		if (!ret)
			close(x.fd);
#endif
		break;
	}
	}
	res_release(i);
}

/* A foreign dma-buf: udmabuf or a dma-heap, where the kernel has them. */
static void new_foreign(struct tstate *t, struct rng *r)
{
	int udmabuf = rchance(r, 50), fd = -1, i;
	uint64_t size = PAGE * (1 + rbelow(r, udmabuf ? UDMABUF_MAX_PAGES : 64));

	if (full(R_DMABUF))
		return;
	if (udmabuf) {
		int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), mfd;

		/*
		 * 6.1's udmabuf holds the memfd's pages, not the memfd: a
		 * memfd freed while a page of it is mapped through a udmabuf
		 * is a kernel BUG ("page still mapped when deleted"; upstream
		 * now maps udmabufs by PFN). The memfd is freed here, before
		 * any mapping, and the pool lock (held across fork) keeps a
		 * child from inheriting it and freeing it later. And its CPU
		 * access maps the memfd's pages for its own misc device,
		 * merging contiguous ones past that device's 64 KiB segment
		 * limit, which DMA-API debug reports: 64 KiB at most.
		 */
		pool_lock();
		mfd = (int)syscall(SYS_memfd_create, "dpfuzz", 2 /* MFD_ALLOW_SEALING */);
		if (dev >= 0 && mfd >= 0 && !ftruncate(mfd, (off_t)size) &&
		    !fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
			struct udmabuf_create u = { .memfd = (uint32_t)mfd,
						    .flags = UDMABUF_FLAGS_CLOEXEC,
						    .size = size };

			fd = ioctl(dev, UDMABUF_CREATE, &u);
		}
		if (mfd >= 0)
			close(mfd);
		pool_unlock();
		if (dev >= 0)
			close(dev);
	} else {
		int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
		struct dma_heap_allocation_data a = {
			.len = size, .fd_flags = O_RDWR | O_CLOEXEC,
		};

		if (heap >= 0 && !ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a))
			fd = (int)a.fd;
		if (heap >= 0)
			close(heap);
	}
	if (fd < 0)
		return;
	logf_(t, "foreign dma-buf fd=%d size=0x%" PRIx64, fd, size);
	pool_lock();
	i = res_new(R_DMABUF);
	if (i >= 0) {
		g.res[i].fd = fd;
		g.res[i].size = size;
		g.res[i].foreign = 1;
	}
	pool_unlock();
	if (i < 0)
		close(fd);
}

static void op_dmabuf_misc(struct tstate *t, struct rng *r)
{
	int i, fd;
	struct res d;
	char path[64], buf[1024];
	off_t end;

	if (rchance(r, 20)) {
		new_foreign(t, r);
		return;
	}
	i = res_pick(r, R_DMABUF, pred_fd_ok, NULL, 1);
	if (i < 0)
		return;
	pool_lock();
	d = g.res[i];
	pool_unlock();
	end = lseek(d.fd, 0, SEEK_END);
	stat_call(slot(OP_DMABUF_MISC), end < 0 ? errno : 0);
	if (end != (off_t)d.size)
		bad(t, "dmabuf-size", "a %" PRIu64 "-byte dma-buf seeks to %lld",
		    d.size, (long long)end);
	if (read(d.fd, buf, 1) >= 0)
		bad(t, "dmabuf-read", "read() of a dma-buf succeeded");
	{
		struct pollfd pfd = { .fd = d.fd, .events = POLLIN | POLLOUT };

		poll(&pfd, 1, 0);
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", d.fd);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		char *s;

		close(fd);
		if (n > 0) {
			buf[n] = 0;
			s = strstr(buf, "size:");
			if (s && strtoull(s + 5, NULL, 10) != d.size)
				bad(t, "dmabuf-fdinfo", "fdinfo of a %" PRIu64 "-byte dma-buf: %s",
				    d.size, s);
		}
	}
	res_release(i);
}

static void op_dmabuf_close(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_DMABUF, pred_fd_ok, NULL, 1);

	(void)t;
	if (i < 0)
		return;
	pool_lock();
	stat_call(slot(OP_DMABUF_CLOSE), close(g.res[i].fd) ? errno : 0);
	res_free(i);
	pool_unlock();
}

static void op_eventfd(struct tstate *t, struct rng *r, int op)
{
	int i, fd;
	uint64_t v = 1;

	(void)t;
	if (op == OP_EVENTFD_NEW) {
		if (full(R_EVENTFD))
			return;
		fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		stat_call(slot(op), fd < 0 ? errno : 0);
		if (fd < 0)
			return;
		pool_lock();
		i = res_new(R_EVENTFD);
		if (i >= 0)
			g.res[i].fd = fd;
		pool_unlock();
		if (i < 0)
			close(fd);
		return;
	}
	i = res_pick(r, R_EVENTFD, pred_fd_ok, NULL, 1);
	if (i < 0)
		return;
	if (op == OP_EVENTFD_IO) {
		ssize_t n = rchance(r, 70) ? read(g.res[i].fd, &v, 8) :
			    write(g.res[i].fd, &v, 8);

		stat_call(slot(op), n < 0 ? errno : 0);
		res_release(i);
		return;
	}
	pool_lock();
	stat_call(slot(op), close(g.res[i].fd) ? errno : 0);
	res_free(i);
	pool_unlock();
}

/* ---- loopback connections and traffic ---- */

struct connect_job {
	struct tstate *parent;
	int dev;
	uint32_t ep;
	uint16_t port;
	int ret;
	uint64_t seed_op;
};

static void setup_connect(struct call *c, void *arg)
{
	struct connect_job *j = arg;

	c->skip_pre = 1;
	fset(c, "handle", j->ep);
	set_ipv4(c, "addr", g.guest_ip);
	fset(c, "addr.port", j->port);
	fset(c, "addr.scope_id", 0);
	fset(c, "timeout_ms", 5000);
	c->deadline_ms = 8000;
}

static void *connect_thread(void *arg)
{
	struct connect_job *j = arg;
	struct tstate *t = tstate_new(MAX_THREADS + (j->parent->id % MAX_THREADS));
	struct rng r = rng_for(g.o.seed, (uint64_t)j->parent->id, j->seed_op, 3);

	if (!t) {
		j->ret = -ENOMEM;
		return NULL;
	}
	t->opno = j->parent->opno;
	t->in_child = j->parent->in_child;
	j->ret = do_cmd(t, &r, "ENDPOINT_CONNECT", j->dev, M_VALID,
			setup_connect, j, NULL);
	tstate_free(t);
	return NULL;
}

struct ep_setup {
	uint32_t flags;
	uint32_t handle;
	uint32_t buffer;
	uint64_t size;
	uint32_t access;
};

static void setup_epc(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	fset(c, "flags", s->flags);
}

static void setup_listen(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	c->skip_pre = 1;
	fset(c, "handle", s->handle);
	set_ipv4(c, "addr", g.guest_ip);
	fset(c, "addr.port", 0);
	fset(c, "addr.scope_id", 0);
	fset(c, "backlog", 4);
}

static void setup_accept(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	c->skip_pre = 1;
	fset(c, "handle", s->handle);
	fset(c, "timeout_ms", 5000);
	c->deadline_ms = 8000;
}

static void setup_destroy(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	fset(c, "handle", s->handle);
	fset(c, "flags", 0);
}

static void setup_bcreate(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	fset(c, "size", s->size);
	fset(c, "flags", 0);
	fset(c, "numa_node", (uint64_t)-1);
	fset(c, "user_addr", 0);
}

static void setup_mr(struct call *c, void *arg)
{
	struct ep_setup *s = arg;

	fset(c, "endpoint", s->handle);
	fset(c, "buffer", s->buffer);
	fset(c, "offset", 0);
	fset(c, "length", 0);
	fset(c, "access", s->access);
}

/* A data buffer, its MR and a mapping for endpoint res @ei. */
static void pair_data(struct tstate *t, struct rng *r, int dev, int ei)
{
	struct ep_setup s = { .size = PAGE * (1 + rbelow(r, 16)) };
	struct call *c = malloc(sizeof(*c));
	uint32_t buf, mr;
	void *p;

	if (!c)
		return;
	pool_lock();
	s.handle = g.res[ei].handle;
	pool_unlock();
	if (do_cmd(t, r, "BUFFER_CREATE", dev, M_VALID, setup_bcreate, &s, c) ||
	    !out_has(c, "handle"))
		goto out;
	buf = (uint32_t)fget_out(c, "handle");
	s.buffer = buf;
	s.access = DMAPLANE_MR_LOCAL_WRITE | DMAPLANE_MR_REMOTE_WRITE |
		   DMAPLANE_MR_REMOTE_READ;
	if (do_cmd(t, r, "MR_REG", dev, M_VALID, setup_mr, &s, c) ||
	    !out_has(c, "rkey"))
		goto out;
	mr = (uint32_t)fget_out(c, "handle");
	p = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_SHARED, g.dev[dev].fd,
		 (off_t)((uint64_t)buf << MMAP_SHIFT));
	pool_lock();
	g.res[ei].data_buf = buf;
	g.res[ei].data_mr = mr;
	g.res[ei].data_rkey = (uint32_t)fget_out(c, "rkey");
	g.res[ei].data_size = s.size;
	pool_unlock();
	if (p != MAP_FAILED) {
		int mi;

		add_mapping(t, dev, buf, p, s.size, 0, PROT_READ | PROT_WRITE,
			    BK_PAGES, g.dev[dev].owner, g.dev[dev].gen);
		pool_lock();
		for (mi = 0; mi < MAX_RES; mi++)
			if (g.res[mi].type == R_MAPPING && g.res[mi].addr == p)
				break;
		if (mi < MAX_RES) {
			g.res[ei].data_map = mi;
			g.res[ei].data_mapgen = g.res[mi].gen;
		}
		pool_unlock();
	}
out:
	free(c);
}

static void op_connect_pair(struct tstate *t, struct rng *r)
{
	struct connect_job j = { .parent = t, .seed_op = t->opno };
	struct ep_setup s = { 0 };
	int devs, devc, ci = -1, si = -1, li = -1, ret;
	uint32_t listener, client, server;
	struct call *c;
	pthread_t th;

	if (!g.have_rdma || t->in_child || full(R_ENDPOINT) || g.nres[R_ENDPOINT] > 30)
		return;
	c = malloc(sizeof(*c));
	if (!c)
		return;
	devs = dev_pick(t, r);
	devc = rchance(r, 50) ? dev_pick(t, r) : -1;
	if (devc < 0 && devs >= 0) {
		devc = devs;
		pool_lock();
		g.dev[devc].inuse++;
		pool_unlock();
	}
	if (devs < 0)
		goto out;
	s.flags = rchance(r, 25) ? DMAPLANE_EP_NO_CREDITS : 0;
	if (do_cmd(t, r, "ENDPOINT_CREATE", devs, M_VALID, setup_epc, &s, c) ||
	    !out_has(c, "handle"))
		goto out;
	listener = s.handle = (uint32_t)fget_out(c, "handle");
	if (do_cmd(t, r, "ENDPOINT_LISTEN", devs, M_VALID, setup_listen, &s, c) ||
	    !out_has(c, "addr"))
		goto drop_listener;
	j.port = (uint16_t)fget_out(c, "addr.port");
	s.flags = rchance(r, 25) ? DMAPLANE_EP_NO_CREDITS : 0;
	if (do_cmd(t, r, "ENDPOINT_CREATE", devc, M_VALID, setup_epc, &s, c) ||
	    !out_has(c, "handle"))
		goto drop_listener;
	client = j.ep = (uint32_t)fget_out(c, "handle");
	j.dev = devc;
	if (pthread_create(&th, NULL, connect_thread, &j))
		goto drop_listener;
	s.handle = listener;
	ret = do_cmd(t, r, "ENDPOINT_ACCEPT", devs, M_VALID, setup_accept, &s, c);
	server = !ret && out_has(c, "new_handle") ? (uint32_t)fget_out(c, "new_handle") : 0;
	pthread_join(th, NULL);
	logf_(t, "connect-pair: listener %u client %u (%d) server %u (%d)",
	      listener, client, j.ret, server, ret);
	stat_call(slot(OP_CONNECT_PAIR), ret ? -ret : j.ret ? -j.ret : 0);
	if (!ret && !j.ret && server) {
		pool_lock();
		ci = find_handle(devc, R_ENDPOINT, client);
		si = find_handle(devs, R_ENDPOINT, server);
		if (ci >= 0 && si >= 0) {
			g.res[ci].peer = si;
			g.res[ci].peergen = g.res[si].gen;
			g.res[si].peer = ci;
			g.res[si].peergen = g.res[ci].gen;
		}
		pool_unlock();
		stat_res(R_CONN, 1);
		if (ci >= 0 && si >= 0) {
			pair_data(t, r, devc, ci);
			pair_data(t, r, devs, si);
		}
	}
drop_listener:
	if (rchance(r, 60)) {
		s.handle = listener;
		do_cmd(t, r, "ENDPOINT_DESTROY", devs, M_VALID, setup_destroy, &s, c);
	}
	(void)li;
out:
	dev_release(devs);
	if (devc >= 0)
		dev_release(devc);
	free(c);
}

struct traffic {
	uint32_t ep;
	uint8_t *ops;
	uint32_t n;
	uint32_t flags;
	uint32_t min, max;
	struct dmaplane_completion *comp;
};

static void setup_post(struct call *c, void *arg)
{
	struct traffic *x = arg;

	c->skip_pre = 1;
	fset(c, "endpoint", x->ep);
	fset(c, "count", x->n);
	fset(c, "ops", (uint64_t)(uintptr_t)x->ops);
	fset(c, "flags", x->flags);
	c->post_first_bad = -1;
}

static void setup_reap(struct call *c, void *arg)
{
	struct traffic *x = arg;

	c->skip_pre = 1;
	fset(c, "endpoint", x->ep);
	fset(c, "max", x->max);
	fset(c, "min", x->min);
	fset(c, "timeout_ms", 3000);
	c->deadline_ms = 6000;
	c->narr = 0;
	if (x->comp) {
		c->arr[0].f = cf(c, "entries");
		c->arr[0].p = (uint8_t *)x->comp;
		c->arr[0].bytes = x->max * sizeof(*x->comp);
		c->arr[0].count = x->max;
		c->arr[0].canary = 0;
		c->narr = 1;
		fset(c, "entries", (uint64_t)(uintptr_t)x->comp);
	}
}

static int pred_pair(const struct res *x, void *a)
{
	(void)a;
	return x->state == EP_CONNECTED && x->peer >= 0 && x->data_mr &&
	       g.res[x->peer].type == R_ENDPOINT &&
	       g.res[x->peer].gen == x->peergen && g.res[x->peer].data_mr &&
	       !g.res[x->peer].busy;
}

static void setup_info(struct call *c, void *arg)
{
	struct traffic *x = arg;

	c->skip_pre = 1;
	fset(c, "handle", x->ep);
}

/* Nothing of earlier batches is still on its way (ENDPOINT_INFO). */
static int quiet(struct tstate *t, struct rng *r, int dev, uint32_t ep,
		 struct call *c)
{
	struct traffic x = { .ep = ep };

	if (do_cmd(t, r, "ENDPOINT_INFO", dev, M_VALID, setup_info, &x, c) ||
	    !out_has(c, "inflight"))
		return 0;
	return fget_out(c, "state") == DMAPLANE_EP_CONNECTED &&
	       !fget_out(c, "inflight") && !fget_out(c, "queued") &&
	       !fget_out(c, "error");
}

/*
 * Traffic on a loopback pair: RECVs on one end B, a batch of WRITE,
 * WRITE_IMM, SEND and READ from the other end A, reaped on both. When
 * both files are this thread's alone and the pair was quiet, every
 * operation posted must come back and succeed (but for one broken on
 * purpose now and then: a bad rkey, which must fail the connection
 * cleanly), and the bytes A wrote must be in B's window.
 */
static void op_traffic(struct tstate *t, struct rng *r)
{
	int ai = res_pick(r, R_ENDPOINT, pred_pair, NULL, 1), bi, devA, devB;
	struct res A, B, MA = { 0 }, MB = { 0 };
	int mapA = 0, mapB = 0, check, k, nrecv = 0, nsend = 0, ret;
	int wrote = -1, broken = 0;
	struct dmaplane_op ops[16];
	struct dmaplane_completion comp[32];
	struct traffic x;
	struct call *c;
	uint64_t wlen = 0, roff = 0, len;
	uint8_t pat = (uint8_t)(1 + rbelow(r, 254));

	if (ai < 0)
		return;
	pool_lock();
	A = g.res[ai];
	bi = A.peer;
	if (g.res[bi].busy || g.res[bi].gen != A.peergen) {
		g.res[ai].busy = 0;
		pool_unlock();
		return;
	}
	g.res[bi].busy = 1;
	B = g.res[bi];
	devA = A.dev;
	devB = B.dev;
	g.dev[devA].inuse++;
	g.dev[devB].inuse++;
	if (A.data_map >= 0 && g.res[A.data_map].type == R_MAPPING &&
	    g.res[A.data_map].gen == A.data_mapgen && !g.res[A.data_map].busy &&
	    g.res[A.data_map].size >= A.data_size && !g.res[A.data_map].zapped &&
	    g.res[A.data_map].flags == (PROT_READ | PROT_WRITE)) {
		g.res[A.data_map].busy = 1;
		MA = g.res[A.data_map];
		mapA = 1;
	}
	if (B.data_map >= 0 && g.res[B.data_map].type == R_MAPPING &&
	    g.res[B.data_map].gen == B.data_mapgen && !g.res[B.data_map].busy &&
	    g.res[B.data_map].size >= B.data_size && !g.res[B.data_map].zapped &&
	    (g.res[B.data_map].flags & PROT_READ)) {
		g.res[B.data_map].busy = 1;
		MB = g.res[B.data_map];
		mapB = 1;
	}
	pool_unlock();
	check = dev_excl(t, devA) && dev_excl(t, devB) && !t->in_child;
	/*
	 * An earlier MR_DEREG may have taken either window's MR: B's rkey
	 * then fails A's WRITEs, as it must (the last CI's "finding").
	 */
	if (check) {
		pool_lock();
		check = find_handle(devA, R_MR, A.data_mr) >= 0 &&
			find_handle(devB, R_MR, B.data_mr) >= 0;
		pool_unlock();
	}
	c = malloc(sizeof(*c));
	if (!c)
		goto out;
	if (check)
		check = quiet(t, r, devA, A.handle, c) &&
			quiet(t, r, devB, B.handle, c);

	/* B posts receives for A's SENDs and WRITE_IMMs */
	memset(ops, 0, sizeof(ops));
	nrecv = 1 + (int)rbelow(r, 4);
	for (k = 0; k < nrecv; k++) {
		ops[k].cookie = 0x7700000000ULL + k;
		ops[k].opcode = DMAPLANE_OP_RECV;
		ops[k].mr = B.data_mr;
		ops[k].length = B.data_size;
	}
	x = (struct traffic){ .ep = B.handle, .ops = (uint8_t *)ops, .n = (uint32_t)nrecv };
	ret = do_cmd(t, r, "POST", devB, M_VALID, setup_post, &x, c);
	nrecv = ret ? 0 : (int)fget_out(c, "posted");

	/* A's batch; with a check, A's whole window holds the pattern and
	 * nothing reads into it, so whatever reaches B is the pattern */
	memset(ops, 0, sizeof(ops));
	nsend = 1 + (int)rbelow(r, 8);
	for (k = 0; k < nsend; k++) {
		int opc = 1 + (int)rbelow(r, 5);

		len = 1 + rbelow(r, A.data_size < B.data_size ? A.data_size :
				 B.data_size);
		if (opc == DMAPLANE_OP_RECV || (opc == DMAPLANE_OP_READ && check))
			opc = DMAPLANE_OP_WRITE;
		if ((opc == DMAPLANE_OP_SEND || opc == DMAPLANE_OP_WRITE_IMM) &&
		    nrecv-- <= 0)
			opc = DMAPLANE_OP_WRITE;
		ops[k].cookie = 0x7800000000ULL + k;
		ops[k].opcode = (uint32_t)opc;
		ops[k].mr = A.data_mr;
		ops[k].length = len;
		if (opc != DMAPLANE_OP_SEND) {
			ops[k].rkey = B.data_rkey;
			ops[k].remote_offset = rbelow(r, B.data_size - len + 1);
		}
		if (opc == DMAPLANE_OP_WRITE_IMM)
			ops[k].imm = (uint32_t)rnext(r);
		if (opc == DMAPLANE_OP_WRITE && wrote < 0) {
			wrote = k;
			wlen = len;
			roff = ops[k].remote_offset;
		}
	}
	/* zero-length SENDs use up B's remaining receives: B ends quiet */
	while (nrecv > 0 && nsend < 16) {
		memset(&ops[nsend], 0, sizeof(ops[nsend]));
		ops[nsend].cookie = 0x7800000000ULL + nsend;
		ops[nsend].opcode = DMAPLANE_OP_SEND;
		nsend++;
		nrecv--;
	}
	if (rchance(r, 4)) {
		k = (int)rbelow(r, nsend);
		if (ops[k].opcode != DMAPLANE_OP_SEND) {
			ops[k].rkey ^= 0x5a5a00;
			broken = 1;
		}
	}
	if (check && (!mapA || !mapB || touch_guarded(MA.addr, A.data_size, 1, pat)))
		check = 0;
	if (check)
		memset(MA.addr, pat, A.data_size);
	x = (struct traffic){ .ep = A.handle, .ops = (uint8_t *)ops, .n = (uint32_t)nsend,
			      .flags = !check && rchance(r, 30) ? DMAPLANE_POST_NOWAIT : 0 };
	ret = do_cmd(t, r, "POST", devA, M_VALID, setup_post, &x, c);
	nsend = ret ? 0 : (int)fget_out(c, "posted");
	stat_call(slot(OP_TRAFFIC), ret ? -ret : 0);

	/* reap A: every posted operation comes back */
	if (nsend) {
		struct dmaplane_completion failed = { 0 };
		uint32_t got = 0;
		int ok = 1, tries;

		for (tries = 0; tries < 3 && got < (uint32_t)nsend; tries++) {
			x = (struct traffic){ .ep = A.handle, .max = 32,
					      .min = (uint32_t)nsend - got,
					      .comp = comp };
			memset(comp, 0, sizeof(comp));
			ret = do_cmd(t, r, "REAP", devA, M_VALID, setup_reap, &x, c);
			if (ret)
				break;
			for (k = 0; k < (int)fget_out(c, "count"); k++)
				if (comp[k].status && ok) {
					ok = 0;
					failed = comp[k];
				}
			got += (uint32_t)fget_out(c, "count");
		}
		if (check && !broken && ok && got < (uint32_t)nsend)
			bad(t, "traffic-lost", "traffic: %d operations posted on a quiet loopback pair, %u came back (last REAP %d)",
			    nsend, got, ret);
		if (check && !broken && !ok)
			bad(t, "traffic-status", "traffic: a valid operation on a quiet loopback pair completed with an error: cookie 0x%" PRIx64 " opcode %u status %d wc_status %u (%d operations, endpoints %u and %u)",
			    (uint64_t)failed.cookie, failed.opcode, failed.status,
			    failed.wc_status, nsend, A.handle, B.handle);
		if (check && !broken && ok && got == (uint32_t)nsend)
			__atomic_fetch_add(&g.sh->traffic_checked, 1, __ATOMIC_RELAXED);
		if (check && !broken && ok && got == (uint32_t)nsend &&
		    wrote >= 0 && wrote < nsend) {
			const uint8_t *dst = (const uint8_t *)MB.addr + roff;
			uint64_t q;

			for (q = 0; q < wlen; q++)
				if (dst[q] != pat)
					break;
			if (q < wlen)
				bad(t, "traffic-data", "traffic: a completed WRITE of %" PRIu64 " bytes (0x%02x) left byte %" PRIu64 " of the peer's window 0x%02x",
				    wlen, pat, q, dst[q]);
		}
	}
	/* reap B: what A's batch consumed */
	x = (struct traffic){ .ep = B.handle, .max = 32, .comp = comp };
	for (k = 0; k < 3; k++) {
		x.min = !broken && nsend ? 1 : 0;
		if (do_cmd(t, r, "REAP", devB, M_VALID, setup_reap, &x, c) ||
		    !x.min)
			break;
	}
	free(c);
out:
	pool_lock();
	g.res[ai].busy = 0;
	g.res[bi].busy = 0;
	if (mapA)
		g.res[A.data_map].busy = 0;
	if (mapB)
		g.res[B.data_map].busy = 0;
	g.dev[devA].inuse--;
	g.dev[devB].inuse--;
	pool_unlock();
}

/* ---- fork, close/reopen, debugfs, user regions ---- */

static void drop_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (!syscall(SYS_capset, &h, d))
		g.child_unpriv = 1;
}

static void child_main(struct tstate *t, uint64_t salt, int inherit, int unpriv,
		       int nops)
{
	struct rng r = rng_for(g.o.seed, (uint64_t)t->id, t->opno, salt);
	int i, d;

	g.in_child = 1;
	t->in_child = 1;
	g.children_alive = 0;
	/* the parent's mappings are not ours (VM_DONTCOPY); its threads' are gone */
	for (i = 0; i < MAX_RES; i++) {
		if (g.res[i].type == R_MAPPING || (g.res[i].busy &&
						   g.res[i].type != R_NONE))
			g.res[i].type = R_NONE;
		g.res[i].inherited = 1;	/* the parent counts these */
	}
	for (i = 0; i < MAX_TSTATE; i++)
		if (g.ts[i] != t)
			g.ts[i] = NULL;
	for (d = 0; d < MAX_DEV; d++) {
		if (!g.dev[d].used)
			continue;
		g.dev[d].inuse = 0;
		g.dev[d].closing = 0;
		if (inherit) {
			g.dev[d].owner = t->id;
		} else {
			close(g.dev[d].fd);
			g.dev[d].used = 0;
		}
	}
	if (open_dev(t->id) < 0)
		_exit(0);
	if (unpriv)
		drop_caps();
	g.o.threads = 1;
	for (i = 0; i < nops && !g.sh->stop; i++) {
		struct rng ro = rng_for(g.o.seed, (uint64_t)t->id,
					(t->opno << 16) + (uint64_t)i, salt);

		one_op(t, &ro);
	}
	switch (rbelow(&r, 3)) {
	case 0:
		_exit(0);	/* everything open */
	case 1:
		worker_orderly_close();
		_exit(0);
	default:
		raise(SIGKILL);
	}
	_exit(0);
}

static void op_fork(struct tstate *t, struct rng *r)
{
	int inherit = rchance(r, 30), unpriv = rchance(r, 30), status = 0, d;
	int nops = 5 + (int)rbelow(r, 60);
	uint64_t kill_after = rchance(r, 50) ? rbelow(r, 300) : 10000, start;
	uint64_t salt = 1000 + (uint64_t)__atomic_fetch_add(&g.forks, 1, __ATOMIC_RELAXED);
	int killed = 0;
	pid_t pid;

	if (g.o.no_fork || t->in_child || g.in_child)
		return;
	pool_lock();
	if (inherit)
		for (d = 0; d < MAX_DEV; d++)
			if (g.dev[d].used)
				g.dev[d].tainted = 1;
	g.children_alive++;
	pool_unlock();
	logf_(t, "fork: inherit %d unpriv %d ops %d kill after %" PRIu64 " ms",
	      inherit, unpriv, nops, kill_after);
	pid = fork();
	if (pid == 0)
		child_main(t, salt, inherit, unpriv, nops);
	stat_call(slot(OP_FORK), pid < 0 ? errno : 0);
	if (pid > 0) {
		__atomic_fetch_add(&g.sh->children, 1, __ATOMIC_RELAXED);
		start = now_ns();
		call_begin(t, 60000, "waiting for a forked child");
		for (;;) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid)
				break;
			if (!killed && now_ns() - start > kill_after * 1000000ULL) {
				kill(pid, SIGKILL);
				killed = 1;
				__atomic_fetch_add(&g.sh->children_killed, 1,
						   __ATOMIC_RELAXED);
			}
			if (killed && now_ns() - start >
			    (kill_after + (uint64_t)g.o.hang_secs * 1000) * 1000000ULL) {
				char path[64], stack[1024] = "";
				int fd;

				snprintf(path, sizeof(path), "/proc/%d/stack", pid);
				fd = open(path, O_RDONLY);
				if (fd >= 0) {
					ssize_t n = read(fd, stack, sizeof(stack) - 1);

					stack[n > 0 ? n : 0] = 0;
					close(fd);
				}
				finding(t, 4, "child-stuck",
					"a forked child did not die %d s after SIGKILL; stack: %s",
					g.o.hang_secs, stack);
				break;
			}
			usleep(2000);
		}
		call_end(t);
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			finding(t, 3, "child-crash", "a forked child died of signal %d",
				WTERMSIG(status));
	}
	pool_lock();
	g.children_alive--;
	pool_unlock();
}

static void op_reopen(struct tstate *t, struct rng *r)
{
	int d = -1, i, fd, tries;
	uint64_t start = now_ns();

	pool_lock();
	for (i = 0; i < MAX_DEV; i++)
		if (g.dev[i].used && !g.dev[i].closing &&
		    (g.dev[i].owner == t->id || (g.dev[i].owner < 0 && rchance(r, 20)))) {
			d = i;
			break;
		}
	if (d >= 0)
		g.dev[d].closing = 1;
	pool_unlock();
	if (d < 0)
		return;
	for (tries = 0;; tries++) {
		int busy;

		pool_lock();
		busy = g.dev[d].inuse;
		pool_unlock();
		if (!busy)
			break;
		if (now_ns() - start > 2000000000ULL) {
			pool_lock();
			g.dev[d].closing = 0;
			pool_unlock();
			return;
		}
		usleep(1000);
	}
	pool_lock();
	fd = g.dev[d].fd;
	for (i = 0; i < MAX_RES; i++) {
		struct res *x = &g.res[i];

		if (x->dev != d || x->devgen != g.dev[d].gen)
			continue;
		if (x->type == R_MAPPING) {
			x->dev = -1;	/* the mapping outlives the file */
			continue;
		}
		if (x->type == R_BUFFER && own_kind(x->kind))
			g.budget_used -= (int64_t)x->size;
		if (x->busy)
			x->dev = -1;	/* its user gives it back later */
		else
			res_free(i);
	}
	g.dev[d].used = 0;
	pool_unlock();
	stat_call(slot(OP_REOPEN), close(fd) ? errno : 0);
	logf_(t, "close-reopen: closed fd %d", fd);
	i = open_dev(g.dev[d].owner);
	if (i >= 0 && g.shared_dev == d)
		g.shared_dev = i;
}

static void op_debugfs(struct tstate *t, struct rng *r)
{
	static const char *const files[] = {
		"/sys/kernel/debug/dmaplane/info",
		"/sys/kernel/debug/dmaplane/buffers",
		"/sys/kernel/debug/dmaplane/endpoints",
	};
	const char *path = files[rbelow(r, 3)];
	char *buf = malloc(1 << 16), *p;
	ssize_t n;
	int fd;

	if (!buf)
		return;
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		free(buf);
		return;
	}
	n = read(fd, buf, (1 << 16) - 1);
	close(fd);
	stat_call(slot(OP_DEBUGFS), n < 0 ? errno : 0);
	if (n <= 0) {
		free(buf);
		return;
	}
	buf[n] = 0;
	for (p = buf; *p; p++) {
		unsigned long long v;
		char *end;

		if (!((*p >= '0' && *p <= '9') && (p == buf || !((p[-1] >= '0' && p[-1] <= '9') ||
							       (p[-1] >= 'a' && p[-1] <= 'f') ||
							       p[-1] == 'x'))))
			continue;
		v = strtoull(p, &end, 0);
		if (v >= KADDR_MIN) {
			bad(t, "debugfs-kaddr", "%s shows 0x%llx, a kernel address: %.60s",
			    path, v, p);
			break;
		}
		p = end - 1;
	}
	free(buf);
}

static void op_uregion(struct tstate *t, struct rng *r)
{
	int i = res_pick(r, R_UREGION, pred_mine, t, 1);

	if (i < 0)
		return;
	pool_lock();
	if (rchance(r, 70)) {
		stat_call(slot(OP_UREGION),
			  munmap(g.res[i].addr, g.res[i].size) ? errno : 0);
		res_free(i);
	} else {
		stat_call(slot(OP_UREGION),
			  mprotect(g.res[i].addr, g.res[i].size, PROT_NONE) ? errno : 0);
		g.res[i].busy = 0;
	}
	pool_unlock();
}

int op_extra(struct tstate *t, struct rng *r, int op)
{
	switch (op) {
	case OP_MMAP: op_mmap(t, r); break;
	case OP_MUNMAP: op_munmap(t, r); break;
	case OP_MREMAP: op_mremap(t, r); break;
	case OP_MPROTECT: op_mprotect(t, r); break;
	case OP_MADVISE: op_madvise(t, r); break;
	case OP_TOUCH: op_touch(t, r); break;
	case OP_DMABUF_MMAP: op_dmabuf_mmap(t, r); break;
	case OP_DMABUF_SYNC: op_dmabuf_ioctl(t, r); break;
	case OP_DMABUF_MISC: op_dmabuf_misc(t, r); break;
	case OP_DMABUF_CLOSE: op_dmabuf_close(t, r); break;
	case OP_EVENTFD_NEW: case OP_EVENTFD_IO: case OP_EVENTFD_CLOSE:
		op_eventfd(t, r, op);
		break;
	case OP_CONNECT_PAIR: op_connect_pair(t, r); break;
	case OP_TRAFFIC: op_traffic(t, r); break;
	case OP_FORK: op_fork(t, r); break;
	case OP_REOPEN: op_reopen(t, r); break;
	case OP_DEBUGFS: op_debugfs(t, r); break;
	case OP_UREGION: op_uregion(t, r); break;
	default: break;
	}
	return 0;
}

/* What the module and the machine offer, once, before the threads start. */
void ops_init_globals(void)
{
	struct dmaplane_info info = { 0 };
	struct dmaplane_topology topo = { 0 };
	struct dmaplane_numa_node nodes[64];
	int fd = g.dev[g.shared_dev].fd, i;
	const char *ip = getenv("DP_GUEST_IP");

	if (!ioctl(fd, DMAPLANE_IOC_GET_INFO, &info)) {
		g.caps = (uint32_t)info.capabilities;
		g.gpu_ready = info.gpu_ready;
		g.gpu_sim_devices = info.gpu_sim_devices;
		g.nodes_possible = (int)info.numa_nodes_possible;
	}
	topo.nodes_len = 64;
	topo.nodes_ptr = (uintptr_t)nodes;
	if (!ioctl(fd, DMAPLANE_IOC_GET_TOPOLOGY, &topo)) {
		g.nr_nodes = (int)topo.nr_nodes;
		for (i = 0; i < (int)topo.nr_nodes && i < 64; i++)
			if (nodes[i].node_id < 64)
				g.node_online[nodes[i].node_id] = 1;
		g.nodes_known = 1;
	}
	if (ip && *ip)
		snprintf(g.guest_ip, sizeof(g.guest_ip), "%s", ip);
	g.have_rdma = !g.o.no_rdma && g.guest_ip[0] && info.rdma_devices > 0;
	printf("dpfuzz: uapi %u, module %.32s, %u NUMA node%s online, %u RDMA device%s%s, GPU providers ready 0x%x\n",
	       info.uapi_version, info.module_version, (unsigned int)g.nr_nodes,
	       g.nr_nodes == 1 ? "" : "s", info.rdma_devices,
	       info.rdma_devices == 1 ? "" : "s",
	       g.have_rdma ? " (loopback connections on)" : " (no loopback connections)",
	       info.gpu_ready);
	fflush(stdout);
}

void worker_orderly_close(void)
{
	int i;

	pool_lock();
	for (i = 0; i < MAX_RES; i++) {
		struct res *x = &g.res[i];

		if (x->type == R_MAPPING || x->type == R_UREGION)
			munmap(x->addr, x->size);
		else if ((x->type == R_DMABUF || x->type == R_EVENTFD) && x->fd >= 0)
			close(x->fd);
		if (x->type != R_NONE)
			res_free(i);
	}
	for (i = 0; i < MAX_DEV; i++)
		if (g.dev[i].used) {
			close(g.dev[i].fd);
			g.dev[i].used = 0;
		}
	pool_unlock();
}
