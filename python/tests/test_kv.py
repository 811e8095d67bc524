"""dmaplane.kv against the C implementation, byte for byte.

The wire format is the contract between a C and a Python host, so the
expected values below marked "from C" were not written by hand: a
throwaway program linked src/apps/kv_manifest.c and kv_layout.c and
#included src/apps/dpinfer.c (main renamed) to call its own ACK/RESULT
code (dec_reply() on an endpoint that fails to post, after it wrote the
message; result_encode()/result_decode()). It read commands (build a
manifest with kv_layout_init() and field overrides, raw-encode it, write a
wire field, kv_manifest_decode() with a limit, kv_plan*(), kv_imm_*(),
kv_rx_*()) and printed the C's results: return codes, reason strings,
encodings as hex, or the sha256 of longer outputs (a manifest's bytes; a
plan as "index layer kind offset length" lines; "errno|reason" lines of
many decodes; its copy of the C test's random-bytes fuzz draws each
position before its value, which the C test leaves unsequenced). The
cases mirror tests/kv_manifest_test.c. Nothing here needs a C compiler.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import struct

import pytest

from dmaplane import kv

KiB = 1 << 10
MiB = 1 << 20
U32 = kv.U32_MAX
U64 = kv.U64_MAX


def loff(layer: int, kind: int, fld: int) -> int:
    """Offset of a layer table field (kind 0 K / 1 V; field 0 offset,
    1 token_stride, 2 head_stride)."""
    return 96 + layer * 48 + kind * 24 + fld * 8


def raw_encode(m: kv.Manifest) -> bytearray:
    """The documented table written without kv's encoder or checks, so a
    test can put any hostile value on the wire."""
    l = m.layout
    p = bytearray(96 + 48 * l.n_layers)

    def put(off: int, size: int, v: int) -> None:
        p[off:off + size] = v.to_bytes(size, "little")

    p[0:4] = b"KVM1"
    for off, v in ((4, 1), (8, 96), (12, l.dtype), (16, l.n_layers),
                   (20, l.n_heads), (24, l.head_dim), (28, l.max_tokens),
                   (32, m.tokens), (36, m.chunk_bytes), (40, m.n_chunks),
                   (44, m.first_token), (48, m.n_generate), (52, m.d_ff),
                   (56, m.vocab), (60, m.max_seq)):
        put(off, 4, v)
    for off, v in ((64, l.bytes), (72, m.model_seed), (80, m.request_id)):
        put(off, 8, v)
    for i in range(l.n_layers):
        for kind, t in enumerate((l.k[i], l.v[i])):
            for fld, v in enumerate((t.offset, t.token_stride,
                                     t.head_stride)):
                put(loff(i, kind, fld), 8, v)
    return p


def manifest(layout: kv.Layout, tokens: int, chunk: int,
             **fields: int) -> kv.Manifest:
    """The C test's model_fields(), then @fields, then the plan's count."""
    m = kv.Manifest(layout, tokens=tokens, chunk_bytes=chunk,
                    model_seed=0x0123456789ABCDEF, d_ff=172, vocab=256,
                    max_seq=8192, first_token=42, n_generate=8,
                    request_id=0xFEEDFACECAFEBEEF)
    for name, v in fields.items():
        setattr(m, name, v)
    m.n_chunks = m.plan_count()
    return m


def tiny(dtype: int, tokens: int, **fields: int) -> kv.Manifest:
    """2 layers, 4 heads, head_dim 16, 64 token rows, 64 KiB chunks."""
    return manifest(kv.Layout.packed(2, 4, 16, 64, dtype), tokens, 64 * KiB,
                    **fields)


def shape7b(tokens: int, max_tokens: int, chunk: int,
            **fields: int) -> kv.Manifest:
    """32 layers, 32 heads, head_dim 128, fp16: a 7B model's KV layout."""
    return manifest(kv.Layout.packed(32, 32, 128, max_tokens, kv.DType.F16),
                    tokens, chunk, **fields)


def strided() -> kv.Manifest:
    """Padding between heads and between token rows, tensors apart."""
    k, v = [], []
    off = 4096
    for _ in range(2):
        for tensors in (k, v):
            tensors.append(kv.Tensor(off, 4096, 48))  # 144 of 4096 used
            off += 63 * 4096 + 2 * 48 + 32 + 4096 + 64
    return manifest(kv.Layout(2, 3, 8, 64, kv.DType.F32, off + 100, k, v),
                    40, 64 * KiB)


def huge_plan(rows: int, v_offset: int = 1 << 46,
              region: int = 1 << 47) -> kv.Manifest:
    """One layer, one head of 16 fp32 per 64 KiB token row: each token one
    64 KiB chunk, 2 * rows chunks (n_chunks wrapped to 32 bits)."""
    layout = kv.Layout(1, 1, 16, rows, kv.DType.F32, region,
                       [kv.Tensor(0, 64 * KiB, 64)],
                       [kv.Tensor(v_offset, 64 * KiB, 64)])
    m = manifest(layout, rows, 64 * KiB, n_generate=0, max_seq=rows)
    m.n_chunks = 2 * rows & U32
    return m


def dpinfer(conf: dict[str, int], dtype: int, prompt: list[int],
            generate: int, chunk: int) -> kv.Manifest:
    """What dpinfer prefill sends for request 0 (pre_manifest()): the KV of
    the prompt's positions 0 .. n-2, room for n + generate tokens."""
    n = len(prompt)
    layout = kv.Layout.packed(conf["layers"], conf["heads"], conf["head_dim"],
                              n + generate, dtype)
    m = kv.Manifest(layout, tokens=n - 1, chunk_bytes=chunk,
                    model_seed=conf["seed"], d_ff=conf["d_ff"],
                    vocab=conf["vocab"], max_seq=conf["max_seq"],
                    first_token=prompt[-1], n_generate=generate, request_id=0)
    m.n_chunks = m.plan_count()
    return m


# fixtures/models/tiny.conf and llama7b-kv.conf
TINY_CONF = dict(layers=2, heads=4, head_dim=16, d_ff=128, vocab=256,
                 max_seq=512, seed=1)
LLAMA7B_CONF = dict(layers=32, heads=32, head_dim=128, d_ff=11008,
                    vocab=32000, max_seq=4096, seed=7)
# dpinfer --prompt "hello, dmaplane" (tokens: bytes mod vocab), and
# --prompt-len 512 --synthetic (token i: (131 i + 7) mod vocab, no generate)
HELLO = [b % 256 for b in b"hello, dmaplane"]
LONG = [(i * 131 + 7) % 32000 for i in range(512)]

BUILD = {
    "tiny37": lambda: tiny(kv.DType.F32, 37),
    "strided": strided,
    "tiny fp32 64": lambda: tiny(kv.DType.F32, 64, n_generate=0),
    "tiny fp16 64": lambda: tiny(kv.DType.F16, 64, n_generate=0),
    "tiny fp16 1": lambda: tiny(kv.DType.F16, 1),
    "tiny fp16 37": lambda: tiny(kv.DType.F16, 37),
    "7b 128 tokens 1M": lambda: shape7b(128, 128, MiB, n_generate=0,
                                        max_seq=128),
    "7b 100 of 4096 192K": lambda: shape7b(100, 4096, 192 * KiB),
    "7b 130 of 256 4M": lambda: shape7b(130, 256, 4 * MiB),
    "7b 100 of 128 256K": lambda: shape7b(100, 128, 256 * KiB),
    "dpinfer tiny fp32": lambda: dpinfer(TINY_CONF, kv.DType.F32, HELLO, 16,
                                         256 * KiB),
    "dpinfer tiny fp16": lambda: dpinfer(TINY_CONF, kv.DType.F16, HELLO, 16,
                                         256 * KiB),
    "dpinfer llama7b-kv fp16 64K": lambda: dpinfer(
        LLAMA7B_CONF, kv.DType.F16, LONG, 0, 64 * KiB),
    "dpinfer llama7b-kv fp16 256K": lambda: dpinfer(
        LLAMA7B_CONF, kv.DType.F16, LONG, 0, 256 * KiB),
    "dpinfer llama7b-kv fp16 1M": lambda: dpinfer(
        LLAMA7B_CONF, kv.DType.F16, LONG, 0, MiB),
    "dpinfer llama7b-kv fp16 4M": lambda: dpinfer(
        LLAMA7B_CONF, kv.DType.F16, LONG, 0, 4 * MiB),
    "dpinfer llama7b-kv fp32 192K": lambda: dpinfer(
        LLAMA7B_CONF, kv.DType.F32, LONG, 0, 192 * KiB),
    "2^30 chunks": lambda: huge_plan(1 << 29),
    # bases of the rejection cases
    "7b": lambda: shape7b(100, 128, 256 * KiB),
    "huge_2^29+1": lambda: huge_plan((1 << 29) + 1),
    "huge_2^31": lambda: huge_plan(1 << 31, 1 << 47, 1 << 48),
}

# --- from C ---

# name: (n_chunks, the manifest as hex (or its sha256), the plan's sha256,
#        (layer, first, count) of kv_plan_layer(), kv_plan_chunk() probes)
ENCODINGS = {
    "tiny37":
        (4,
         "4b564d310100000060000000010000000200000004000000100000004000000025"
         "00000000000100040000002a00000008000000ac00000000010000002000000000"
         "010000000000efcdab8967452301efbefecacefaedfe0000000000000000000000"
         "000000000000010000000000004000000000000000004000000000000000010000"
         "000000004000000000000000008000000000000000010000000000004000000000"
         "00000000c000000000000000010000000000004000000000000000",
         "50bd12360d60a9ab8a92488585b35f4b8c7de08e5bd3e1acdba1ee92e563c700",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 9472), (1, 0, 1, 16384, 9472), (3, 1, 1, 49152, 9472))),
    "strided":
        (12,
         "4b564d310100000060000000010000000200000003000000080000004000000028"
         "000000000001000c0000002a00000008000000ac00000000010000002000006413"
         "100000000000efcdab8967452301efbefecacefaedfe0000000000000000001000"
         "000000000000100000000000003000000000000000c01004000000000000100000"
         "000000003000000000000000801108000000000000100000000000003000000000"
         "00000040120c000000000000100000000000003000000000000000",
         "e393e82e493b865c2f83deb4cdf28de2a448ea25816d0fe9431f370e0521373c",
         ((0, 0, 6), (1, 6, 6)),
         ((0, 0, 0, 4096, 65536), (4, 0, 1, 331968, 65536),
          (11, 1, 1, 922176, 28800))),
    "tiny fp32 64":
        (4,
         "2a80f3bd2db6bf4acf502b29d71eaca34bec6830ad2e950a86484ab7524fdaf1",
         "5c3c1546142823439f23d304bbb6474fa3d2f105c7c0dfc95810425e8b0259dc",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 16384), (1, 0, 1, 16384, 16384),
          (3, 1, 1, 49152, 16384))),
    "tiny fp16 64":
        (4,
         "6a940345886dd15de37dac12dd8564f9b84fe8f28fbe51e0df648a8a37a1b0a2",
         "f31dd003230267fc0ef9ff368facaa453b4e328abb2c9b1b02132885482f6b15",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 8192), (1, 0, 1, 8192, 8192), (3, 1, 1, 24576, 8192))),
    "tiny fp16 1":
        (4,
         "7a79cf9220cf8f369a2a94d5f1c535db7cdd495ff956778b46d04072bc5968b2",
         "865b47eb9942c2707be0aa48a439056ccf6cbb0c00d4783d8008ba2c1f75ee3a",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 128), (1, 0, 1, 8192, 128), (3, 1, 1, 24576, 128))),
    "7b 128 tokens 1M":
        (64,
         "3a0e0c2840b47cc7304378d0780300e5b4222d94774ed91058d4eb2af76df0d9",
         "df9e0f4b3873c1dac257e7f5515425c13d066fdb348f78c67c75b129f2231205",
         ((0, 0, 2), (16, 32, 2), (31, 62, 2)),
         ((0, 0, 0, 0, 1048576), (21, 10, 1, 22020096, 1048576),
          (63, 31, 1, 66060288, 1048576))),
    "7b 100 of 4096 192K":
        (320,
         "7acfb1a3a6231ca73572f5443272862d15e7eb5f29abf7771d31a11babf3b45f",
         "97c6b14e7b8915c7c7ddb75fca0ba15ad07d32c687cc72dcf0f0ce3c86075ee5",
         ((0, 0, 10), (16, 160, 10), (31, 310, 10)),
         ((0, 0, 0, 0, 196608), (106, 10, 1, 704839680, 196608),
          (319, 31, 1, 2114715648, 32768))),
    "7b 130 of 256 4M":
        (64,
         "3d3924e0d3a96ea64432435287e053eb4ebb078d513eefda5eb8533d65bc6351",
         "635418d8dca96eee6c433605281e28a9c36e80ba188ebf3c151ed673f066da86",
         ((0, 0, 2), (16, 32, 2), (31, 62, 2)),
         ((0, 0, 0, 0, 1064960), (21, 10, 1, 44040192, 1064960),
          (63, 31, 1, 132120576, 1064960))),
    "7b 100 of 128 256K":
        (256,
         "b6f1b0d79213967da7cbf568855d5813d26f7d9a29af3ea0138f076219f4d9ec",
         "5df6d87f80fca3a67651093ecb966f97f7f7527dd3b92f58b208c08b48b78d84",
         ((0, 0, 8), (16, 128, 8), (31, 248, 8)),
         ((0, 0, 0, 0, 262144), (85, 10, 1, 22282240, 262144),
          (255, 31, 1, 66846720, 32768))),
    "dpinfer tiny fp32":
        (4,
         "e6aba02903dfffb7a31e722da20abc4beaad8733006b0af40f49c2ba459711ea",
         "92c6fefd1150be37d65810bb5038c09c2f934add4347bf48134d1c48820a70c5",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 3584), (1, 0, 1, 7936, 3584), (3, 1, 1, 23808, 3584))),
    "dpinfer tiny fp16":
        (4,
         "5ad517b4f6c89e2fececc5cd4e7c6636e43a2996b882d4701361a73615ad1226",
         "d40ac6705a477a40f23cf9b5dc4d3476bb8edd6f5075bbd7e3266aa7d17091d1",
         ((0, 0, 2), (1, 2, 2)),
         ((0, 0, 0, 0, 1792), (1, 0, 1, 3968, 1792), (3, 1, 1, 11904, 1792))),
    "dpinfer llama7b-kv fp16 64K":
        (4096,
         "4ac926517dc3923ee9e9eec9cbb2884be6a7c1d5e48733978e2b4b76a556be87",
         "817c689dcc4cec129d329c2029d78559b43cde5f36c42be7a1bd458b1e7bb414",
         ((0, 0, 128), (16, 2048, 128), (31, 3968, 128)),
         ((0, 0, 0, 0, 65536), (1365, 10, 1, 89456640, 65536),
          (4095, 31, 1, 268369920, 57344))),
    "dpinfer llama7b-kv fp16 256K":
        (1024,
         "14a9816412cfff8f1bdfb83c76c1ff9ff6629f9f5547539ed6fe5a938a6ea203",
         "bd3b7be1163131051f400609ec224a64460ef2b6ec0c4d5395b4133b54db3558",
         ((0, 0, 32), (16, 512, 32), (31, 992, 32)),
         ((0, 0, 0, 0, 262144), (341, 10, 1, 89391104, 262144),
          (1023, 31, 1, 268173312, 253952))),
    "dpinfer llama7b-kv fp16 1M":
        (256,
         "e59f9cd06050c58cf9024da2872dd9b93e8ca3bd753cd2935a164809015ee854",
         "c841c099328953f47bfe09a1f6a62c5c445dbd1b63c45918e69dcdc20aee396a",
         ((0, 0, 8), (16, 128, 8), (31, 248, 8)),
         ((0, 0, 0, 0, 1048576), (85, 10, 1, 89128960, 1048576),
          (255, 31, 1, 267386880, 1040384))),
    "dpinfer llama7b-kv fp16 4M":
        (64,
         "4e42a84412069c0db5e135546f30d98bce495695204a5a0dbd524159e2e83080",
         "e7235728132e29ce6c1456121990a57e572e6a8a30edfb8bd298923515f445d0",
         ((0, 0, 2), (16, 32, 2), (31, 62, 2)),
         ((0, 0, 0, 0, 4186112), (21, 10, 1, 88080384, 4186112),
          (63, 31, 1, 264241152, 4186112))),
    "dpinfer llama7b-kv fp32 192K":
        (2752,
         "92d7f7d37de25cee20ee66bda49d8f9b8f555acb286318c5bb4ebf20535fdd90",
         "cb1827ad47622680113c5ac2cbe26c34e6db005dee4db07588c3e90abf3c7a47",
         ((0, 0, 86), (16, 1376, 86), (31, 2666, 86)),
         ((0, 0, 0, 0, 196608), (917, 10, 1, 178913280, 196608),
          (2751, 31, 1, 536739840, 114688))),
    "2^30 chunks":
        (1073741824,
         "bb754149968f58d53c937bb56f4d1a47b185c53a59d78955249d3b429596044c",
         None,
         ((0, 0, 1073741824),),
         ((0, 0, 0, 0, 65536), (357913941, 0, 0, 23456248037376, 65536),
          (1073741823, 0, 1, 105553116200960, 64))),
}

# name, base, mutations, length, limit, errno, reason
REJECTS = [
    ("length 0", "tiny37", [], 0, U64, "EMSGSIZE",
     "manifest of 0 bytes is shorter than its 96-byte header"),
    ("length 11", "tiny37", [], 11, U64, "EMSGSIZE",
     "manifest of 11 bytes is shorter than its 96-byte header"),
    ("length 12", "tiny37", [], 12, U64, "EMSGSIZE",
     "manifest of 12 bytes is shorter than its 96-byte header"),
    ("length 95", "tiny37", [], 95, U64, "EMSGSIZE",
     "manifest of 95 bytes is shorter than its 96-byte header"),
    ("length 96", "tiny37", [], 96, U64, "EMSGSIZE",
     "manifest is 96 bytes, 2 layers need 192"),
    ("length 191", "tiny37", [], 191, U64, "EMSGSIZE",
     "manifest is 191 bytes, 2 layers need 192"),
    ("length 193", "tiny37", [], 193, U64, "EMSGSIZE",
     "manifest is 193 bytes, 2 layers need 192"),
    ("magic KVM2", "tiny37", [("w32", 0, 0x324d564b)], None, U64, "EPROTO",
     'bad magic 4b 56 4d 32 (want "KVM1")'),
    ("magic kvm1", "tiny37", [("w32", 0, 0x316d766b)], None, U64, "EPROTO",
     'bad magic 6b 76 6d 31 (want "KVM1")'),
    ("version 2", "tiny37", [("w32", 4, 2)], None, U64, "EPROTO",
     "manifest version 2, this side speaks 1"),
    ("version 0", "tiny37", [("w32", 4, 0)], None, U64, "EPROTO",
     "manifest version 0, this side speaks 1"),
    ("version 16777216", "tiny37", [("w32", 4, 0x1000000)], None, U64,
     "EPROTO", "manifest version 16777216, this side speaks 1"),
    ("header length 104", "tiny37", [("w32", 8, 104)], None, U64, "EPROTO",
     "header length 104, version 1 has 96"),
    ("reserved 1", "tiny37", [("w64", 88, 1)], None, U64, "EINVAL",
     "reserved field is 0x1, must be zero"),
    ("n_layers 0, header only", "tiny37", [("w32", 16, 0)], 96, U64, "EINVAL",
     "n_layers 0 is not in 1..128"),
    ("n_layers 0", "tiny37", [("w32", 16, 0)], None, U64, "EINVAL",
     "n_layers 0 is not in 1..128"),
    ("n_layers 129", "tiny37", [("w32", 16, 129)], 6288, U64, "EINVAL",
     "n_layers 129 is not in 1..128"),
    ("n_layers max", "tiny37", [("w32", 16, 0xffffffff)], None, U64, "EINVAL",
     "n_layers 4294967295 is not in 1..128"),
    ("n_layers 3 in 2's length", "tiny37", [("w32", 16, 3)], None, U64,
     "EMSGSIZE", "manifest is 192 bytes, 3 layers need 240"),
    ("n_layers 1 in 2's length", "tiny37", [("w32", 16, 1)], None, U64,
     "EMSGSIZE", "manifest is 192 bytes, 1 layers need 144"),
    ("dtype 0", "tiny37", [("w32", 12, 0)], None, U64, "EINVAL",
     "unknown dtype 0 (1 fp32, 2 fp16)"),
    ("dtype 3", "tiny37", [("w32", 12, 3)], None, U64, "EINVAL",
     "unknown dtype 3 (1 fp32, 2 fp16)"),
    ("n_heads 0", "tiny37", [("w32", 20, 0)], None, U64, "EINVAL",
     "zero dimension: n_heads 0, head_dim 16, max_tokens 64"),
    ("head_dim 0", "tiny37", [("w32", 24, 0)], None, U64, "EINVAL",
     "zero dimension: n_heads 4, head_dim 0, max_tokens 64"),
    ("max_tokens 0", "tiny37", [("w32", 28, 0)], None, U64, "EINVAL",
     "zero dimension: n_heads 4, head_dim 16, max_tokens 0"),
    ("tokens 0", "tiny37", [("w32", 32, 0)], None, U64, "EINVAL",
     "tokens 0 is not in 1..max_tokens (64)"),
    ("tokens 65", "tiny37", [("w32", 32, 65)], None, U64, "EINVAL",
     "tokens 65 is not in 1..max_tokens (64)"),
    ("tokens max", "tiny37", [("w32", 32, 0xffffffff)], None, U64, "EINVAL",
     "tokens 4294967295 is not in 1..max_tokens (64)"),
    ("vocab 0", "tiny37", [("w32", 56, 0)], None, U64, "EINVAL",
     "zero model dimension: vocab 0, d_ff 172, max_seq 8192"),
    ("d_ff 0", "tiny37", [("w32", 52, 0)], None, U64, "EINVAL",
     "zero model dimension: vocab 256, d_ff 0, max_seq 8192"),
    ("max_seq 0", "tiny37", [("w32", 60, 0)], None, U64, "EINVAL",
     "zero model dimension: vocab 256, d_ff 172, max_seq 0"),
    ("first token 256", "tiny37", [("w32", 44, 256)], None, U64, "EINVAL",
     "first token 256 is not below vocab (256)"),
    ("first token max", "tiny37", [("w32", 44, 0xffffffff)], None, U64,
     "EINVAL", "first token 4294967295 is not below vocab (256)"),
    ("generate 28", "tiny37", [("w32", 48, 28)], None, U64, "EINVAL",
     "tokens 37 + generate 28 is past max_tokens (64)"),
    ("generate max", "tiny37", [("w32", 48, 0xffffffff)], None, U64, "EINVAL",
     "tokens 37 + generate 4294967295 is past max_tokens (64)"),
    ("past max_seq", "tiny37", [("w32", 60, 40), ("w32", 48, 4)], None, U64,
     "EINVAL", "tokens 37 + generate 4 is past the model's max_seq (40)"),
    ("up to max_seq", "tiny37", [("w32", 60, 40), ("w32", 48, 3)], None, U64,
     "0", ""),
    ("boundaries", "tiny37", [("w32", 44, 255), ("w32", 48, 27)], None, U64,
     "0", ""),
    ("region 4 short", "tiny37", [("w64", 64, 0xfffc)], None, U64, "EINVAL",
     "layer 1 V tensor ends at 65536, past the region (65532 bytes)"),
    ("layer 1 V past the end", "tiny37", [("w64", 168, 0x10000)], None, U64,
     "EINVAL",
     "layer 1 V tensor ends at 81920, past the region (65536 bytes)"),
    ("layer 1 V far past", "tiny37", [("w64", 168, 0x4000000000000000)], None,
     U64, "EINVAL",
     "layer 1 V tensor ends at 4611686018427404288, past the region (65536 "
     "bytes)"),
    ("token rows past the region", "tiny37", [("w64", 104, 4096)], None, U64,
     "EINVAL",
     "layer 0 K tensor ends at 258304, past the region (65536 bytes)"),
    ("bigger region", "tiny37", [("w64", 64, 0x10000000000)], None, U64, "0",
     ""),
    ("V on K", "tiny37", [("w64", 120, 0)], None, U64, "EINVAL",
     "layer 0 K [0, 16384) overlaps layer 0 V [0, 16384)"),
    ("K longer than V, same start", "tiny37",
     [("w64", 104, 512), ("w64", 120, 0)], None, U64, "EINVAL",
     "layer 0 V [0, 16384) overlaps layer 0 K [0, 32512)"),
    ("V 4 bytes into K", "tiny37", [("w64", 120, 0x3ffc)], None, U64,
     "EINVAL", "layer 0 K [0, 16384) overlaps layer 0 V [16380, 32764)"),
    ("layer 1 K on layer 0 V", "tiny37", [("w64", 144, 0x4000)], None, U64,
     "EINVAL", "layer 0 V [16384, 32768) overlaps layer 1 K [16384, 32768)"),
    ("K and V swapped", "tiny37", [("w64", 96, 0xc000), ("w64", 168, 0)],
     None, U64, "0", ""),
    ("head_stride 60", "tiny37", [("w64", 160, 60)], None, U64, "EINVAL",
     "layer 1 K head_stride 60 is below head_dim * 4 = 64: heads alias"),
    ("head_stride 0", "tiny37", [("w64", 160, 0)], None, U64, "EINVAL",
     "layer 1 K head_stride 0 is below head_dim * 4 = 64: heads alias"),
    ("token_stride 128", "tiny37", [("w64", 128, 128)], None, U64, "EINVAL",
     "layer 0 V token_stride 128 is below n_heads * head_stride = 256: "
     "tokens alias"),
    ("token_stride 0", "tiny37", [("w64", 128, 0)], None, U64, "EINVAL",
     "layer 0 V token_stride 0 is below n_heads * head_stride = 256: tokens "
     "alias"),
    ("misaligned offset", "tiny37", [("w64", 120, 0x4002)], None, U64,
     "EINVAL",
     "layer 0 V offset 16386 / token_stride 256 / head_stride 64 not a "
     "multiple of the 4-byte fp32 element"),
    ("misaligned head_stride", "tiny37", [("w64", 112, 66)], None, U64,
     "EINVAL",
     "layer 0 K offset 0 / token_stride 256 / head_stride 66 not a multiple "
     "of the 4-byte fp32 element"),
    ("offset max-127", "tiny37",
     [("w64", 64, U64), ("w64", 168, 0xffffffffffffff80)], None, U64,
     "EINVAL",
     "layer 1 V extent overflows 64 bits (offset 18446744073709551488, "
     "token_stride 256, 64 tokens)"),
    ("offset just past 2^64", "tiny37",
     [("w64", 64, U64), ("w64", 168, 0xffffffffffffc000)], None, U64,
     "EINVAL",
     "layer 1 V extent overflows 64 bits (offset 18446744073709535232, "
     "token_stride 256, 64 tokens)"),
    ("ends at 2^64-4", "tiny37",
     [("w64", 64, U64), ("w64", 168, 0xffffffffffffbffc)], None, U64, "0", ""),
    ("token_stride 2^60", "tiny37",
     [("w64", 64, U64), ("w64", 104, 0x1000000000000000)], None, U64,
     "EINVAL",
     "layer 0 K extent overflows 64 bits (offset 0, token_stride "
     "1152921504606846976, 64 tokens)"),
    ("head_stride 2^62", "tiny37", [("w64", 112, 0x4000000000000000)], None,
     U64, "EINVAL",
     "layer 0 K n_heads 4 * head_stride 4611686018427387904 overflows"),
    ("token_stride max-3", "tiny37", [("w64", 152, 0xfffffffffffffffc)], None,
     U64, "EINVAL",
     "layer 1 K extent overflows 64 bits (offset 32768, token_stride "
     "18446744073709551612, 64 tokens)"),
    ("chunk bytes 0", "tiny37", [("w32", 36, 0)], None, U64, "EINVAL",
     "chunk bytes 0 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 1", "tiny37", [("w32", 36, 1)], None, U64, "EINVAL",
     "chunk bytes 1 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 4096", "tiny37", [("w32", 36, 4096)], None, U64, "EINVAL",
     "chunk bytes 4096 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 61440", "tiny37", [("w32", 36, 0xf000)], None, U64,
     "EINVAL",
     "chunk bytes 61440 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 65537", "tiny37", [("w32", 36, 0x10001)], None, U64,
     "EINVAL",
     "chunk bytes 65537 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 66048", "tiny37", [("w32", 36, 0x10200)], None, U64,
     "EINVAL",
     "chunk bytes 66048 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 4198400", "tiny37", [("w32", 36, 0x401000)], None, U64,
     "EINVAL",
     "chunk bytes 4198400 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 8388608", "tiny37", [("w32", 36, 0x800000)], None, U64,
     "EINVAL",
     "chunk bytes 8388608 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 4294967295", "tiny37", [("w32", 36, 0xffffffff)], None, U64,
     "EINVAL",
     "chunk bytes 4294967295 is not a multiple of 4096 in 65536..4194304"),
    ("chunk bytes 65536", "tiny37", [("w32", 36, 0x10000)], None, U64, "0",
     ""),
    ("chunk bytes 69632", "tiny37", [("w32", 36, 0x11000)], None, U64, "0",
     ""),
    ("chunk bytes 196608", "tiny37", [("w32", 36, 0x30000)], None, U64, "0",
     ""),
    ("chunk bytes 1048576", "tiny37", [("w32", 36, 0x100000)], None, U64, "0",
     ""),
    ("chunk bytes 4194304", "tiny37", [("w32", 36, 0x400000)], None, U64, "0",
     ""),
    ("7B", "7b", [], None, U64, "0", ""),
    ("7B n_chunks 255", "7b", [("w32", 40, 255)], None, U64, "EINVAL",
     "manifest says 255 chunks, the plan has 256"),
    ("7B n_chunks 257", "7b", [("w32", 40, 257)], None, U64, "EINVAL",
     "manifest says 257 chunks, the plan has 256"),
    ("7B n_chunks 0", "7b", [("w32", 40, 0)], None, U64, "EINVAL",
     "manifest says 0 chunks, the plan has 256"),
    ("7B n_chunks 4294967295", "7b", [("w32", 40, 0xffffffff)], None, U64,
     "EINVAL", "manifest says 4294967295 chunks, the plan has 256"),
    ("7B tokens 99", "7b", [("w32", 32, 99)], None, U64, "0", ""),
    ("7B tokens 96", "7b", [("w32", 32, 96)], None, U64, "EINVAL",
     "manifest says 256 chunks, the plan has 192"),
    ("2^30+2 chunks", "huge_2^29+1", [], None, U64, "EINVAL",
     "the plan needs 1073741826 chunks, more than the immediate's 1073741824"),
    ("2^30+2 chunks, count 2", "huge_2^29+1", [("w32", 40, 2)], None, U64,
     "EINVAL",
     "the plan needs 1073741826 chunks, more than the immediate's 1073741824"),
    ("2^32 chunks", "huge_2^31", [], None, U64, "EINVAL",
     "the plan needs 4294967296 chunks, more than the immediate's 1073741824"),
    ("limit = region", "tiny37", [], None, 65536, "0", ""),
    ("limit = region - 1", "tiny37", [], None, 65535, "EFBIG",
     "region of 65536 bytes is larger than the receiver's 65535"),
    ("limit 0", "tiny37", [], None, 0, "EFBIG",
     "region of 65536 bytes is larger than the receiver's 0"),
    ("region max, limit 2^30", "tiny37", [("w64", 64, U64)], None, 1073741824,
     "EFBIG",
     "region of 18446744073709551615 bytes is larger than the receiver's "
     "1073741824"),
    ("region max, no limit", "tiny37", [("w64", 64, U64)], None, U64, "0", ""),
]

# value: (kv_imm_data, kv_imm_final, kv_imm_parse ret, type, index)
IMMS = {
    0x0: (0x0, 0x40000000, 0, 0, 0),
    0x5: (0x5, 0x40000005, 0, 0, 5),
    0x28: (0x28, 0x40000028, 0, 0, 40),
    0x4d: (0x4d, 0x4000004d, 0, 0, 77),
    0x3039: (0x3039, 0x40003039, 0, 0, 12345),
    0x3fffffff: (0x3fffffff, 0x7fffffff, 0, 0, 1073741823),
    0x40000000: (0xffffffff, 0x40000000, 0, 1, 0),
    0x40000001: (0xffffffff, 0xffffffff, 0, 1, 1),
    0x7fffffff: (0xffffffff, 0xffffffff, 0, 1, 1073741823),
    0x80000000: (0xffffffff, 0xffffffff, -22, 99, 99),
    0xbfffffff: (0xffffffff, 0xffffffff, -22, 99, 99),
    0xc0000000: (0xffffffff, 0xffffffff, -22, 99, 99),
    0xffffffff: (0xffffffff, 0xffffffff, -22, 99, 99),
}

# (immediate, kv_rx_mark's result) on the 7B 100-of-128-token 256 KiB plan
RX_MARKS = [
    (0x0, "0"),
    (0x0, "EEXIST"),
    (0xff, "0"),
    (0x100, "ERANGE"),
    (0x3fffffff, "ERANGE"),
    (0xffffffff, "EINVAL"),
    (0x80000001, "EINVAL"),
    (0xc0000001, "EINVAL"),
    (0x400000ff, "EINVAL"),
    (0x40000000, "EINVAL"),
    (0x40000100, "0"),
    (0x40000100, "EEXIST"),
    (0x400000ff, "EEXIST"),
]

# (marks) -> kv_rx_missing() in a 4096-byte buffer, and in 100 bytes
RX_MISSING = {
    "nothing":
        ("missing 256 of 256 chunks: 0-255 (layer 0 K to layer 31 V); final "
         "marker missing",
         "missing 256 of 256 chunks: ... and 256 more chunks; final marker "
         "missing"),
    "13, marker in":
        ("missing 1 of 256 chunks: 13 (layer 1 V)",
         "missing 1 of 256 chunks: 13 (layer 1 V)"),
    "13, 24-25":
        ("missing 3 of 256 chunks: 13 (layer 1 V), 24-25 (layer 3 K); final "
         "marker missing",
         "missing 3 of 256 chunks: 13 (layer 1 V), ... and 2 more chunks; "
         "final marker missing"),
    "6-9, 255, marker in":
        ("missing 5 of 256 chunks: 6-9 (layer 0 V to layer 1 K), 255 (layer "
         "31 V)",
         "missing 5 of 256 chunks: 6-9 (layer 0 V to layer 1 K), ... and 1 "
         "more chunks"),
    "every other, marker in":
        ("missing 128 of 256 chunks: 0 (layer 0 K), 2 (layer 0 K), 4 (layer "
         "0 V), 6 (layer 0 V), 8 (layer 1 K), 10 (layer 1 K), 12 (layer 1 "
         "V), 14 (layer 1 V), ... and 120 more chunks",
         "missing 128 of 256 chunks: 0 (layer 0 K), 2 (layer 0 K), ... and "
         "126 more chunks"),
    "all but the marker":
        ("all 256 chunks arrived; final marker missing",
         "all 256 chunks arrived; final marker missing"),
    "all and the marker":
        ("all 256 chunks arrived and the final marker",
         "all 256 chunks arrived and the final marker"),
}

# sha256 of kv_rx_missing() at every buffer size 0..199, joined by newlines
RX_MISSING_SIZES = {
    "every other, marker in":
        "3498e862dbb347143a4a7e447706fd9316298ebf68b1bbbea251b1626a84110e",
    "13, 24-25":
        "a0a6bbc92ff6c6aab933524fb32ef3d309540ad458be0fabc957b63168700951",
    "nothing":
        "bb60b619d18fa0b4f45b84328cf78093766dba6c68212dcaeb08174368da442a",
}

RX_MISSING_2_30 = ("missing 1073741822 of 1073741824 chunks: 0-536870911 "
                   "(layer 0 K), 536870913-1073741822 (layer 0 V)")

# (status, rkey, region bytes, reason) -> sha256 of dpinfer decode's ACK
ACKS = [
    ((0, 0x1234ABCD, 64 * MiB, ""),
     "b7220b86bc6b7085ef14b81e332525f7bfa88ac245261d5d263dba6bdc4dc321"),
    ((-22, 7, 4096, "the manifest's model is not tiny"),
     "3652bd8a96e14c22560692c495605eb47ad421562147f5db0091ae686366ca43"),
    ((-27, 9, 1 << 30, "llama7b-kv is too big to run here: transfer only"),
     "29d815cb83eba1664bba16b43f920f9d367db50f727ba1b06bcafce0610f5450"),
    ((-71, 0xFFFFFFFF, U64, "r" * 200),
     "80e2bdd6fb4746f8bccb2b05ea59ca99808ac685f5ad8235ba38b6ccbcd2bb85"),
]

# its first 40 bytes, for the second
ACK_EINVAL_HEAD = ("4b56414beaffffff070000000000000000100000000000007468652"
                   "06d616e69666573742773206d")

# (status, n_tokens, hash, first ns, decode ns, transfer ns, reason) ->
# sha256 of dpinfer decode's RESULT; token i is (i * 2654435761) mod 2^32
# mod 32000
RESULTS = [
    ((0, 16, 0x0123456789ABCDEF, 1234, 56789, 424242, ""),
     "fbd2441c7f29cf2c27f77a98272ca53e2c3c6aed5051b03f9d8646bfd737d339"),
    ((-110, 0, 0, 0, 0, 0,
      "timed out after 30000 ms: missing 3 of 256 chunks: 13 (layer 1 V), "
      "24-25 (layer 3 K); final marker missing"),
     "83dbdd931f1864ef1c8c6051df7b39211fd30f51159e656913bcda27e74cf763"),
    ((-71, 1024, U64, 1, 2, 3, "immediate 0x00000000: a duplicate"),
     "8e4ab1452c57d132635fd214b491eb240a52c6ee4eb5f043fdc8315faf3a2465"),
]

# bytes whose bits are flipped, then sha256 of the C's "errno|reason" lines,
# one per corrupted manifest
FUZZ_BITS = {
    "tiny fp16 37":
        (192,
         "25a63265a3e144366570419a54fd300b2577d26976ee15546a683ed60276c636"),
    "tiny fp32 64":
        (192,
         "64f03fce56ae76af9e7e135ccd56e4fc8e05613495525ebf8e1eae9c07b71aeb"),
    "strided":
        (192,
         "96bd5a31a7f25a0fa3b67399a3089bc0a35ab89ae11f76c2de91a400869030e5"),
    "7b 100 of 128 256K":
        (192,
         "2a3dfc23f1396e59d610947e3dc9ea42e4605a6c92547e6d416831da74d6237a"),
}

# iterations of each random loop, sha256 of the lines
FUZZ_RANDOM = (
    20000, "225a15b7a5bc224de4dcda021e6b50141dc974ae6c77b984a1d606385bddb56b")


# --- helpers ---


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_text(chunks: list[kv.Chunk]) -> bytes:
    """A plan the way the C side printed it."""
    return "".join(f"{c.index} {c.layer} {c.kind} {c.offset} {c.length}\n"
                   for c in chunks).encode()


def expect(err: int, fn, *args, **kwargs):
    """Call fn(*args, **kwargs), which must raise KVError with errno @err."""
    with pytest.raises(kv.KVError) as info:
        fn(*args, **kwargs)
    assert info.value.errno == err, info.value
    assert info.value.reason
    return info.value


def prefix_bytes(m: kv.Manifest, t: kv.Tensor) -> int:
    """A tensor's filled prefix, from the definition."""
    l = m.layout
    return ((m.tokens - 1) * t.token_stride + (l.n_heads - 1) * t.head_stride
            + l.head_dim * l.elem_size)


def check_tiling(m: kv.Manifest, chunks: list[kv.Chunk]) -> int:
    """The plan tiles each tensor's filled prefix exactly, in tensor order
    (K then V per layer), all chunks full but each tensor's last; returns
    the bytes planned."""
    idx = total = 0
    for layer in range(m.layout.n_layers):
        first = idx
        for kind in (kv.Kind.K, kv.Kind.V):
            t = m.layout.tensor(layer, kind)
            want, at = prefix_bytes(m, t), t.offset
            while idx < len(chunks) and (chunks[idx].layer,
                                         chunks[idx].kind) == (layer, kind):
                c = chunks[idx]
                assert c.index == idx and c.offset == at
                assert 0 < c.length <= m.chunk_bytes
                if at + c.length < t.offset + want:
                    assert c.length == m.chunk_bytes
                at += c.length
                idx += 1
            assert at - t.offset == want
            total += want
        assert m.plan_layer(layer) == (first, idx - first)
    assert idx == len(chunks) == m.n_chunks
    for i in range(0, len(chunks), 1 + len(chunks) // 17):
        assert m.plan_chunk(i) == chunks[i]
    return total


# --- layout ---


def test_packed_layout():
    l = kv.Layout.packed(2, 4, 16, 64, kv.DType.F32)
    assert l.bytes == 4 * 16 * KiB
    assert [t.offset for t in l.k] == [0, 32 * KiB]
    assert [t.offset for t in l.v] == [16 * KiB, 48 * KiB]
    assert all(t.token_stride == 256 and t.head_stride == 64
               for t in l.k + l.v)
    assert l.view(1, kv.Kind.V) == (48 * KiB, (64, 4, 16), (256, 64, 4))
    # 30-byte tensors: each starts at a multiple of 64, the last unpadded
    l = kv.Layout.packed(3, 1, 3, 5, kv.DType.F16)
    assert [t.offset for t in l.k] == [0, 128, 256]
    assert [t.offset for t in l.v] == [64, 192, 320]
    assert l.bytes == 350
    assert kv.Layout.packed(128, 1, 1, 1, kv.DType.F16).bytes == 255 * 64 + 2


@pytest.mark.parametrize("args", [
    (0, 4, 16, 64, 1), (2, 0, 16, 64, 1), (2, 4, 0, 64, 1), (2, 4, 16, 0, 1),
    (129, 4, 16, 64, 1), (2, 4, 16, 64, 0), (2, 4, 16, 64, 3),
    (2, U32, U32, U32, 1), (128, 1, 1, 1 << 32, 1), (-1, 4, 16, 64, 1),
    # a tensor of 2^64 - 2 bytes: only its padding to 64 overflows
    (1, 82443193, 218934409, 511, 2),
])
def test_packed_layout_rejects(args):
    expect(errno.EINVAL, kv.Layout.packed, *args)


def test_packed_layout_largest():
    """From C: kv_layout_init() of 1 layer, 82443193 heads of 218934409
    fp16, 255 tokens."""
    l = kv.Layout.packed(1, 82443193, 218934409, 255, kv.DType.F16)
    assert l.bytes == 18410644770238495742


# --- manifest: round trips and plans, against the C ---


def test_sizes():
    assert kv.Manifest.size(1) == 144 and kv.Manifest.size(2) == 192
    assert kv.Manifest.size(128) == kv.MANIFEST_MAX_LEN == 6240


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_encoding_matches_c(name):
    n, man, plan_sha, layers, chunks = ENCODINGS[name]
    m = BUILD[name]()
    assert m.plan_count() == m.n_chunks == n
    enc = m.encode()
    assert enc == bytes(raw_encode(m))
    assert (enc.hex() if len(man) > 64 else sha(enc)) == man
    d = kv.Manifest.decode(enc, m.layout.bytes)
    assert d == m
    assert d.encode() == enc
    for layer, first, count in layers:
        assert m.plan_layer(layer) == (first, count)
    for c in chunks:
        assert m.plan_chunk(c[0]) == kv.Chunk(*c)
    expect(errno.ERANGE, m.plan_chunk, n)
    expect(errno.ERANGE, m.plan_layer, m.layout.n_layers)
    if plan_sha is not None:
        plan = m.plan()
        assert sha(plan_text(plan)) == plan_sha
        check_tiling(m, plan)


def test_plan_sizes():
    """The C test's tiling totals."""
    m = tiny(kv.DType.F32, 64, n_generate=0)
    assert check_tiling(m, m.plan()) == 2 * 2 * 64 * 4 * 16 * 4
    m = tiny(kv.DType.F32, 37, n_generate=64 - 37)
    assert m.n_chunks == 4
    assert check_tiling(m, m.plan()) == 2 * 2 * 37 * 4 * 16 * 4
    m = shape7b(128, 128, MiB, n_generate=0, max_seq=128)
    assert m.n_chunks == 64 and check_tiling(m, m.plan()) == 64 * MiB
    m = shape7b(100, 4096, 192 * KiB)
    assert m.n_chunks == 64 * 5
    assert check_tiling(m, m.plan()) == 64 * 100 * 8192


def test_strided_plan_matches_views():
    """A strided tensor's prefix runs from token 0's first byte to token
    tokens-1's last, as its view addresses them."""
    m = strided()
    m.check()
    assert m.n_chunks == 4 * 3
    c = m.plan()
    assert c[2].length == 28800 and c[3].offset == m.layout.v[0].offset
    for j in range(4):
        off, _, (ts, hs, elem) = m.layout.view(j // 2, j & 1)
        last = c[3 * j + 2]
        assert c[3 * j].offset == off
        assert off + (m.tokens - 1) * ts + 2 * hs + 8 * elem == \
            last.offset + last.length


def test_plan_api():
    m = shape7b(100, 128, 256 * KiB)
    assert m.n_chunks == 256  # 819200 bytes per tensor: 4 chunks each
    c = m.plan()
    assert (c[7].layer, c[7].kind, c[7].length) == \
        (0, kv.Kind.V, 819200 - 3 * 256 * KiB)
    one = m.plan_chunk(255)
    assert (one.layer, one.kind) == (31, kv.Kind.V)
    expect(errno.ERANGE, m.plan_chunk, 256)
    expect(errno.ERANGE, m.plan_chunk, -1)
    assert m.plan_layer(5) == (40, 8)
    expect(errno.ERANGE, m.plan_layer, 32)

    # kv_elem_size() of an unknown dtype is 4 (from C: 32 tokens of fp16
    # fill 256 KiB exactly; the 256 more bytes of fp32 need a chunk more)
    m32 = shape7b(32, 128, 256 * KiB)
    assert m32.plan_count() == 64
    unknown = dataclasses.replace(m32.layout, dtype=0)
    assert dataclasses.replace(m32, layout=unknown).plan_count() == 128

    bad = dataclasses.replace(m, tokens=0)
    assert bad.plan_count() == 0
    expect(errno.EINVAL, bad.plan)
    assert dataclasses.replace(m, chunk_bytes=0).plan_count() == 0
    layout = dataclasses.replace(m.layout, k=list(m.layout.k))
    layout.k[3] = dataclasses.replace(layout.k[3], token_stride=U64 // 2)
    bad = dataclasses.replace(m, layout=layout)
    assert bad.plan_count() == 0
    expect(errno.EINVAL, bad.plan_chunk, 0)
    expect(errno.EINVAL, bad.plan_layer, 0)


# --- manifest: rejections, against the C ---


@pytest.mark.parametrize("case", REJECTS, ids=[c[0] for c in REJECTS])
def test_decode_matches_c(case):
    _, base, muts, length, limit, err, reason = case
    buf = raw_encode(BUILD[base]())
    for width, off, v in muts:
        size = 4 if width == "w32" else 8
        buf[off:off + size] = v.to_bytes(size, "little")
    if length is not None:
        buf = buf[:length].ljust(length, b"\0")
    if err == "0":
        d = kv.Manifest.decode(buf, limit)
        assert d.encode() == bytes(buf)  # canonical
        return
    e = expect(getattr(errno, err), kv.Manifest.decode, buf, limit)
    assert isinstance(e, kv.ManifestError)
    assert e.reason == reason


def test_every_short_length_is_emsgsize():
    buf = raw_encode(tiny(kv.DType.F32, 37))
    for n in range(len(buf)):
        expect(errno.EMSGSIZE, kv.Manifest.decode, buf[:n])
    assert kv.Manifest.decode(memoryview(buf)).tokens == 37


def test_encode_checks():
    m = tiny(kv.DType.F16, 10)
    enc = m.encode()
    assert len(enc) == 192
    assert enc[:16] == b"KVM1\x01\0\0\0\x60\0\0\0\x02\0\0\0"
    bad = dataclasses.replace(m, n_chunks=m.n_chunks + 1)
    e = expect(errno.EINVAL, bad.encode)
    assert e.reason == "manifest says 5 chunks, the plan has 4"
    assert isinstance(e, kv.ManifestError)
    expect(errno.EINVAL, bad.check)
    for n_layers in (0, 129):
        bad = dataclasses.replace(
            m, layout=dataclasses.replace(m.layout, n_layers=n_layers))
        e = expect(errno.EINVAL, bad.encode)
        assert e.reason == f"n_layers {n_layers} is not in 1..128"
    layout = dataclasses.replace(m.layout, v=list(m.layout.v))
    layout.v[1] = dataclasses.replace(layout.v[1], offset=layout.k[1].offset)
    expect(errno.EINVAL, dataclasses.replace(m, layout=layout).encode)
    e = expect(errno.EFBIG, m.check, m.layout.bytes - 1)
    assert e.reason == \
        "region of 32768 bytes is larger than the receiver's 32767"
    m.check(m.layout.bytes)


@pytest.mark.parametrize("field,value", [
    ("tokens", -1), ("request_id", 1 << 64), ("n_chunks", 1 << 32),
    ("model_seed", -1),
])
def test_python_values_past_the_c_types(field, value):
    """What a C struct could not hold is refused, never wrapped."""
    bad = dataclasses.replace(tiny(kv.DType.F32, 37), **{field: value})
    expect(errno.EINVAL, bad.encode)
    assert bad.plan_count() == 0


def test_python_layer_table_must_match_n_layers():
    m = tiny(kv.DType.F32, 37)
    short = dataclasses.replace(m.layout, k=m.layout.k[:1])
    e = expect(errno.EINVAL, dataclasses.replace(m, layout=short).encode)
    assert "layer table" in e.reason
    wide = dataclasses.replace(
        m.layout, k=[dataclasses.replace(m.layout.k[0], offset=-64)] +
        m.layout.k[1:])
    expect(errno.EINVAL, dataclasses.replace(m, layout=wide).encode)


def test_too_many_chunks():
    """2^30 + 2 chunks: one past the immediate's index space."""
    m = huge_plan((1 << 29) + 1)
    assert m.plan_count() == 0
    expect(errno.EINVAL, m.encode)
    expect(errno.EINVAL, kv.RxTracker, m)
    expect(errno.EINVAL, m.plan)


def fuzz_line(buf: bytes, limit: int) -> str:
    """The C's "errno|reason" of one decode; a decoded manifest must be
    canonical and plan."""
    try:
        d = kv.Manifest.decode(buf, limit)
    except kv.ManifestError as e:
        assert e.errno in (errno.EINVAL, errno.EMSGSIZE, errno.EPROTO,
                           errno.EFBIG)
        return f"{-e.errno}|{e.reason}\n"
    assert d.encode() == bytes(buf)
    assert d.n_chunks and d.plan_count() == d.n_chunks
    return "0|\n"


@pytest.mark.parametrize("name", list(FUZZ_BITS))
def test_corrupt_manifests_match_c(name):
    """Every bit flip (in the first @limit bytes) and every byte inverted."""
    limit, want = FUZZ_BITS[name]
    m = BUILD[name]()
    buf = raw_encode(m)
    out = []
    for i in range(min(limit, len(buf)) * 8):
        b = bytearray(buf)
        b[i // 8] ^= 1 << (i % 8)
        out.append(fuzz_line(b, m.layout.bytes))
    for i in range(len(buf)):
        b = bytearray(buf)
        b[i] ^= 0xFF
        out.append(fuzz_line(b, m.layout.bytes))
    assert sha("".join(out).encode()) == want


def test_random_corruption_matches_c():
    """The C test's xorshift fuzz: 1..4 fields set to edge values, then 3
    random bytes, on the tiny fp32 37-token manifest."""
    iters, want = FUZZ_RANDOM
    interesting = [0, 1, 2, 3, 4, 63, 64, 65, 127, 128, 129, 4096, 65536,
                   1 << 20, 4 << 20, 1 << 30, 1 << 31, U32, 1 << 32, 1 << 62,
                   1 << 63, U64 - 127, U64 - 1, U64]
    state = 0x9E3779B97F4A7C15

    def rng() -> int:
        nonlocal state
        state ^= state << 13 & U64
        state ^= state >> 7
        state ^= state << 17 & U64
        return state

    m = tiny(kv.DType.F32, 37)
    buf = raw_encode(m)
    out = []
    for _ in range(iters):
        b = bytearray(buf)
        for _ in range(1 + rng() % 4):
            off = rng() % (len(buf) // 4) * 4
            v = interesting[rng() % len(interesting)]
            if off >= 64:
                b[off & ~7:(off & ~7) + 8] = v.to_bytes(8, "little")
            else:
                b[off:off + 4] = (v & U32).to_bytes(4, "little")
        out.append(fuzz_line(b, U64 if rng() & 1 else m.layout.bytes))
    for _ in range(iters):
        b = bytearray(buf)
        for _ in range(3):
            at = rng() % len(buf)
            b[at] = rng() & 0xFF
        out.append(fuzz_line(b, m.layout.bytes))
    assert sha("".join(out).encode()) == want


# --- immediate ---


def test_immediates_match_c():
    for v, (data, final, ret, kind, index) in IMMS.items():
        assert kv.imm_data(v) == data
        assert kv.imm_final(v) == final
        if ret:
            expect(-ret, kv.imm_parse, v)
        else:
            assert kv.imm_parse(v) == (kind, index)
    assert kv.imm_data(-1) == kv.imm_final(-1) == kv.IMM_INVALID
    expect(errno.EINVAL, kv.imm_parse, 1 << 32)
    for b in range(30):
        assert kv.imm_parse(kv.imm_data(1 << b)) == (kv.ImmType.DATA, 1 << b)


# --- receive tracking ---


def test_rx_marks_match_c():
    m = shape7b(100, 128, 256 * KiB)
    rx = kv.RxTracker(m)
    assert rx.n_chunks == 256 and not rx.complete
    for imm, err in RX_MARKS:
        if err == "0":
            rx.mark(imm)
        else:
            e = expect(getattr(errno, err), rx.mark, imm)
            assert e.reason == f"immediate 0x{imm:08x}: " + {
                "EEXIST": "a duplicate", "ERANGE": "no such chunk",
                "EINVAL": "not a chunk or a marker"}[err]
    assert rx.received == 2 and rx.final_seen
    assert rx.has(0) and rx.has(255) and not rx.has(1)
    for i in range(1, 255):
        assert not rx.complete
        rx.mark(kv.imm_data(i))
    assert rx.complete
    expect(errno.EEXIST, rx.mark, kv.imm_data(17))
    assert rx.complete

    rx = kv.RxTracker(m)  # every chunk first, then the marker
    for i in reversed(range(256)):
        rx.mark(kv.imm_data(i))
    assert not rx.complete
    rx.mark(kv.imm_final(256))
    assert rx.complete

    e = expect(errno.EINVAL, kv.RxTracker,
               dataclasses.replace(m, n_chunks=255))
    assert e.reason == "manifest says 255 chunks, the plan has 256"


def marked(skip: set[int], marker: bool) -> kv.RxTracker:
    """The 7B 256-chunk tracker with all chunks but @skip in."""
    rx = kv.RxTracker(shape7b(100, 128, 256 * KiB))
    for i in range(256):
        if i not in skip:
            rx.mark(kv.imm_data(i))
    if marker:
        rx.mark(kv.imm_final(256))
    return rx


MISSING_SETUPS = {
    "nothing": (set(range(256)), False),
    "13, marker in": ({13}, True),
    "13, 24-25": ({13, 24, 25}, False),
    "6-9, 255, marker in": ({6, 7, 8, 9, 255}, True),
    "every other, marker in": (set(range(0, 256, 2)), True),
    "all but the marker": (set(), False),
    "all and the marker": (set(), True),
}


@pytest.mark.parametrize("name", list(RX_MISSING))
def test_rx_missing_matches_c(name):
    rx = marked(*MISSING_SETUPS[name])
    full, small = RX_MISSING[name]
    assert rx.missing() == rx.missing(4096) == full
    assert rx.missing(100) == small
    if name in RX_MISSING_SIZES:
        texts = [rx.missing(size) for size in range(200)]
        assert all(len(t) < max(size, 1) for size, t in enumerate(texts))
        assert sha("\n".join(texts).encode()) == RX_MISSING_SIZES[name]


def test_rx_missing_partial_byte():
    """12 chunks: the bitmap's last byte is half used (texts from C)."""
    cases = [
        ({0, 5, 11}, True,
         "missing 3 of 12 chunks: 0 (layer 0 K), 5 (layer 0 V), "
         "11 (layer 1 V)",
         "missing 3 of 12 chunks: ... and 3 more chunks"),
        ({9, 10, 11}, False,
         "missing 3 of 12 chunks: 9-11 (layer 1 V); final marker missing",
         "missing 3 of 12 chunks: ... and 3 more chunks; final marker"),
        (set(), False, "all 12 chunks arrived; final marker missing",
         "all 12 chunks arrived; final marker missing"),
    ]
    for skip, marker, full, short in cases:
        rx = kv.RxTracker(strided())
        for i in set(range(12)) - skip:
            rx.mark(kv.imm_data(i))
        if marker:
            rx.mark(kv.imm_final(12))
        assert (rx.missing(), rx.missing(60)) == (full, short)


def test_rx_2_30_chunks():
    """Exactly 2^30 chunks, the most a request can have (a 128 MiB
    bitmap, as in C)."""
    m = huge_plan(1 << 29)
    assert m.plan_count() == 1 << 30
    d = kv.Manifest.decode(m.encode())
    assert d.n_chunks == 1 << 30
    assert d.plan_chunk((1 << 30) - 1) == kv.Chunk(
        (1 << 30) - 1, 0, kv.Kind.V, (1 << 46) + ((1 << 29) - 1) * 65536, 64)
    assert d.plan_layer(0) == (0, 1 << 30)
    rx = kv.RxTracker(d)
    rx.mark(kv.imm_data((1 << 30) - 1))
    rx.mark(kv.imm_data(1 << 29))
    rx.mark(kv.imm_final(1 << 30))
    assert rx.missing() == RX_MISSING_2_30


# --- dpinfer's messages ---


def test_check_model():
    m = dpinfer(TINY_CONF, kv.DType.F32, HELLO, 16, 256 * KiB)
    cfg = dict(name="tiny", n_layers=2, n_heads=4, head_dim=16, seed=1,
               vocab=256, d_ff=128, max_seq=512)
    m.check_model(**cfg)
    e = expect(errno.EINVAL, m.check_model, **{**cfg, "seed": 2})
    assert e.reason == "the manifest's model is not tiny"
    e = expect(errno.EFBIG, m.check_model, **cfg, runnable=False)
    assert e.reason == "tiny is too big to run here: transfer only"
    dataclasses.replace(m, n_generate=0).check_model(**cfg, runnable=False)
    e = expect(errno.EINVAL, dataclasses.replace(m, n_generate=1025)
               .check_model, **cfg)
    assert e.reason == "more than 1024 tokens"


def test_ack_matches_c():
    for (status, rkey, region, reason), want in ACKS:
        ack = kv.Ack(status, rkey, region, reason)
        enc = ack.encode()
        assert len(enc) == kv.ACK_LEN and sha(enc) == want
        back = kv.Ack.decode(enc)
        assert back == dataclasses.replace(
            ack, reason=reason[:kv.REASON_LEN - 1])
        if status == -errno.EINVAL:
            assert enc.startswith(bytes.fromhex(ACK_EINVAL_HEAD))
    good = kv.Ack(0, 1, 2).encode()
    expect(errno.EPROTO, kv.Ack.decode, good[:-1])
    expect(errno.EPROTO, kv.Ack.decode, good + b"\0")
    expect(errno.EPROTO, kv.Ack.decode, b"KVRS" + good[4:])
    expect(errno.EINVAL, kv.Ack(rkey=1 << 32).encode)
    # no NUL in the reason: the reader stops at byte 159, as the C does
    unterminated = good[:24] + b"r" * kv.REASON_LEN
    assert kv.Ack.decode(unterminated).reason == "r" * (kv.REASON_LEN - 1)


def c_tokens(n: int) -> list[int]:
    """The C side's test tokens: (i * 2654435761) as a u32, mod 32000."""
    return [(i * 2654435761 & U32) % 32000 for i in range(n)]


def test_result_matches_c():
    for (status, n, hsh, first, dec, xfer, reason), want in RESULTS:
        r = kv.Result(status, c_tokens(n), hsh, first, dec, xfer, reason)
        enc = r.encode()
        assert len(enc) == kv.RESULT_LEN and sha(enc) == want
        assert kv.Result.decode(enc) == r
    good = kv.Result(0, [1, 2, 3]).encode()
    expect(errno.EPROTO, kv.Result.decode, good[:-1])
    expect(errno.EPROTO, kv.Result.decode, b"KVAK" + good[4:])
    too_many = good[:8] + struct.pack("<I", 1025) + good[12:]
    expect(errno.EPROTO, kv.Result.decode, too_many)
    expect(errno.EINVAL, kv.Result(tokens=[0] * 1025).encode)
    expect(errno.EINVAL, kv.Result(tokens=[-1]).encode)


def test_timeout_reason_as_dpinfer_builds_it():
    """dpinfer decode's timeout: a prefix, then kv_rx_missing() in what is
    left of the reason."""
    rx = marked({13, 24, 25}, False)
    prefix = "timed out after 30000 ms: "
    reason = prefix + rx.missing(kv.REASON_LEN - len(prefix))
    assert reason == RESULTS[1][0][6]
    prefix = "timed out after 30000 ms: " + "x" * 100
    reason = prefix + rx.missing(kv.REASON_LEN - len(prefix))
    assert len(reason) < kv.REASON_LEN


def test_errors_are_oserrors():
    e = expect(errno.EPROTO, kv.Manifest.decode, b"XXXX" + bytes(188))
    assert isinstance(e, OSError) and isinstance(e, kv.ManifestError)
    assert str(e) == f"[Errno {errno.EPROTO}] " \
        'bad magic 58 58 58 58 (want "KVM1")'
