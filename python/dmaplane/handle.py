"""What Buffer, Endpoint and MR share: a handle in one open device file,
usable until close(), which every one of them makes idempotent."""
from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from .device import Device


class HandleObject:
    """A context manager over one module object; after close() (or the
    Device's), using it is a ValueError: its handle may already name
    another object."""

    _dev: Device
    _handle: int
    _closed: bool

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def handle(self) -> int:
        """The module's handle for it, private to the Device's file."""
        self._check()
        return self._handle

    def _state(self) -> str:
        """For __repr__: "closed" or the handle."""
        return "closed" if self._closed else f"handle={self._handle}"

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{type(self).__name__} is closed")

    def _check(self) -> int:
        """The device's fd, for a call on this object."""
        self._check_open()
        return self._dev._check()
