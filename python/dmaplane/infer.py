"""Disaggregated inference in PyTorch over dmaplane: dpinfer's protocol.

    python3 -m dmaplane.infer local   --model CONF [--prompt TEXT |
                                      --prompt-len N] [--generate N]
                                      [--kv fp32|fp16]
    python3 -m dmaplane.infer decode  --addr IP [--port N] --model CONF
                                      [--region BYTES] [--requests N]
                                      [--recv-depth N] [--window N]
                                      [--timeout-ms T]
    python3 -m dmaplane.infer prefill --addr PEER [--port N] --model CONF
                                      [--prompt TEXT | --prompt-len N]
                                      [--generate N] [--kv fp32|fp16]
                                      [--chunk BYTES] [--requests N]
                                      [--no-overlap] [--synthetic]
                                      [--ref-bw MBPS]
    every command: [--json-out FILE]

The same model (dmaplane.model, the C demo's weights and arithmetic), the
same manifest, immediates, ACK and RESULT (dmaplane.kv) as src/apps/dpinfer:
either side may be the C program. The decode side receives the KV cache
into a registered buffer and decodes on torch views over that buffer's
mapping (no copy); the prefill side checks the tokens and final logits it
gets back against its own single-process run of the same calls.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from . import _native
from .device import Device
from .endpoint import MR, Completion, Endpoint, Op
from .errors import Error
from .kv import (MAX_GENERATE, REASON_LEN, Ack, DType, KVError, Layout,
                 Manifest, Result, RxTracker, imm_data, imm_final)
from .model import (KVCache, Model, ModelConfig, ModelError, argmax,
                    encode_prompt, load_config, synthetic_prompt)

PORT_DEFAULT = 18600
SLOT = 8192                 # one control message
MSG_SLOTS = 3               # manifest, ACK, RESULT
WAIT_MS = 60000
MSG_COOKIE = 1000           # + the slot
MARKER_COOKIE = (1 << 64) - 1


def now_ns() -> int:
    return time.monotonic_ns()


def fnv64(data: bytes) -> int:
    """FNV-1a, 64 bit: how both sides name a logits vector."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def logits_hash(logits: torch.Tensor) -> int:
    return fnv64(logits.to(torch.float32).contiguous().numpy().tobytes())


def prompt_tokens(prompt: str | None, length: int, vocab: int) -> list[int]:
    """The prompt's bytes (mod vocab), as the command line carried them,
    or @length generated ids: dpinfer's."""
    if prompt is not None:
        return encode_prompt(prompt, vocab)
    return synthetic_prompt(length, vocab)


def percentile(samples: list[int], q: float) -> int:
    """Nearest rank; 0 without samples."""
    if not samples:
        return 0
    s = sorted(samples)
    return s[max(0, min(len(s) - 1, -int(-q * len(s) // 1) - 1))]


def pattern(man: Manifest, region: memoryview, check: bool) -> int:
    """dpinfer's synthetic KV (--synthetic): fill every chunk of @man in
    @region with the request's pattern, or (@check) the first byte offset
    that differs from it; -1 when all match. The words are dpinfer's
    pattern_word(), 8 bytes little-endian per 8-byte step of the region."""
    import numpy as np

    for c in man.plan():
        off = np.arange(c.offset, c.offset + c.length, 8, dtype=np.uint64)
        with np.errstate(over="ignore"):
            w = (off // np.uint64(8) + np.uint64(1)) * \
                np.uint64(0x9e3779b97f4a7c15) ^ np.uint64(man.request_id)
            w ^= w >> np.uint64(31)
            w *= np.uint64(0xbf58476d1ce4e5b9)
        want = w.astype("<u8").tobytes()[:c.length]
        if not check:
            region[c.offset:c.offset + c.length] = want
            continue
        have = bytes(region[c.offset:c.offset + c.length])
        if have != want:
            bad = next(i for i in range(c.length) if have[i] != want[i])
            return c.offset + bad
    return -1


class Side:
    """One end of the connection: its endpoint and the control slots."""

    def __init__(self, dev: Device, ep: Endpoint) -> None:
        self.dev = dev
        self.ep = ep
        self.msg_buf = dev.buffer(MSG_SLOTS * SLOT, huge=True)
        self.msg_mr = ep.register(self.msg_buf, access=("local_write",))
        self.msg = self.msg_buf.view()
        # Byte counts of control messages that arrived while this side
        # waited for something else, by cookie (see note()).
        self.early: dict[int, int] = {}

    def post_msg(self, opcode: int, slot: int, length: int) -> None:
        self.ep.post([Op(opcode, self.msg_mr, slot * SLOT, length,
                         cookie=MSG_COOKIE + slot)])

    def slot(self, slot: int, length: int) -> bytes:
        return bytes(self.msg[slot * SLOT:slot * SLOT + length])

    def put(self, slot: int, data: bytes) -> None:
        self.msg[slot * SLOT:slot * SLOT + len(data)] = data

    def note(self, c: Completion) -> bool:
        """Keep a control message (a slot's RECV completing) that was
        reaped while this side waited for something else, for the
        wait_cookie() that wants it: the RESULT can come in one batch with
        the marker's completion, the next manifest with the RESULT's."""
        if c.opcode == _native.OP_RECV and \
                MSG_COOKIE <= c.cookie < MSG_COOKIE + MSG_SLOTS:
            self.early[c.cookie] = c.bytes
            return True
        return False

    def wait_cookie(self, cookie: int,
                    other: Callable[[Completion], None] | None = None,
                    timeout_ms: int = WAIT_MS) -> int:
        """Reap until the completion @cookie came (or came already, see
        note()); its byte count. Others go to @other; a failed one raises
        its error."""
        found = self.early.pop(cookie, None)
        while found is None:
            for c in self.ep.reap(max=32, min=1, timeout_ms=timeout_ms):
                if c.status:
                    # After the one awaited, a failure (the peer closing
                    # after its answer) comes back from the next call.
                    if found is None:
                        raise Error(-c.status, f"completion of {c.cookie}")
                    continue
                if c.cookie == cookie and found is None:
                    found = c.bytes
                elif not self.note(c) and other:
                    other(c)
        return found


# --------------------------------------------------------------- decode


@dataclass
class Decoder:
    side: Side
    args: argparse.Namespace
    config: ModelConfig
    model: Model | None
    region_mr: MR
    region: torch.Tensor            # uint8, the registered buffer's mapping
    side_region: memoryview         # the same bytes
    rx: RxTracker | None = None
    zposted: int = 0
    zwant: int = 0
    first_ns: int = 0
    last_ns: int = 0

    def post_receives(self, room: int) -> None:
        """Keep the chunks' zero-length receives posted (the credits)."""
        n = min(self.zwant - self.zposted, room)
        while n:
            k = min(n, _native.POST_MAX)
            self.side.ep.post([Op(_native.OP_RECV, cookie=1)] * k)
            self.zposted += k
            n -= k

    def arrival(self, c: Completion) -> None:
        if c.opcode != _native.OP_RECV:
            return                      # our ACK went out
        if self.side.note(c):
            return                      # the next manifest, already
        if not c.flags & _native.COMP_WRITE_IMM:
            raise KVError(errno.EPROTO, "a message where a chunk was expected")
        self.first_ns = self.first_ns or now_ns()
        self.last_ns = now_ns()
        assert self.rx is not None
        self.rx.mark(c.imm)
        self.post_receives(1)

    def reply(self, ack: Ack | None, result: Result | None) -> None:
        if ack is not None:
            self.side.put(1, ack.encode())
            self.side.post_msg(_native.OP_SEND, 1, len(ack.encode()))
            return
        assert result is not None
        data = result.encode()
        self.side.put(2, data)
        self.side.post_msg(_native.OP_SEND, 2, len(data))
        self.side.wait_cookie(MSG_COOKIE + 2, self.arrival)

    def refuse(self, err: OSError, more: bool) -> None:
        print(f"infer: manifest refused: {err.strerror}", file=sys.stderr)
        if more:
            self.side.post_msg(_native.OP_RECV, 0, SLOT)
        self.reply(Ack(-err.errno, self.region_mr.rkey, self.region_mr.length,
                       err.strerror), None)
        # The caller closes the connection next: the ACK must be out by
        # then, or the prefill side learns only of a disconnect, not why.
        try:
            self.side.wait_cookie(MSG_COOKIE + 1,
                                  timeout_ms=self.args.timeout_ms)
        except OSError:
            pass

    def request(self, length: int, more: bool) -> Result:
        """One request; the manifest is in slot 0 (@length bytes)."""
        try:
            man = Manifest.decode(self.side.slot(0, length),
                                  self.region_mr.length)
            c = self.config
            man.check_model(name=c.name, n_layers=c.n_layers,
                            n_heads=c.n_heads, head_dim=c.head_dim,
                            seed=c.seed, vocab=c.vocab, d_ff=c.d_ff,
                            max_seq=c.max_seq, runnable=self.model is not None)
            self.rx = RxTracker(man)
        except KVError as e:
            self.refuse(e, more)
            raise
        self.zposted, self.zwant = 0, man.n_chunks + 1
        self.first_ns = self.last_ns = 0
        self.post_receives(self.args.recv_depth)
        self.reply(Ack(0, self.region_mr.rkey, self.region_mr.length, ""),
                   None)
        result = Result(0, [], 0, 0, 0, 0, "")
        try:
            while not self.rx.complete:
                for comp in self.side.ep.reap(max=64, min=1,
                                              timeout_ms=self.args.timeout_ms):
                    if comp.status:
                        raise Error(-comp.status, "a chunk")
                    self.arrival(comp)
        except OSError as e:
            if isinstance(e, KVError):
                # A chunk that breaks the protocol: dpinfer's -EPROTO and
                # the reason arrival() gave.
                status, why = -errno.EPROTO, e.reason
            else:
                status = -e.errno
                why = (f"timed out after {self.args.timeout_ms} ms: "
                       if e.errno == errno.ETIMEDOUT
                       else f"{os.strerror(e.errno)}: ")
                why += self.rx.missing(REASON_LEN - len(why))
            print(f"infer: transfer failed: {why}", file=sys.stderr)
            self.reply(None, Result(status, [], 0, 0, 0, 0, why))
            raise
        result.transfer_ns = self.last_ns - self.first_ns
        if more:
            self.side.post_msg(_native.OP_RECV, 0, SLOT)
        if not man.n_generate:
            # A transfer-only request (--synthetic): check every byte.
            bad = pattern(man, self.side_region, True)
            if bad >= 0:
                result.status = -errno.EILSEQ
                result.reason = f"byte {bad} of the region is wrong"
            print(f"request {man.request_id}: {man.n_chunks} chunks in "
                  f"{result.transfer_ns / 1e6:.1f} ms"
                  f"{', failed: ' + result.reason if bad >= 0 else ''}")
            self.reply(None, result)
            return result
        # The decode reads the KV in place: views over the mapping.
        kv = KVCache.over(self.region, man.layout, man.tokens)
        base = self.region.data_ptr()
        for t in kv.k + kv.v:
            assert base <= t.data_ptr() < base + self.region.numel()
        print(f"views: K and V of {man.layout.n_layers} layers over the "
              f"registered region's mapping: no copy")
        assert self.model is not None
        t0 = now_ns()
        out, logits = self.model.generate(kv, man.first_token, 1)
        result.decode_first_ns = now_ns() - t0
        # The first step alone: what the time to first token includes.
        tokens: list[int] = []
        if man.n_generate > 1:
            tokens, logits = self.model.generate(kv, argmax(logits),
                                                 man.n_generate - 1)
        tokens.append(argmax(logits))
        result.tokens = tokens
        result.logits_hash = logits_hash(logits)
        result.decode_ns = now_ns() - t0
        print(f"request {man.request_id}: {man.n_chunks} chunks in "
              f"{result.transfer_ns / 1e6:.1f} ms")
        self.reply(None, result)
        return result


def cmd_decode(args: argparse.Namespace) -> int:
    config = load_config(args.model)
    try:
        model: Model | None = Model(config)
    except ModelError as e:
        if e.errno != errno.EFBIG:
            raise
        model = None
    print(f"decode: {config.name} on {args.addr} port {args.port}, region "
          f"{args.region} bytes (PyTorch {torch.__version__})")
    # Closed on every way out: the peer must see the connection end.
    with Device() as dev:
        with dev.endpoint(send_depth=16, recv_depth=args.recv_depth,
                          credit_window=args.window) as listener:
            listener.listen(args.addr, args.port)
            ep = listener.accept(10 * WAIT_MS)
        side = Side(dev, ep)
        buf = dev.buffer(args.region, huge=True)
        dec = Decoder(side, args, config, model,
                      ep.register(buf, access=("local_write",
                                               "remote_write")),
                      buf.torch(torch.uint8), buf.view())
        side.post_msg(_native.OP_RECV, 0, SLOT)
        for i in range(args.requests):
            length = side.wait_cookie(MSG_COOKIE + 0)
            dec.request(length, i + 1 < args.requests)
    return 0


# -------------------------------------------------------------- prefill


@dataclass
class Report:
    setup_ns: int = 0
    compute_ns: int = 0
    transfer_ns: int = 0
    exposed_ns: int = 0
    bytes: int = 0
    stalls: int = 0
    lat_ns: list[int] = field(default_factory=list)
    result: Result | None = None
    identical: bool = False


class Prefiller:
    """The prefill host: computes the KV into its own registered buffer
    and WRITE_IMMs it chunk by chunk into the decode host's region."""

    def __init__(self, side: Side, args: argparse.Namespace,
                 config: ModelConfig, model: Model | None,
                 prompt: list[int], layout: Layout) -> None:
        self.side = side
        self.args = args
        self.config = config
        self.model = model              # None: --synthetic, transfer only
        self.prompt = prompt
        self.layout = layout
        self.buf = side.dev.buffer(layout.bytes, huge=True)
        self.mr = side.ep.register(self.buf, access=("local_write",))
        self.region = self.buf.torch(torch.uint8)
        self.bytes = self.buf.view()
        self.man: Manifest | None = None
        self.rkey = 0
        self.posted_ns: dict[int, int] = {}
        self.done = 0
        self.marker_ns = 0
        self.first_post_ns = 0
        self.lat: list[int] = []

    def manifest(self, request_id: int) -> Manifest:
        man = new_manifest(self.config, self.layout, self.prompt,
                           self.args.generate if self.model else 0,
                           self.args.chunk, request_id)
        man.check()
        return man

    def completion(self, c: Completion) -> None:
        if c.status:
            raise Error(-c.status, "a chunk's WRITE_IMM")
        if self.side.note(c):
            return                      # the RESULT, already
        if c.opcode != _native.OP_WRITE_IMM:
            return
        if c.cookie == MARKER_COOKIE:
            self.marker_ns = now_ns()
        else:
            self.lat.append(now_ns() - self.posted_ns[c.cookie])
            self.done += 1

    def reap(self, wait: bool) -> None:
        """Collect completions: what is in, or (@wait) at least one."""
        for c in self.side.ep.reap(max=64, min=1 if wait else 0,
                                   timeout_ms=WAIT_MS):
            self.completion(c)

    def post(self, ops: list[Op]) -> None:
        """Post @ops, reaping completions while the send queue is full."""
        while ops:
            try:
                n = self.side.ep.post(ops[:_native.POST_MAX])
            except Error as e:
                if e.errno != errno.EAGAIN:
                    raise
                n = getattr(e, "posted", 0)
                self.reap(True)
            ops = ops[n:]

    def send_chunks(self, first: int, count: int) -> None:
        assert self.man is not None
        self.first_post_ns = self.first_post_ns or now_ns()
        ops = []
        for i in range(first, first + count):
            ch = self.man.plan_chunk(i)
            self.posted_ns[ch.index] = now_ns()
            ops.append(Op(_native.OP_WRITE_IMM, self.mr, ch.offset, ch.length,
                          ch.offset, self.rkey, imm_data(ch.index),
                          ch.index))
        self.post(ops)

    def layer_done(self, layer: int) -> None:
        """Layer @layer is in the cache: ship it while the next computes."""
        assert self.man is not None
        first, count = self.man.plan_layer(layer)
        self.send_chunks(first, count)
        self.reap(False)

    def request(self, request_id: int, rep: Report) -> None:
        side = self.side
        self.man = man = self.manifest(request_id)
        self.done, self.marker_ns, self.first_post_ns = 0, 0, 0
        self.lat = []
        before = side.ep.info()
        side.post_msg(_native.OP_RECV, 1, SLOT)
        side.post_msg(_native.OP_RECV, 2, SLOT)
        data = man.encode()
        side.put(0, data)
        side.post_msg(_native.OP_SEND, 0, len(data))
        length = side.wait_cookie(MSG_COOKIE + 1, self.completion)
        ack = Ack.decode(side.slot(1, length))
        if ack.status:
            raise Error(-ack.status, f"decode refused the request: {ack.reason}")
        self.rkey = ack.rkey
        kv = KVCache.over(self.region, self.layout)
        t0 = now_ns()
        if self.model is None:
            pattern(man, self.bytes, False)
        else:
            self.model.prefill(kv, self.prompt[:-1], logits=False,
                               layer_done=self.layer_done
                               if self.args.overlap else None)
        compute_end = now_ns()
        if self.model is None or not self.args.overlap:
            self.send_chunks(0, man.n_chunks)
        self.post([Op(_native.OP_WRITE_IMM, rkey=self.rkey,
                      imm=imm_final(man.n_chunks), cookie=MARKER_COOKIE)])
        while not self.marker_ns or self.done < man.n_chunks:
            self.reap(True)
        length = side.wait_cookie(MSG_COOKIE + 2, self.completion)
        rep.result = Result.decode(side.slot(2, length))
        after = side.ep.info()
        rep.compute_ns = compute_end - t0
        rep.transfer_ns = self.marker_ns - self.first_post_ns
        rep.exposed_ns = max(0, self.marker_ns - compute_end)
        rep.stalls = after["stalls"] - before["stalls"]
        rep.bytes = sum(c.length for c in man.plan())
        rep.lat_ns = self.lat
        if rep.result.status:
            raise Error(-rep.result.status,
                        f"decode failed: {rep.result.reason}")
        if self.model is None:
            return
        # The single-process run of the same calls over the same cache.
        kv.tokens = len(self.prompt) - 1
        want, logits = self.model.complete(kv, self.prompt[-1],
                                           self.args.generate)
        rep.identical = (want == rep.result.tokens and
                         logits_hash(logits) == rep.result.logits_hash)


def report(pre: Prefiller, rep: Report, i: int) -> dict[str, Any]:
    """Print request @i's figures as dpinfer does; its JSON object."""
    a, r, man = pre.args, rep.result, pre.man
    assert r is not None and man is not None
    rated = (pre.model is None or not a.overlap) and rep.transfer_ns > 0
    mbps = rep.bytes / (rep.transfer_ns / 1e3) if rated else None
    hidden = max(0.0, 1 - rep.exposed_ns / rep.transfer_ns) \
        if rep.transfer_ns else 0.0
    ttft = rep.compute_ns + rep.exposed_ns + r.decode_first_ns
    tps = len(r.tokens) / (r.decode_ns / 1e9) if r.decode_ns else 0
    p50, p99 = percentile(rep.lat_ns, 0.5), percentile(rep.lat_ns, 0.99)
    kvname = "fp16" if pre.layout.dtype == DType.F16 else "fp32"
    print(f"request {i + 1}: {pre.config.name}, prompt "
          f"{len(pre.prompt)} tokens, {len(r.tokens)} generated, {kvname} KV")
    print(f"  KV bytes       {rep.bytes} ({man.tokens} positions), "
          f"{man.n_chunks} chunks of {a.chunk >> 10} KiB")
    if mbps is None:
        print(f"  transfer       {rep.transfer_ns / 1e6:.2f} ms from the first "
              "layer's chunks to the marker, alongside compute")
    else:
        print(f"  transfer       {rep.transfer_ns / 1e6:.2f} ms, {mbps:.1f} MB/s")
        if a.ref_bw:
            print(f"  vs ib_write_bw {mbps / a.ref_bw:.3f} of {a.ref_bw} MB/s")
    print(f"  per chunk      POST to completion p50 {p50 / 1e3:.0f} us, "
          f"p99 {p99 / 1e3:.0f} us")
    print(f"  overlap        compute {rep.compute_ns / 1e6:.2f} ms, exposed "
          f"transfer {rep.exposed_ns / 1e6:.2f} ms ({100 * hidden:.0f}% of "
          "the transfer hidden)")
    print(f"  TTFT           {ttft / 1e6:.2f} ms = prefill "
          f"{rep.compute_ns / 1e6:.2f} + transfer {rep.exposed_ns / 1e6:.2f} "
          f"+ first decode step {r.decode_first_ns / 1e6:.2f}")
    print(f"  decode         {tps:.1f} tokens/s; stalls {rep.stalls}")
    if pre.model is None:
        print("  integrity      ok (every byte checked by decode)")
    else:
        print(f"  tokens         {' '.join(map(str, r.tokens))}")
        print(f"  bit-identical  {'yes' if rep.identical else 'NO'}")
    if i == 0:
        print(f"  setup          {rep.setup_ns / 1e6:.2f} ms (connect, "
              "register): paid once, reused after")
    return {
        "request": i + 1, "model": pre.config.name, "kv": kvname,
        "prompt_tokens": len(pre.prompt), "kv_bytes": rep.bytes,
        "chunks": man.n_chunks, "chunk_bytes": a.chunk,
        "transfer_ms": round(rep.transfer_ns / 1e6, 3),
        "MBps": None if mbps is None else round(mbps, 1),
        "vs_ib_write_bw": (round(mbps / a.ref_bw, 3)
                           if mbps is not None and a.ref_bw else None),
        "chunk_p50_us": round(p50 / 1e3, 1), "chunk_p99_us": round(p99 / 1e3, 1),
        "prefill_ms": round(rep.compute_ns / 1e6, 3),
        "exposed_transfer_ms": round(rep.exposed_ns / 1e6, 3),
        "hidden": round(hidden, 3),
        "first_decode_ms": round(r.decode_first_ns / 1e6, 3),
        "ttft_ms": round(ttft / 1e6, 3), "decode_tokens_per_s": round(tps, 1),
        "stalls": rep.stalls,
        "setup_ms": round(rep.setup_ns / 1e6, 3) if i == 0 else 0.0,
        "generated": len(r.tokens), "tokens": r.tokens,
        "bit_identical": rep.identical if pre.model else None,
        "engine": "pytorch",
    }


def new_manifest(config: ModelConfig, layout: Layout, prompt: list[int],
                 n_generate: int, chunk: int, request_id: int) -> Manifest:
    """The manifest of a request: the KV of prompt positions 0 .. n-2."""
    man = Manifest(layout=layout, tokens=len(prompt) - 1, chunk_bytes=chunk,
                   n_chunks=0, model_seed=config.seed, d_ff=config.d_ff,
                   vocab=config.vocab, max_seq=config.max_seq,
                   first_token=prompt[-1], n_generate=n_generate,
                   request_id=request_id)
    man.n_chunks = man.plan_count()
    return man


def cmd_prefill(args: argparse.Namespace) -> int:
    config = load_config(args.model)
    model = None if args.synthetic else Model(config)
    prompt = prompt_tokens(args.prompt, args.prompt_len, config.vocab)
    if len(prompt) < 2:
        raise ModelError(errno.EINVAL, "the prompt needs two tokens or more")
    layout = Layout.packed(config.n_layers, config.n_heads, config.head_dim,
                           len(prompt) + (args.generate if model else 0),
                           args.kv)
    t0 = now_ns()
    n_chunks = new_manifest(config, layout, prompt, 0, args.chunk,
                            0).n_chunks
    out = []
    # Closed on every way out: the peer must see the connection end.
    with Device() as dev:
        # Every chunk may be posted at once: credits hold them back.
        ep = dev.dial(args.addr, args.port, 10 * WAIT_MS, recv_depth=4,
                      send_depth=min(n_chunks + 8, _native.EP_DEPTH_MAX))
        side = Side(dev, ep)
        pre = Prefiller(side, args, config, model, prompt, layout)
        setup_ns = now_ns() - t0
        for i in range(args.requests):
            rep = Report(setup_ns=setup_ns)
            pre.request(i + 1, rep)
            out.append(report(pre, rep, i))
    write_json(args, out)
    if model is None:
        return 0
    identical = all(r["bit_identical"] for r in out)
    print("verdict: " + ("bit-identical to the single-process run"
                         if identical else "NOT bit-identical"))
    return 0 if identical else 1


def cmd_local(args: argparse.Namespace) -> int:
    config = load_config(args.model)
    model = Model(config)
    prompt = prompt_tokens(args.prompt, args.prompt_len, config.vocab)
    tokens, logits = model.run_local(prompt, args.generate, args.kv)
    print(f"local: {config.name}, prompt {len(prompt)} tokens, "
          f"{'fp16' if args.kv == DType.F16 else 'fp32'} KV (PyTorch "
          f"{torch.__version__})")
    print("tokens: " + " ".join(map(str, tokens)))
    print(f"logits hash: {logits_hash(logits):016x}")
    write_json(args, {"mode": "local", "model": config.name,
                      "kv": "fp16" if args.kv == DType.F16 else "fp32",
                      "prompt_tokens": len(prompt), "tokens": tokens,
                      "logits_hash": f"{logits_hash(logits):016x}",
                      "engine": "pytorch"})
    return 0


def write_json(args: argparse.Namespace, obj: Any) -> None:
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(obj, f)
            f.write("\n")


def parse_size(text: str) -> int:
    """dpinfer's sizes: a number with an optional K, M or G suffix."""
    shift = {"K": 10, "M": 20, "G": 30}.get(text[-1:].upper(), 0)
    try:
        v = int(text[:-1] if shift else text, 0) << shift
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size")
    return v


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m dmaplane.infer",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("cmd", choices=("local", "decode", "prefill"))
    p.add_argument("--addr")
    p.add_argument("--port", type=int, default=PORT_DEFAULT)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--generate", type=int, default=16)
    p.add_argument("--kv", choices=("fp32", "fp16"), default="fp32")
    p.add_argument("--region", type=parse_size, default=64 << 20)
    p.add_argument("--requests", type=int, default=1)
    p.add_argument("--recv-depth", type=int, default=256)
    p.add_argument("--window", type=int, default=None)
    p.add_argument("--timeout-ms", type=int, default=30000)
    p.add_argument("--chunk", type=parse_size, default=256 << 10)
    p.add_argument("--no-overlap", dest="overlap", action="store_false")
    p.add_argument("--synthetic", action="store_true",
                   help="prefill: send a pattern instead of computed KV")
    p.add_argument("--ref-bw", type=float, default=None,
                   help="ib_write_bw MB/s on the same link, for the ratio")
    p.add_argument("--json-out")
    args = p.parse_args(argv)
    args.kv = DType.F16 if args.kv == "fp16" else DType.F32
    if args.cmd != "local" and not args.addr:
        p.error(f"{args.cmd} needs --addr")
    if not 0 <= args.port <= 65535 or args.requests < 1 or \
            args.recv_depth < 1 or \
            not 1 <= args.timeout_ms <= _native.EP_TIMEOUT_MAX_MS or \
            not 1 <= args.generate <= MAX_GENERATE:
        p.error("a value is out of range")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return {"local": cmd_local, "decode": cmd_decode,
                "prefill": cmd_prefill}[args.cmd](args)
    except OSError as e:
        print(f"infer: {args.cmd} failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
