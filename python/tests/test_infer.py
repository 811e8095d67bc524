"""The PyTorch demo (python -m dmaplane.infer) over loopback: PyTorch on
both sides, a C side on either end, refusals and bad arguments."""
import os
import subprocess
import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numpy")

from dmaplane import infer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "fixtures", "models", "tiny.conf")
DPINFER = os.path.join(os.environ.get("DMAPLANE_BUILD",
                                      os.path.join(ROOT, "build")),
                       "apps", "dpinfer")
PROMPT = "The KV cache moves between hosts; the tokens must not change."


class PyDecode(threading.Thread):
    """The PyTorch decode host in a thread of this process (its own Device,
    so its own file and endpoint; the module's blocking calls release the
    GIL): a second interpreter would import torch again, which is slow."""

    def __init__(self, ip, port, *args):
        super().__init__(daemon=True)
        self.argv = ["decode", "--addr", ip, "--port", str(port), *args]
        self.rc = None
        self.start()

    def run(self):
        self.rc = infer.main(self.argv)

    def finish(self):
        self.join(timeout=600)
        return self.rc


class CDecode:
    """dpinfer decode in a process."""

    def __init__(self, ip, port, *args):
        self.proc = subprocess.Popen(
            [DPINFER, "decode", "--addr", ip, "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = ""

    def finish(self):
        self.out, _ = self.proc.communicate(timeout=600)
        return self.proc.returncode


def needs_dpinfer():
    if not os.access(DPINFER, os.X_OK):
        pytest.skip(f"{DPINFER} is not built (make user)")


def prefill(ip, port, *args):
    return infer.main(["prefill", "--addr", ip, "--port", str(port), *args])


def output(capsys):
    out = capsys.readouterr()
    return out.out + out.err


def test_local_matches_dpinfer(capsys):
    """A single-process PyTorch run gives dpinfer local's tokens and
    final logits (fp32 and fp16 KV)."""
    needs_dpinfer()
    for kv in ("fp32", "fp16"):
        args = ["--model", TINY, "--prompt", PROMPT, "--generate", "24",
                "--kv", kv]
        assert infer.main(["local", *args]) == 0
        mine = capsys.readouterr().out
        c = subprocess.run([DPINFER, "local", *args], capture_output=True,
                           text=True, check=True).stdout
        tokens = [ln for ln in c.splitlines() if ln.startswith("tokens:")]
        assert tokens and tokens[0] in mine.splitlines()
        logits = [ln.split()[-1] for ln in c.splitlines()
                  if ln.startswith("logits:")]
        assert logits and f"logits hash: {logits[0]}" in mine


# Regions of 1 MiB, as kvxfer's: an MR over host pages may not span more
# than the device's fast-registration list (soft-RoCE: 512 pages), and
# where no 2 MiB chunk is free (the debug kernel) a buffer is 4 KiB pages.
REGION = ("--region", "1M")


def test_pytorch_both_sides(guest_ip, capsys):
    """Two requests on one connection: the decode side's tokens and logits
    are bit-identical to the prefill side's own run; views, no copy."""
    dec = PyDecode(guest_ip, 18610, "--model", TINY, *REGION,
                   "--requests", "2")
    rc = prefill(guest_ip, 18610, "--model", TINY, "--prompt", PROMPT,
                 "--generate", "8", "--chunk", "64K", "--requests", "2")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (0, 0), out
    assert "verdict: bit-identical to the single-process run" in out
    assert out.count("over the registered region's mapping: no copy") == 2


def test_c_prefill_into_pytorch_decode(guest_ip, capsys):
    """dpinfer prefill -> PyTorch decode (fp16 KV): the C side's verdict."""
    needs_dpinfer()
    dec = PyDecode(guest_ip, 18611, "--model", TINY, *REGION)
    c = subprocess.run([DPINFER, "prefill", "--addr", guest_ip, "--port",
                        "18611", "--model", TINY, "--prompt", PROMPT,
                        "--generate", "8", "--kv", "fp16"],
                       capture_output=True, text=True, timeout=600)
    drc = dec.finish()
    assert (c.returncode, drc) == (0, 0), c.stdout + c.stderr + output(capsys)
    assert "verdict: bit-identical to the single-process run" in c.stdout


def test_pytorch_prefill_into_c_decode(guest_ip, capsys):
    """PyTorch prefill -> dpinfer decode, without overlap (a rate)."""
    needs_dpinfer()
    dec = CDecode(guest_ip, 18612, "--model", TINY, *REGION)
    rc = prefill(guest_ip, 18612, "--model", TINY, "--prompt", PROMPT,
                 "--generate", "8", "--no-overlap", "--ref-bw", "100")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (0, 0), out + dec.out
    assert "verdict: bit-identical to the single-process run" in out
    assert "MB/s" in out and "vs ib_write_bw" in out


def test_synthetic_transfer_checked(guest_ip, capsys):
    """--synthetic: a pattern instead of computed KV (transfer only), every
    byte checked by the PyTorch decode side; the C decode checks a Python
    pattern the same way."""
    needs_dpinfer()
    args = ("--model", TINY, "--synthetic", "--prompt-len", "200",
            "--kv", "fp16", "--chunk", "64K")
    dec = PyDecode(guest_ip, 18613, "--model", TINY, *REGION)
    rc = prefill(guest_ip, 18613, *args)
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (0, 0), out
    assert "integrity      ok" in out
    cdec = CDecode(guest_ip, 18615, "--model", TINY, *REGION)
    rc = prefill(guest_ip, 18615, *args)
    assert (rc, cdec.finish()) == (0, 0), output(capsys) + cdec.out


def test_manifest_of_another_model_refused(guest_ip, capsys, tmp_path):
    """A decode host running another model (another seed) refuses the
    manifest; both sides fail with the reason, neither hangs."""
    other = tmp_path / "tiny2.conf"
    other.write_text(open(TINY).read().replace("seed = 1", "seed = 2"))
    dec = PyDecode(guest_ip, 18614, "--model", TINY, *REGION)
    rc = prefill(guest_ip, 18614, "--model", str(other), "--prompt", PROMPT,
                 "--generate", "4")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (1, 1), out
    assert "manifest refused: the manifest's model is not tiny" in out
    assert "decode refused the request" in out


def test_bad_arguments():
    """Arguments out of range stop before any device is opened."""
    for argv in (["prefill", "--model", TINY],          # no --addr
                 ["local", "--model", TINY, "--generate", "0"],
                 ["local", "--model", TINY, "--generate", "1025"],
                 ["decode", "--addr", "10.0.0.1", "--model", TINY,
                  "--region", "12Q"],
                 ["local", "--model", TINY, "--kv", "bf16"]):
        with pytest.raises(SystemExit) as e:
            infer.main(argv)
        assert e.value.code == 2


def test_model_file_missing():
    """A model config that does not exist: the error, exit status 1."""
    assert infer.main(["local", "--model", "/nonexistent.conf"]) == 1


def test_fnv64_and_prompt_match_dpinfer():
    """The two small helpers the wire relies on, against known values."""
    assert infer.fnv64(b"") == 0xcbf29ce484222325
    assert infer.fnv64(b"a") == 0xaf63dc4c8601ec8c
    assert infer.prompt_tokens("Ab", 0, 256) == [65, 98]
    assert infer.prompt_tokens(None, 3, 256) == [7, 138, 13]
    assert infer.parse_size("64K") == 64 << 10
    assert infer.parse_size("0x10") == 16


class FakeEndpoint:
    """What Side needs of an Endpoint: post() records, reap() hands out
    the batches given, in order (one more reap is a test failure)."""

    def __init__(self, *batches):
        self.batches = list(batches)
        self.posted = []

    def post(self, ops, nowait=False):
        self.posted.extend(ops)
        return len(ops)

    def reap(self, max=64, min=1, timeout_ms=0):
        assert self.batches, "reaped once more than the test expected"
        return self.batches.pop(0)


def fake_side(ep):
    side = infer.Side.__new__(infer.Side)
    side.ep, side.msg_mr, side.early = ep, 0, {}
    side.msg = memoryview(bytearray(infer.MSG_SLOTS * infer.SLOT))
    return side


def comp(cookie, opcode, nbytes=0, imm=0, flags=0):
    return infer.Completion(cookie, opcode, 0, 0, nbytes, imm, flags)


def test_message_reaped_early_is_kept():
    """A control message reaped while a side waits for something else is
    not lost: the RESULT in one batch with the marker's completion, the
    next manifest in one batch with the RESULT's SEND completion."""
    from dmaplane import _native
    result = comp(infer.MSG_COOKIE + 2, _native.OP_RECV, 4336)
    side = fake_side(FakeEndpoint(
        [comp(infer.MARKER_COOKIE, _native.OP_WRITE_IMM), result]))
    pre = infer.Prefiller.__new__(infer.Prefiller)
    pre.side, pre.marker_ns, pre.done = side, 0, 0
    pre.reap(True)
    assert pre.marker_ns
    assert side.wait_cookie(infer.MSG_COOKIE + 2, pre.completion) == 4336

    side = fake_side(FakeEndpoint(
        [comp(infer.MSG_COOKIE + 2, _native.OP_SEND, 4336),
         comp(infer.MSG_COOKIE + 0, _native.OP_RECV, 1632)]))
    dec = infer.Decoder(side, None, None, None, None, None, None)
    assert side.wait_cookie(infer.MSG_COOKIE + 2, dec.arrival) == 4336
    assert side.wait_cookie(infer.MSG_COOKIE + 0) == 1632


def fake_decoder(ep, seed_delta=0):
    """A Decoder of the tiny model on a fake endpoint, with a transfer-only
    manifest (16 positions) in its slot 0: (decoder, side, manifest bytes,
    config). @seed_delta != 0: the manifest names another model."""
    import argparse
    from types import SimpleNamespace

    from dmaplane.kv import Layout
    from dmaplane.model import load_config

    config = load_config(TINY)
    prompt = infer.prompt_tokens(None, 16, config.vocab)
    layout = Layout.packed(config.n_layers, config.n_heads, config.head_dim,
                           len(prompt), 1)
    man = infer.new_manifest(config, layout, prompt, 0, 64 << 10, 1)
    man.model_seed += seed_delta
    side = fake_side(ep)
    data = man.encode()
    side.put(0, data)
    dec = infer.Decoder(side, argparse.Namespace(recv_depth=256,
                                                 timeout_ms=1000),
                        config, None,
                        SimpleNamespace(rkey=7, length=64 << 20), None, None)
    return dec, side, data, config


def test_protocol_breach_answered_as_dpinfer():
    """A duplicate chunk: the RESULT says -EPROTO with dpinfer decode's
    reason, not the errno of the bitmap's check."""
    import errno

    from dmaplane import _native
    from dmaplane.kv import Result

    chunk = comp(1, _native.OP_RECV, imm=infer.imm_data(0),
                 flags=_native.COMP_IMM | _native.COMP_WRITE_IMM)
    ep = FakeEndpoint([comp(infer.MSG_COOKIE + 1, _native.OP_SEND)],
                      [chunk, chunk],
                      [comp(infer.MSG_COOKIE + 2, _native.OP_SEND)])
    dec, side, data, _ = fake_decoder(ep)
    with pytest.raises(infer.KVError):
        dec.request(len(data), False)
    r = Result.decode(side.slot(2, len(Result().encode())))
    assert r.status == -errno.EPROTO
    assert r.reason == "immediate 0x00000000: a duplicate"


def test_refusal_waits_for_its_ack():
    """A refused manifest: the ACK with the reason is out (its SEND
    completed) before the decode side gives up and closes."""
    import errno

    from dmaplane import _native
    from dmaplane.kv import Ack

    ep = FakeEndpoint([comp(infer.MSG_COOKIE + 1, _native.OP_SEND)])
    dec, side, data, config = fake_decoder(ep, seed_delta=1)
    with pytest.raises(infer.KVError):
        dec.request(len(data), False)
    assert not ep.batches                       # the ACK's completion
    ack = Ack.decode(side.slot(1, len(Ack().encode())))
    assert ack.status == -errno.EINVAL
    assert ack.reason == f"the manifest's model is not {config.name}"
