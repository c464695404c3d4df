#!/usr/bin/env python3
"""Regenerate the committed seed corpora of the cargo-fuzz targets (see docs/fuzzing.md).

    .venv/bin/python -m pip install gguf numpy
    .venv/bin/python fuzz/make_seeds.py

corpus/model_load/tiny-llama.gguf is a complete llama model (1 layer, n_embd 8, a 277-token
SentencePiece vocab with all 256 byte tokens, F32 weights, about 4 KB) that llama.cpp loads and tokenizes with, so
mutations of it reach llama.cpp's loader past llmedge's own GGUF validation. corpus/gguf_parse
gets the same model plus small hand-built files (no tensors, every metadata value type,
arrays of strings and nested arrays, a non-default alignment with quantized tensor types,
GGUF v2), written byte by byte so they do not depend on any writer's choices. The output is
deterministic: rerunning rewrites identical files.
"""

import os
import struct
import sys

import numpy as np
from gguf import GGUFWriter

HERE = os.path.dirname(os.path.abspath(__file__))

N_EMBD = 8
N_HEAD = 2
N_HEAD_KV = 1
N_FF = 16
N_CTX = 64

# SentencePiece ("llama") vocab: unknown, control, byte and normal pieces.
TOKENS = [
    ("<unk>", 2), ("<s>", 3), ("</s>", 3),
    # Every byte: llama.cpp's SPM byte fallback aborts on a byte with no token (see
    # check_spm_byte_tokens in core/src/gguf_file.rs).
    *[(f"<0x{b:02X}>", 6) for b in range(256)],
    ("\u2581", 1), ("\u2581Hello", 1), ("\u2581world", 1), ("\u2581a", 1), ("\u2581b", 1),
    ("ab", 1), ("He", 1), ("ll", 1), ("or", 1), ("ld", 1),
    ("H", 1), ("e", 1), ("l", 1), ("o", 1), ("w", 1), ("r", 1), ("d", 1), ("a", 1), ("b", 1),
]


def write_tiny_llama(path):
    rng = np.random.default_rng(1)
    n_vocab = len(TOKENS)
    head_dim = N_EMBD // N_HEAD
    w = GGUFWriter(path, "llama")
    w.add_name("llmedge-fuzz-tiny-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(n_vocab)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list([t for t, _ in TOKENS])
    w.add_token_types([k for _, k in TOKENS])
    w.add_token_scores([-float(i) for i in range(n_vocab)])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def mat(n_out, n_in):
        return (rng.standard_normal((n_out, n_in)) * 0.3).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    p = "blk.0"
    w.add_tensor(f"{p}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(f"{p}.attn_q.weight", mat(N_EMBD, N_EMBD))
    w.add_tensor(f"{p}.attn_k.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
    w.add_tensor(f"{p}.attn_v.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
    w.add_tensor(f"{p}.attn_output.weight", mat(N_EMBD, N_EMBD))
    w.add_tensor(f"{p}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(f"{p}.ffn_gate.weight", mat(N_FF, N_EMBD))
    w.add_tensor(f"{p}.ffn_up.weight", mat(N_FF, N_EMBD))
    w.add_tensor(f"{p}.ffn_down.weight", mat(N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


class Gguf:
    """A little-endian GGUF byte builder (the layout of core/tests/gguf_malicious.rs)."""

    def __init__(self, version, n_tensors, n_kv):
        self.b = bytearray(b"GGUF")
        self.raw(struct.pack("<IQQ", version, n_tensors, n_kv))

    def raw(self, data):
        self.b += data
        return self

    def string(self, s):
        data = s.encode() if isinstance(s, str) else s
        return self.raw(struct.pack("<Q", len(data))).raw(data)

    def kv(self, key, tag, payload):
        return self.string(key).raw(struct.pack("<I", tag)).raw(payload)

    def tensor(self, name, dims, ggml_type, offset):
        self.string(name).raw(struct.pack("<I", len(dims)))
        for d in dims:
            self.raw(struct.pack("<Q", d))
        return self.raw(struct.pack("<IQ", ggml_type, offset))

    def data(self, n, alignment=32, fill=0):
        while len(self.b) % alignment:
            self.b.append(0)
        self.b += bytes([fill]) * n
        return self


def gstr(s):
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def garray(elem_tag, payloads):
    return struct.pack("<IQ", elem_tag, len(payloads)) + b"".join(payloads)


def hand_made():
    seeds = {}

    # No tensors at all, a few string keys.
    g = Gguf(3, 0, 3)
    g.kv("general.architecture", 8, gstr("llama"))
    g.kv("general.name", 8, gstr("no tensors"))
    g.kv("general.type", 8, gstr("model"))
    seeds["empty-tensors.gguf"] = bytes(g.b)

    # One key of every scalar type, arrays of strings, numbers and bools, a nested array.
    g = Gguf(3, 1, 16)
    g.kv("general.architecture", 8, gstr("llama"))
    g.kv("t.u8", 0, struct.pack("<B", 200))
    g.kv("t.i8", 1, struct.pack("<b", -5))
    g.kv("t.u16", 2, struct.pack("<H", 60000))
    g.kv("t.i16", 3, struct.pack("<h", -300))
    g.kv("t.u32", 4, struct.pack("<I", 4000000000))
    g.kv("t.i32", 5, struct.pack("<i", -7))
    g.kv("t.f32", 6, struct.pack("<f", 0.5))
    g.kv("t.bool", 7, struct.pack("<B", 1))
    g.kv("t.u64", 10, struct.pack("<Q", 1 << 40))
    g.kv("t.i64", 11, struct.pack("<q", -(1 << 40)))
    g.kv("t.f64", 12, struct.pack("<d", 1e-300))
    g.kv("tokenizer.ggml.tokens", 9, garray(8, [gstr(s) for s in ["<unk>", "<s>", "</s>", "\u2581hi", "\u00e9t\u00e9"]]))
    g.kv("tokenizer.ggml.scores", 9, garray(6, [struct.pack("<f", -i) for i in range(5)]))
    g.kv("t.bools", 9, garray(7, [b"\x00", b"\x01"]))
    g.kv("t.nested", 9, garray(9, [garray(8, [gstr("x"), gstr("yz")]), garray(4, [struct.pack("<I", 3)])]))
    g.tensor("token_embd.weight", [4, 5], 0, 0)
    g.data(4 * 5 * 4, fill=0x3F)
    seeds["all-value-types.gguf"] = bytes(g.b)

    # general.alignment = 64 and tensors of block-quantized types (f16, q8_0, q4_K) in 2-4 dims.
    g = Gguf(3, 3, 2)
    g.kv("general.architecture", 8, gstr("llama"))
    g.kv("general.alignment", 4, struct.pack("<I", 64))
    g.tensor("a.f16", [2, 3, 1, 2], 1, 0)  # 24 bytes
    g.tensor("b.q8_0", [32, 2], 8, 64)  # 2 blocks of 34 bytes
    g.tensor("c.q4_K", [256, 1, 1], 12, 192)  # 1 block of 144 bytes
    g.data(192 + 144, alignment=64, fill=0x11)
    seeds["aligned-quantized.gguf"] = bytes(g.b)

    # GGUF v2 with a single F32 vector.
    g = Gguf(2, 1, 1)
    g.kv("general.name", 8, gstr("v2"))
    g.tensor("v", [8], 0, 0)
    g.data(32, fill=0x40)
    seeds["v2-vector.gguf"] = bytes(g.b)
    return seeds


def main():
    model_dir = os.path.join(HERE, "corpus", "model_load")
    parse_dir = os.path.join(HERE, "corpus", "gguf_parse")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(parse_dir, exist_ok=True)
    model = os.path.join(model_dir, "tiny-llama.gguf")
    write_tiny_llama(model)
    with open(model, "rb") as f:
        model_bytes = f.read()
    seeds = {"tiny-llama.gguf": model_bytes, **hand_made()}
    for name, data in seeds.items():
        with open(os.path.join(parse_dir, name), "wb") as f:
            f.write(data)
    for d in (model_dir, parse_dir):
        for name in sorted(os.listdir(d)):
            print(f"{os.path.relpath(os.path.join(d, name), HERE)}: {os.path.getsize(os.path.join(d, name))} bytes")


if __name__ == "__main__":
    sys.exit(main())
