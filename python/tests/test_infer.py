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
LLAMA = os.path.join(ROOT, "fixtures", "models", "llama7b-kv.conf")
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


def test_pytorch_both_sides(guest_ip, capsys):
    """Two requests on one connection: the decode side's tokens and logits
    are bit-identical to the prefill side's own run; views, no copy."""
    dec = PyDecode(guest_ip, 18610, "--model", TINY, "--requests", "2")
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
    dec = PyDecode(guest_ip, 18611, "--model", TINY)
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
    dec = CDecode(guest_ip, 18612, "--model", TINY)
    rc = prefill(guest_ip, 18612, "--model", TINY, "--prompt", PROMPT,
                 "--generate", "8", "--no-overlap", "--ref-bw", "100")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (0, 0), out + dec.out
    assert "verdict: bit-identical to the single-process run" in out
    assert "MB/s" in out and "vs ib_write_bw" in out


def test_synthetic_transfer_checked(guest_ip, capsys):
    """--synthetic: the 7B layout's pattern (transfer only), every byte
    checked by the PyTorch decode side."""
    dec = PyDecode(guest_ip, 18613, "--model", LLAMA, "--region", "80M")
    rc = prefill(guest_ip, 18613, "--model", LLAMA, "--synthetic",
                 "--prompt-len", "17", "--kv", "fp16", "--chunk", "1M")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (0, 0), out
    assert "integrity      ok" in out


def test_manifest_of_another_model_refused(guest_ip, capsys):
    """A decode host running another model refuses the manifest; both
    sides fail with the reason, neither hangs."""
    dec = PyDecode(guest_ip, 18614, "--model", LLAMA, "--region", "80M")
    rc = prefill(guest_ip, 18614, "--model", TINY, "--prompt", PROMPT,
                 "--generate", "4")
    drc = dec.finish()
    out = output(capsys)
    assert (rc, drc) == (1, 1), out
    assert "manifest refused" in out
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
