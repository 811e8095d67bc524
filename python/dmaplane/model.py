"""The KV-cache demo's transformer in PyTorch, bit for bit the C model.

src/apps/model.h is the specification and src/apps/model.c the reference:
the same config files, the same seeded weights, and logits whose bits
equal the C model's for the same tokens, whether the KV cache is fp32 or
fp16 and wherever its bytes live. That is what lets a C prefill feed a
PyTorch decode (and the other way round) with the wire format as the only
contract.

The rules that make the bits match, each one what model.c does:
  * every fp32 operation is one IEEE operation rounded to nearest even,
    in the C's order; vectorising only batches independent elements
    (tokens, heads, rows) and never reorders a sum;
  * dot products use 8 lanes: lane j sums the products of the elements
    i = j mod 8 in increasing i, and the lanes add as
    ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) (lane_dot);
  * exp, sin and cos are model.c's polynomials in double, ported
    operation for operation in float64 (det_exp, det_sincos), never
    torch.exp/sin/cos, whose results depend on the CPU and the build;
  * softmax sums and attention's weighted sums of V run position by
    position;
  * an fp16 cache is written and read through ports of model_f32_to_f16
    and model_f16_to_f32 on the bits (Tensor.half() agrees except on NaN
    payloads), and attention reads every K and V row back from the cache,
    the rows it has just stored included.

A prefill computes each layer for all its tokens at once. Token t reads
cache rows 0..t only, and those are final once the layer's K and V are
stored, so the values are those of model.c's token-by-token loop as long
as the layout's tensors do not overlap (the manifest's checks guarantee
that for a received cache).

Errors are OSErrors carrying the C's errno: ModelError (EINVAL, ENOSPC,
EFBIG) for configs and requests, kv.KVError (EINVAL) for a layout that
does not fit its region, open()'s error for a config file.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

import numpy as np
import torch

from .kv import MAX_LAYERS, DType, KVError, Layout, Tensor, elem_size

MODEL_MAX_BYTES = 1 << 30
MODEL_NAME_MAX = 64
MODEL_MAX_VOCAB = 1 << 20
MODEL_MAX_SEQ = 1 << 20

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1


class ModelError(OSError):
    """What model.c refuses: errno as the C's -errno, strerror its
    message (for a config file, the very line model_config_load()
    prints)."""

    def __init__(self, err: int, reason: str) -> None:
        super().__init__(err, reason)

    def __str__(self) -> str:
        return self.strerror


# ---------------------------------------------------------------- config

# The config file's keys in model.c's order, which its checks follow.
_KEYS = ("name", "layers", "heads", "head_dim", "d_ff", "vocab", "max_seq",
         "seed")
_FIELD = {
    "layers": "n_layers",
    "heads": "n_heads",
    "head_dim": "head_dim",
    "d_ff": "d_ff",
    "vocab": "vocab",
    "max_seq": "max_seq",
    "seed": "seed",
}
# model.c's range table: key, min, max.
_RANGES = (
    ("layers", 1, MAX_LAYERS),
    ("heads", 1, _U32_MAX),
    ("head_dim", 2, _U32_MAX),
    ("d_ff", 1, _U32_MAX),
    ("vocab", 2, MODEL_MAX_VOCAB),
    ("max_seq", 1, MODEL_MAX_SEQ),
)
_NAME_CHARS = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _model_sizes(values: dict[str, int]) -> tuple[int, int, int] | None:
    """Weights, scratch floats and their bytes (model.c's config_sizes()),
    or None where the C's 64-bit arithmetic overflows.

    Every intermediate the C checks is at most the final byte count, so
    testing that count with Python's exact integers is the same test.
    """
    d = values["heads"] * values["head_dim"]
    hd, ff, seq = values["head_dim"], values["d_ff"], values["max_seq"]
    layer = 4 * d * d + 3 * d * ff + 2 * d
    n_weights = layer * values["layers"] + 2 * values["vocab"] * d + d
    n_scratch = (seq * d + seq * hd + seq + 6 * d + 2 * ff + hd
                 + values["vocab"])
    total = 4 * (n_weights + n_scratch) + 4 * hd
    if total > _U64_MAX:
        return None
    return n_weights, n_scratch, total


def _config_problem(values: dict[str, int],
                    where: Callable[[str | None], str]) -> str | None:
    """model.c's config_check() on @values (keyed by config-file key):
    its message, or None.

    @where(key) is the message's prefix: "path:line: " for a file's key
    ("path: " for key None, the file as a whole), "" for a config built
    in code.
    """
    for key, lo, hi in _RANGES:
        v = values[key]
        if v < lo or v > hi:
            return f"{where(key)}{key} = {v}: must be {lo}..{hi}"
    hd = values["head_dim"]
    if hd & 1:
        return (f"{where('head_dim')}head_dim = {hd}: must be even "
                "(rotary pairs)")
    if values["heads"] * hd > _U32_MAX:
        return (f"{where('head_dim')}heads * head_dim = {values['heads']} "
                f"* {hd} overflows 32 bits")
    if _model_sizes(values) is None:
        return (f"{where(None)}the model's sizes (layers, heads, head_dim, "
                "d_ff, vocab, max_seq) overflow")
    return None


@dataclass(frozen=True)
class ModelConfig:
    """struct model_config: a model's shape and weight seed.

    Construction runs model_config_check()'s checks, so a ModelConfig
    always describes a model the C code accepts too.
    """

    name: str
    n_layers: int
    n_heads: int
    head_dim: int
    d_ff: int
    vocab: int
    max_seq: int
    seed: int

    def __post_init__(self) -> None:
        def fail(reason: str) -> ModelError:
            return ModelError(errno.EINVAL, reason)

        if (not isinstance(self.name, str)
                or len(self.name.encode()) >= MODEL_NAME_MAX):
            raise fail(f"name: want a string of at most "
                       f"{MODEL_NAME_MAX - 1} bytes")
        values = self._values()
        for key, v in values.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise fail(f"{key} = {v!r}: want an unsigned integer")
        if self.seed > _U64_MAX:
            raise fail(f"seed = {self.seed}: must be 0..{_U64_MAX}")
        problem = _config_problem(values, lambda key: "")
        if problem:
            raise fail(problem)

    def _values(self) -> dict[str, int]:
        return {key: getattr(self, attr) for key, attr in _FIELD.items()}

    @property
    def d_model(self) -> int:
        """n_heads * head_dim: the residual stream's width."""
        return self.n_heads * self.head_dim

    @property
    def n_weights(self) -> int:
        """How many fp32 weights generate_weights() draws."""
        return _model_sizes(self._values())[0]

    def memory_bytes(self) -> tuple[int, int]:
        """model_memory_bytes(): (weight bytes, weight and scratch bytes).

        The total is what model_create() compares with MODEL_MAX_BYTES;
        Model applies the same limit, so both languages accept the same
        configs.
        """
        n_weights, _, total = _model_sizes(self._values())
        return 4 * n_weights, total


def _trim(s: bytes) -> bytes:
    return s.strip(b" \t\r\n")


def _parse_u64(s: bytes, limit: int) -> int | str:
    """model.c's parse_u64(): the value, or why it is refused.

    Digits are checked and accumulated left to right, so a number that
    overflows 64 bits is "not in range" even when a non-digit follows,
    as in C.
    """
    if not s:
        return "an unsigned decimal number"
    v = 0
    for c in s:
        if not 0x30 <= c <= 0x39:
            return "an unsigned decimal number"
        v = v * 10 + (c - 0x30)
        if v > _U64_MAX:
            return "in range"
    return v if v <= limit else "in range"


def load_config(path: str | os.PathLike[str]) -> ModelConfig:
    """model_config_load(): parse a fixtures/models/*.conf file.

    open()'s OSError when the file cannot be read; ModelError(EINVAL)
    carrying the very line model.c prints on stderr (file, line, key)
    for a file the C refuses.
    """

    def fail(reason: str) -> ModelError:
        return ModelError(errno.EINVAL, reason)

    shown = os.fsdecode(path)
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()  # after the last newline: not a line to getline()
    name = ""
    values: dict[str, int] = {}
    lines: dict[str, int] = {}
    for lineno, raw in enumerate(raw_lines, 1):
        at = f"{shown}:{lineno}: "
        if b"\0" in raw:
            raise fail(f"{at}NUL byte")
        line = _trim(raw.split(b"#", 1)[0])
        if not line:
            continue
        if b"=" not in line:
            raise fail(f"{at}expected 'key = value'")
        key_b, val = (_trim(s) for s in line.split(b"=", 1))
        key = key_b.decode("utf-8", "backslashreplace")
        if key not in _KEYS:
            raise fail(f"{at}unknown key '{key}'")
        if key in lines:
            raise fail(f"{at}{key}: already set on line {lines[key]}")
        lines[key] = lineno
        if key == "name":
            if (not val or len(val) >= MODEL_NAME_MAX
                    or not set(val) <= _NAME_CHARS):
                raise fail(f"{at}name: want 1..{MODEL_NAME_MAX - 1} "
                           "characters of [A-Za-z0-9._-]")
            name = val.decode("ascii")
            continue
        v = _parse_u64(val, _U64_MAX if key == "seed" else _U32_MAX)
        if isinstance(v, str):
            text = val.decode("utf-8", "backslashreplace")
            raise fail(f"{at}{key}: '{text}' is not {v}")
        values[key] = v
    for key in _KEYS:
        if key not in lines:
            raise fail(f"{shown}: missing key '{key}'")
    problem = _config_problem(
        values, lambda key: f"{shown}:{lines[key]}: " if key else f"{shown}: ")
    if problem:
        raise fail(problem)
    return ModelConfig(name=name,
                       **{_FIELD[k]: v for k, v in values.items()})


# --------------------------------------------------------------- weights

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_DRAW_CHUNK = 1 << 20


def splitmix64(seed: int, count: int, start: int = 0) -> np.ndarray:
    """Draws start+1 .. start+count of splitmix64 from @seed, as uint64.

    The state after i draws is seed + i * gamma (mod 2^64), so a stretch
    of the stream is computed directly, vectorised, in numpy's wrapping
    uint64 arithmetic (torch has no uint64).
    """
    i = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, count: int) -> torch.Tensor:
    """The stream's first @count uniforms, exact in fp32:
    u = ((int32)(z >> 40) - 2^23) / 2^23, a multiple of 2^-23 in [-1, 1).
    """
    out = np.empty(count, dtype=np.float32)
    for start in range(0, count, _DRAW_CHUNK):
        n = min(_DRAW_CHUNK, count - start)
        top = (splitmix64(seed, n, start) >> np.uint64(40)).astype(np.int32)
        out[start:start + n] = ((top - (1 << 23)).astype(np.float32)
                                * np.float32(2.0**-23))
    return torch.from_numpy(out)


def _weight_plan(c: ModelConfig) -> list[tuple[str, tuple[int, ...], int]]:
    """Every tensor in generation order: (name, shape, fan_in), fan_in 0
    for the embedding (scale 1) and -1 for an RMSNorm gain."""
    d, ff, gain = c.d_model, c.d_ff, -1
    plan = [("embed", (c.vocab, d), 0)]
    for i in range(c.n_layers):
        plan += [
            (f"layers.{i}.attn_norm", (d,), gain),
            (f"layers.{i}.wq", (d, d), d),
            (f"layers.{i}.wk", (d, d), d),
            (f"layers.{i}.wv", (d, d), d),
            (f"layers.{i}.wo", (d, d), d),
            (f"layers.{i}.mlp_norm", (d,), gain),
            (f"layers.{i}.w_gate", (ff, d), d),
            (f"layers.{i}.w_up", (ff, d), d),
            (f"layers.{i}.w_down", (d, ff), ff),
        ]
    return plan + [("final_norm", (d,), gain), ("w_out", (c.vocab, d), d)]


def generate_weights(c: ModelConfig) -> dict[str, torch.Tensor]:
    """The weights, bit-identical to model_weights(): name -> tensor.

    Every tensor is a view of one flat fp32 tensor in generation order,
    "all", which compares directly with the C's array. Each value is one
    fp32 operation on its uniform u: u * (float)(1 / sqrt(fan_in)) for a
    matrix, 1.0f + u * 0.125f for a gain, and u itself (u * 1.0f) for
    the embedding.
    """
    flat = uniforms(c.seed, c.n_weights)
    out = {"all": flat}
    off = 0
    for name, shape, fan_in in _weight_plan(c):
        n = math.prod(shape)
        w = flat[off:off + n]
        if fan_in > 0:
            scale = torch.tensor(1.0 / math.sqrt(fan_in), dtype=torch.float32)
            w.mul_(scale)
        elif fan_in < 0:
            w.mul_(0.125).add_(1.0)
        out[name] = w.view(shape)
        off += n
    return out


# ------------------------------------------------------- exact fp16 bits


def f32_to_f16_bits(x: torch.Tensor) -> torch.Tensor:
    """model_f32_to_f16() of every element of fp32 @x, as int16 bits.

    Round to nearest even, overflow to infinity, subnormals kept, and a
    NaN stays a quiet NaN with its sign and top payload bits: the C's
    integer steps, where Tensor.half() would make every NaN 0x7e00.
    """
    x = x.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    sign = (x >> 16) & 0x8000
    a = x & 0x7FFFFFFF
    exp = a >> 23

    nan = sign | 0x7E00 | ((a >> 13) & 0x3FF)
    inf = sign | 0x7C00
    h = ((exp - 112) << 10) | ((a >> 13) & 0x3FF)
    rem = a & 0x1FFF
    up = (rem > 0x1000) | ((rem == 0x1000) & ((h & 1) == 1))
    normal = h + up.to(torch.int64)  # may carry into the exponent
    # Subnormal: the shift is 14..24 where it applies, clamped elsewhere.
    mant = (a & 0x7FFFFF) | 0x800000
    shift = (126 - exp).clamp(14, 24)
    one = torch.ones_like(shift)
    q = mant >> shift
    rem = mant & ((one << shift) - 1)
    half = one << (shift - 1)
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    sub = q + up.to(torch.int64)

    out = torch.where(a <= 0x33000000, sign, sign | sub)
    out = torch.where(a >= 0x38800000, sign | normal, out)
    out = torch.where(a >= 0x477FF000, inf, out)
    out = torch.where(a > 0x7F800000, nan, out)
    return (out - ((out & 0x8000) << 1)).to(torch.int16)


def f16_bits_to_f32(h: torch.Tensor) -> torch.Tensor:
    """model_f16_to_f32() of every int16 bit pattern in @h, as fp32
    (a signalling NaN stays signalling, unlike Tensor.float())."""
    h = h.to(torch.int64) & 0xFFFF
    sign = (h & 0x8000) << 16
    exp = (h >> 10) & 0x1F
    mant = h & 0x3FF

    # A subnormal is normalised as the C's loop does: 10 shifts at most.
    e = torch.full_like(mant, -14)
    m = mant
    for _ in range(10):
        shift = ((m & 0x400) == 0) & (m != 0)
        m = torch.where(shift, m << 1, m)
        e = torch.where(shift, e - 1, e)
    sub = sign | ((e + 127) << 23) | ((m & 0x3FF) << 13)

    out = torch.where(mant == 0, sign, sub)
    out = torch.where(exp != 0, sign | ((exp + 112) << 23) | (mant << 13),
                      out)
    out = torch.where(exp == 0x1F, sign | 0x7F800000 | (mant << 13), out)
    out = out - ((out & 0x80000000) << 1)
    return out.to(torch.int32).view(torch.float32)


# ----------------------------------------------------- deterministic math

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_2T = 2.02226624879595063154e-21
_LN_10000 = 9.21034037197618273607
_RMS_EPS = torch.tensor(1e-5, dtype=torch.float32)  # MODEL_RMS_EPS, 1e-5f

# Horner coefficients, highest power first, each as the C writes it.
_EXP_POLY = (1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
             1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0,
             1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)
_SIN_POLY = (-1.0 / 121645100408832000.0, 1.0 / 355687428096000.0,
             -1.0 / 1307674368000.0, 1.0 / 6227020800.0,
             -1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0,
             1.0 / 120.0, -1.0 / 6.0)
_COS_POLY = (1.0 / 6402373705728000.0, -1.0 / 20922789888000.0,
             1.0 / 87178291200.0, -1.0 / 479001600.0, 1.0 / 3628800.0,
             -1.0 / 40320.0, 1.0 / 720.0, -1.0 / 24.0, 0.5)


def _horner(poly: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    """p = poly[0]; p = p * x + c for the rest: one rounding per
    operation, as the C's unfused statements (a - c is a + (-c) in IEEE
    arithmetic, so the C's subtractions are these additions)."""
    p = torch.full_like(x, poly[0])
    for c in poly[1:]:
        p = p * x + c
    return p


def _ldexp(p: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """C's ldexp(p, k) for p in [0.5, 2) and integer k in [-1076, 1023].

    2^k is built from its bits, so no pow() rounding creeps in. Below
    2^-1022 the result is subnormal: p is scaled exactly into the normal
    range first, so the one multiply that leaves it rounds it once, as
    ldexp() does.
    """
    k = k.to(torch.int64)
    low = k < -1022
    pow2 = ((torch.where(low, k + 64, k) + 1023) << 52).view(torch.float64)
    scaled = p * pow2
    return torch.where(low, scaled * 2.0**-64, scaled)


def det_exp(x: torch.Tensor) -> torch.Tensor:
    """model.c's det_exp() of every element of float64 @x."""
    nan = torch.isnan(x)
    xc = torch.where(nan, torch.zeros_like(x), x).clamp(-746.0, 709.0)
    k = torch.floor(xc * _INV_LN2 + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    y = _ldexp(_horner(_EXP_POLY, r), k)
    y = torch.where(x < -746.0, torch.zeros_like(y), y)
    y = torch.where(x > 709.0, torch.full_like(y, math.inf), y)
    return torch.where(nan, x, y)


def det_sincos(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """model.c's det_sincos() of float64 angles 0 <= a < 2^21:
    (sin, cos)."""
    k = torch.floor(a * _TWO_OVER_PI + 0.5)
    r = ((a - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_2T
    z = r * r
    sp = r + r * z * _horner(_SIN_POLY, z)
    cp = 1.0 - z * _horner(_COS_POLY, z)
    quadrant = k.to(torch.int64) & 3

    def pick(q0: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor,
             q3: torch.Tensor) -> torch.Tensor:
        return torch.where(quadrant == 0, q0, torch.where(
            quadrant == 1, q1, torch.where(quadrant == 2, q2, q3)))

    return pick(sp, cp, -sp, -cp), pick(cp, -sp, -cp, sp)


def lane_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """model.c's dot() over the last dimension of fp32 @a and @b, whose
    other dimensions broadcast.

    Each result is summed in the C's order: 8 lanes (element i goes to
    lane i mod 8, in increasing i), then ((l0+l1)+(l2+l3))+((l4+l5)+
    (l6+l7)).
    """
    n = a.shape[-1]
    lanes = torch.zeros(
        torch.broadcast_shapes(a.shape[:-1], b.shape[:-1]) + (8,),
        dtype=torch.float32)
    for i in range(0, n, 8):
        w = min(8, n - i)
        lanes[..., :w] += a[..., i:i + w] * b[..., i:i + w]
    l = lanes.unbind(-1)
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))


def _matvec(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y[..., o] = dot(w[o], x[...]) for a [rows][cols] matrix @w."""
    return lane_dot(x.unsqueeze(-2), w)


def _rmsnorm(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """(x * (1 / sqrt(dot(x, x) / n + 1e-5f))) * gain, over the last
    dimension."""
    ms = lane_dot(x, x) / x.shape[-1]
    inv = 1.0 / torch.sqrt(ms + _RMS_EPS)
    return (x * inv.unsqueeze(-1)) * gain


def _silu(g: torch.Tensor) -> torch.Tensor:
    """g / (1.0f + (float)det_exp(-(double)g))."""
    return g / (1.0 + det_exp(-g.double()).float())


def argmax(logits: torch.Tensor) -> int:
    """model_argmax(): the largest logit's index, the lowest on ties.

    A NaN never wins (index 0 when every logit is NaN); torch.argmax
    would pick it.
    """
    valid = ~torch.isnan(logits)
    if not bool(valid.any()):
        return 0
    best = logits[valid].max()
    return int(torch.nonzero((logits == best) & valid)[0, 0])


# --------------------------------------------------------------- KV cache


def kv_views(region: torch.Tensor,
             layout: Layout) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-layer K and V views over @region, without a copy.

    @region is any contiguous tensor whose bytes are the KV region (a
    uint8 tensor over a mapped buffer, say); @layout (a kv.Layout, or
    anything with its fields) says where each tensor lies, in bytes. The
    region's bytes are reinterpreted as fp32 or fp16 (Tensor.view(dtype))
    and each tensor is an as_strided view of it, shape [max_tokens,
    n_heads, head_dim], the layout's strides in elements: a write through
    a view lands in the region, and the other way round.

    KVError(EINVAL) unless model.c's kv_check() would pass (every tensor
    inside layout.bytes; here also layout.bytes inside the region) and a
    typed view can exist: every offset and stride a multiple of the
    element size, from an element-aligned byte of the region's storage.
    """

    def fail(reason: str) -> KVError:
        return KVError(errno.EINVAL, reason)

    if layout.dtype not in (DType.F32, DType.F16):
        raise fail(f"unknown dtype {layout.dtype} (1 fp32, 2 fp16)")
    if not (layout.n_layers and layout.n_heads and layout.head_dim
            and layout.max_tokens):
        raise fail("zero dimension: n_layers, n_heads, head_dim or "
                   "max_tokens")
    if not len(layout.k) == len(layout.v) == layout.n_layers:
        raise fail(f"the layout has {len(layout.k)} K and {len(layout.v)} "
                   f"V tensors for {layout.n_layers} layers")
    if not region.is_contiguous():
        raise fail("the region tensor is not contiguous")
    raw = region.reshape(-1).view(torch.uint8)
    if layout.bytes > raw.numel():
        raise fail(f"the layout needs {layout.bytes} bytes, the region has "
                   f"{raw.numel()}")
    elem = elem_size(layout.dtype)
    # The typed view starts at the first element-aligned byte of storage.
    skip = -raw.storage_offset() % elem
    usable = (raw.numel() - skip) // elem * elem
    typed = raw[skip:skip + usable].view(
        torch.float16 if layout.dtype == DType.F16 else torch.float32)
    shape = (layout.max_tokens, layout.n_heads, layout.head_dim)

    def view(t: Tensor, what: str) -> torch.Tensor:
        end = (t.offset + (layout.max_tokens - 1) * t.token_stride
               + (layout.n_heads - 1) * t.head_stride
               + layout.head_dim * elem)
        if end > layout.bytes:
            raise fail(f"{what} ends at byte {end}, past the layout's "
                       f"{layout.bytes}")
        if ((t.offset - skip) % elem or t.token_stride % elem
                or t.head_stride % elem):
            raise fail(f"{what} is not aligned to its {elem}-byte elements "
                       "in the region")
        return torch.as_strided(
            typed, shape, (t.token_stride // elem, t.head_stride // elem, 1),
            typed.storage_offset() + (t.offset - skip) // elem)

    return ([view(t, f"layer {i} K") for i, t in enumerate(layout.k)],
            [view(t, f"layer {i} V") for i, t in enumerate(layout.v)])


@dataclass
class KVCache:
    """struct kv_cache: a layout's K and V views over a region, and how
    many positions (0 .. tokens-1) are filled."""

    layout: Layout
    region: torch.Tensor = field(repr=False)
    k: list[torch.Tensor] = field(repr=False)
    v: list[torch.Tensor] = field(repr=False)
    tokens: int = 0

    @classmethod
    def over(cls, region: torch.Tensor, layout: Layout,
             tokens: int = 0) -> KVCache:
        """The cache whose bytes are @region (see kv_views): no copy."""
        k, v = kv_views(region, layout)
        return cls(layout, region, k, v, tokens)

    @classmethod
    def zeros(cls, layout: Layout) -> KVCache:
        """A fresh zeroed region for @layout (dpinfer local callocs one)."""
        return cls.over(torch.zeros(layout.bytes, dtype=torch.uint8), layout)


# ----------------------------------------------------------------- model


@dataclass(frozen=True)
class LayerWeights:
    """One layer's tensors, views of the model's flat weights."""

    attn_norm: torch.Tensor
    wq: torch.Tensor
    wk: torch.Tensor
    wv: torch.Tensor
    wo: torch.Tensor
    mlp_norm: torch.Tensor
    w_gate: torch.Tensor
    w_up: torch.Tensor
    w_down: torch.Tensor


class Model:
    """The demo transformer: model_create() and the forward pass.

    Holds only the weights: a KVCache carries a sequence, so one Model
    serves any number of caches.
    """

    def __init__(self, config: ModelConfig) -> None:
        _, total = config.memory_bytes()
        if total > MODEL_MAX_BYTES:
            raise ModelError(
                errno.EFBIG,
                f"{config.name}: {total} bytes of weights and scratch, over "
                f"MODEL_MAX_BYTES ({MODEL_MAX_BYTES}): a KV layout only")
        self.config = config
        w = generate_weights(config)
        self.weights: torch.Tensor = w["all"]
        self.embed = w["embed"]
        self.layers = [
            LayerWeights(**{f.name: w[f"layers.{i}.{f.name}"]
                            for f in fields(LayerWeights)})
            for i in range(config.n_layers)
        ]
        self.final_norm = w["final_norm"]
        self.w_out = w["w_out"]
        hd = config.head_dim
        two_i = torch.arange(0, hd, 2, dtype=torch.float64)
        # 10000^(-2i/head_dim) = exp(-(2i/head_dim) ln 10000), in double.
        self.inv_freq = det_exp(-(two_i / hd) * _LN_10000)
        self.attn_scale = torch.tensor(1.0 / math.sqrt(hd),
                                       dtype=torch.float32)

    def kv_layout(self, max_tokens: int, dtype: int) -> Layout:
        """model_kv_layout(): the packed layout for this model's shape."""
        c = self.config
        return Layout.packed(c.n_layers, c.n_heads, c.head_dim, max_tokens,
                             dtype)

    def _check_request(self, kv: KVCache, tokens: Sequence[int],
                       steps: int) -> None:
        """check_request(): the tokens, the cache, room for @steps."""
        c, lay = self.config, kv.layout
        if not tokens:
            raise ModelError(errno.EINVAL, "no tokens")
        if ((lay.n_layers, lay.n_heads, lay.head_dim)
                != (c.n_layers, c.n_heads, c.head_dim)):
            raise ModelError(
                errno.EINVAL,
                f"the KV layout is {lay.n_layers}x{lay.n_heads}x"
                f"{lay.head_dim}, the model {c.n_layers}x{c.n_heads}x"
                f"{c.head_dim}")
        want = torch.float16 if lay.dtype == DType.F16 else torch.float32
        shape = (lay.max_tokens, c.n_heads, c.head_dim)
        if not len(kv.k) == len(kv.v) == c.n_layers or any(
                t.dtype != want or t.shape != shape for t in kv.k + kv.v):
            raise ModelError(errno.EINVAL,
                             "the KV views do not match their layout")
        for t in tokens:
            if not 0 <= t < c.vocab:
                raise ModelError(errno.EINVAL,
                                 f"token {t} is not below vocab ({c.vocab})")
        end = kv.tokens + steps
        if end > lay.max_tokens or end > c.max_seq:
            raise ModelError(
                errno.ENOSPC,
                f"{end} positions: the cache holds {lay.max_tokens}, the "
                f"model {c.max_seq}")

    def prefill(self, kv: KVCache, tokens: Sequence[int], *,
                logits: bool = True,
                layer_done: Callable[[int], None] | None = None
                ) -> torch.Tensor | None:
        """model_prefill(): run @tokens at positions kv.tokens onwards.

        Layer by layer, as in C: layer L's K and V of every token are in
        the cache when @layer_done(L) is called, so a sender can ship
        layer L while layer L+1 computes. Then kv.tokens grows by
        len(tokens), and the last position's logits (fp32 [vocab]) are
        returned (None with logits=False). ModelError (EINVAL, or ENOSPC
        past the cache or max_seq) before anything is written.
        """
        tokens = [int(t) for t in tokens]
        self._check_request(kv, tokens, len(tokens))
        return self._forward(kv, tokens, logits, layer_done)

    def decode_step(self, kv: KVCache, token: int) -> torch.Tensor:
        """model_decode_step(): a prefill of one token; its logits."""
        return self.prefill(kv, [token])

    def generate(self, kv: KVCache, first: int,
                 n: int) -> tuple[list[int], torch.Tensor]:
        """model_generate(): greedy decoding, @n steps fed from @first.

        out[0] = first; step i feeds out[i], and out[i+1] is the argmax
        of its logits while i+1 < n. All n tokens enter the cache.
        Returns out and the last step's logits (the prediction after
        out[-1]). The room for all n steps is checked before the first.
        """
        if n <= 0:
            raise ModelError(errno.EINVAL,
                             f"generate {n} tokens: want 1 or more")
        self._check_request(kv, [int(first)], n)
        out = [int(first)]
        for i in range(n):
            logits = self._forward(kv, [out[i]], True, None)
            if i + 1 < n:
                out.append(argmax(logits))
        return out, logits

    def complete(self, kv: KVCache, last: int,
                 n: int) -> tuple[list[int], torch.Tensor]:
        """dpinfer's decode side: the @n tokens generated after a prompt.

        @kv holds every prompt position but the last; @last, the last
        prompt token, is the first step. Returns the n generated tokens
        (generate()'s out[1:], then the final logits' argmax) and the
        final logits: what dpinfer prints and hashes.
        """
        out, logits = self.generate(kv, last, n)
        return out[1:] + [argmax(logits)], logits

    def run_local(self, prompt: Sequence[int], n_generate: int,
                  dtype: int = DType.F32) -> tuple[list[int], torch.Tensor]:
        """`dpinfer local`: the single-process run of @prompt.

        A zeroed packed @dtype cache for len(prompt) + n_generate
        positions, a prefill of all the prompt but its last token, then
        complete(): the tokens and final logits a split run must match.
        """
        if len(prompt) < 2:
            raise ModelError(errno.EINVAL,
                             "the prompt needs two tokens or more")
        kv = KVCache.zeros(self.kv_layout(len(prompt) + n_generate, dtype))
        self.prefill(kv, prompt[:-1], logits=False)
        return self.complete(kv, prompt[-1], n_generate)

    # The forward pass: model.c's forward() and layer_token().

    def _forward(self, kv: KVCache, tokens: list[int], want_logits: bool,
                 layer_done: Callable[[int], None] | None
                 ) -> torch.Tensor | None:
        """forward() of a checked request: every token through layer 0,
        then layer 1, ...; the last position's logits."""
        p0 = kv.tokens
        pos = torch.arange(p0, p0 + len(tokens), dtype=torch.float64)
        sin, cos = det_sincos(pos.unsqueeze(1) * self.inv_freq)
        rope = (cos.float().unsqueeze(1), sin.float().unsqueeze(1))
        x = self.embed[tokens]
        for layer in range(self.config.n_layers):
            x = self._layer(kv, layer, x, rope, p0)
            if layer_done:
                layer_done(layer)
        kv.tokens = p0 + len(tokens)
        if not want_logits:
            return None
        return _matvec(self.w_out, _rmsnorm(x[-1], self.final_norm))

    @staticmethod
    def _store(view: torch.Tensor, rows: torch.Tensor, dtype: int) -> None:
        """kv_store(): fp32 rows into the cache, through fp16 if it is."""
        if dtype == DType.F16:
            view.view(torch.int16).copy_(f32_to_f16_bits(rows))
        else:
            view.copy_(rows)

    @staticmethod
    def _load(view: torch.Tensor, dtype: int) -> torch.Tensor:
        """kv_load(): cache rows as fp32, through fp16 if the cache is."""
        if dtype == DType.F16:
            return f16_bits_to_f32(view.view(torch.int16))
        return view

    def _layer(self, kv: KVCache, layer: int, x: torch.Tensor,
               rope: tuple[torch.Tensor, torch.Tensor],
               p0: int) -> torch.Tensor:
        """layer_token() for every row of @x ([n][d], positions p0 ..):
        the new residual rows."""
        w, c = self.layers[layer], self.config
        n, heads, hd = x.shape[0], c.n_heads, c.head_dim
        dtype = kv.layout.dtype
        cos, sin = rope

        def rotate(t: torch.Tensor) -> torch.Tensor:
            """rope_apply() on every head: the pairs (2i, 2i+1)."""
            t = t.view(n, heads, hd)
            a, b = t[..., 0::2], t[..., 1::2]
            return torch.stack((a * cos - b * sin, a * sin + b * cos),
                               -1).flatten(-2)

        xn = _rmsnorm(x, w.attn_norm)
        q = rotate(_matvec(w.wq, xn))
        self._store(kv.k[layer][p0:p0 + n], rotate(_matvec(w.wk, xn)), dtype)
        self._store(kv.v[layer][p0:p0 + n],
                    _matvec(w.wv, xn).view(n, heads, hd), dtype)

        # Attention reads every row back from the cache. scores[t][h][s]:
        # row t (position p0 + t) sees the positions s <= p0 + t.
        seen = p0 + n
        keys = self._load(kv.k[layer][:seen], dtype)
        values = self._load(kv.v[layer][:seen], dtype)
        scores = lane_dot(q.unsqueeze(2),
                          keys.permute(1, 0, 2).unsqueeze(0)) * self.attn_scale
        visible = (torch.arange(seen)
                   <= torch.arange(p0, seen).unsqueeze(1)).unsqueeze(1)
        top = scores.masked_fill(~visible, -math.inf).amax(-1, keepdim=True)
        e = det_exp((scores - top).double()).float()
        total = torch.zeros(n, heads)
        for s in range(seen):
            total = torch.where(visible[..., s], total + e[..., s], total)
        p = e / total.unsqueeze(-1)
        att = torch.zeros(n, heads, hd)
        for s in range(seen):
            att = torch.where(visible[..., s, None],
                              att + p[..., s, None] * values[s], att)
        x = x + _matvec(w.wo, att.view(n, heads * hd))

        xn = _rmsnorm(x, w.mlp_norm)
        h = _silu(_matvec(w.w_gate, xn)) * _matvec(w.w_up, xn)
        return x + _matvec(w.w_down, h)


# ---------------------------------------------------------------- tokens


def encode_prompt(prompt: str | bytes, vocab: int) -> list[int]:
    """dpinfer's tokenizer: the prompt's bytes, each mod @vocab.

    A str is encoded as the command line carries it (os.fsencode), so
    `--prompt TEXT` gives the same tokens in both languages.
    """
    data = os.fsencode(prompt) if isinstance(prompt, str) else bytes(prompt)
    if b"\0" in data:
        raise ModelError(errno.EINVAL,
                         "a prompt cannot contain NUL (a C string ends there)")
    return [b % vocab for b in data]


def synthetic_prompt(n: int, vocab: int) -> list[int]:
    """dpinfer's --prompt-len N tokens: (i * 131 + 7) mod vocab, in
    uint32 arithmetic."""
    return [((i * 131 + 7) & _U32_MAX) % vocab for i in range(n)]


def format_tokens(tokens: Sequence[int]) -> str:
    """Tokens as dpinfer prints them: decimal ids separated by spaces."""
    return " ".join(str(t) for t in tokens)


def logits_fnv64(logits: torch.Tensor) -> str:
    """dpinfer's "logits:" line: FNV-1a 64 of the fp32 values' bytes
    (little-endian, as on every host dpinfer runs on), 16 hex digits.
    Equal hashes mean bit-identical logits."""
    h = 0xCBF29CE484222325
    data = logits.detach().to(torch.float32).contiguous().numpy()
    for b in data.astype("<f4").tobytes():
        h = ((h ^ b) * 0x100000001B3) & _U64_MAX
    return f"{h:016x}"
