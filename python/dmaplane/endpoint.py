"""Endpoints: RC connections by IP address (rdma_cm), memory registration,
operations and their completions, with the module's credit flow control."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _native
from .buffer import Buffer, bits
from .handle import HandleObject

if TYPE_CHECKING:
    from .device import Device

MR_ACCESS = {
    "local_write": _native.MR_LOCAL_WRITE,
    "remote_write": _native.MR_REMOTE_WRITE,
    "remote_read": _native.MR_REMOTE_READ,
}
EP_STATES = {
    _native.EP_IDLE: "idle",
    _native.EP_LISTENING: "listening",
    _native.EP_CONNECTING: "connecting",
    _native.EP_CONNECTED: "connected",
    _native.EP_DISCONNECTED: "disconnected",
    _native.EP_ERROR: "error",
}


def ep_params(send_depth: int = 0, recv_depth: int = 0, credits: bool = True,
              credit_window: int | None = None,
              credit_low: int | None = None,
              credit_high: int | None = None, timeout_ms: int = 0,
              retry_count: int = 0, rnr_retry_count: int = 0,
              ack_timeout: int = 0) -> dict[str, int]:
    """ENDPOINT_CREATE's parameters; 0 or None: the module's default.
    credits=False turns flow control off (both sides must agree)."""
    return {
        "flags": 0 if credits else _native.EP_NO_CREDITS,
        "send_depth": send_depth,
        "recv_depth": recv_depth,
        "timeout_ms": timeout_ms,
        "retry_count": retry_count,
        "rnr_retry_count": rnr_retry_count,
        "ack_timeout": ack_timeout,
        "credit_window": credit_window or 0,
        "credit_low": credit_low or 0,
        "credit_high": credit_high or 0,
    }


class Op(NamedTuple):
    """One operation for Endpoint.post(); @mr an MR or its handle."""

    opcode: int
    mr: Any = 0
    offset: int = 0
    length: int = 0
    remote_offset: int = 0
    rkey: int = 0
    imm: int = 0
    cookie: int = 0


class Completion(NamedTuple):
    """One completed operation (struct dmaplane_completion)."""

    cookie: int
    opcode: int
    status: int         # 0, or -errno
    wc_status: int      # the verbs status, for diagnostics
    bytes: int          # bytes received (RECV), else the operation's length
    imm: int            # the immediate, when flags has COMP_IMM
    flags: int          # COMP_* bits


class MR(HandleObject):
    """A registered window of a buffer on one endpoint (Endpoint.register).
    Peers address it from offset 0 with its rkey."""

    def __init__(self, ep: Endpoint, buffer: Buffer, handle: int, rkey: int,
                 offset: int, length: int) -> None:
        self._ep = ep
        self._dev = ep._dev
        self._buffer = buffer
        self._handle = handle
        self._rkey = rkey
        self._offset = offset
        self._length = length
        self._closed = False

    def __repr__(self) -> str:
        return (f"<dmaplane.MR {self._state()} rkey={self._rkey:#x} "
                f"length={self._length}>")

    @property
    def rkey(self) -> int:
        """The key a peer names the window by; 0 without remote access."""
        return self._rkey

    @property
    def offset(self) -> int:
        """Where the window starts in its buffer."""
        return self._offset

    @property
    def length(self) -> int:
        return self._length

    @property
    def buffer(self) -> Buffer:
        return self._buffer

    @property
    def endpoint(self) -> Endpoint:
        return self._ep

    def close(self) -> None:
        """MR_DEREG: the rkey is invalid afterwards; idempotent. EBUSY
        while operations in flight use it."""
        if self._closed:
            return
        _native.mr_dereg(self._ep._check(), self._handle)
        self._detach()

    def _detach(self) -> None:
        self._closed = True
        self._ep._mrs.discard(self)
        self._buffer._mrs.discard(self)


class Endpoint(HandleObject):
    """An RC endpoint: made by Device.endpoint(), dial(), loopback() or
    Endpoint.accept(). close() deregisters its MRs and destroys it."""

    def __init__(self, dev: Device, handle: int) -> None:
        self._dev = dev
        self._handle = handle
        self._mrs: set[MR] = set()
        self._efd = -1
        self._closed = False

    def __repr__(self) -> str:
        return f"<dmaplane.Endpoint {self._state()}>"


    def listen(self, addr: str = "0.0.0.0", port: int = 0,
               backlog: int = 4) -> int:
        """ENDPOINT_LISTEN on @addr:@port (0: any port); the port bound."""
        return _native.ep_listen(self._check(), self._handle, addr, port,
                                 backlog)

    def accept(self, timeout_ms: int = 0) -> Endpoint:
        """ENDPOINT_ACCEPT: the next connection, established. 0: the
        listener's timeout; above EP_TIMEOUT_MAX_MS it waits in rounds."""
        return self._dev._endpoint(_native.ep_accept(self._check(),
                                                     self._handle,
                                                     timeout_ms))

    def connect(self, addr: str, port: int, timeout_ms: int = 0) -> None:
        """ENDPOINT_CONNECT to a listener; returns once established."""
        _native.ep_connect(self._check(), self._handle, addr, port,
                           timeout_ms)

    def info(self) -> dict[str, Any]:
        """ENDPOINT_INFO: every field, addresses as strings (None until
        known), "state_name", and "flow_control" (credits are on)."""
        i = _native.ep_info(self._check(), self._handle)
        i["state_name"] = EP_STATES.get(i["state"], str(i["state"]))
        i["flow_control"] = bool(i["flags"] & _native.EP_INFO_CREDITS)
        return i

    def device(self) -> dict[str, Any]:
        """The RDMA device the endpoint runs on (ENOENT before it has one)."""
        return _native.ep_device(self._check(), self._handle)

    def register(self, buffer: Buffer, offset: int = 0, length: int = 0,
                 access: int | str | Iterable[str] = (
                     "local_write", "remote_write", "remote_read")) -> MR:
        """MR_REG of @buffer's window [@offset, @offset + @length) (length
        0: to the end). @access: MR_* bits or names; the default grants
        everything, narrow it for windows a peer must not touch."""
        fd = self._check()
        if buffer._dev is not self._dev:
            # Handles are per open file: another device's handle could
            # name some other buffer of this one.
            raise ValueError(f"{buffer!r} belongs to another Device")
        handle, rkey = _native.mr_reg(fd, self._handle, buffer.handle, offset,
                                      length, bits(access, MR_ACCESS, "MR"))
        mr = MR(self, buffer, handle, rkey, offset,
                length or buffer.size - offset)
        self._mrs.add(mr)
        buffer._mrs.add(mr)
        return mr

    def post(self, ops: Sequence[Op], nowait: bool = False) -> int:
        """POST the operations in order; how many were posted (all). One
        that is refused raises Error with .posted, the count before it.
        @nowait: an operation without a credit is EAGAIN, not queued."""
        fd = self._check()
        raw = []
        for op in ops:
            if not isinstance(op, Op):
                raise TypeError(f"{op!r} is not a dmaplane.Op")
            if isinstance(op.mr, MR):
                # Handles are per open file: another device's MR handle
                # could name some other MR of this one.
                if op.mr._dev is not self._dev:
                    raise ValueError(f"{op.mr!r} belongs to another Device")
                op = op._replace(mr=op.mr.handle)
            raw.append(op)
        return _native.post(fd, self._handle, raw,
                            _native.POST_NOWAIT if nowait else 0)

    def _post1(self, op: Op) -> None:
        self.post((op,))

    def write(self, mr: MR, offset: int, length: int, remote_offset: int,
              rkey: int, cookie: int = 0) -> None:
        """RDMA WRITE of @mr[@offset:+@length] to the peer's window @rkey."""
        self._post1(Op(_native.OP_WRITE, mr, offset, length, remote_offset,
                       rkey, 0, cookie))

    def write_imm(self, mr: MR, offset: int, length: int, remote_offset: int,
                  rkey: int, imm: int, cookie: int = 0) -> None:
        """WRITE_WITH_IMM: a WRITE that completes one of the peer's RECVs
        with @imm (a credit with flow control)."""
        self._post1(Op(_native.OP_WRITE_IMM, mr, offset, length,
                       remote_offset, rkey, imm, cookie))

    def read(self, mr: MR, offset: int, length: int, remote_offset: int,
             rkey: int, cookie: int = 0) -> None:
        """RDMA READ of the peer's window @rkey into @mr[@offset:]."""
        self._post1(Op(_native.OP_READ, mr, offset, length, remote_offset,
                       rkey, 0, cookie))

    def send(self, mr: MR, offset: int, length: int, cookie: int = 0) -> None:
        """SEND @mr[@offset:+@length] into the peer's next RECV."""
        self._post1(Op(_native.OP_SEND, mr, offset, length, 0, 0, 0, cookie))

    def recv(self, mr: MR, offset: int, length: int, cookie: int = 0) -> None:
        """Post a RECV into @mr[@offset:+@length] (a credit to the peer)."""
        self._post1(Op(_native.OP_RECV, mr, offset, length, 0, 0, 0, cookie))

    def noop(self, cookie: int = 0) -> None:
        """A NOOP: completes at once, through the completion channel."""
        self._post1(Op(_native.OP_NOOP, cookie=cookie))

    def reap(self, max: int = 64, min: int = 1,
             timeout_ms: int = _native.EP_TIMEOUT_DEFAULT_MS
             ) -> list[Completion]:
        """REAP up to @max completions, oldest first, waiting up to
        @timeout_ms for @min of them (min=0: do not wait). Error ETIMEDOUT
        when none came; the connection's error once it ended and every
        completion was reaped."""
        return [Completion(*c) for c in
                _native.reap(self._check(), self._handle, max, min,
                             timeout_ms)]

    def eventfd(self, fd: int | None = None) -> int:
        """Signal an eventfd on every completion and on failure, for
        select/poll/asyncio. None: the endpoint's own (closed with it);
        or the caller's @fd; -1 stops signalling."""
        efd = self._check()
        if fd is None:
            if self._efd < 0:
                self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            fd = self._efd
        _native.ep_eventfd(efd, self._handle, fd)
        return fd

    def close(self) -> None:
        """Deregister its MRs, destroy it; idempotent. An MR that posted
        operations still use (a RECV the peer never consumed) is EBUSY
        until they complete or are flushed, as they are once the peer
        disconnects; Device.close() frees everything regardless."""
        if self._closed:
            return
        fd = self._check()
        for mr in list(self._mrs):
            mr.close()
        _native.ep_destroy(fd, self._handle)
        self._detach()
        self._dev._endpoints.discard(self)

    def _detach(self) -> None:
        """Closed (with its Device, or destroyed): drop what it owned."""
        for mr in list(self._mrs):
            mr._detach()
        if self._efd >= 0:
            os.close(self._efd)
            self._efd = -1
        self._closed = True
