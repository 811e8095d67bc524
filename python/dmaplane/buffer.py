"""Buffers: DMA memory of the module, mapped into this process, seen as
memoryviews, numpy arrays and torch tensors without a copy."""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _native
from .handle import HandleObject

if TYPE_CHECKING:
    from .device import Device
    from .endpoint import MR

BUFFER_FLAGS = {
    "coherent": _native.BUF_COHERENT,
    "huge": _native.BUF_HUGE,
    "user": _native.BUF_USER,
    "numa_strict": _native.BUF_NUMA_STRICT,
}
EXPORT_FLAGS = {
    "cloexec": _native.EXPORT_CLOEXEC,
    "read_only": _native.EXPORT_READ_ONLY,
}


def bits(flags: int | str | Iterable[str], names: dict[str, int],
         what: str) -> int:
    """Flag bits from an int (passed as is: the module judges unknown bits)
    or from names, so callers can say ("huge", "numa_strict")."""
    if isinstance(flags, int):
        return flags
    if isinstance(flags, str):
        flags = (flags,)
    value = 0
    for name in flags:
        try:
            value |= names[name]
        except KeyError:
            raise ValueError(f"unknown {what} flag {name!r} "
                             f"(known: {', '.join(names)})") from None
    return value


def _layout(size: int, itemsize: int, shape: Sequence[int] | int | None,
            strides: Sequence[int] | None, offset: int,
            stride_unit: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check a view against the buffer's bounds before numpy or torch sees
    it: (shape, strides in bytes). A view past the end would read or write
    memory that is not the buffer's."""
    if offset < 0 or offset > size:
        raise ValueError(f"offset {offset} is outside the buffer (0..{size})")
    if shape is None:
        shape = ((size - offset) // itemsize,)
    elif isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    if strides is None:
        step, byte_strides = itemsize, []
        for n in reversed(shape):
            byte_strides.append(step)
            step *= max(n, 1)
        byte_strides.reverse()
    else:
        if len(strides) != len(shape):
            raise ValueError(f"strides {tuple(strides)} do not match shape "
                             f"{shape}")
        byte_strides = [int(s) * stride_unit for s in strides]
    if math.prod(shape):
        low = sum(s * (n - 1) for n, s in zip(shape, byte_strides) if s < 0)
        high = sum(s * (n - 1) for n, s in zip(shape, byte_strides) if s > 0)
        if offset + low < 0 or offset + high + itemsize > size:
            raise ValueError(
                f"view of shape {shape}, strides {tuple(byte_strides)} bytes "
                f"at offset {offset} reaches bytes {offset + low}.."
                f"{offset + high + itemsize} of a {size}-byte buffer")
    return shape, tuple(byte_strides)


class Buffer(HandleObject):
    """A dmaplane buffer: made by Device.buffer() or Device.import_dmabuf().

    Its memory is mapped (MAP_SHARED, on first use) and every view --
    view(), numpy(), torch() -- points into that one mapping. The mapping
    is unmapped only when the last view of it is gone, so no view can ever
    point at unmapped memory. close() refuses (BufferError) while views
    exist, as mmap.mmap.close() does: delete them first. Closing the
    Device instead closes the buffer at once; live views then keep the
    memory (and the module's open file) until they go.
    """

    def __init__(self, dev: Device, handle: int, size: int, mmap_offset: int,
                 node: int | None, result_flags: int,
                 imported: bool) -> None:
        self._dev = dev
        self._handle = handle
        self._size = size
        self._mmap_offset = mmap_offset
        self._node = node
        self._result_flags = result_flags
        self._imported = imported
        self._map: _native.Mapping | None = None
        self._mrs: set[MR] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<dmaplane.Buffer {self._state()} size={self._size}>"


    @property
    def size(self) -> int:
        """Bytes allocated (the request rounded up to pages or chunks)."""
        return self._size

    @property
    def node(self) -> int | None:
        """The NUMA node asked for; None for any node and for imports."""
        return self._node

    @property
    def mmap_offset(self) -> int:
        return self._mmap_offset

    @property
    def result_flags(self) -> int:
        """BUF_RES_* bits: what the create got (partial huge, fallback)."""
        return self._result_flags

    @property
    def imported(self) -> bool:
        return self._imported

    def _mapping(self) -> _native.Mapping:
        fd = self._check()
        if self._map is None:
            self._map = _native.Mapping(fd, self._size, self._mmap_offset)
        return self._map

    def _views_alive(self) -> bool:
        # Our attribute and getrefcount's argument; anything more is a
        # view (memoryview, ndarray, tensor) that still uses the mapping.
        return self._map is not None and sys.getrefcount(self._map) > 2

    @property
    def address(self) -> int:
        """Where the buffer is mapped in this process (maps it)."""
        return self._mapping().address

    def view(self) -> memoryview:
        """A writable memoryview of the whole buffer."""
        return memoryview(self._mapping())

    def numpy(self, dtype: Any, shape: Sequence[int] | int | None = None,
              strides: Sequence[int] | None = None, offset: int = 0) -> Any:
        """A numpy array over the buffer, no copy: @offset and @strides in
        bytes (numpy's convention); shape None: as many items as fit."""
        import numpy as np

        dt = np.dtype(dtype)
        shape, byte_strides = _layout(self._size, dt.itemsize, shape, strides,
                                      offset, 1)
        return np.ndarray(shape, dt, buffer=self._mapping(), offset=offset,
                          strides=byte_strides)

    def torch(self, dtype: Any, shape: Sequence[int] | int | None = None,
              strides: Sequence[int] | None = None, offset: int = 0) -> Any:
        """A torch tensor over the buffer, no copy: @offset in bytes,
        @strides in elements (torch's convention), not negative; dtype a
        torch.dtype or its name ("float16")."""
        import torch

        dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if not isinstance(dt, torch.dtype):
            raise TypeError(f"{dtype!r} is not a torch dtype")
        itemsize = torch.empty((), dtype=dt).element_size()
        if strides is not None and any(s < 0 for s in strides):
            raise ValueError(f"torch views take no negative strides: "
                             f"{tuple(strides)}")
        shape, byte_strides = _layout(self._size, itemsize, shape, strides,
                                      offset, itemsize)
        elem_strides = tuple(s // itemsize for s in byte_strides)
        if not math.prod(shape):
            return torch.empty(shape, dtype=dt)
        count = 1 + sum(s * (n - 1) for n, s in zip(shape, elem_strides))
        flat = torch.frombuffer(self._mapping(), dtype=dt, count=count,
                                offset=offset)
        return flat.as_strided(shape, elem_strides)

    def info(self, node_pages: bool = False) -> dict[str, Any]:
        """BUFFER_INFO; with @node_pages, "node_pages" lists the pages on
        each node id (not for imports: EOPNOTSUPP)."""
        return _native.buffer_info(self._check(), self._handle, node_pages)

    def export_dmabuf(self, flags: int | str | Iterable[str] = ("cloexec",)
                      ) -> int:
        """A dma-buf fd of this buffer; the caller owns (closes) it. It is
        close-on-exec by default, as every fd Python opens (PEP 446);
        subprocess pass_fds still hands it on."""
        return _native.export_dmabuf(self._check(), self._handle,
                                     bits(flags, EXPORT_FLAGS, "export"))

    def revoke(self) -> int:
        """Withdraw every dma-buf exported from it; how many there were."""
        return _native.buffer_revoke(self._check(), self._handle)

    def close(self) -> None:
        """Deregister its MRs, unmap it and destroy it. BufferError while
        views of it exist: the memory must not go under them."""
        if self._closed:
            return
        fd = self._check()
        if self._views_alive():
            raise BufferError(f"{self!r} still has views (memoryview, numpy "
                              "array or torch tensor): delete them first")
        for mr in list(self._mrs):
            mr.close()
        self._map = None
        _native.buffer_destroy(fd, self._handle)
        self._closed = True
        self._dev._buffers.discard(self)

    def _detach(self) -> None:
        """Closed with its Device: the module frees it with the file, which
        live views' mapping keeps open until they go."""
        self._mrs.clear()
        self._map = None
        self._closed = True
