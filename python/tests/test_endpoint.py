"""Endpoint: create/listen/accept/connect/dial/loopback, ENDPOINT_INFO,
MR_REG/DEREG, POST (and its batches and per-op errors), REAP, eventfd, and
on a loopback connection over the guest's soft-RoCE device the data of
WRITE, WRITE_IMM, READ and SEND/RECV, and the credits."""
import errno
import os
import select
import threading
import time

import pytest

import dmaplane
from dmaplane import Op, _native

PAGE = 4096
WAIT_MS = 20000
SIZE = 64 * 1024


def raises(err, op, call, *args, **kwargs):
    """call() fails with dmaplane.Error @err from operation @op."""
    with pytest.raises(dmaplane.Error) as e:
        call(*args, **kwargs)
    assert (e.value.errno, e.value.op) == (err, op), str(e.value)
    return e.value


def settled(predicate, seconds=20.0):
    """Wait for state the module changes asynchronously (credit grants
    travel on their own queue pair); the predicate's last answer."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def reap_all(ep, n):
    """Exactly @n completions of @ep, in order."""
    got = []
    while len(got) < n:
        got += ep.reap(max=min(n - len(got), dmaplane.POST_MAX),
                       timeout_ms=WAIT_MS)
    return got


def pattern(n, seed):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


# ---- without a connection ----

def test_create_and_info(dev):
    with dev.endpoint(send_depth=32, recv_depth=16, credit_window=8) as ep:
        i = ep.info()
        assert i["handle"] == ep.handle
        assert (i["state"], i["state_name"]) == (dmaplane.EP_IDLE, "idle")
        assert (i["send_depth"], i["recv_depth"]) == (32, 16)
        assert i["flow_control"] and i["credit_window"] == 8
        assert i["local_addr"] is None and i["peer_addr"] is None
        assert i["device_index"] == -1 and i["error"] == 0
    with dev.endpoint(credits=False) as ep:
        i = ep.info()
        assert not i["flow_control"]
        assert (i["send_depth"], i["recv_depth"]) == (
            dmaplane.EP_DEPTH_DEFAULT, dmaplane.EP_DEPTH_DEFAULT)


def test_bad_endpoint_parameters(dev):
    raises(errno.EINVAL, "ENDPOINT_CREATE", dev.endpoint,
           send_depth=dmaplane.EP_DEPTH_MAX + 1)
    raises(errno.EINVAL, "ENDPOINT_CREATE", dev.endpoint, retry_count=8)
    raises(errno.EINVAL, "ENDPOINT_CREATE", dev.endpoint,
           timeout_ms=dmaplane.EP_TIMEOUT_MAX_MS + 1)
    raises(errno.EINVAL, "ENDPOINT_CREATE", dev.endpoint, recv_depth=8,
           credit_window=9)
    with pytest.raises(TypeError):
        dev.endpoint(sned_depth=4)
    with pytest.raises(ValueError):
        dev.endpoint(ack_timeout=256)
    with pytest.raises(ValueError):
        dev.endpoint(send_depth=-1)


def test_bad_addresses_and_states(dev):
    with dev.endpoint() as ep:
        with pytest.raises(ValueError, match="not an IP address"):
            ep.connect("not-an-address", 1)
        with pytest.raises(ValueError, match="port"):
            ep.listen("0.0.0.0", 70000)
        raises(errno.EINVAL, "ENDPOINT_LISTEN", ep.listen, backlog=0)
        # Not listening.
        raises(errno.EINVAL, "ENDPOINT_ACCEPT", ep.accept, 100)
        raises(errno.ENOTCONN, "POST", ep.send, 0, 0, 0)
        raises(errno.ENOENT, "ENDPOINT_DEVICE", ep.device)
    fd = dev.fileno()
    raises(errno.ENOENT, "ENDPOINT_INFO", _native.ep_info, fd, 999999)
    raises(errno.ENOENT, "ENDPOINT_DESTROY", _native.ep_destroy, fd, 999999)
    raises(errno.ENOENT, "MR_DEREG", _native.mr_dereg, fd, 999999)
    raises(errno.ENOENT, "REAP", _native.reap, fd, 999999, 1, 0, 0)
    raises(errno.ENOENT, "POST", _native.post, fd, 999999,
           [Op(dmaplane.OP_NOOP)], 0)


def test_closed_endpoint_is_valueerror(dev):
    ep = dev.endpoint()
    ep.close()
    ep.close()
    assert ep.closed
    for call in (lambda: ep.handle, ep.info, ep.noop, ep.reap, ep.eventfd,
                 lambda: ep.listen(), lambda: ep.accept(),
                 lambda: ep.connect("10.0.0.1", 1)):
        with pytest.raises(ValueError, match="Endpoint is closed"):
            call()


def test_noop_post_and_reap(dev):
    with dev.endpoint() as ep:
        assert ep.post([Op(dmaplane.OP_NOOP, cookie=7),
                        Op(dmaplane.OP_NOOP, cookie=8)]) == 2
        ep.noop(cookie=9)
        got = ep.reap(max=8, min=3, timeout_ms=WAIT_MS)
        assert [c.cookie for c in got] == [7, 8, 9]
        c = got[0]
        assert isinstance(c, dmaplane.Completion)
        assert (c.opcode, c.status, c.bytes, c.flags) == (
            dmaplane.OP_NOOP, 0, 0, 0)
        # Nothing left: min=0 does not wait, min=1 times out.
        assert ep.reap(min=0) == []
        raises(errno.ETIMEDOUT, "REAP", ep.reap, timeout_ms=10)
        raises(errno.EINVAL, "REAP", ep.reap, max=0, min=0)
        with pytest.raises(ValueError):
            ep.reap(max=dmaplane.POST_MAX + 1)
        assert ep.post([]) == 0


def test_post_in_batches_and_per_op_errors(dev):
    n = dmaplane.POST_MAX + 44
    with dev.endpoint(send_depth=512) as ep:
        # More than one POST can carry: sent in several.
        assert ep.post([Op(dmaplane.OP_NOOP, cookie=i)
                        for i in range(n)]) == n
        assert [c.cookie for c in reap_all(ep, n)] == list(range(n))
        # A bad op stops the batch and says how many went before it.
        e = raises(errno.EINVAL, "POST", ep.post,
                   [Op(dmaplane.OP_NOOP), Op(dmaplane.OP_NOOP),
                    Op(dmaplane.OP_NOOP, imm=1), Op(dmaplane.OP_NOOP)])
        assert e.posted == 2
        assert len(reap_all(ep, 2)) == 2
        e = raises(errno.EINVAL, "POST", ep.post, [Op(99)])
        assert e.posted == 0
    with dev.endpoint(send_depth=16) as ep:
        # A full send queue (completions not reaped yet count as full).
        e = raises(errno.EAGAIN, "POST", ep.post,
                   [Op(dmaplane.OP_NOOP)] * 20)
        assert e.posted == 16
    with dev.endpoint() as ep:
        with pytest.raises(TypeError):
            ep.post([(dmaplane.OP_NOOP,)])
        with pytest.raises(ValueError):
            ep.post([Op(dmaplane.OP_NOOP, cookie=-1)])


def test_eventfd_signals_completions(dev):
    with dev.endpoint() as ep:
        efd = ep.eventfd()
        assert ep.eventfd() == efd
        ep.noop(cookie=1)
        assert select.select([efd], [], [], WAIT_MS / 1000)[0] == [efd]
        assert os.eventfd_read(efd) >= 1
        ep.reap()
        # The caller's own eventfd; -1 stops signalling.
        mine = os.eventfd(0, os.EFD_NONBLOCK)
        try:
            assert ep.eventfd(mine) == mine
            ep.noop()
            assert select.select([mine], [], [], WAIT_MS / 1000)[0]
            ep.reap()
            assert ep.eventfd(-1) == -1
            os.eventfd_read(mine)
            ep.noop()
            ep.reap()
            with pytest.raises(BlockingIOError):
                os.eventfd_read(mine)
            raises(errno.EBADF, "ENDPOINT_EVENTFD", ep.eventfd, -2)
            null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            try:
                raises(errno.EINVAL, "ENDPOINT_EVENTFD", ep.eventfd, null)
            finally:
                os.close(null)
        finally:
            os.close(mine)
    with pytest.raises(OSError):
        os.fstat(efd)       # closed with its endpoint


# ---- over a connection ----

def test_loopback_pair_info(pair, guest_ip):
    client, server = pair
    for me, peer in ((client, server), (server, client)):
        i = me.info()
        assert (i["state"], i["state_name"]) == (dmaplane.EP_CONNECTED,
                                                 "connected")
        assert i["local_addr"] == guest_ip == i["peer_addr"]
        assert i["qp_num"] and i["device_index"] >= 0
        assert i["peer_port"] == peer.info()["local_port"]
        assert i["peer_recv_depth"] == dmaplane.EP_DEPTH_DEFAULT
        assert i["flow_control"] and i["credit_window"] > 0
        d = me.device()
        assert d["index"] == i["device_index"]
        assert d["name"] in [x["name"] for x in me._dev.rdma_devices()]


def test_listen_accept_connect(dev, guest_ip):
    with dev.endpoint() as listener:
        port = listener.listen(guest_ip, 0, backlog=2)
        assert port > 0
        assert listener.info()["state_name"] == "listening"
        client = dev.endpoint()
        errors = []

        def connect():
            try:
                client.connect(guest_ip, port, timeout_ms=WAIT_MS)
            except dmaplane.Error as e:
                errors.append(e)

        t = threading.Thread(target=connect)
        t.start()
        server = listener.accept(timeout_ms=WAIT_MS)
        t.join()
        assert errors == []
        assert server.info()["state_name"] == "connected"
        assert client.info()["peer_port"] == port
        # dial: connect with retries, as a peer that starts later would.
        dialed = []
        t = threading.Thread(target=lambda: dialed.append(
            dev.dial(guest_ip, port, wait_ms=WAIT_MS)))
        t.start()
        # Longer than one ACCEPT may wait: accepted in rounds.
        server2 = listener.accept(timeout_ms=2 * dmaplane.EP_TIMEOUT_MAX_MS)
        t.join()
        assert dialed and dialed[0].info()["state_name"] == "connected"
        assert server2.info()["peer_port"] == dialed[0].info()["local_port"]


def test_connect_refused(dev, guest_ip):
    with dev.endpoint() as listener:
        port = listener.listen(guest_ip)
    with dev.endpoint() as ep:
        raises(errno.ECONNREFUSED, "ENDPOINT_CONNECT", ep.connect, guest_ip,
               port, timeout_ms=10000)
        assert ep.info()["state_name"] == "error"
    raises(errno.ECONNREFUSED, "ENDPOINT_CONNECT", dev.dial, guest_ip, port,
           wait_ms=0)


def test_register(dev, pair):
    client, server = pair
    with dev.buffer(SIZE) as buf:
        mr = client.register(buf)
        assert mr.rkey and mr.length == SIZE and mr.offset == 0
        assert mr.buffer is buf and mr.endpoint is client
        local = client.register(buf, PAGE, 2 * PAGE, access="local_write")
        assert local.rkey == 0 and local.length == 2 * PAGE
        assert buf.info()["mrs"] == 2
        local.close()
        local.close()
        assert buf.info()["mrs"] == 1
        with pytest.raises(ValueError, match="MR is closed"):
            local.handle
        raises(errno.EINVAL, "MR_REG", client.register, buf, offset=100)
        raises(errno.EINVAL, "MR_REG", client.register, buf, 0, SIZE + PAGE)
        raises(errno.EINVAL, "MR_REG", client.register, buf, access=1 << 5)
        with pytest.raises(ValueError, match="unknown MR flag"):
            client.register(buf, access=("local_write", "remote_exec"))
        with dmaplane.Device() as other, other.buffer(PAGE) as theirs:
            with pytest.raises(ValueError, match="another Device"):
                client.register(theirs)
        # Closing the buffer deregisters what covers it.
    assert mr.closed
    raises(errno.ENOENT, "MR_REG", _native.mr_reg, dev.fileno(),
           client.handle, 999999, 0, 0, dmaplane.MR_LOCAL_WRITE)
    with dev.buffer(PAGE) as buf:
        mr = server.register(buf)
        server.close()
        assert mr.closed and server.closed
        with pytest.raises(ValueError):
            server.register(buf)


def test_write_imm_read_send_recv(dev, pair):
    client, server = pair
    with dev.buffer(SIZE) as cbuf, dev.buffer(SIZE) as sbuf:
        cmr = client.register(cbuf)
        smr = server.register(sbuf)
        cv, sv = cbuf.view(), sbuf.view()

        # WRITE: client bytes land in the server's window.
        data = pattern(10000, 1)
        cv[100:100 + len(data)] = data
        client.write(cmr, 100, len(data), 5000, smr.rkey, cookie=11)
        c, = client.reap(timeout_ms=WAIT_MS)
        assert (c.cookie, c.opcode, c.status, c.bytes) == (
            11, dmaplane.OP_WRITE, 0, len(data))
        assert bytes(sv[5000:5000 + len(data)]) == data

        # WRITE_IMM: consumes a RECV of the server, which sees the imm.
        server.recv(smr, 0, PAGE, cookie=21)
        data = pattern(3000, 2)
        cv[0:3000] = data
        assert settled(lambda: client.info()["credits"] >= 1)
        client.write_imm(cmr, 0, 3000, 20000, smr.rkey, imm=0xC0FFEE,
                         cookie=12)
        c, = client.reap(timeout_ms=WAIT_MS)
        assert (c.cookie, c.opcode, c.status) == (12, dmaplane.OP_WRITE_IMM, 0)
        r, = server.reap(timeout_ms=WAIT_MS)
        assert (r.cookie, r.opcode, r.status, r.imm) == (
            21, dmaplane.OP_RECV, 0, 0xC0FFEE)
        assert r.flags == dmaplane.COMP_IMM | dmaplane.COMP_WRITE_IMM
        assert bytes(sv[20000:23000]) == data

        # READ: the server's bytes come into the client's buffer.
        data = pattern(7000, 3)
        sv[30000:37000] = data
        client.read(cmr, 40000, 7000, 30000, smr.rkey, cookie=13)
        c, = client.reap(timeout_ms=WAIT_MS)
        assert (c.cookie, c.opcode, c.status, c.bytes) == (
            13, dmaplane.OP_READ, 0, 7000)
        assert bytes(cv[40000:47000]) == data

        # SEND/RECV, both ways.
        for sender, smr_, sview, receiver, rmr, rview, seed in (
                (client, cmr, cv, server, smr, sv, 4),
                (server, smr, sv, client, cmr, cv, 5)):
            data = pattern(1500, seed)
            receiver.recv(rmr, 50000, 2048, cookie=31)
            sview[60000:61500] = data
            sender.send(smr_, 60000, 1500, cookie=32)
            c, = sender.reap(timeout_ms=WAIT_MS)
            assert (c.cookie, c.opcode, c.status) == (32, dmaplane.OP_SEND, 0)
            r, = receiver.reap(timeout_ms=WAIT_MS)
            assert (r.cookie, r.opcode, r.status, r.bytes, r.flags) == (
                31, dmaplane.OP_RECV, 0, 1500, 0)
            assert bytes(rview[50000:51500]) == data
        del cv, sv, sview, rview


def test_credits_follow_posted_receives(dev, pair):
    client, server = pair
    with dev.buffer(SIZE) as cbuf, dev.buffer(SIZE) as sbuf:
        cmr = client.register(cbuf)
        smr = server.register(sbuf)
        assert client.info()["credits"] == 0
        # No credit: with nowait a SEND is refused, nothing is queued.
        e = raises(errno.EAGAIN, "POST", client.post,
                   [Op(dmaplane.OP_SEND, cmr, 0, 64)], nowait=True)
        assert e.posted == 0
        n = 4
        server.post([Op(dmaplane.OP_RECV, smr, i * 1024, 1024, cookie=i)
                     for i in range(n)])
        assert settled(lambda: client.info()["credits"] == n)
        assert server.info()["peer_credits"] == n
        client.post([Op(dmaplane.OP_SEND, cmr, i * 1024, 100, cookie=i)
                     for i in range(n)])
        assert [c.status for c in reap_all(client, n)] == [0] * n
        assert [c.cookie for c in reap_all(server, n)] == list(range(n))
        assert client.info()["credits"] == 0
        # Without a credit a SEND waits in the queue until one comes.
        client.send(cmr, 0, 100, cookie=99)
        i = client.info()
        assert (i["queued"], i["inflight"]) == (1, 1)
        assert i["stalls"] >= 1
        server.recv(smr, 0, 1024, cookie=98)
        c, = client.reap(timeout_ms=WAIT_MS)
        assert (c.cookie, c.status) == (99, 0)
        assert server.reap(timeout_ms=WAIT_MS)[0].cookie == 98


def test_without_credits(dev, guest_ip):
    client, server = dev.loopback(guest_ip, credits=False)
    assert not client.info()["flow_control"]
    assert not server.info()["flow_control"]
    with dev.buffer(2 * PAGE) as buf:
        smr = server.register(buf, 0, PAGE)
        cmr = client.register(buf, PAGE)
        server.recv(smr, 0, 100, cookie=1)
        assert server.info()["peer_credits"] == 0
        assert client.info()["credits"] == 0
        # Nothing to wait for: the RECV is there.
        buf.view()[PAGE:PAGE + 5] = b"hello"
        client.send(cmr, 0, 5, cookie=2)
        assert client.reap(timeout_ms=WAIT_MS)[0].status == 0
        r, = server.reap(timeout_ms=WAIT_MS)
        assert (r.cookie, r.status, r.bytes) == (1, 0, 5)
        assert bytes(buf.view()[:5]) == b"hello"


def test_close_with_receives_posted(dev, pair):
    client, server = pair
    with dev.buffer(PAGE) as buf:
        mr = server.register(buf)
        server.recv(mr, 0, PAGE, cookie=5)
        # The RECV holds the MR, the MR the endpoint.
        raises(errno.EBUSY, "MR_DEREG", server.close)
        assert not server.closed and not mr.closed
        # The peer leaving flushes it.
        client.close()
        c, = server.reap(timeout_ms=WAIT_MS)
        assert (c.cookie, c.opcode, c.status) == (
            5, dmaplane.OP_RECV, -errno.ECANCELED)
        server.close()
        assert mr.closed and server.closed
