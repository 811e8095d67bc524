"""Zero-copy numpy and torch views: data pointers are the mapping's, a
write through one view is seen through every other (and through a dma-buf
import of the same memory), bounds are checked, and no view can outlive
the memory it points at."""
import os
import subprocess
import sys

import pytest

import dmaplane

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

SIZE = 64 * 1024


@pytest.fixture
def buf(dev):
    with dev.buffer(SIZE) as b:
        yield b


def data_address(a):
    return a.__array_interface__["data"][0]


def test_importing_dmaplane_imports_neither_numpy_nor_torch():
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, dmaplane; print('numpy' in sys.modules, "
         "'torch' in sys.modules)"],
        capture_output=True, text=True, check=True,
        cwd=dmaplane.__path__[0] + "/..")
    assert out.stdout.split() == ["False", "False"]


def test_numpy_view_is_the_mapping(buf):
    a = buf.numpy(np.uint32, (16,), offset=64)
    assert data_address(a) == buf.address + 64
    assert a.flags.writeable and not a.flags.owndata
    whole = buf.numpy(np.uint16)
    assert whole.shape == (SIZE // 2,)
    assert data_address(whole) == buf.address
    assert buf.numpy("float64", offset=8).shape == (SIZE // 8 - 1,)


def test_torch_view_is_the_mapping(buf):
    t = buf.torch(torch.float16, (4, 8), offset=128)
    assert t.data_ptr() == buf.address + 128
    assert t.shape == (4, 8) and t.stride() == (8, 1)
    assert buf.torch("bfloat16").shape == (SIZE // 2,)
    assert buf.torch(torch.int64).data_ptr() == buf.address


def test_a_write_through_one_view_is_seen_through_all(dev, buf):
    a = buf.numpy(np.float32, (256,), offset=4096)
    a[:] = np.arange(256, dtype=np.float32)
    t = buf.torch(torch.float32, (256,), offset=4096)
    assert torch.equal(t, torch.arange(256, dtype=torch.float32))
    mv = buf.view()
    assert bytes(mv[4096:4096 + 1024]) == a.tobytes()
    t.mul_(2)
    assert a[255] == 510.0
    # The same memory through a dma-buf import (its own mapping).
    fd = buf.export_dmabuf()
    try:
        with dev.import_dmabuf(fd) as imp:
            assert imp.address != buf.address
            b = imp.numpy(np.float32, (256,), offset=4096)
            assert np.array_equal(b, a)
            ti = imp.torch(torch.float32, (256,), offset=4096)
            ti.fill_(-1.0)
            assert (a == -1.0).all()
            del b, ti
    finally:
        os.close(fd)
    del a, t, mv


def test_strided_views_agree(buf):
    # A 4x4 float64 block of a wider matrix: row pitch 64 bytes.
    a = buf.numpy(np.float64, (4, 4), strides=(64, 8), offset=256)
    t = buf.torch(torch.float64, (4, 4), strides=(8, 1), offset=256)
    assert a.strides == (64, 8) and t.stride() == (8, 1)
    a[...] = np.arange(16).reshape(4, 4)
    assert torch.equal(t, torch.arange(16, dtype=torch.float64).view(4, 4))
    assert data_address(a[2:, 1:]) == buf.address + 256 + 2 * 64 + 8
    assert t[2:, 1:].data_ptr() == buf.address + 256 + 2 * 64 + 8
    # Between the rows the bytes are untouched.
    assert not buf.numpy(np.uint8, (32,), offset=256 + 32).any()
    # numpy may walk backwards.
    r = buf.numpy(np.float64, (4,), strides=(-8,), offset=256 + 24)
    assert list(r) == [3.0, 2.0, 1.0, 0.0]


def test_views_are_bounds_checked(buf):
    for call in (lambda: buf.numpy(np.uint8, (SIZE + 1,)),
                 lambda: buf.numpy(np.uint32, (4,), offset=SIZE - 12),
                 lambda: buf.numpy(np.uint8, offset=SIZE + 1),
                 lambda: buf.numpy(np.uint8, offset=-1),
                 lambda: buf.numpy(np.uint8, (2, 2), strides=(SIZE, 1)),
                 lambda: buf.numpy(np.uint8, (2,), strides=(-1,)),
                 lambda: buf.numpy(np.uint8, (2, 2), strides=(1,)),
                 lambda: buf.numpy(np.uint8, (-1,)),
                 lambda: buf.torch(torch.uint8, (SIZE + 1,)),
                 lambda: buf.torch(torch.float32, (4,), offset=SIZE - 12),
                 lambda: buf.torch(torch.float16, (2, 2), strides=(SIZE, 1)),
                 lambda: buf.torch(torch.float16, (2,), strides=(-1,))):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        buf.torch(np.float32)
    # Exactly to the end is fine; so is an empty view.
    assert buf.numpy(np.uint32, (4,), offset=SIZE - 16).shape == (4,)
    assert buf.torch(torch.int32, (4,), offset=SIZE - 16).shape == (4,)
    assert buf.numpy(np.uint8, (0,), offset=SIZE).size == 0
    assert buf.torch(torch.uint8, (0, 3)).numel() == 0


def test_close_waits_for_numpy_and_torch_views(dev):
    buf = dev.buffer(SIZE)
    a = buf.numpy(np.uint8, (16,))
    with pytest.raises(BufferError):
        buf.close()
    del a
    t = buf.torch(torch.uint8, (16,))
    part = t[4:8]
    del t
    with pytest.raises(BufferError):
        buf.close()
    del part
    buf.close()
    assert buf.closed


def test_views_outlive_their_device_safely(dev):
    buf = dev.buffer(SIZE)
    a = buf.numpy(np.int64, (8,))
    t = buf.torch(torch.int64, (8,))
    dev.close()
    # The memory is still mapped: no crash, and still shared by both views.
    a[3] = 42
    assert int(t[3]) == 42
    assert buf.closed
    del a, t
