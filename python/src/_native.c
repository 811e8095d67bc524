// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * dmaplane._native: the UAPI through libdmaplane, as thin functions that
 * take and return ints, strings, tuples and dicts. The classes live in the
 * Python package (device.py, buffer.py, endpoint.py); no UAPI struct is
 * mirrored there. Every failure raises dmaplane.Error(errno, operation).
 *
 * Mapping is the one object type: a MAP_SHARED mapping of a buffer that
 * exports the buffer protocol and is unmapped only when its last reference
 * goes, so a numpy array or torch tensor over it can never outlive it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libdmaplane.h"

/* dmaplane.errors.Error, looked up when the module is imported. */
static PyObject *error_type;

/* Raise Error for libdmaplane's -errno @ret from operation @op; NULL. */
static PyObject *raise_op(int ret, const char *op)
{
	PyObject *e = PyObject_CallFunction(error_type, "is", -ret, op);

	if (e) {
		PyErr_SetObject(error_type, e);
		Py_DECREF(e);
	}
	return NULL;
}

/*
 * A blocking call came back with -EINTR: a signal arrived while the GIL
 * was released. Its Python handler runs now, as for any system call
 * (PEP 475): -1 with the handler's exception (KeyboardInterrupt) set, or
 * 0 when it returned and the call may be tried again.
 */
static int eintr_handled(void)
{
	return PyErr_CheckSignals();
}

/* Milliseconds on the monotonic clock. */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What is left of a @timeout_ms wait that began at @start (0: none). */
static uint32_t ms_left(uint64_t start, uint32_t timeout_ms)
{
	uint64_t spent = mono_ms() - start;

	return spent >= timeout_ms ? 0 : (uint32_t)(timeout_ms - spent);
}

/*
 * "O&" converters: Python ints (anything with __index__) into UAPI field
 * widths. PyArg's own unsigned formats wrap silently; a negative size must
 * be a ValueError, not a huge request.
 */
static int conv_range(PyObject *o, long long min, unsigned long long max,
		      unsigned long long *v)
{
	PyObject *i = PyNumber_Index(o);
	int overflow, ok = -1;
	long long s;

	if (!i)
		return 0;
	s = PyLong_AsLongLongAndOverflow(i, &overflow);
	if (!overflow && s == -1 && PyErr_Occurred()) {
		ok = 0;
	} else if (!overflow) {
		*v = (unsigned long long)s;
		if (s >= min && (s <= 0 || (unsigned long long)s <= max))
			ok = 1;
	} else if (overflow > 0) {
		/* Above LLONG_MAX: valid only as a 64-bit unsigned value. */
		*v = PyLong_AsUnsignedLongLong(i);
		if (PyErr_Occurred())
			PyErr_Clear();
		else if (*v <= max)
			ok = 1;
	}
	Py_DECREF(i);
	if (ok < 0)
		PyErr_Format(PyExc_ValueError, "%R is outside %lld..%llu", o,
			     min, max);
	return ok > 0;
}

static int conv_u64(PyObject *o, void *out)
{
	unsigned long long v;

	if (!conv_range(o, 0, UINT64_MAX, &v))
		return 0;
	*(uint64_t *)out = v;
	return 1;
}

static int conv_u32(PyObject *o, void *out)
{
	unsigned long long v;

	if (!conv_range(o, 0, UINT32_MAX, &v))
		return 0;
	*(uint32_t *)out = (uint32_t)v;
	return 1;
}

static int conv_s32(PyObject *o, void *out)
{
	unsigned long long v;

	if (!conv_range(o, INT32_MIN, INT32_MAX, &v))
		return 0;
	*(int32_t *)out = (int32_t)(long long)v;
	return 1;
}

/* "10.77.0.1" or an IPv6 literal and a port into *@a; ValueError if not. */
static int parse_addr(const char *ip, uint32_t port, struct dmaplane_addr *a)
{
	if (port > UINT16_MAX) {
		PyErr_Format(PyExc_ValueError, "port %u is outside 0..65535",
			     port);
		return -1;
	}
	if (dmaplane_addr_parse(ip, (uint16_t)port, a)) {
		PyErr_Format(PyExc_ValueError, "%s is not an IP address", ip);
		return -1;
	}
	return 0;
}

/* An address as text, or None when it is not known yet (family 0). */
static PyObject *addr_str(const struct dmaplane_addr *a)
{
	char s[INET6_ADDRSTRLEN];

	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    !inet_ntop(a->family, a->addr, s, sizeof(s)))
		Py_RETURN_NONE;
	return PyUnicode_FromString(s);
}

/* ---- device ---- */

static PyObject *py_open(PyObject *self, PyObject *args)
{
	const char *path;
	int fd;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &path))
		return NULL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		PyObject *op = PyUnicode_FromFormat("open %s", path);
		const char *s = op ? PyUnicode_AsUTF8(op) : NULL;

		if (s)
			raise_op(-err, s);
		Py_XDECREF(op);
		return NULL;
	}
	return PyLong_FromLong(fd);
}

static PyObject *py_cap_name(PyObject *self, PyObject *args)
{
	uint64_t cap;
	const char *name;

	(void)self;
	if (!PyArg_ParseTuple(args, "O&", conv_u64, &cap))
		return NULL;
	name = dmaplane_cap_name(cap);
	if (!name)
		Py_RETURN_NONE;
	return PyUnicode_FromString(name);
}

static PyObject *py_get_info(PyObject *self, PyObject *args)
{
	struct dmaplane_info info;
	PyObject *caps, *d;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "i", &fd))
		return NULL;
	ret = dmaplane_get_info(fd, &info);
	if (ret)
		return raise_op(ret, "GET_INFO");
	caps = PySet_New(NULL);
	if (!caps)
		return NULL;
	for (int bit = 0; bit < 64; bit++) {
		uint64_t cap = 1ULL << bit;
		const char *name = dmaplane_cap_name(cap);
		PyObject *s;

		if (!(info.capabilities & cap))
			continue;
		s = name ? PyUnicode_FromString(name) :
			   PyUnicode_FromFormat("bit%d", bit);
		if (!s || PySet_Add(caps, s)) {
			Py_XDECREF(s);
			Py_DECREF(caps);
			return NULL;
		}
		Py_DECREF(s);
	}
	info.module_version[DMAPLANE_VERSION_LEN - 1] = '\0';
	d = Py_BuildValue("{s:I,s:K,s:N,s:I,s:I,s:I,s:s,s:I,s:I,s:I}",
			  "uapi_version", info.uapi_version,
			  "capabilities", (unsigned long long)info.capabilities,
			  "caps", caps,
			  "numa_nodes_online", info.numa_nodes_online,
			  "numa_nodes_possible", info.numa_nodes_possible,
			  "rdma_devices", info.rdma_devices,
			  "module_version", info.module_version,
			  "gpu_providers", info.gpu_providers,
			  "gpu_ready", info.gpu_ready,
			  "gpu_sim_devices", info.gpu_sim_devices);
	return d;
}

static PyObject *py_echo(PyObject *self, PyObject *args)
{
	uint64_t value, out;
	uint32_t flags;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&", &fd, conv_u64, &value, conv_u32,
			      &flags))
		return NULL;
	ret = dmaplane_echo(fd, value, flags, &out);
	if (ret)
		return raise_op(ret, "ECHO");
	return PyLong_FromUnsignedLongLong(out);
}

/* One node of a topology snapshot: its CPUs and its distances by node id. */
static PyObject *topo_node(const struct dmaplane_topo *t, uint32_t i)
{
	const struct dmaplane_numa_node *n = &t->nodes[i];
	PyObject *cpus = PyList_New(0), *dist = PyDict_New();

	if (!cpus || !dist)
		goto fail;
	for (uint32_t c = 0; c < n->nr_cpus && n->cpu_index + c < t->nr_cpus;
	     c++) {
		PyObject *v = PyLong_FromUnsignedLong(t->cpus[n->cpu_index + c]);

		if (!v || PyList_Append(cpus, v)) {
			Py_XDECREF(v);
			goto fail;
		}
		Py_DECREF(v);
	}
	for (uint32_t j = 0; j < t->nr_nodes; j++) {
		PyObject *k = PyLong_FromUnsignedLong(t->nodes[j].node_id);
		PyObject *v = PyLong_FromUnsignedLong(
			t->distances[(size_t)i * t->nr_nodes + j]);
		int err = !k || !v || PyDict_SetItem(dist, k, v);

		Py_XDECREF(k);
		Py_XDECREF(v);
		if (err)
			goto fail;
	}
	return Py_BuildValue("{s:I,s:N,s:K,s:K,s:N}", "node", n->node_id,
			     "cpus", cpus,
			     "mem_total", (unsigned long long)n->mem_total,
			     "mem_free", (unsigned long long)n->mem_free,
			     "distances", dist);
fail:
	Py_XDECREF(cpus);
	Py_XDECREF(dist);
	return NULL;
}

static PyObject *py_topology(PyObject *self, PyObject *args)
{
	struct dmaplane_topo t;
	PyObject *list;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "i", &fd))
		return NULL;
	ret = dmaplane_topology(fd, &t);
	if (ret)
		return raise_op(ret, "GET_TOPOLOGY");
	list = PyList_New(t.nr_nodes);
	for (uint32_t i = 0; list && i < t.nr_nodes; i++) {
		PyObject *n = topo_node(&t, i);

		if (!n)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, n);
	}
	dmaplane_topology_free(&t);
	return list;
}

static PyObject *rdma_device_dict(const struct dmaplane_rdma_device *d)
{
	char name[DMAPLANE_RDMA_NAME_LEN + 1];

	memcpy(name, d->name, DMAPLANE_RDMA_NAME_LEN);
	name[DMAPLANE_RDMA_NAME_LEN] = '\0';
	return Py_BuildValue("{s:s,s:I,s:I,s:K,s:K,s:I,s:I,s:I,s:I,s:I,s:I,"
			     "s:I,s:I,s:I}",
			     "name", name, "index", d->index,
			     "phys_port_cnt", d->phys_port_cnt,
			     "node_guid", (unsigned long long)d->node_guid,
			     "max_mr_size", (unsigned long long)d->max_mr_size,
			     "max_qp", d->max_qp, "max_qp_wr", d->max_qp_wr,
			     "max_send_sge", d->max_send_sge,
			     "max_cqe", d->max_cqe, "max_mr", d->max_mr,
			     "max_fast_reg_page_list_len",
			     d->max_fast_reg_page_list_len,
			     "port_state", d->port_state,
			     "port_active_mtu", d->port_active_mtu,
			     "port_link_layer", d->port_link_layer);
}

static PyObject *py_rdma_devices(PyObject *self, PyObject *args)
{
	struct dmaplane_rdma_device *devs = NULL;
	PyObject *list;
	uint32_t n = 0;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "i", &fd))
		return NULL;
	ret = dmaplane_rdma_devices(fd, &devs, &n);
	if (ret)
		return raise_op(ret, "RDMA_DEVICES");
	list = PyList_New(n);
	for (uint32_t i = 0; list && i < n; i++) {
		PyObject *d = rdma_device_dict(&devs[i]);

		if (!d)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, d);
	}
	free(devs);
	return list;
}

/* ---- buffers ---- */

static PyObject *py_buffer_create(PyObject *self, PyObject *args)
{
	struct dmaplane_buffer_create req = { 0 };
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&O&", &fd, conv_u64, &req.size,
			      conv_s32, &req.numa_node, conv_u32, &req.flags))
		return NULL;
	/* Gigabytes of pages to allocate and clear: other threads run. */
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_buffer_create_req(fd, &req);
	Py_END_ALLOW_THREADS
	if (ret)
		return raise_op(ret, "BUFFER_CREATE");
	return Py_BuildValue("{s:I,s:K,s:K,s:K,s:K,s:I}", "handle", req.handle,
			     "alloc_size", (unsigned long long)req.alloc_size,
			     "mmap_offset", (unsigned long long)req.mmap_offset,
			     "nr_pages", (unsigned long long)req.nr_pages,
			     "pages_on_node",
			     (unsigned long long)req.pages_on_node,
			     "result_flags", req.result_flags);
}

/* BUFFER_DESTROY, ENDPOINT_DESTROY, MR_DEREG: (fd, handle). */
static PyObject *handle_op(PyObject *args, int (*fn)(int, uint32_t),
			   const char *op)
{
	uint32_t handle;
	int fd, ret;

	if (!PyArg_ParseTuple(args, "iO&", &fd, conv_u32, &handle))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = fn(fd, handle);
	Py_END_ALLOW_THREADS
	if (ret)
		return raise_op(ret, op);
	Py_RETURN_NONE;
}

static PyObject *py_buffer_destroy(PyObject *self, PyObject *args)
{
	(void)self;
	return handle_op(args, dmaplane_buffer_destroy, "BUFFER_DESTROY");
}

/* BUFFER_INFO; with @histogram, "node_pages": pages on each node id. */
static PyObject *py_buffer_info(PyObject *self, PyObject *args)
{
	struct dmaplane_buffer_info info;
	uint64_t *pages = NULL;
	PyObject *hist = Py_None, *d;
	uint32_t handle;
	int fd, histogram = 0, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&|p", &fd, conv_u32, &handle,
			      &histogram))
		return NULL;
	ret = dmaplane_buffer_info(fd, handle, &info, NULL, 0);
	if (!ret && histogram) {
		pages = PyMem_Calloc(info.nr_node_ids + 1, sizeof(*pages));
		if (!pages)
			return PyErr_NoMemory();
		ret = dmaplane_buffer_info(fd, handle, &info, pages,
					   info.nr_node_ids);
	}
	if (ret) {
		PyMem_Free(pages);
		return raise_op(ret, "BUFFER_INFO");
	}
	if (histogram) {
		hist = PyList_New(info.nr_node_ids);
		for (uint32_t i = 0; hist && i < info.nr_node_ids; i++) {
			PyObject *v = PyLong_FromUnsignedLongLong(pages[i]);

			if (!v)
				Py_CLEAR(hist);
			else
				PyList_SET_ITEM(hist, i, v);
		}
		PyMem_Free(pages);
		if (!hist)
			return NULL;
	} else {
		Py_INCREF(hist);
	}
	d = Py_BuildValue("{s:I,s:K,s:I,s:i,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:I,"
			  "s:I,s:I,s:I,s:N}",
			  "handle", info.handle,
			  "size", (unsigned long long)info.size,
			  "buf_flags", info.buf_flags,
			  "numa_node", info.numa_node,
			  "result_flags", info.result_flags,
			  "mappings", info.mappings,
			  "nr_pages", (unsigned long long)info.nr_pages,
			  "pages_on_node",
			  (unsigned long long)info.pages_on_node,
			  "dma_segments", (unsigned long long)info.dma_segments,
			  "huge_chunks", (unsigned long long)info.huge_chunks,
			  "mmap_offset", (unsigned long long)info.mmap_offset,
			  "nr_node_ids", info.nr_node_ids,
			  "exports", info.exports,
			  "attachments", info.attachments,
			  "mrs", info.mrs,
			  "node_pages", hist);
	return d;
}

static PyObject *py_buffer_revoke(PyObject *self, PyObject *args)
{
	uint32_t handle, exports = 0;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&", &fd, conv_u32, &handle))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_buffer_revoke(fd, handle, &exports);
	Py_END_ALLOW_THREADS
	if (ret)
		return raise_op(ret, "BUFFER_REVOKE");
	return PyLong_FromUnsignedLong(exports);
}

static PyObject *py_export_dmabuf(PyObject *self, PyObject *args)
{
	uint32_t handle, flags;
	int fd, dmabuf_fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&", &fd, conv_u32, &handle, conv_u32,
			      &flags))
		return NULL;
	ret = dmaplane_export_dmabuf(fd, handle, flags, &dmabuf_fd);
	if (ret)
		return raise_op(ret, "EXPORT_DMABUF");
	return PyLong_FromLong(dmabuf_fd);
}

static PyObject *py_import_dmabuf(PyObject *self, PyObject *args)
{
	struct dmaplane_import_dmabuf imp;
	int fd, dmabuf_fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "ii", &fd, &dmabuf_fd))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_import_dmabuf(fd, dmabuf_fd, &imp);
	Py_END_ALLOW_THREADS
	if (ret)
		return raise_op(ret, "IMPORT_DMABUF");
	return Py_BuildValue("{s:I,s:I,s:K,s:K}", "handle", imp.handle,
			     "result_flags", imp.result_flags,
			     "size", (unsigned long long)imp.size,
			     "mmap_offset", (unsigned long long)imp.mmap_offset);
}

/* ---- Mapping: a buffer's MAP_SHARED mapping, with the buffer protocol ---- */

typedef struct {
	PyObject_HEAD
	void *addr;
	Py_ssize_t length;
} MappingObject;

static PyObject *mapping_new(PyTypeObject *type, PyObject *args,
			     PyObject *kwds)
{
	MappingObject *m;
	uint64_t length, offset;
	void *p;
	int fd, err;

	(void)kwds;
	if (!PyArg_ParseTuple(args, "iO&O&", &fd, conv_u64, &length, conv_u64,
			      &offset))
		return NULL;
	if (!length || length > PY_SSIZE_T_MAX || offset > INT64_MAX) {
		PyErr_SetString(PyExc_ValueError,
				"mapping length or offset out of range");
		return NULL;
	}
	m = (MappingObject *)type->tp_alloc(type, 0);
	if (!m)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)offset);
	err = p == MAP_FAILED ? errno : 0;
	Py_END_ALLOW_THREADS
	if (p == MAP_FAILED) {
		/* errno first: the deallocation may change it. */
		Py_DECREF(m);
		return raise_op(-err, "mmap");
	}
	m->addr = p;
	m->length = (Py_ssize_t)length;
	return (PyObject *)m;
}

static void mapping_dealloc(PyObject *self)
{
	MappingObject *m = (MappingObject *)self;

	if (m->addr)
		munmap(m->addr, m->length);
	Py_TYPE(self)->tp_free(self);
}

/* Every export holds a reference (view->obj): the mapping outlives it. */
static int mapping_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	MappingObject *m = (MappingObject *)self;

	return PyBuffer_FillInfo(view, self, m->addr, m->length, 0, flags);
}

static PyObject *mapping_address(PyObject *self, void *closure)
{
	(void)closure;
	return PyLong_FromVoidPtr(((MappingObject *)self)->addr);
}

static PyObject *mapping_length(PyObject *self, void *closure)
{
	(void)closure;
	return PyLong_FromSsize_t(((MappingObject *)self)->length);
}

static PyGetSetDef mapping_getset[] = {
	{ "address", mapping_address, NULL, "address of the mapping", NULL },
	{ "length", mapping_length, NULL, "bytes mapped", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyBufferProcs mapping_as_buffer = {
	.bf_getbuffer = mapping_getbuffer,
};

static PyTypeObject mapping_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "dmaplane._native.Mapping",
	.tp_doc = "Mapping(fd, length, offset): MAP_SHARED mapping of a "
		  "buffer, unmapped when the last reference (views too) goes",
	.tp_basicsize = sizeof(MappingObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = mapping_new,
	.tp_dealloc = mapping_dealloc,
	.tp_as_buffer = &mapping_as_buffer,
	.tp_getset = mapping_getset,
};

/* ---- endpoints ---- */

/*
 * ENDPOINT_CREATE parameters from a dict of field names; a name that is
 * not a field is a TypeError, so a typo cannot silently mean a default.
 */
static int ep_params(PyObject *dict, struct dmaplane_ep_create *p)
{
	static const struct {
		const char *name;
		size_t off;
		unsigned long long max;
	} fields[] = {
#define EP_FIELD(f, m) { #f, offsetof(struct dmaplane_ep_create, f), m }
		EP_FIELD(flags, UINT32_MAX),
		EP_FIELD(send_depth, UINT32_MAX),
		EP_FIELD(recv_depth, UINT32_MAX),
		EP_FIELD(timeout_ms, UINT32_MAX),
		EP_FIELD(retry_count, UINT8_MAX),
		EP_FIELD(rnr_retry_count, UINT8_MAX),
		EP_FIELD(ack_timeout, UINT8_MAX),
		EP_FIELD(credit_window, UINT32_MAX),
		EP_FIELD(credit_low, UINT32_MAX),
		EP_FIELD(credit_high, UINT32_MAX),
#undef EP_FIELD
	};
	PyObject *key, *value;
	Py_ssize_t pos = 0;

	memset(p, 0, sizeof(*p));
	if (!PyDict_Check(dict)) {
		PyErr_SetString(PyExc_TypeError, "endpoint parameters: a dict");
		return -1;
	}
	while (PyDict_Next(dict, &pos, &key, &value)) {
		const char *name = PyUnicode_Check(key) ?
				   PyUnicode_AsUTF8(key) : NULL;
		unsigned long long v;
		size_t i;

		for (i = 0; name && i < sizeof(fields) / sizeof(fields[0]); i++)
			if (!strcmp(name, fields[i].name))
				break;
		if (!name || i == sizeof(fields) / sizeof(fields[0])) {
			PyErr_Format(PyExc_TypeError,
				     "no endpoint parameter %R", key);
			return -1;
		}
		if (!conv_range(value, 0, fields[i].max, &v))
			return -1;
		if (fields[i].max == UINT8_MAX)
			*((uint8_t *)p + fields[i].off) = (uint8_t)v;
		else
			*(uint32_t *)((char *)p + fields[i].off) = (uint32_t)v;
	}
	return 0;
}

static PyObject *py_ep_create(PyObject *self, PyObject *args)
{
	struct dmaplane_ep_create p;
	PyObject *params;
	uint32_t handle;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO", &fd, &params) ||
	    ep_params(params, &p))
		return NULL;
	ret = dmaplane_ep_create(fd, &p, &handle);
	if (ret)
		return raise_op(ret, "ENDPOINT_CREATE");
	return PyLong_FromUnsignedLong(handle);
}

static PyObject *py_ep_destroy(PyObject *self, PyObject *args)
{
	(void)self;
	return handle_op(args, dmaplane_ep_destroy, "ENDPOINT_DESTROY");
}

/* (fd, handle, ip, port, backlog) -> the port bound. */
static PyObject *py_ep_listen(PyObject *self, PyObject *args)
{
	struct dmaplane_addr a;
	uint32_t handle, port, backlog;
	const char *ip;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&sO&O&", &fd, conv_u32, &handle, &ip,
			      conv_u32, &port, conv_u32, &backlog) ||
	    parse_addr(ip, port, &a))
		return NULL;
	ret = dmaplane_ep_listen(fd, handle, backlog, &a);
	if (ret)
		return raise_op(ret, "ENDPOINT_LISTEN");
	return PyLong_FromUnsignedLong(a.port);
}

static PyObject *py_ep_connect(PyObject *self, PyObject *args)
{
	struct dmaplane_addr a;
	uint32_t handle, port, timeout_ms;
	const char *ip;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&sO&O&", &fd, conv_u32, &handle, &ip,
			      conv_u32, &port, conv_u32, &timeout_ms) ||
	    parse_addr(ip, port, &a))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_ep_connect(fd, handle, &a, timeout_ms);
	Py_END_ALLOW_THREADS
	/* Not tried again: the module failed the endpoint (-EINTR). */
	if (ret == -EINTR && eintr_handled())
		return NULL;
	if (ret)
		return raise_op(ret, "ENDPOINT_CONNECT");
	Py_RETURN_NONE;
}

/*
 * (fd, listener, timeout_ms) -> the accepted endpoint. Up to the UAPI's
 * longest wait it is one ACCEPT; longer waits repeat it
 * (dmaplane_ep_accept_wait).
 */
static PyObject *py_ep_accept(PyObject *self, PyObject *args)
{
	uint32_t listener, timeout_ms, wait, handle;
	uint64_t start = mono_ms();
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&", &fd, conv_u32, &listener,
			      conv_u32, &timeout_ms))
		return NULL;
	/* A signal whose handler returns: wait again, for the time left. */
	for (wait = timeout_ms;;) {
		Py_BEGIN_ALLOW_THREADS
		if (wait <= DMAPLANE_EP_TIMEOUT_MAX_MS)
			ret = dmaplane_ep_accept(fd, listener, wait, &handle,
						 NULL);
		else
			ret = dmaplane_ep_accept_wait(fd, listener, wait,
						      &handle);
		Py_END_ALLOW_THREADS
		if (ret != -EINTR)
			break;
		if (eintr_handled())
			return NULL;
		/* 0 would be the listener's own timeout: at least 1 ms. */
		if (timeout_ms && !(wait = ms_left(start, timeout_ms)))
			wait = 1;
	}
	if (ret)
		return raise_op(ret, "ENDPOINT_ACCEPT");
	return PyLong_FromUnsignedLong(handle);
}

/* (fd, params, ip, port, wait_ms) -> a connected endpoint: dmaplane_ep_dial. */
static PyObject *py_ep_dial(PyObject *self, PyObject *args)
{
	struct dmaplane_ep_create p;
	struct dmaplane_addr a;
	uint32_t port, wait_ms, handle;
	PyObject *params;
	const char *ip;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iOsO&O&", &fd, &params, &ip, conv_u32,
			      &port, conv_u32, &wait_ms) ||
	    ep_params(params, &p) || parse_addr(ip, port, &a))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_ep_dial(fd, &p, &a, wait_ms, &handle);
	Py_END_ALLOW_THREADS
	if (ret == -EINTR && eintr_handled())
		return NULL;
	if (ret)
		return raise_op(ret, "ENDPOINT_CONNECT");
	return PyLong_FromUnsignedLong(handle);
}

/* (fd, ip, params) -> (client, server): dmaplane_ep_loopback. */
static PyObject *py_ep_loopback(PyObject *self, PyObject *args)
{
	struct dmaplane_ep_create p;
	uint32_t client, server;
	PyObject *params;
	const char *ip;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "isO", &fd, &ip, &params) ||
	    ep_params(params, &p))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_ep_loopback(fd, ip, &p, &client, &server);
	Py_END_ALLOW_THREADS
	if (ret == -EINTR && eintr_handled())
		return NULL;
	if (ret)
		return raise_op(ret, "ENDPOINT_LOOPBACK");
	return Py_BuildValue("(II)", client, server);
}

static PyObject *py_ep_info(PyObject *self, PyObject *args)
{
	struct dmaplane_ep_info i;
	uint32_t handle;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&", &fd, conv_u32, &handle))
		return NULL;
	ret = dmaplane_ep_info(fd, handle, &i);
	if (ret)
		return raise_op(ret, "ENDPOINT_INFO");
	return Py_BuildValue("{s:I,s:I,s:i,s:i,s:I,s:I,s:I,s:N,s:H,s:N,s:H,"
			     "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:K,s:K,s:K}",
			     "handle", i.handle, "state", i.state,
			     "error", i.error, "device_index", i.device_index,
			     "qp_num", i.qp_num, "send_depth", i.send_depth,
			     "recv_depth", i.recv_depth,
			     "local_addr", addr_str(&i.local),
			     "local_port", i.local.port,
			     "peer_addr", addr_str(&i.peer),
			     "peer_port", i.peer.port,
			     "peer_send_depth", i.peer_send_depth,
			     "peer_recv_depth", i.peer_recv_depth,
			     "flags", i.flags,
			     "credit_window", i.credit_window,
			     "credits", i.credits,
			     "peer_credits", i.peer_credits,
			     "queued", i.queued, "inflight", i.inflight,
			     "stalls", (unsigned long long)i.stalls,
			     "stall_ns", (unsigned long long)i.stall_ns,
			     "id", (unsigned long long)i.id);
}

static PyObject *py_ep_device(PyObject *self, PyObject *args)
{
	struct dmaplane_rdma_device dev;
	uint32_t handle;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&", &fd, conv_u32, &handle))
		return NULL;
	ret = dmaplane_ep_device(fd, handle, &dev);
	if (ret)
		return raise_op(ret, "ENDPOINT_DEVICE");
	return rdma_device_dict(&dev);
}

static PyObject *py_ep_eventfd(PyObject *self, PyObject *args)
{
	uint32_t handle;
	int fd, efd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&i", &fd, conv_u32, &handle, &efd))
		return NULL;
	ret = dmaplane_ep_eventfd(fd, handle, efd);
	if (ret)
		return raise_op(ret, "ENDPOINT_EVENTFD");
	Py_RETURN_NONE;
}

/* (fd, endpoint, buffer, offset, length, access) -> (handle, rkey). */
static PyObject *py_mr_reg(PyObject *self, PyObject *args)
{
	uint32_t ep, buf, access, handle, rkey;
	uint64_t offset, length;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&O&O&O&", &fd, conv_u32, &ep,
			      conv_u32, &buf, conv_u64, &offset, conv_u64,
			      &length, conv_u32, &access))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = dmaplane_mr_reg(fd, ep, buf, offset, length, access, &handle,
			      &rkey);
	Py_END_ALLOW_THREADS
	if (ret)
		return raise_op(ret, "MR_REG");
	return Py_BuildValue("(II)", handle, rkey);
}

static PyObject *py_mr_dereg(PyObject *self, PyObject *args)
{
	(void)self;
	return handle_op(args, dmaplane_mr_dereg, "MR_DEREG");
}

/* One op: (opcode, mr, offset, length, remote_offset, rkey, imm, cookie). */
static int parse_op(PyObject *t, struct dmaplane_op *op)
{
	memset(op, 0, sizeof(*op));
	if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8) {
		PyErr_SetString(PyExc_TypeError,
				"an operation is an 8-tuple (dmaplane.Op)");
		return -1;
	}
	return PyArg_ParseTuple(t, "O&O&O&O&O&O&O&O&", conv_u32, &op->opcode,
				conv_u32, &op->mr, conv_u64, &op->offset,
				conv_u64, &op->length, conv_u64,
				&op->remote_offset, conv_u32, &op->rkey,
				conv_u32, &op->imm, conv_u64, &op->cookie) ?
	       0 : -1;
}

/*
 * (fd, endpoint, ops, flags) -> how many were posted: all of them, or
 * Error(errno, "POST", posted) naming the one that stopped the batch.
 * Every operation is converted before the first is posted, so a bad one
 * (TypeError, ValueError) means none went out. More than
 * DMAPLANE_POST_MAX go in several POSTs. POST itself, not
 * dmaplane_post(): the UAPI's flags (POST_NOWAIT) are part of the call.
 */
static PyObject *py_post(PyObject *self, PyObject *args)
{
	struct dmaplane_op *ops;
	PyObject *seq, *fast;
	uint32_t ep, flags, total = 0;
	Py_ssize_t n;
	int fd;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&OO&", &fd, conv_u32, &ep, &seq,
			      conv_u32, &flags))
		return NULL;
	fast = PySequence_Fast(seq, "operations: a sequence of dmaplane.Op");
	if (!fast)
		return NULL;
	n = PySequence_Fast_GET_SIZE(fast);
	if (n > UINT32_MAX) {
		Py_DECREF(fast);
		return PyErr_Format(PyExc_ValueError,
				    "%zd operations: at most %u", n,
				    UINT32_MAX);
	}
	ops = PyMem_New(struct dmaplane_op, n ? n : 1);
	if (!ops) {
		Py_DECREF(fast);
		return PyErr_NoMemory();
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		if (parse_op(PySequence_Fast_GET_ITEM(fast, i), &ops[i])) {
			PyMem_Free(ops);
			Py_DECREF(fast);
			return NULL;
		}
	}
	Py_DECREF(fast);
	while (total < n) {
		struct dmaplane_post req = {
			.endpoint = ep, .ops = (uintptr_t)(ops + total),
			.flags = flags,
			.count = n - total < DMAPLANE_POST_MAX ?
				 (uint32_t)(n - total) : DMAPLANE_POST_MAX,
		};
		int ret;

		Py_BEGIN_ALLOW_THREADS
		ret = ioctl(fd, DMAPLANE_IOC_POST, &req) ? -errno : 0;
		Py_END_ALLOW_THREADS
		if (!ret) {
			total += req.posted;
			ret = req.error;
			/* (never: the module names why it stopped short) */
			if (!ret && req.posted < req.count)
				ret = -EIO;
		}
		if (ret) {
			PyObject *e = PyObject_CallFunction(error_type, "isI",
							    -ret, "POST", total);

			if (e) {
				PyErr_SetObject(error_type, e);
				Py_DECREF(e);
			}
			PyMem_Free(ops);
			return NULL;
		}
	}
	PyMem_Free(ops);
	return PyLong_FromUnsignedLong(total);
}

/*
 * (fd, endpoint, max, min, timeout_ms) -> [(cookie, opcode, status,
 * wc_status, bytes, imm, flags), ...], oldest first.
 */
static PyObject *py_reap(PyObject *self, PyObject *args)
{
	struct dmaplane_completion *c;
	uint32_t ep, max, min, timeout_ms, wait, count;
	uint64_t start = mono_ms();
	PyObject *list;
	int fd, ret;

	(void)self;
	if (!PyArg_ParseTuple(args, "iO&O&O&O&", &fd, conv_u32, &ep, conv_u32,
			      &max, conv_u32, &min, conv_u32, &timeout_ms))
		return NULL;
	if (max > DMAPLANE_POST_MAX) {
		PyErr_Format(PyExc_ValueError, "max %u is above %u", max,
			     DMAPLANE_POST_MAX);
		return NULL;
	}
	c = PyMem_Calloc(max + 1, sizeof(*c));
	if (!c)
		return PyErr_NoMemory();
	/* -EINTR comes with nothing reaped: wait again, for the time left. */
	for (wait = timeout_ms;;) {
		Py_BEGIN_ALLOW_THREADS
		ret = dmaplane_reap(fd, ep, c, max, min, wait, &count);
		Py_END_ALLOW_THREADS
		if (ret != -EINTR)
			break;
		if (eintr_handled()) {
			PyMem_Free(c);
			return NULL;
		}
		wait = ms_left(start, timeout_ms);
	}
	if (ret) {
		PyMem_Free(c);
		return raise_op(ret, "REAP");
	}
	list = PyList_New(count);
	for (uint32_t i = 0; list && i < count; i++) {
		PyObject *t = Py_BuildValue("(KIiIIII)",
					    (unsigned long long)c[i].cookie,
					    c[i].opcode, c[i].status,
					    c[i].wc_status, c[i].bytes,
					    c[i].imm, c[i].flags);

		if (!t)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, t);
	}
	PyMem_Free(c);
	return list;
}

static PyMethodDef native_methods[] = {
	{ "open", py_open, METH_VARARGS, "open(path) -> fd" },
	{ "cap_name", py_cap_name, METH_VARARGS,
	  "cap_name(bit) -> name of a CAP_* bit, or None" },
	{ "get_info", py_get_info, METH_VARARGS, "get_info(fd) -> dict" },
	{ "echo", py_echo, METH_VARARGS, "echo(fd, value, flags) -> int" },
	{ "topology", py_topology, METH_VARARGS,
	  "topology(fd) -> [node dict, ...]" },
	{ "rdma_devices", py_rdma_devices, METH_VARARGS,
	  "rdma_devices(fd) -> [device dict, ...]" },
	{ "buffer_create", py_buffer_create, METH_VARARGS,
	  "buffer_create(fd, size, node, flags) -> dict" },
	{ "buffer_destroy", py_buffer_destroy, METH_VARARGS,
	  "buffer_destroy(fd, handle)" },
	{ "buffer_info", py_buffer_info, METH_VARARGS,
	  "buffer_info(fd, handle, histogram=False) -> dict" },
	{ "buffer_revoke", py_buffer_revoke, METH_VARARGS,
	  "buffer_revoke(fd, handle) -> dma-bufs revoked" },
	{ "export_dmabuf", py_export_dmabuf, METH_VARARGS,
	  "export_dmabuf(fd, handle, flags) -> dma-buf fd" },
	{ "import_dmabuf", py_import_dmabuf, METH_VARARGS,
	  "import_dmabuf(fd, dmabuf_fd) -> dict" },
	{ "ep_create", py_ep_create, METH_VARARGS,
	  "ep_create(fd, params) -> handle" },
	{ "ep_destroy", py_ep_destroy, METH_VARARGS, "ep_destroy(fd, handle)" },
	{ "ep_listen", py_ep_listen, METH_VARARGS,
	  "ep_listen(fd, handle, ip, port, backlog) -> port" },
	{ "ep_connect", py_ep_connect, METH_VARARGS,
	  "ep_connect(fd, handle, ip, port, timeout_ms)" },
	{ "ep_accept", py_ep_accept, METH_VARARGS,
	  "ep_accept(fd, listener, timeout_ms) -> handle" },
	{ "ep_dial", py_ep_dial, METH_VARARGS,
	  "ep_dial(fd, params, ip, port, wait_ms) -> handle" },
	{ "ep_loopback", py_ep_loopback, METH_VARARGS,
	  "ep_loopback(fd, ip, params) -> (client, server)" },
	{ "ep_info", py_ep_info, METH_VARARGS, "ep_info(fd, handle) -> dict" },
	{ "ep_device", py_ep_device, METH_VARARGS,
	  "ep_device(fd, handle) -> RDMA device dict" },
	{ "ep_eventfd", py_ep_eventfd, METH_VARARGS,
	  "ep_eventfd(fd, handle, eventfd or -1)" },
	{ "mr_reg", py_mr_reg, METH_VARARGS,
	  "mr_reg(fd, ep, buffer, offset, length, access) -> (handle, rkey)" },
	{ "mr_dereg", py_mr_dereg, METH_VARARGS, "mr_dereg(fd, handle)" },
	{ "post", py_post, METH_VARARGS,
	  "post(fd, ep, ops, flags) -> posted" },
	{ "reap", py_reap, METH_VARARGS,
	  "reap(fd, ep, max, min, timeout_ms) -> [completion tuple, ...]" },
	{ NULL, NULL, 0, NULL },
};

/* The UAPI's constants, without the DMAPLANE_ prefix. */
static const struct {
	const char *name;
	unsigned long long value;
} constants[] = {
#define C(n) { #n, DMAPLANE_##n }
	C(UAPI_VERSION),
	C(CAP_BUFFER_PAGES), C(CAP_NUMA), C(CAP_RDMA),
	C(CAP_BUFFER_COHERENT), C(CAP_BUFFER_HUGE), C(CAP_BUFFER_USER),
	C(CAP_MMAP), C(CAP_TOPOLOGY), C(CAP_DMABUF), C(CAP_RDMA_DEVICES),
	C(CAP_ENDPOINTS), C(CAP_VERBS), C(CAP_CREDITS), C(CAP_GPU),
	C(GPU_NVIDIA_P2P), C(GPU_DMABUF), C(GPU_SIM),
	C(ECHO_INVERT),
	C(BUF_COHERENT), C(BUF_HUGE), C(BUF_USER), C(BUF_NUMA_STRICT),
	C(BUF_VALID_FLAGS),
	C(BUF_RES_HUGE_PARTIAL), C(BUF_RES_NUMA_FALLBACK), C(BUF_RES_IMPORTED),
	C(BUF_RES_DYNAMIC), C(BUF_RES_REVOKED), C(BUF_RES_GPU),
	C(COHERENT_MAX), C(HUGE_CHUNK), C(MMAP_SHIFT),
	C(EXPORT_CLOEXEC), C(EXPORT_READ_ONLY),
	C(EP_IDLE), C(EP_LISTENING), C(EP_CONNECTING), C(EP_CONNECTED),
	C(EP_DISCONNECTED), C(EP_ERROR),
	C(EP_DEPTH_DEFAULT), C(EP_DEPTH_MAX), C(EP_TIMEOUT_DEFAULT_MS),
	C(EP_TIMEOUT_MAX_MS), C(EP_RETRY_DEFAULT), C(EP_ACK_TIMEOUT_MAX),
	C(EP_NO_CREDITS), C(EP_INFO_CREDITS),
	C(MR_LOCAL_WRITE), C(MR_REMOTE_WRITE), C(MR_REMOTE_READ),
	C(OP_NOOP), C(OP_SEND), C(OP_RECV), C(OP_WRITE), C(OP_WRITE_IMM),
	C(OP_READ), C(OP_MAX_LENGTH), C(POST_MAX), C(POST_NOWAIT),
	C(COMP_IMM), C(COMP_WRITE_IMM),
#undef C
};

static int native_exec(PyObject *m)
{
	PyObject *names, *errors;
	size_t n = sizeof(constants) / sizeof(constants[0]);

	errors = PyImport_ImportModule("dmaplane.errors");
	if (!errors)
		return -1;
	error_type = PyObject_GetAttrString(errors, "Error");
	Py_DECREF(errors);
	if (!error_type)
		return -1;
	/* NUMA_ANY is the one signed constant. */
	if (PyModule_AddIntConstant(m, "NUMA_ANY", DMAPLANE_NUMA_ANY))
		return -1;
	names = PyTuple_New(n + 1);
	if (!names)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		const char *name = i < n ? constants[i].name : "NUMA_ANY";
		PyObject *s = PyUnicode_FromString(name), *v = NULL;

		if (s)
			PyTuple_SET_ITEM(names, i, s);
		if (s && i < n)
			v = PyLong_FromUnsignedLongLong(constants[i].value);
		if (!s || (i < n && (!v || PyModule_AddObject(m, name, v)))) {
			Py_XDECREF(v);
			Py_DECREF(names);
			return -1;
		}
	}
	if (PyModule_AddObject(m, "CONSTANTS", names)) {
		Py_DECREF(names);
		return -1;
	}
	if (PyType_Ready(&mapping_type))
		return -1;
	Py_INCREF(&mapping_type);
	if (PyModule_AddObject(m, "Mapping", (PyObject *)&mapping_type)) {
		Py_DECREF(&mapping_type);
		return -1;
	}
	return 0;
}

static PyModuleDef_Slot native_slots[] = {
	{ Py_mod_exec, native_exec },
	{ 0, NULL },
};

static struct PyModuleDef native_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "dmaplane._native",
	.m_doc = "dmaplane UAPI bindings (libdmaplane); use the dmaplane package",
	.m_size = 0,
	.m_methods = native_methods,
	.m_slots = native_slots,
};

PyMODINIT_FUNC PyInit__native(void)
{
	return PyModuleDef_Init(&native_module);
}
