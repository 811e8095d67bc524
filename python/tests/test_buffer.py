"""Buffer: BUFFER_CREATE/INFO/DESTROY/REVOKE, EXPORT/IMPORT_DMABUF, the
mapping and its memoryview, bad inputs and closed objects."""
import errno
import mmap
import os

import pytest

import dmaplane
from dmaplane import _native

PAGE = mmap.PAGESIZE


def raises(err, op, call, *args, **kwargs):
    """call() fails with dmaplane.Error @err from operation @op."""
    with pytest.raises(dmaplane.Error) as e:
        call(*args, **kwargs)
    assert (e.value.errno, e.value.op) == (err, op), str(e.value)
    return e.value


def test_create_rounds_up_and_reports(dev):
    with dev.buffer(1) as buf:
        assert buf.size == PAGE
        assert buf.node is None and not buf.imported
        assert buf.mmap_offset == buf.handle << dmaplane.MMAP_SHIFT
        info = buf.info()
        assert info["handle"] == buf.handle
        assert info["size"] == PAGE and info["nr_pages"] == 1
        assert info["numa_node"] == dmaplane.NUMA_ANY
        assert info["mmap_offset"] == buf.mmap_offset
        assert info["mappings"] == 0 and info["node_pages"] is None
        assert (info["exports"], info["attachments"], info["mrs"]) == (0, 0, 0)


def test_flags_by_name_bits_or_keyword(dev):
    for buf in (dev.buffer(4096, flags=("huge",)),
                dev.buffer(4096, flags="huge"),
                dev.buffer(4096, flags=dmaplane.BUF_HUGE),
                dev.buffer(4096, huge=True)):
        info = buf.info()
        assert info["buf_flags"] == dmaplane.BUF_HUGE
        assert buf.size == dmaplane.HUGE_CHUNK == info["size"]
        assert info["huge_chunks"] + bool(
            buf.result_flags & dmaplane.BUF_RES_HUGE_PARTIAL) >= 1
        buf.close()
    with dev.buffer(8192, coherent=True) as buf:
        assert buf.info()["buf_flags"] == dmaplane.BUF_COHERENT


def test_bad_flags(dev):
    with pytest.raises(ValueError, match="unknown buffer flag 'enormous'"):
        dev.buffer(4096, flags=("huge", "enormous"))
    raises(errno.EINVAL, "BUFFER_CREATE", dev.buffer, 4096, flags=1 << 20)
    raises(errno.EINVAL, "BUFFER_CREATE", dev.buffer, 4096,
           flags=("huge", "coherent"))
    # NUMA_STRICT needs a node.
    raises(errno.EINVAL, "BUFFER_CREATE", dev.buffer, 4096, numa_strict=True)
    with pytest.raises(ValueError):
        dev.buffer(4096, flags=-1)


def test_bad_sizes(dev):
    raises(errno.EINVAL, "BUFFER_CREATE", dev.buffer, 0)
    raises(errno.EFBIG, "BUFFER_CREATE", dev.buffer, 1 << 62)
    raises(errno.EFBIG, "BUFFER_CREATE", dev.buffer,
           dmaplane.COHERENT_MAX + PAGE, coherent=True)
    with pytest.raises(ValueError):
        dev.buffer(-4096)
    with pytest.raises(ValueError):
        dev.buffer(1 << 64)
    with pytest.raises(TypeError):
        dev.buffer(4096.0)


def test_placement(dev):
    node = dev.topology()[0]["node"]
    with dev.buffer(4 * PAGE, node=node, numa_strict=True) as buf:
        assert buf.node == node
        info = buf.info(node_pages=True)
        assert info["numa_node"] == node
        assert info["pages_on_node"] == info["nr_pages"] == 4
        assert len(info["node_pages"]) == info["nr_node_ids"]
        assert info["node_pages"][node] == 4 == sum(info["node_pages"])
    possible = dev.info()["numa_nodes_possible"]
    raises(errno.EINVAL, "BUFFER_CREATE", dev.buffer, 4096, node=possible + 7)
    with pytest.raises(ValueError):
        dev.buffer(4096, node=1 << 40)


def test_bad_handles_are_enoent(dev):
    fd = dev.fileno()
    raises(errno.ENOENT, "BUFFER_INFO", _native.buffer_info, fd, 999999)
    raises(errno.ENOENT, "BUFFER_DESTROY", _native.buffer_destroy, fd, 999999)
    raises(errno.ENOENT, "BUFFER_REVOKE", _native.buffer_revoke, fd, 999999)
    raises(errno.ENOENT, "EXPORT_DMABUF", _native.export_dmabuf, fd, 999999,
           0)
    # Handles are per open file: another file's handle is unknown here.
    with dmaplane.Device() as other, other.buffer(4096) as theirs:
        raises(errno.ENOENT, "BUFFER_INFO", _native.buffer_info, fd,
               theirs.handle)


def test_closed_buffer_is_valueerror(dev):
    buf = dev.buffer(4096)
    buf.close()
    buf.close()
    assert buf.closed
    for call in (lambda: buf.handle, buf.info, buf.view, buf.export_dmabuf,
                 buf.revoke, lambda: buf.address):
        with pytest.raises(ValueError, match="Buffer is closed"):
            call()


def test_view_is_the_mapping(dev):
    with dev.buffer(3 * PAGE) as buf:
        mv = buf.view()
        assert (len(mv), mv.readonly, mv.format) == (3 * PAGE, False, "B")
        mv[PAGE - 2:PAGE + 2] = b"\x01\x02\x03\x04"
        assert bytes(buf.view()[PAGE - 2:PAGE + 2]) == b"\x01\x02\x03\x04"
        assert buf.info()["mappings"] == 1
        # One mapping however many views.
        assert buf.view().obj is mv.obj
        del mv


def test_close_refuses_while_a_view_lives(dev):
    buf = dev.buffer(4096)
    mv = buf.view()
    with pytest.raises(BufferError):
        buf.close()
    assert not buf.closed
    mv[0] = 9
    # A released memoryview holds nothing.
    mv.release()
    buf.close()
    assert buf.closed
    # So the usual pattern closes cleanly.
    with dev.buffer(4096) as b2:
        with b2.view() as v:
            v[0] = 1
    assert b2.closed


def test_device_close_keeps_live_views_valid(dev):
    buf = dev.buffer(2 * PAGE)
    mv = buf.view()
    mv[:4] = b"live"
    dev.close()
    assert buf.closed
    # The mapping (and the module's file) stay until the view goes.
    mv[PAGE:PAGE + 4] = b"more"
    assert bytes(mv[:4]) == b"live" and bytes(mv[PAGE:PAGE + 4]) == b"more"
    del mv


def test_dmabuf_export_and_import(dev):
    with dev.buffer(2 * PAGE) as buf:
        buf.view()[:6] = b"shared"
        fd = buf.export_dmabuf()
        try:
            assert not os.get_inheritable(fd)
            assert buf.info()["exports"] == 1
            with dev.import_dmabuf(fd) as imp:
                assert imp.imported and imp.node is None
                assert imp.size == buf.size
                assert imp.result_flags & dmaplane.BUF_RES_IMPORTED
                assert imp.handle != buf.handle
                assert bytes(imp.view()[:6]) == b"shared"
                imp.view()[PAGE:PAGE + 4] = b"back"
                assert bytes(buf.view()[PAGE:PAGE + 4]) == b"back"
                assert imp.info()["result_flags"] & \
                    dmaplane.BUF_RES_IMPORTED
                raises(errno.EOPNOTSUPP, "BUFFER_INFO", imp.info,
                       node_pages=True)
                raises(errno.EINVAL, "EXPORT_DMABUF", imp.export_dmabuf)
            # Another open file imports it too.
            with dmaplane.Device() as other, other.import_dmabuf(fd) as imp2:
                assert bytes(imp2.view()[:6]) == b"shared"
        finally:
            os.close(fd)


def test_dmabuf_outlives_its_buffer(dev):
    buf = dev.buffer(PAGE)
    buf.view()[:5] = b"alive"
    fd = buf.export_dmabuf(flags=0)
    try:
        assert os.get_inheritable(fd)
        buf.close()
        with dev.import_dmabuf(fd) as imp:
            assert bytes(imp.view()[:5]) == b"alive"
    finally:
        os.close(fd)


def test_dmabuf_bad_inputs(dev):
    with dev.buffer(PAGE) as buf:
        raises(errno.EINVAL, "EXPORT_DMABUF", buf.export_dmabuf, 1 << 9)
        with pytest.raises(ValueError, match="unknown export flag"):
            buf.export_dmabuf(("cloexec", "sideways"))
        fd = buf.export_dmabuf(("cloexec", "read_only"))
        try:
            raises(errno.EACCES, "IMPORT_DMABUF", dev.import_dmabuf, fd)
        finally:
            os.close(fd)
    raises(errno.EBADF, "IMPORT_DMABUF", dev.import_dmabuf, -1)
    r, w = os.pipe()
    try:
        raises(errno.EINVAL, "IMPORT_DMABUF", dev.import_dmabuf, r)
    finally:
        os.close(r)
        os.close(w)


def test_revoke(dev):
    with dev.buffer(PAGE) as buf:
        assert buf.revoke() == 0
        fd = buf.export_dmabuf()
        try:
            assert buf.revoke() == 1
        finally:
            os.close(fd)


def test_many_buffers_come_and_go(dev):
    for i in range(200):
        with dev.buffer(PAGE * (1 + i % 4)) as buf:
            buf.view()[0] = i % 256
    assert dev._buffers == set()
