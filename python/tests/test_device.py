"""Device: open/close, GET_INFO, ECHO, GET_TOPOLOGY, RDMA_DEVICES, the
constants and the error type."""
import errno
import gc
import os
import pickle

import pytest

import dmaplane
from dmaplane import _native


def test_constants_come_from_the_header():
    assert len(_native.CONSTANTS) == len(set(_native.CONSTANTS))
    for name in _native.CONSTANTS:
        assert isinstance(getattr(dmaplane, name), int), name
    ops = [dmaplane.OP_NOOP, dmaplane.OP_SEND, dmaplane.OP_RECV,
           dmaplane.OP_WRITE, dmaplane.OP_WRITE_IMM, dmaplane.OP_READ]
    assert len(set(ops)) == len(ops)
    assert dmaplane.BUF_VALID_FLAGS == (
        dmaplane.BUF_COHERENT | dmaplane.BUF_HUGE | dmaplane.BUF_USER
        | dmaplane.BUF_NUMA_STRICT)
    assert dmaplane.NUMA_ANY < 0


def test_error_is_an_oserror_naming_the_operation():
    e = dmaplane.Error(errno.ECONNREFUSED, "ENDPOINT_CONNECT")
    assert isinstance(e, OSError)
    assert e.errno == errno.ECONNREFUSED
    assert e.strerror == os.strerror(errno.ECONNREFUSED)
    assert str(e) == f"ENDPOINT_CONNECT: {os.strerror(errno.ECONNREFUSED)}"
    assert e.posted is None
    back = pickle.loads(pickle.dumps(dmaplane.Error(errno.EAGAIN, "POST", 3)))
    assert (back.errno, back.op, back.posted) == (errno.EAGAIN, "POST", 3)


def test_open_failure_names_the_path(tmp_path):
    missing = str(tmp_path / "no-such-device")
    with pytest.raises(dmaplane.Error) as e:
        dmaplane.Device(missing)
    assert e.value.errno == errno.ENOENT
    assert e.value.op == f"open {missing}"


def test_info(dev):
    info = dev.info()
    assert info["uapi_version"] == dmaplane.UAPI_VERSION
    assert info["module_version"]
    assert info["numa_nodes_online"] >= 1
    assert info["numa_nodes_possible"] >= info["numa_nodes_online"]
    assert info["rdma_devices"] == len(dev.rdma_devices())
    for key in ("gpu_providers", "gpu_ready", "gpu_sim_devices"):
        assert isinstance(info[key], int)
    # caps is exactly the named bits of capabilities.
    named = {_native.cap_name(1 << b) for b in range(64)
             if info["capabilities"] >> b & 1}
    assert info["caps"] == named
    assert {"buffer_pages", "mmap", "topology", "dmabuf"} <= info["caps"]
    assert bool(info["capabilities"] & dmaplane.CAP_VERBS) == (
        "verbs" in info["caps"])
    assert _native.cap_name(1 << 63) is None


def test_echo(dev):
    assert dev.echo(0x1234) == 0x1234
    assert dev.echo(0x1234, invert=True) == ~0x1234 & (2**64 - 1)
    with pytest.raises(dmaplane.Error) as e:
        _native.echo(dev.fileno(), 1, 1 << 7)
    assert (e.value.errno, e.value.op) == (errno.EINVAL, "ECHO")


def test_topology_matches_the_machine(dev):
    nodes = dev.topology()
    assert len(nodes) == dev.info()["numa_nodes_online"]
    ids = [n["node"] for n in nodes]
    assert ids == sorted(ids)
    cpus = [c for n in nodes for c in n["cpus"]]
    assert sorted(cpus) == sorted(os.sched_getaffinity(0))
    for n in nodes:
        assert set(n["distances"]) == set(ids)
        assert n["distances"][n["node"]] == 10
        assert 0 < n["mem_free"] <= n["mem_total"]


def test_rdma_devices_match_sysfs(dev):
    try:
        sysfs = sorted(os.listdir("/sys/class/infiniband"))
    except FileNotFoundError:
        sysfs = []
    devs = dev.rdma_devices()
    assert sorted(d["name"] for d in devs) == sysfs
    for d in devs:
        assert d["max_qp_wr"] > 0 and d["phys_port_cnt"] >= 1


def test_close_is_idempotent_and_final(dev):
    d = dmaplane.Device()
    assert d.fileno() >= 0 and not d.closed
    d.close()
    d.close()
    assert d.closed
    for call in (d.fileno, d.info, d.topology, d.rdma_devices,
                 lambda: d.buffer(4096), d.endpoint):
        with pytest.raises(ValueError):
            call()


def test_close_closes_what_it_made(dev):
    buf = dev.buffer(4096)
    ep = dev.endpoint()
    dev.close()
    assert buf.closed and ep.closed
    with pytest.raises(ValueError):
        buf.handle
    with pytest.raises(ValueError):
        ep.info()
    buf.close()
    ep.close()


def test_a_buffer_keeps_its_device_open(dev):
    buf = dmaplane.Device().buffer(4096)
    gc.collect()
    buf.view()[:3] = b"abc"
    assert bytes(buf.view()[:3]) == b"abc"
    assert buf.info()["mappings"] == 1
    buf.close()


def test_an_unreferenced_device_closes_its_file(dev):
    d = dmaplane.Device()
    fd = d.fileno()
    del d
    gc.collect()
    with pytest.raises(OSError) as e:
        os.fstat(fd)
    assert e.value.errno == errno.EBADF
