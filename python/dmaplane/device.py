"""The device: one open /dev/dmaplane and everything made through it."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from . import _native
from .buffer import BUFFER_FLAGS, Buffer, bits
from .endpoint import Endpoint, ep_params

DEFAULT_PATH = "/dev/dmaplane"


class Device:
    """An open dmaplane device.

    Handles are private to one open file, so the buffers and endpoints
    made here live and die with it: close() closes them all (the module
    frees them in the right order with the file, I/O in flight included).
    Each of them keeps its Device object alive while it is used.
    """

    def __init__(self, path: str = DEFAULT_PATH) -> None:
        self.path = path
        self._fd = _native.open(path)
        self._buffers: set[Buffer] = set()
        self._endpoints: set[Endpoint] = set()

    def __del__(self) -> None:
        # As a file object does: an fd must not outlive its last reference.
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<dmaplane.Device {self.path} {state}>"

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self) -> int:
        if self._fd < 0:
            raise ValueError("Device is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        return self._check()

    def close(self) -> None:
        """Close the device and everything made through it; idempotent.
        No per-object teardown: closing the file does that in the module."""
        if self._fd < 0:
            return
        for ep in self._endpoints:
            ep._detach()
        for buf in self._buffers:
            buf._detach()
        self._endpoints.clear()
        self._buffers.clear()
        fd, self._fd = self._fd, -1
        os.close(fd)

    def info(self) -> dict[str, Any]:
        """GET_INFO: every field, and "caps", the capability names."""
        return _native.get_info(self._check())

    def echo(self, value: int, invert: bool = False) -> int:
        """ECHO: one round trip through the module's ioctl dispatcher."""
        return _native.echo(self._check(), value,
                            _native.ECHO_INVERT if invert else 0)

    def topology(self) -> list[dict[str, Any]]:
        """GET_TOPOLOGY: per online node, its CPUs, memory and SLIT
        distances to every node (a dict by node id)."""
        return _native.topology(self._check())

    def rdma_devices(self) -> list[dict[str, Any]]:
        """RDMA_DEVICES: the RDMA devices the module can use."""
        return _native.rdma_devices(self._check())

    def buffer(self, size: int, node: int | None = None,
               flags: int | str | Iterable[str] = 0, *, huge: bool = False,
               coherent: bool = False, numa_strict: bool = False) -> Buffer:
        """BUFFER_CREATE of @size bytes on NUMA @node (None: any node).
        @flags: BUF_* bits or their names ("huge", "coherent",
        "numa_strict"); the keywords say the same."""
        value = bits(flags, BUFFER_FLAGS, "buffer")
        for name, on in (("huge", huge), ("coherent", coherent),
                         ("numa_strict", numa_strict)):
            if on:
                value |= BUFFER_FLAGS[name]
        r = _native.buffer_create(self._check(), size,
                                  _native.NUMA_ANY if node is None else node,
                                  value)
        buf = Buffer(self, r["handle"], r["alloc_size"], r["mmap_offset"],
                     node, r["result_flags"], imported=False)
        self._buffers.add(buf)
        return buf

    def import_dmabuf(self, fd: int) -> Buffer:
        """IMPORT_DMABUF: a buffer of this device over dma-buf @fd (the
        caller keeps owning @fd)."""
        r = _native.import_dmabuf(self._check(), fd)
        buf = Buffer(self, r["handle"], r["size"], r["mmap_offset"], None,
                     r["result_flags"], imported=True)
        self._buffers.add(buf)
        return buf

    def _endpoint(self, handle: int) -> Endpoint:
        ep = Endpoint(self, handle)
        self._endpoints.add(ep)
        return ep

    def endpoint(self, **params: Any) -> Endpoint:
        """ENDPOINT_CREATE: an idle endpoint to listen() or connect() with.
        Parameters: see dmaplane.endpoint.ep_params()."""
        return self._endpoint(_native.ep_create(self._check(),
                                                ep_params(**params)))

    def dial(self, addr: str, port: int, wait_ms: int = 20000,
             **params: Any) -> Endpoint:
        """A connected endpoint to @addr:@port, trying again while nobody
        listens there yet, for up to @wait_ms: the peer may start later."""
        return self._endpoint(_native.ep_dial(self._check(),
                                              ep_params(**params), addr, port,
                                              wait_ms))

    def loopback(self, addr: str, **params: Any) -> tuple[Endpoint, Endpoint]:
        """Two endpoints of this device connected to each other through the
        RDMA device that serves @addr: (client, server)."""
        client, server = _native.ep_loopback(self._check(), addr,
                                             ep_params(**params))
        return self._endpoint(client), self._endpoint(server)
