"""dmaplane.model against the C model (src/apps/model.c), bit for bit.

The constants marked "from C" were printed by a throwaway program linked
with src/apps/model.c: model_weights() of tiny.conf (their count, the
FNV-1a 64 of their bytes and single values by index), model_f32_to_f16()
and model_f16_to_f32() of NaN patterns, and model_config_load()'s stderr
line for each bad config below. The end-to-end tests compare with the
`dpinfer local` binary itself (tokens and its FNV-1a 64 of the final
logits' bytes), and skip, naming it, when it has not been built.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dmaplane import model as M  # noqa: E402
from dmaplane.kv import DType, KVError, Layout, Tensor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "fixtures" / "models" / "tiny.conf"
LLAMA = ROOT / "fixtures" / "models" / "llama7b-kv.conf"
# The demo's prompt (tests/kv-demo.sh) and generation length.
PROMPT = "The KV cache moves between hosts; the tokens must not change."
GENERATE = 32
DTYPES = [pytest.param(DType.F32, id="fp32"),
          pytest.param(DType.F16, id="fp16")]


def bits(t: torch.Tensor) -> torch.Tensor:
    """fp32 values as int32 bit patterns: equal means bit-identical."""
    return t.contiguous().view(torch.int32)


@pytest.fixture(scope="module")
def tiny() -> M.Model:
    return M.Model(M.load_config(TINY))


@pytest.fixture(scope="module")
def dpinfer() -> Path:
    build = Path(os.environ.get("DMAPLANE_BUILD", ROOT / "build"))
    path = build / "apps" / "dpinfer"
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is missing: build it with `make user`")
    return path


# --- config


def test_load_tiny_config():
    c = M.load_config(TINY)
    assert c == M.ModelConfig("tiny", 2, 4, 16, 128, 256, 512, 1)
    assert c.d_model == 64
    assert c.memory_bytes()[0] == 115008 * 4


def test_kv_only_config_is_refused_like_model_create():
    c = M.load_config(LLAMA)
    assert (c.n_layers, c.n_heads, c.head_dim, c.vocab) == (32, 32, 128, 32000)
    with pytest.raises(M.ModelError) as e:
        M.Model(c)
    assert e.value.errno == errno.EFBIG


GOOD = {
    "name": "t",
    "layers": "2",
    "heads": "4",
    "head_dim": "16",
    "d_ff": "128",
    "vocab": "256",
    "max_seq": "512",
    "seed": "1",
}


def conf_text(**change: str | None) -> str:
    """GOOD as a config file, one key a line, with @change applied (None
    drops a key)."""
    kv = {**GOOD, **change}
    return "".join(f"{k} = {v}\n" for k, v in kv.items() if v is not None)


NAME_RULE = "name: want 1..63 characters of [A-Za-z0-9._-]"
# (file text, model_config_load()'s message after the path; from C)
BAD_CONFIGS = [
    (conf_text(layers="0"), ":2: layers = 0: must be 1..128"),
    (conf_text(layers="129"), ":2: layers = 129: must be 1..128"),
    (conf_text(head_dim="15"),
     ":4: head_dim = 15: must be even (rotary pairs)"),
    (conf_text(vocab="1048577"), ":6: vocab = 1048577: must be 2..1048576"),
    (conf_text(heads="65536", head_dim="65536"),
     ":4: heads * head_dim = 65536 * 65536 overflows 32 bits"),
    (conf_text(heads="65535", head_dim="65536"),
     ": the model's sizes (layers, heads, head_dim, d_ff, vocab, max_seq) "
     "overflow"),
    (conf_text(seed="18446744073709551616"),
     ":8: seed: '18446744073709551616' is not in range"),
    (conf_text(d_ff="4294967296"), ":5: d_ff: '4294967296' is not in range"),
    (conf_text(d_ff="0x80"),
     ":5: d_ff: '0x80' is not an unsigned decimal number"),
    (conf_text(d_ff=""), ":5: d_ff: '' is not an unsigned decimal number"),
    (conf_text(d_ff="999999999999999999999x"),
     ":5: d_ff: '999999999999999999999x' is not in range"),
    (conf_text(max_seq="-1"),
     ":7: max_seq: '-1' is not an unsigned decimal number"),
    (conf_text(vocab="256 = 3"),
     ":6: vocab: '256 = 3' is not an unsigned decimal number"),
    (conf_text() + "vocab = 256\n", ":9: vocab: already set on line 6"),
    (conf_text() + "vocab 256\n", ":9: expected 'key = value'"),
    (conf_text() + "vocabulary = 256\n", ":9: unknown key 'vocabulary'"),
    (conf_text(max_seq=None), ": missing key 'max_seq'"),
    ("", ": missing key 'name'"),
    (conf_text(name="a b"), ":1: " + NAME_RULE),
    (conf_text(name=""), ":1: " + NAME_RULE),
    (conf_text(name="x" * 64), ":1: " + NAME_RULE),
    (conf_text(vocab="256\0"), ":6: NUL byte"),
]


@pytest.mark.parametrize("text,message", BAD_CONFIGS)
def test_bad_config_message_matches_c(tmp_path, text, message):
    path = tmp_path / "c.conf"
    path.write_text(text)
    with pytest.raises(M.ModelError) as e:
        M.load_config(path)
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == f"{path}{message}"


def test_config_syntax_the_c_accepts(tmp_path):
    """Comments anywhere, CRLF, tabs, no final newline, the limits."""
    path = tmp_path / "c.conf"
    text = conf_text(name="x" * 63, seed="18446744073709551615 # max")
    text = text.replace("\n", "\r\n")
    path.write_text("  # a comment\r\n\n\t" + text.rstrip("\r\n"))
    c = M.load_config(path)
    assert (c.name, c.seed) == ("x" * 63, (1 << 64) - 1)
    with pytest.raises(FileNotFoundError):
        M.load_config(tmp_path / "missing.conf")


def test_config_built_in_code_is_checked():
    with pytest.raises(M.ModelError, match="head_dim = 3: must be even"):
        M.ModelConfig("t", 1, 1, 3, 1, 2, 1, 0)


# --- weights


def test_splitmix64_documented_values():
    """model.h: seed 1234567 gives 6457827717110365317, 3203168211198807973."""
    assert [int(z) for z in M.splitmix64(1234567, 2)] == [
        6457827717110365317, 3203168211198807973]


# Index in model_weights() -> bits (from C), one in each kind of tensor.
TINY_WEIGHTS = {
    0: 0x3E085168,  # embed[0][0]
    16383: 0xBEA7145C,  # embed[255][63]
    16384: 0x3F823A97,  # layer 0 attn_norm[0]
    16448: 0xBD5574A4,  # layer 0 wq[0][0]
    20544: 0xBDB2AB2C,  # layer 0 wk[0][0]
    28736: 0x3C813E28,  # layer 0 wo[0][0]
    32832: 0x3F7A0916,  # layer 0 mlp_norm[0]
    49280: 0x3D69A5DD,  # layer 0 w_down[0][0]
    57536: 0x3D52B5A4,  # layer 1 wq[0][0]
    98560: 0x3F78431E,  # final_norm[0]
    98624: 0xBB74A200,  # w_out[0][0]
    115007: 0xBD182EDC,  # w_out[255][63]
}


def test_tiny_weights_match_c(tiny):
    w = tiny.weights
    assert w.dtype == torch.float32 and w.numel() == 115008  # from C
    assert M.logits_fnv64(w) == "b97a6bcc3d374e0a"  # from C: all of them
    for i, want in TINY_WEIGHTS.items():
        assert int(bits(w[i:i + 1])) & 0xFFFFFFFF == want, i
    # The named tensors are views of the flat weights, in model.h's order.
    assert tiny.embed.shape == (256, 64)
    assert bits(tiny.embed[255, 63:]).item() == bits(w[16383:16384]).item()
    assert tiny.layers[0].w_down.shape == (64, 128)
    assert tiny.layers[0].w_down.data_ptr() == w[49280:].data_ptr()
    assert tiny.layers[1].wq.data_ptr() == w[57536:].data_ptr()
    assert tiny.w_out.data_ptr() == w[98624:].data_ptr()


# --- exact fp16


def test_f32_to_f16_matches_ieee_round_to_nearest_even():
    """Tensor.half() is IEEE RNE: it must agree everywhere but NaN."""
    edges = [
        0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e30, float("inf"),
        2.0**-24, 2.0**-25, 2.0**-25 * (1 + 2**-23), 1.5 * 2.0**-24,
        2.5 * 2.0**-24, 2.0**-14, 2.0**-14 * (1 - 2**-11),
        2.0**-14 * (1 - 2**-12), 1 + 2**-11, 1 + 3 * 2**-11, 1e-45, 3e-8,
    ]
    x = torch.tensor(edges + [-v for v in edges], dtype=torch.float32)
    g = torch.Generator().manual_seed(10)
    patterns = torch.randint(-(2**31), 2**31, (1 << 20,), generator=g)
    x = torch.cat([x, patterns.to(torch.int32).view(torch.float32)])
    x = x[~torch.isnan(x)]
    assert torch.equal(M.f32_to_f16_bits(x), x.half().view(torch.int16))


def test_f16_to_f32_matches_exact_widening():
    """Every fp16 value widens exactly: Tensor.float() agrees but on NaN."""
    h = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    f = h.view(torch.float16)
    ok = ~torch.isnan(f)
    assert torch.equal(bits(M.f16_bits_to_f32(h))[ok], bits(f[ok].float()))


def test_fp16_nan_payloads_match_c():
    """NaNs keep sign and payload in C; torch canonicalises them."""
    f2h = {  # from C
        0x7FC00000: 0x7E00, 0xFFC00000: 0xFE00, 0x7F800001: 0x7E00,
        0x7FA00001: 0x7F00, 0xFFBFE000: 0xFFFF, 0x7FFFFFFF: 0x7FFF,
        0x7F802000: 0x7E01,
    }
    h2f = {  # from C
        0x7C01: 0x7F802000, 0xFC01: 0xFF802000, 0x7E00: 0x7FC00000,
        0x7DFF: 0x7FBFE000, 0xFFFF: 0xFFFFE000, 0x7E01: 0x7FC02000,
    }
    x = torch.tensor(list(f2h)).to(torch.int32).view(torch.float32)
    got = M.f32_to_f16_bits(x).to(torch.int64) & 0xFFFF
    assert got.tolist() == list(f2h.values())
    h = torch.tensor(list(h2f)).to(torch.int16)
    got = bits(M.f16_bits_to_f32(h)).to(torch.int64) & 0xFFFFFFFF
    assert got.tolist() == list(h2f.values())


# --- tokens


def test_tokenizer_is_dpinfers():
    assert M.encode_prompt(PROMPT, 256) == list(PROMPT.encode())
    assert M.encode_prompt("é".encode(), 256) == [0xC3, 0xA9]
    assert M.encode_prompt(b"\xff", 200) == [55]
    assert M.synthetic_prompt(3, 256) == [7, 138, 13]
    assert M.format_tokens([165, 173, 77]) == "165 173 77"
    with pytest.raises(M.ModelError):
        M.encode_prompt("a\0b", 256)


def test_argmax_is_model_argmax():
    nan = float("nan")
    assert M.argmax(torch.tensor([1.0, 3.0, 3.0, 2.0])) == 1
    assert M.argmax(torch.tensor([nan, 1.0, nan, 5.0])) == 3
    assert M.argmax(torch.tensor([nan, -float("inf"), -float("inf")])) == 1
    assert M.argmax(torch.tensor([nan, nan])) == 0


# --- the forward pass against dpinfer local


def run_dpinfer(dpinfer: Path, tmp_path: Path, dtype: int) -> dict:
    out = tmp_path / "local.json"
    subprocess.run(
        [dpinfer, "local", "--model", TINY, "--prompt", PROMPT,
         "--generate", str(GENERATE),
         "--kv", "fp16" if dtype == DType.F16 else "fp32", "--json-out", out],
        check=True, capture_output=True, timeout=120,
    )
    return json.loads(out.read_text())


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_run_matches_dpinfer(tiny, dpinfer, tmp_path, dtype):
    """Same tokens, and the final logits' bytes hash to dpinfer's value."""
    want = run_dpinfer(dpinfer, tmp_path, dtype)
    prompt = M.encode_prompt(PROMPT, 256)
    tokens, logits = tiny.run_local(prompt, GENERATE, dtype)
    assert want["prompt_tokens"] == len(PROMPT)
    assert tokens == want["tokens"]
    assert M.logits_fnv64(logits) == want["logits_fnv64"]


# --- KV views and caches


def scattered_layout(model: M.Model, max_tokens: int, dtype: int) -> Layout:
    """A layout unlike the packed one: V before K in every layer, K
    head-major ([head][token]) with padded rows, V token-major with padded
    heads and tokens, gaps between tensors, nothing at offset 0."""
    c, e = model.config, 2 if dtype == DType.F16 else 4
    row = c.head_dim * e
    k_tok, k_head = row + 8, (row + 8) * max_tokens + 16
    v_head = row + 4
    v_tok = v_head * c.n_heads + 12
    k_bytes = k_head * c.n_heads
    v_bytes = v_tok * max_tokens
    ks, vs, off = [], [], 64
    for _ in range(c.n_layers):
        vs.append(Tensor(off, v_tok, v_head))
        off += v_bytes + 4
        ks.append(Tensor(off, k_tok, k_head))
        off += k_bytes + 20
    return Layout(c.n_layers, c.n_heads, c.head_dim, max_tokens, dtype, off,
                  ks, vs)


def test_kv_views_are_zero_copy():
    layout = Layout.packed(2, 4, 16, 8, DType.F16)
    # Not at the start of its storage, but element-aligned.
    region = torch.zeros(layout.bytes + 6, dtype=torch.uint8)[6:]
    k, v = M.kv_views(region, layout)
    assert k[1].dtype == torch.float16 and k[1].shape == (8, 4, 16)
    assert k[1].data_ptr() == region.data_ptr() + layout.k[1].offset
    at = layout.v[1].offset + 3 * 128 + 2 * 32  # token 3, head 2
    assert v[1][3, 2].data_ptr() == region.data_ptr() + at
    v[1][3, 2, 5] = 1.0
    at += 5 * 2
    assert region[at:at + 2].tolist() == [0x00, 0x3C]  # fp16 1.0, LE
    # Any contiguous tensor over the bytes will do.
    k2, _ = M.kv_views(region.view(torch.int16), layout)
    assert k2[0].data_ptr() == region.data_ptr()


def test_kv_views_refuse_what_cannot_be_viewed():
    layout = Layout.packed(1, 2, 4, 4, DType.F32)
    with pytest.raises(KVError, match="the region has"):
        M.kv_views(torch.zeros(layout.bytes - 1, dtype=torch.uint8), layout)
    shifted = torch.zeros(layout.bytes + 2, dtype=torch.uint8)[2:]
    with pytest.raises(KVError, match="not aligned"):
        M.kv_views(shifted, layout)
    short = Layout(1, 2, 4, 4, DType.F32, 64, [Tensor(0, 32, 16)],
                   [Tensor(32, 32, 16)])
    with pytest.raises(KVError, match="past the layout"):
        M.kv_views(torch.zeros(1024, dtype=torch.uint8), short)
    strided = torch.zeros(2 * layout.bytes, dtype=torch.uint8)[::2]
    with pytest.raises(KVError, match="not contiguous"):
        M.kv_views(strided, layout)


@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_from_a_copied_cache_is_bit_identical(tiny, dtype):
    """Prefill in one packed cache, copy its filled rows into a different
    layout inside a bigger buffer, decode both: identical logits at every
    step, and identical to prefilling the other layout directly."""
    prompt = M.encode_prompt(PROMPT, 256)
    n, max_tokens = len(prompt) - 1, len(prompt) + GENERATE
    a = M.KVCache.zeros(tiny.kv_layout(max_tokens, dtype))
    tiny.prefill(a, prompt[:-1], logits=False)

    layout = scattered_layout(tiny, max_tokens, dtype)
    buffer = torch.full((layout.bytes + 40,), 0xA5, dtype=torch.uint8)
    b = M.KVCache.over(buffer[8:8 + layout.bytes], layout, tokens=n)
    for src, dst in zip(a.k + a.v, b.k + b.v):
        dst[:n] = src[:n]

    direct = M.KVCache.zeros(layout)
    tiny.prefill(direct, prompt[:-1], logits=False)
    for x, y in zip(b.k + b.v, direct.k + direct.v):
        assert torch.equal(x[:n].view(torch.int16), y[:n].view(torch.int16))

    token = prompt[-1]
    for _ in range(GENERATE):
        la, lb = tiny.decode_step(a, token), tiny.decode_step(b, token)
        assert torch.equal(bits(la), bits(lb))
        token = M.argmax(la)
    # Nothing outside the layout's tensors was touched.
    assert buffer[:8 + 64].eq(0xA5).all()
    assert buffer[8 + layout.bytes:].eq(0xA5).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_prefill_in_pieces_equals_token_by_token(tiny, dtype):
    """model.h's determinism: a token's values do not depend on whether it
    was part of a prefill or a decode step."""
    prompt = M.encode_prompt(PROMPT, 256)
    layout = tiny.kv_layout(len(prompt), dtype)
    whole, pieces, steps = (M.KVCache.zeros(layout) for _ in range(3))
    lw = tiny.prefill(whole, prompt)
    tiny.prefill(pieces, prompt[:25], logits=False)
    lp = tiny.prefill(pieces, prompt[25:])
    for t in prompt:
        ls = tiny.decode_step(steps, t)
    assert torch.equal(bits(lw), bits(lp)) and torch.equal(bits(lw), bits(ls))
    assert torch.equal(whole.region, pieces.region)
    assert torch.equal(whole.region, steps.region)
    assert whole.tokens == pieces.tokens == steps.tokens == len(prompt)


def test_layer_done_sees_each_layer_final(tiny):
    kv = M.KVCache.zeros(tiny.kv_layout(8, DType.F32))
    seen = []

    def done(layer: int) -> None:
        seen.append((layer, kv.k[layer][:4].clone(), kv.tokens))

    tiny.prefill(kv, [1, 2, 3, 4], logits=False, layer_done=done)
    assert [s[0] for s in seen] == [0, 1]
    for layer, k, tokens in seen:
        assert tokens == 0 and torch.equal(k, kv.k[layer][:4])


def test_bad_requests_write_nothing(tiny):
    kv = M.KVCache.zeros(tiny.kv_layout(4, DType.F16))
    cases = [
        (lambda: tiny.prefill(kv, []), errno.EINVAL),
        (lambda: tiny.prefill(kv, [1, 256]), errno.EINVAL),
        (lambda: tiny.prefill(kv, [1, 2, 3, 4, 5]), errno.ENOSPC),
        (lambda: tiny.generate(kv, 1, 5), errno.ENOSPC),
        (lambda: tiny.generate(kv, 1, 0), errno.EINVAL),
        (lambda: tiny.generate(kv, 300, 1), errno.EINVAL),
    ]
    for call, err in cases:
        with pytest.raises(M.ModelError) as e:
            call()
        assert e.value.errno == err
    assert kv.tokens == 0 and not kv.region.any()
    other = M.KVCache.zeros(Layout.packed(1, 4, 16, 4, DType.F16))
    with pytest.raises(M.ModelError, match="the KV layout is 1x4x16"):
        tiny.prefill(other, [1])


def test_generate_is_model_generate(tiny):
    """out[0] = first, each step's argmax feeds the next; all n enter the
    cache and the returned logits follow out[-1]."""
    kv = M.KVCache.zeros(tiny.kv_layout(10, DType.F32))
    out, logits = tiny.generate(kv, 84, 6)
    assert out[0] == 84 and len(out) == 6 and kv.tokens == 6
    again = M.KVCache.zeros(tiny.kv_layout(10, DType.F32))
    for i, t in enumerate(out):
        step = tiny.decode_step(again, t)
        if i + 1 < len(out):
            assert M.argmax(step) == out[i + 1]
    assert torch.equal(bits(step), bits(logits))
