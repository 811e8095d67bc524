"""The KV-cache transfer protocol's data (DESIGN.md section 6), in pure Python.

Byte for byte what the C side does (src/apps/kv_layout.c, kv_manifest.c and
the ACK and RESULT messages of dpinfer.c), because the wire format is the
contract: a C prefill host talks to a Python decode host and the other way
round. The formats are documented in src/apps/kv_manifest.h; this module
follows its rules, its errno choices and its reason texts, so a Python
decode host can refuse a manifest with the very ACK dpinfer decode sends.

Errors are KVError (ManifestError for a manifest), OSError subclasses whose
errno is the positive value of what the C returns and whose strerror is the
C's reason text.
"""

from __future__ import annotations

import bisect
import errno
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
_Triple = tuple[int, int, int]

# --- layout (kv_layout.h) ---

MAX_LAYERS = 128
_ALIGN = 64  # every packed tensor starts at a multiple of this


class DType(IntEnum):
    """enum kv_dtype: the element type of every K and V tensor."""

    F32 = 1
    F16 = 2


class Kind(IntEnum):
    """enum kv_kind: which tensor of a layer a chunk belongs to."""

    K = 0
    V = 1


def elem_size(dtype: int) -> int:
    """kv_elem_size(): 2 for fp16 and 4 for anything else, as the C has it."""
    return 2 if dtype == DType.F16 else 4


class KVError(OSError):
    """A protocol error: errno like the C's -errno, strerror its reason."""

    def __init__(self, err: int, reason: str) -> None:
        super().__init__(err, reason)

    @property
    def reason(self) -> str:
        """The text that goes into an ACK's or a RESULT's reason."""
        return self.strerror


class ManifestError(KVError):
    """A manifest kv_manifest_check()/kv_manifest_decode() would refuse."""


@dataclass(frozen=True)
class Tensor:
    """struct kv_tensor: element (t, h, d) is at offset + t * token_stride
    + h * head_stride + d * elem bytes into the region."""

    offset: int
    token_stride: int
    head_stride: int


@dataclass
class Layout:
    """struct kv_layout: where each layer's K and V lie in one region.

    k and v hold n_layers tensors each (the C's fixed arrays, trimmed);
    bytes is the region the layout needs.
    """

    n_layers: int
    n_heads: int
    head_dim: int
    max_tokens: int
    dtype: int
    bytes: int
    k: list[Tensor] = field(default_factory=list)
    v: list[Tensor] = field(default_factory=list)

    @classmethod
    def packed(cls, n_layers: int, n_heads: int, head_dim: int,
               max_tokens: int, dtype: int) -> Layout:
        """kv_layout_init(): layer 0 K, layer 0 V, layer 1 K, ... each
        [max_tokens][n_heads][head_dim], starting at multiples of 64 bytes.

        The layout a C prefill host builds (model_kv_layout()), so a Python
        one sends the same manifest. KVError(EINVAL) where the C fails.
        """
        dims = (n_layers, n_heads, head_dim, max_tokens)
        if any(not 0 < d <= U32_MAX for d in dims):
            raise KVError(errno.EINVAL,
                          "n_layers %d, n_heads %d, head_dim %d, max_tokens "
                          "%d: each must be a u32 above 0" % dims)
        if n_layers > MAX_LAYERS:
            raise KVError(errno.EINVAL, f"n_layers {n_layers} is not in "
                          f"1..{MAX_LAYERS}")
        if dtype not in (DType.F32, DType.F16):
            raise KVError(errno.EINVAL,
                          f"unknown dtype {dtype} (1 fp32, 2 fp16)")
        head_stride = head_dim * elem_size(dtype)
        token_stride = head_stride * n_heads
        tensor = token_stride * max_tokens
        padded = (tensor + _ALIGN - 1) & ~(_ALIGN - 1)
        k: list[Tensor] = []
        v: list[Tensor] = []
        off = 0
        for i in range(n_layers):
            for j, tensors in enumerate((k, v)):
                tensors.append(Tensor(off, token_stride, head_stride))
                # The last tensor ends unpadded. Where the C's size
                # arithmetic overflows, so does this sum.
                off += tensor if i + 1 == n_layers and j == 1 else padded
                if off > U64_MAX:
                    raise KVError(errno.EINVAL,
                                  "the layout overflows 64 bits")
        return cls(n_layers, n_heads, head_dim, max_tokens, dtype, off, k, v)

    @property
    def elem_size(self) -> int:
        """Bytes per element of this layout's dtype."""
        return elem_size(self.dtype)

    def tensor(self, layer: int, kind: int) -> Tensor:
        """Layer @layer's K (kind 0) or V (kind 1)."""
        return (self.v if kind == Kind.V else self.k)[layer]

    def view(self, layer: int, kind: int) -> tuple[int, _Triple, _Triple]:
        """(byte offset, shape, byte strides) of one tensor, [max_tokens]
        [n_heads][head_dim]: what a decode host needs to build an
        as_strided view over the received region without copying."""
        t = self.tensor(layer, kind)
        return (t.offset, (self.max_tokens, self.n_heads, self.head_dim),
                (t.token_stride, t.head_stride, self.elem_size))


def _span(layout: Layout, t: Tensor, rows: int) -> int | None:
    """tensor_span(): bytes from token row 0's first byte to row rows-1's
    last, or None where the C's u64 arithmetic overflows or a size is 0."""
    if not rows or not layout.n_heads or not layout.head_dim:
        return None
    span = ((rows - 1) * t.token_stride + (layout.n_heads - 1) * t.head_stride
            + layout.head_dim * layout.elem_size)
    return span if span <= U64_MAX else None


# --- manifest (kv_manifest.h) ---

MANIFEST_MAGIC = b"KVM1"
MANIFEST_VERSION = 1
MANIFEST_HDR_LEN = 96
MANIFEST_LAYER_LEN = 48
MANIFEST_MAX_LEN = MANIFEST_HDR_LEN + MAX_LAYERS * MANIFEST_LAYER_LEN

CHUNK_MIN = 64 << 10
CHUNK_MAX = 4 << 20
CHUNK_ALIGN = 4096

# magic, 15 u32 (version .. max_seq), region bytes, seed, request id,
# reserved: the header table of kv_manifest.h, offsets 0 .. 95.
_HDR = struct.Struct("<4s15I4Q")
_LAYER = struct.Struct("<6Q")
_U32_FIELDS = ("tokens", "chunk_bytes", "n_chunks", "d_ff", "vocab",
               "max_seq", "first_token", "n_generate")
_U64_FIELDS = ("model_seed", "request_id")
_LAYOUT_U32 = ("n_layers", "n_heads", "head_dim", "max_tokens", "dtype")
_KIND_NAME = ("K", "V")

@dataclass(frozen=True)
class Chunk:
    """struct kv_chunk: one WRITE_WITH_IMM, at the same offset both sides."""

    index: int
    layer: int
    kind: int
    offset: int
    length: int


@dataclass
class Manifest:
    """struct kv_manifest: what the decode side must validate before it
    lets a single chunk into its region.

    Set n_chunks to plan_count() before encoding, as the C sender does.
    """

    layout: Layout
    tokens: int = 0
    chunk_bytes: int = 0
    n_chunks: int = 0
    model_seed: int = 0
    d_ff: int = 0
    vocab: int = 0
    max_seq: int = 0
    first_token: int = 0
    n_generate: int = 0
    request_id: int = 0

    @staticmethod
    def size(n_layers: int) -> int:
        """kv_manifest_size(): the encoded length for @n_layers layers."""
        return MANIFEST_HDR_LEN + n_layers * MANIFEST_LAYER_LEN

    def _python_error(self) -> str | None:
        """What the C's fixed-width types cannot even hold (a Python int
        past its field, a layer table of the wrong length), or None."""
        l = self.layout
        for name in _LAYOUT_U32:
            if not 0 <= getattr(l, name) <= U32_MAX:
                return f"{name} {getattr(l, name)} does not fit in 32 bits"
        for name in _U32_FIELDS:
            if not 0 <= getattr(self, name) <= U32_MAX:
                return f"{name} {getattr(self, name)} does not fit in 32 bits"
        for name in _U64_FIELDS:
            if not 0 <= getattr(self, name) <= U64_MAX:
                return f"{name} {getattr(self, name)} does not fit in 64 bits"
        if not 0 <= l.bytes <= U64_MAX:
            return f"region bytes {l.bytes} does not fit in 64 bits"
        if 1 <= l.n_layers <= MAX_LAYERS and \
                not len(l.k) == len(l.v) == l.n_layers:
            return (f"the layer table has {len(l.k)} K and {len(l.v)} V "
                    f"tensors for {l.n_layers} layers")
        for t in l.k + l.v:
            if not all(0 <= x <= U64_MAX for x in
                       (t.offset, t.token_stride, t.head_stride)):
                return f"tensor {t} does not fit in 64 bits"
        return None

    def _tensors(self) -> list[Tensor]:
        """Tensor j = 2 * layer + kind, the plan's order."""
        l = self.layout
        return [t for i in range(l.n_layers) for t in (l.k[i], l.v[i])]

    def check(self, region_limit: int = U64_MAX) -> None:
        """kv_manifest_check(): refuse what the decode side must refuse,
        with @region_limit its region's size. ManifestError(EINVAL) or
        (region bytes past @region_limit) ManifestError(EFBIG)."""
        l = self.layout

        def fail(reason: str, err: int = errno.EINVAL) -> ManifestError:
            return ManifestError(err, reason)

        why = self._python_error()
        if why:
            raise fail(why)
        if not 1 <= l.n_layers <= MAX_LAYERS:
            raise fail(f"n_layers {l.n_layers} is not in 1..{MAX_LAYERS}")
        if l.dtype not in (DType.F32, DType.F16):
            raise fail(f"unknown dtype {l.dtype} (1 fp32, 2 fp16)")
        if not l.n_heads or not l.head_dim or not l.max_tokens:
            raise fail(f"zero dimension: n_heads {l.n_heads}, head_dim "
                       f"{l.head_dim}, max_tokens {l.max_tokens}")
        if not self.tokens or self.tokens > l.max_tokens:
            raise fail(f"tokens {self.tokens} is not in 1..max_tokens "
                       f"({l.max_tokens})")
        if not CHUNK_MIN <= self.chunk_bytes <= CHUNK_MAX or \
                self.chunk_bytes % CHUNK_ALIGN:
            raise fail(f"chunk bytes {self.chunk_bytes} is not a multiple "
                       f"of {CHUNK_ALIGN} in {CHUNK_MIN}..{CHUNK_MAX}")
        if not self.vocab or not self.d_ff or not self.max_seq:
            raise fail(f"zero model dimension: vocab {self.vocab}, d_ff "
                       f"{self.d_ff}, max_seq {self.max_seq}")
        if self.first_token >= self.vocab:
            raise fail(f"first token {self.first_token} is not below vocab "
                       f"({self.vocab})")
        if self.tokens + self.n_generate > l.max_tokens:
            raise fail(f"tokens {self.tokens} + generate {self.n_generate} "
                       f"is past max_tokens ({l.max_tokens})")
        if self.tokens + self.n_generate > self.max_seq:
            raise fail(f"tokens {self.tokens} + generate {self.n_generate} "
                       f"is past the model's max_seq ({self.max_seq})")
        if l.bytes > region_limit:
            raise fail(f"region of {l.bytes} bytes is larger than the "
                       f"receiver's {region_limit}", errno.EFBIG)

        elem = l.elem_size
        row = l.head_dim * elem
        dtype = "fp16" if l.dtype == DType.F16 else "fp32"
        extents: list[tuple[int, int, int]] = []
        for j, t in enumerate(self._tensors()):
            name = f"layer {j // 2} {_KIND_NAME[j & 1]}"
            if t.offset % elem or t.token_stride % elem or \
                    t.head_stride % elem:
                raise fail(f"{name} offset {t.offset} / token_stride "
                           f"{t.token_stride} / head_stride {t.head_stride} "
                           f"not a multiple of the {elem}-byte {dtype} "
                           f"element")
            if t.head_stride < row:
                raise fail(f"{name} head_stride {t.head_stride} is below "
                           f"head_dim * {elem} = {row}: heads alias")
            heads = t.head_stride * l.n_heads
            if heads > U64_MAX:
                raise fail(f"{name} n_heads {l.n_heads} * head_stride "
                           f"{t.head_stride} overflows")
            if t.token_stride < heads:
                raise fail(f"{name} token_stride {t.token_stride} is below "
                           f"n_heads * head_stride = {heads}: tokens alias")
            span = _span(l, t, l.max_tokens)
            if span is None or t.offset + span > U64_MAX:
                raise fail(f"{name} extent overflows 64 bits (offset "
                           f"{t.offset}, token_stride {t.token_stride}, "
                           f"{l.max_tokens} tokens)")
            end = t.offset + span
            if end > l.bytes:
                raise fail(f"{name} tensor ends at {end}, past the region "
                           f"({l.bytes} bytes)")
            extents.append((t.offset, end, j))

        # Sorted by start (then end, stably), any overlap shows between
        # neighbours: the C's qsort on the same keys.
        extents.sort(key=lambda e: (e[0], e[1]))
        for (a0, a1, aj), (b0, b1, bj) in zip(extents, extents[1:]):
            if a1 > b0:
                raise fail(f"layer {aj // 2} {_KIND_NAME[aj & 1]} "
                           f"[{a0}, {a1}) overlaps layer {bj // 2} "
                           f"{_KIND_NAME[bj & 1]} [{b0}, {b1})")

        first = self._plan_first()
        if first is None:
            raise fail("chunk plan overflows")
        count = first[-1]
        if count > IMM_MAX_CHUNKS:
            raise fail(f"the plan needs {count} chunks, more than the "
                       f"immediate's {IMM_MAX_CHUNKS}")
        if count != self.n_chunks:
            raise fail(f"manifest says {self.n_chunks} chunks, the plan "
                       f"has {count}")

    def check_model(self, *, name: str, n_layers: int, n_heads: int,
                    head_dim: int, seed: int, vocab: int, d_ff: int,
                    max_seq: int, runnable: bool = True) -> None:
        """dpinfer decode's check that the manifest's model is the one it
        runs (@runnable False: too big to generate, transfer only), with
        its errno and reason, for the refusing ACK."""
        l = self.layout
        if (l.n_layers, l.n_heads, l.head_dim, self.model_seed, self.vocab,
                self.d_ff, self.max_seq) != (n_layers, n_heads, head_dim,
                                             seed, vocab, d_ff, max_seq):
            raise KVError(errno.EINVAL, f"the manifest's model is not {name}")
        if self.n_generate and not runnable:
            raise KVError(errno.EFBIG,
                          f"{name} is too big to run here: transfer only")
        if self.n_generate > MAX_GENERATE:
            raise KVError(errno.EINVAL, f"more than {MAX_GENERATE} tokens")

    def encode(self) -> bytes:
        """kv_manifest_encode(): ManifestError(EINVAL) for anything the
        receiver would refuse, so a sender never sends it."""
        self.check()
        l = self.layout
        out = bytearray(_HDR.pack(
            MANIFEST_MAGIC, MANIFEST_VERSION, MANIFEST_HDR_LEN, l.dtype,
            l.n_layers, l.n_heads, l.head_dim, l.max_tokens, self.tokens,
            self.chunk_bytes, self.n_chunks, self.first_token,
            self.n_generate, self.d_ff, self.vocab, self.max_seq, l.bytes,
            self.model_seed, self.request_id, 0))
        for k, v in zip(l.k, l.v):
            out += _LAYER.pack(k.offset, k.token_stride, k.head_stride,
                               v.offset, v.token_stride, v.head_stride)
        return bytes(out)

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview,
               region_limit: int = U64_MAX) -> Manifest:
        """kv_manifest_decode(): parse and validate a received manifest,
        @region_limit being the receiver's registered region size.

        ManifestError: EMSGSIZE (not the length its n_layers implies),
        EPROTO (magic, version or header length), EINVAL (a field or the
        layout), EFBIG (region bytes past @region_limit).
        """
        p = bytes(buf)
        n = len(p)
        short = (f"manifest of {n} bytes is shorter than its "
                 f"{MANIFEST_HDR_LEN}-byte header")
        if n < 12:
            raise ManifestError(errno.EMSGSIZE, short)
        if p[:4] != MANIFEST_MAGIC:
            raise ManifestError(errno.EPROTO, "bad magic %02x %02x %02x %02x "
                                '(want "KVM1")' % tuple(p[:4]))
        version, hdr_len = struct.unpack_from("<2I", p, 4)
        if version != MANIFEST_VERSION:
            raise ManifestError(errno.EPROTO, f"manifest version {version}, "
                                f"this side speaks {MANIFEST_VERSION}")
        if hdr_len != MANIFEST_HDR_LEN:
            raise ManifestError(errno.EPROTO, f"header length {hdr_len}, "
                                f"version {MANIFEST_VERSION} has "
                                f"{MANIFEST_HDR_LEN}")
        if n < MANIFEST_HDR_LEN:
            raise ManifestError(errno.EMSGSIZE, short)
        (_, _, _, dtype, n_layers, n_heads, head_dim, max_tokens, tokens,
         chunk_bytes, n_chunks, first_token, n_generate, d_ff, vocab,
         max_seq, region, seed, request_id, reserved) = _HDR.unpack_from(p)
        if not 1 <= n_layers <= MAX_LAYERS:
            raise ManifestError(errno.EINVAL, f"n_layers {n_layers} is not "
                                f"in 1..{MAX_LAYERS}")
        if n != cls.size(n_layers):
            raise ManifestError(errno.EMSGSIZE, f"manifest is {n} bytes, "
                                f"{n_layers} layers need "
                                f"{cls.size(n_layers)}")
        if reserved:
            raise ManifestError(errno.EINVAL, f"reserved field is "
                                f"0x{reserved:x}, must be zero")
        k: list[Tensor] = []
        v: list[Tensor] = []
        for f in _LAYER.iter_unpack(p[MANIFEST_HDR_LEN:]):
            k.append(Tensor(*f[:3]))
            v.append(Tensor(*f[3:]))
        m = cls(Layout(n_layers, n_heads, head_dim, max_tokens, dtype,
                       region, k, v),
                tokens=tokens, chunk_bytes=chunk_bytes, n_chunks=n_chunks,
                model_seed=seed, d_ff=d_ff, vocab=vocab, max_seq=max_seq,
                first_token=first_token, n_generate=n_generate,
                request_id=request_id)
        m.check(region_limit)
        return m

    # --- chunk plan ---

    def _plan_first(self) -> list[int] | None:
        """plan_first(): tensor j's first chunk index for every j, then the
        total (exact, never wrapped); None where the C's arithmetic
        overflows or a size is zero."""
        l = self.layout
        if self._python_error() or not 1 <= l.n_layers <= MAX_LAYERS or \
                not self.chunk_bytes or not self.tokens or \
                self.tokens > l.max_tokens:
            return None
        first = []
        total = 0
        for t in self._tensors():
            span = _span(l, t, self.tokens)
            if span is None or t.offset + span > U64_MAX:
                return None
            first.append(total)
            total += -(-span // self.chunk_bytes)
        first.append(total)
        return first

    def _valid_first(self) -> list[int]:
        """_plan_first() of a plan the immediate can name, or KVError."""
        first = self._plan_first()
        if first is None or first[-1] > IMM_MAX_CHUNKS:
            raise KVError(errno.EINVAL, "no valid chunk plan: zero tokens "
                          "or chunk bytes, an overflow, or more than "
                          f"{IMM_MAX_CHUNKS} chunks")
        return first

    def plan_count(self) -> int:
        """kv_plan_count(): chunks in the plan (n_chunks ignored); 0 when
        there is no valid plan."""
        first = self._plan_first()
        return 0 if first is None or first[-1] > IMM_MAX_CHUNKS else first[-1]

    def plan(self) -> list[Chunk]:
        """kv_plan(): every chunk in index order (tensor 0's, then 1's...);
        KVError(EINVAL) when there is no valid plan."""
        self._valid_first()
        l = self.layout
        out = []
        for j, t in enumerate(self._tensors()):
            span = _span(l, t, self.tokens)
            assert span is not None  # the plan is valid
            for at in range(0, span, self.chunk_bytes):
                out.append(Chunk(len(out), j // 2, j & 1, t.offset + at,
                                 min(span - at, self.chunk_bytes)))
        return out

    def plan_chunk(self, index: int) -> Chunk:
        """kv_plan_chunk(): KVError ERANGE past the end, EINVAL bad plan."""
        first = self._valid_first()
        if not 0 <= index < first[-1]:
            raise KVError(errno.ERANGE, f"chunk {index} of a plan of "
                          f"{first[-1]}")
        j = bisect.bisect_right(first, index) - 1
        t = self._tensors()[j]
        span = _span(self.layout, t, self.tokens)
        assert span is not None  # the plan is valid
        at = (index - first[j]) * self.chunk_bytes
        return Chunk(index, j // 2, j & 1, t.offset + at,
                     min(span - at, self.chunk_bytes))

    def plan_layer(self, layer: int) -> tuple[int, int]:
        """kv_plan_layer(): (first, count) of layer @layer's chunks, K then
        V, so a sender can write a layer as soon as it is computed.
        KVError ERANGE for a layer past n_layers, EINVAL bad plan."""
        first = self._valid_first()
        if not 0 <= layer < self.layout.n_layers:
            raise KVError(errno.ERANGE, f"layer {layer} of "
                          f"{self.layout.n_layers}")
        return first[2 * layer], first[2 * layer + 2] - first[2 * layer]


# --- immediate ---

IMM_TYPE_SHIFT = 30
IMM_INDEX_MASK = (1 << IMM_TYPE_SHIFT) - 1
IMM_MAX_CHUNKS = 1 << IMM_TYPE_SHIFT
IMM_INVALID = 0xFFFFFFFF  # type 3: every parser rejects it


class ImmType(IntEnum):
    """enum kv_imm_type: bits 31..30 of an immediate (2 and 3 reserved)."""

    DATA = 0
    FINAL = 1


def imm_data(index: int) -> int:
    """kv_imm_data(): chunk @index's immediate; IMM_INVALID past 2^30."""
    return index if 0 <= index < IMM_MAX_CHUNKS else IMM_INVALID


def imm_final(n_chunks: int) -> int:
    """kv_imm_final(): the final marker; IMM_INVALID past 2^30 chunks."""
    if not 0 <= n_chunks <= IMM_MAX_CHUNKS:
        return IMM_INVALID
    return ImmType.FINAL << IMM_TYPE_SHIFT | (n_chunks & IMM_INDEX_MASK)


def imm_parse(imm: int) -> tuple[ImmType, int]:
    """kv_imm_parse(): (type, index); KVError(EINVAL) for a reserved type
    (or a value that is not 32 bits)."""
    kind = imm >> IMM_TYPE_SHIFT if 0 <= imm <= U32_MAX else None
    if kind not in (ImmType.DATA, ImmType.FINAL):
        raise KVError(errno.EINVAL, f"immediate {imm:#010x}: not a chunk "
                      "or a marker")
    return ImmType(kind), imm & IMM_INDEX_MASK


# --- receive tracking (decode side) ---

RX_MISSING_RANGES = 8
_MORE_TEXT = ", ... and 4294967295 more chunks"  # the longest tail
_FINAL_TEXT = "; final marker missing"
_NOT_ALL_SET = re.compile(rb"[^\xff]")
_NOT_ALL_CLEAR = re.compile(rb"[^\x00]")


class RxTracker:
    """struct kv_rx: which chunks (and whether the final marker) arrived.

    One bit per chunk; mark() raises what kv_rx_mark() returns, with
    dpinfer decode's reason text (dpinfer then answers -EPROTO with it).
    """

    def __init__(self, m: Manifest) -> None:
        """kv_rx_init() of a validated manifest: KVError(EINVAL) when its
        plan is not valid or disagrees with m.n_chunks."""
        first = m._plan_first()
        total = 0 if first is None else first[-1]
        if not total or total > IMM_MAX_CHUNKS or total != m.n_chunks:
            raise KVError(errno.EINVAL, f"manifest says {m.n_chunks} chunks, "
                          f"the plan has {total or 'none'}")
        assert first is not None
        self.n_chunks: int = total
        self.received: int = 0
        self.final_seen: bool = False
        self._first = first
        self._bits = bytearray((total + 7) // 8)

    def has(self, index: int) -> bool:
        """Chunk @index arrived."""
        return bool(self._bits[index >> 3] >> (index & 7) & 1)

    def mark(self, imm: int) -> None:
        """kv_rx_mark(): record a completion's immediate. KVError EEXIST
        (a duplicate chunk or a second marker), ERANGE (no such chunk),
        EINVAL (a reserved type, or a marker whose count disagrees; it is
        not recorded)."""
        what = f"immediate 0x{imm:08x}: "
        try:
            kind, index = imm_parse(imm)
        except KVError:
            raise KVError(errno.EINVAL, what + "not a chunk or a marker") \
                from None
        if kind == ImmType.FINAL:
            if self.final_seen:
                raise KVError(errno.EEXIST, what + "a duplicate")
            if index != self.n_chunks & IMM_INDEX_MASK:
                raise KVError(errno.EINVAL, what + "not a chunk or a marker")
            self.final_seen = True
            return
        if index >= self.n_chunks:
            raise KVError(errno.ERANGE, what + "no such chunk")
        if self.has(index):
            raise KVError(errno.EEXIST, what + "a duplicate")
        self._bits[index >> 3] |= 1 << (index & 7)
        self.received += 1

    @property
    def complete(self) -> bool:
        """kv_rx_complete(): every chunk and the final marker arrived."""
        return self.received == self.n_chunks and self.final_seen

    def _scan(self, i: int, want: int) -> int:
        """The first chunk at or after @i whose bit is @want, or n_chunks;
        whole bytes go through re, so 2^30 chunks take no Python loop."""
        n, bits = self.n_chunks, self._bits
        while i < n and i & 7:
            if bits[i >> 3] >> (i & 7) & 1 == want:
                return i
            i += 1
        if i >= n:
            return n
        found = (_NOT_ALL_CLEAR if want else _NOT_ALL_SET).search(bits, i >> 3)
        if found is None:
            return n
        # Bits past n_chunks are clear: a clear one found there is n itself.
        byte = bits[found.start()] if want else ~bits[found.start()] & 0xFF
        return found.start() * 8 + (byte & -byte).bit_length() - 1

    def _tensor_name(self, index: int) -> str:
        """rx_tensor(): "layer L K|V" of the tensor chunk @index is in."""
        j = bisect.bisect_right(self._first, index, 0, len(self._first) - 1)
        return f"layer {(j - 1) // 2} {_KIND_NAME[(j - 1) & 1]}"

    def missing(self, size: int | None = None) -> str:
        """kv_rx_missing(): what is missing, for a timeout's reason, e.g.
        "missing 3 of 40 chunks: 7 (layer 1 V), 12-13 (layer 3 K)".

        @size is the C's buffer length (the text is at most size - 1
        characters, cut the way the C cuts it); None: no limit but the
        RX_MISSING_RANGES ranges. dpinfer's timeout reason is
        prefix + missing(REASON_LEN - len(prefix)) with prefix
        f"timed out after {ms} ms: ".
        """
        text = ""

        def add(s: str) -> None:
            nonlocal text
            if size is not None:
                if len(text) + 1 >= size:
                    return
                s = s[:size - 1 - len(text)]
            text += s

        if size == 0:
            return ""
        n = self.n_chunks
        lost = n - self.received
        if not lost:
            add(f"all {n} chunks arrived" + (" and the final marker"
                if self.final_seen else _FINAL_TEXT))
            return text
        add(f"missing {lost} of {n} chunks: ")
        tail = len(_MORE_TEXT) + (0 if self.final_seen else len(_FINAL_TEXT))
        listed = ranges = 0
        i = self._scan(0, 0)
        while i < n:
            a, b = i, self._scan(i + 1, 1) - 1
            ta, tb = self._tensor_name(a), self._tensor_name(b)
            item = f"{a}" if a == b else f"{a}-{b}"
            item += f" ({ta})" if ta == tb else f" ({ta} to {tb})"
            if ranges == RX_MISSING_RANGES or \
                    (size is not None and len(text) + 2 + len(item) + tail
                     >= size):
                break
            add((", " if ranges else "") + item)
            listed += b - a + 1
            ranges += 1
            i = self._scan(b + 1, 0)
        if listed < lost:
            add(f"{', ' if ranges else ''}... and {lost - listed} more chunks")
        if not self.final_seen:
            add(_FINAL_TEXT)
        return text


# --- dpinfer's control messages ---

ACK_MAGIC = 0x4B41564B  # "KVAK" little-endian
RESULT_MAGIC = 0x5352564B  # "KVRS"
REASON_LEN = 160
MAX_GENERATE = 1024
ACK_LEN = 24 + REASON_LEN
RESULT_LEN = 48 + REASON_LEN + 4 * MAX_GENERATE

_ACK = struct.Struct("<IiI4xQ")  # magic, status, rkey, pad, region bytes
# magic, status, n_tokens, pad, logits hash, first step, decode, transfer ns
_RESULT = struct.Struct("<IiI4x4Q")


def _reason_bytes(reason: str) -> bytes:
    """A C char[REASON_LEN]: cut as snprintf cuts, NUL-padded."""
    return reason.encode()[:REASON_LEN - 1].ljust(REASON_LEN, b"\0")


def _reason_str(raw: bytes) -> str:
    """The C string in a received char[REASON_LEN] (last byte forced NUL,
    as the C reader does)."""
    return raw[:REASON_LEN - 1].split(b"\0", 1)[0].decode("utf-8", "replace")


def _pack(st: struct.Struct, what: str, *values: int) -> bytes:
    """st.pack(), a value past its field being KVError(EINVAL)."""
    try:
        return st.pack(*values)
    except struct.error as e:
        raise KVError(errno.EINVAL, f"{what}: {e}") from None


@dataclass
class Ack:
    """dpinfer's ACK (decode to prefill, after the manifest): status 0 and
    the KV region's rkey and size, or -errno and the reason it refused."""

    status: int = 0
    rkey: int = 0
    region_bytes: int = 0
    reason: str = ""

    def encode(self) -> bytes:
        """The ACK_LEN bytes dpinfer decode sends."""
        return _pack(_ACK, "ACK", ACK_MAGIC, self.status, self.rkey,
                     self.region_bytes) + _reason_bytes(self.reason)

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview) -> Ack:
        """A received ACK; KVError(EPROTO) for a wrong length or magic."""
        p = bytes(buf)
        if len(p) != ACK_LEN:
            raise KVError(errno.EPROTO, f"ACK of {len(p)} bytes, want "
                          f"{ACK_LEN}")
        magic, status, rkey, region = _ACK.unpack_from(p)
        if magic != ACK_MAGIC:
            raise KVError(errno.EPROTO, f"bad ACK magic 0x{magic:08x}")
        return cls(status, rkey, region, _reason_str(p[_ACK.size:]))


@dataclass
class Result:
    """dpinfer's RESULT (decode to prefill, after the transfer): the
    generated tokens, the final logits' hash and the decode's timings, or
    -errno and the reason the request failed."""

    status: int = 0
    tokens: list[int] = field(default_factory=list)
    logits_hash: int = 0
    decode_first_ns: int = 0
    decode_ns: int = 0
    transfer_ns: int = 0
    reason: str = ""

    def encode(self) -> bytes:
        """The RESULT_LEN bytes dpinfer decode sends (unused token slots
        zero); KVError(EINVAL) for more than MAX_GENERATE tokens."""
        n = len(self.tokens)
        if n > MAX_GENERATE:
            raise KVError(errno.EINVAL, f"{n} tokens, at most {MAX_GENERATE}")
        head = _pack(_RESULT, "RESULT", RESULT_MAGIC, self.status, n,
                     self.logits_hash, self.decode_first_ns, self.decode_ns,
                     self.transfer_ns)
        toks = _pack(struct.Struct(f"<{n}I"), "RESULT tokens", *self.tokens)
        return (head + _reason_bytes(self.reason) + toks).ljust(RESULT_LEN,
                                                                b"\0")

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview) -> Result:
        """result_decode(): KVError(EPROTO) for a wrong length or magic or
        more than MAX_GENERATE tokens."""
        p = bytes(buf)
        if len(p) != RESULT_LEN:
            raise KVError(errno.EPROTO, f"RESULT of {len(p)} bytes, want "
                          f"{RESULT_LEN}")
        magic, status, n, hsh, first, dec, xfer = _RESULT.unpack_from(p)
        if magic != RESULT_MAGIC:
            raise KVError(errno.EPROTO, f"bad RESULT magic 0x{magic:08x}")
        if n > MAX_GENERATE:
            raise KVError(errno.EPROTO, f"RESULT has {n} tokens, at most "
                          f"{MAX_GENERATE}")
        at = _RESULT.size + REASON_LEN
        return cls(status, list(struct.unpack_from(f"<{n}I", p, at)), hsh,
                   first, dec, xfer, _reason_str(p[_RESULT.size:at]))
