#!/usr/bin/env python3
"""Writes deterministic LoRA test fixtures for SmolLM2-135M (PEFT folders and GGUF adapters).

Why: llmedge's PEFT importer and adapter loading need realistic inputs without downloading
trained adapters. Shapes are read from the base GGUF, never hard-coded, so the fixtures fit
whatever SmolLM2 build is cached. Random values are seeded: same seed, same bytes.

    python3 lora_fixtures.py --base models/cache/SmolLM2-135M-Instruct.Q4_1.gguf --out DIR [--seed 0]

Needs numpy, safetensors and gguf (pip install gguf numpy safetensors).
"""

import argparse
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter
from safetensors.numpy import save_file

BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
STD = 0.05
PROJ_TO_GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def field_value(reader, key):
    """A scalar or string metadata value (works with old and new gguf-py)."""
    f = reader.fields[key]
    if hasattr(f, "contents"):
        return f.contents()
    part = f.parts[f.data[0]]
    return bytes(part).decode() if f.types[0].name == "STRING" else part[0]


class Base:
    """The facts about the base model the fixtures need: layer count and linear shapes."""

    def __init__(self, path):
        reader = GGUFReader(path)
        self.arch = field_value(reader, "general.architecture")
        self.n_layer = int(field_value(reader, f"{self.arch}.block_count"))
        # ggml ne = [in, out]
        self.dims = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in reader.tensors if len(t.shape) == 2}

    def in_out(self, layer, proj):
        return self.dims[f"blk.{layer}.{PROJ_TO_GGUF[proj]}.weight"]


def write_peft(out_dir, base, rng, r, alpha, targets, use_rslora=False, use_dora=False, extra_tensors=None):
    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for i in range(base.n_layer):
        for proj in targets:
            n_in, n_out = base.in_out(i, proj)
            prefix = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((r, n_in)) * STD).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((n_out, r)) * STD).astype(np.float32)
    tensors.update(extra_tensors or {})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": BASE_MODEL_ID,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": list(targets),
        "bias": "none",
        "use_rslora": use_rslora,
        "use_dora": use_dora,
        "modules_to_save": None,
        "fan_in_fan_out": False,
        "rank_pattern": {},
        "alpha_pattern": {},
    }
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    save_file(tensors, os.path.join(out_dir, "adapter_model.safetensors"))
    n_params = sum(t.size for t in tensors.values())
    print(f"{out_dir}: PEFT r={r} alpha={alpha} rslora={use_rslora} dora={use_dora} "
          f"targets={','.join(targets)} tensors={len(tensors)} params={n_params}")


def write_gguf_adapter(path, base, rng, r, alpha, arch="llama", bad_in=None):
    """A llama.cpp LoRA adapter on attn_q and attn_v of every layer.

    numpy shapes (r, in) for lora_a and (out, r) for lora_b, i.e. ggml ne [in, r] and [r, out].
    `bad_in` replaces `in` of every lora_a (a shape that cannot fit the base).
    """
    w = GGUFWriter(path, arch)
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(alpha))
    n = 0
    for i in range(base.n_layer):
        for proj in ("q_proj", "v_proj"):
            n_in, n_out = base.in_out(i, proj)
            name = f"blk.{i}.{PROJ_TO_GGUF[proj]}.weight"
            a = (rng.standard_normal((r, bad_in or n_in)) * STD).astype(np.float32)
            b = (rng.standard_normal((n_out, r)) * STD).astype(np.float32)
            w.add_tensor(f"{name}.lora_a", a)
            w.add_tensor(f"{name}.lora_b", b)
            n += 2
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: GGUF LoRA arch={arch} r={r} alpha={alpha} tensors={n}"
          + (f" lora_a in={bad_in} (bad shape)" if bad_in else "") + f" bytes={os.path.getsize(path)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="base SmolLM2 GGUF")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    base = Base(args.base)
    if base.arch != "llama":
        sys.exit(f"{args.base}: expected a llama-architecture base (SmolLM2), got {base.arch!r}")
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)  # noqa: E731

    # One generator per fixture, so adding a fixture never changes the others.
    rng = lambda k: np.random.default_rng([args.seed, k])  # noqa: E731

    write_peft(out("peft_smollm2_r8"), base, rng(1), r=8, alpha=16, targets=["q_proj", "v_proj"])
    write_peft(out("peft_smollm2_rslora"), base, rng(2), r=16, alpha=16,
               targets=["q_proj", "k_proj", "v_proj", "o_proj"], use_rslora=True)
    n_vocab, n_embd = None, None
    emb = base.dims.get("token_embd.weight")
    if emb:
        n_embd, n_vocab = emb
    g = rng(3)
    embedding = {
        "base_model.model.model.embed_tokens.lora_embedding_A":
            (g.standard_normal((8, n_vocab or 16)) * STD).astype(np.float32),
        "base_model.model.model.embed_tokens.lora_embedding_B":
            (g.standard_normal((n_embd or 16, 8)) * STD).astype(np.float32),
    }
    write_peft(out("peft_dora"), base, g, r=8, alpha=16, targets=["q_proj", "v_proj"],
               use_dora=True, extra_tensors=embedding)

    write_gguf_adapter(out("lora_smollm2_a.gguf"), base, rng(4), r=8, alpha=8.0)
    write_gguf_adapter(out("lora_smollm2_b.gguf"), base, rng(5), r=8, alpha=8.0)
    write_gguf_adapter(out("lora_gemma3_arch.gguf"), base, rng(4), r=8, alpha=8.0, arch="gemma3")
    n_in = base.in_out(0, "q_proj")[0]
    write_gguf_adapter(out("lora_bad_shape.gguf"), base, rng(6), r=8, alpha=8.0,
                       bad_in=512 if n_in != 512 else n_in - 64)

    with open(out("lora_smollm2_a.gguf"), "rb") as f:
        data = f.read()
    with open(out("lora_truncated.gguf"), "wb") as f:
        f.write(data[: len(data) // 2])
    print(f"{out('lora_truncated.gguf')}: lora_smollm2_a.gguf cut to {len(data) // 2} of {len(data)} bytes")


if __name__ == "__main__":
    main()
