#!/usr/bin/env python3
"""Independent check of llmedge's PEFT → GGUF LoRA import, using only numpy, safetensors and gguf-py.

    python3 check_peft_import.py PEFT_DIR IMPORTED.gguf BASE.gguf

Why: the Rust importer and its unit tests share one author's reading of the layout; this
re-derives the documented layout (lora_importer module docs) from the PEFT files with the
reference Python libraries and compares value by value. Exit 0 when everything matches,
else print every difference and exit 1.

Layout checked: for each PEFT module model.layers.N.self_attn.{q,k,v,o}_proj /
model.layers.N.mlp.{gate,up,down}_proj / lm_head, tensors <base>.lora_a (numpy shape (r, in),
= lora_A) and <base>.lora_b (numpy shape (out, r), = lora_B; for a llama base the q/k rows
are permuted like convert_hf_to_gguf.py's LlamaModel.permute with head_count / head_count_kv),
adapter.lora.alpha = lora_alpha (x sqrt(r) with rsLoRA), general.architecture = the base's.
"""

import json
import math
import os
import re
import sys

import numpy as np
from gguf import GGUFReader
from safetensors.numpy import load_file

GGUF_NAME = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
LORA_RE = re.compile(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.default)?\.weight$")
LAYER_RE = re.compile(r"^(?:model\.layers|model\.language_model\.layers|language_model\.model\.layers)\.(\d+)\.(.+)$")


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    if hasattr(f, "contents"):
        return f.contents()
    part = f.parts[f.data[0]]
    return bytes(part).decode() if f.types[0].name == "STRING" else part[0]


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute, applied to lora_B (rows = output features)."""
    rows, r = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, r).swapaxes(1, 2).reshape(rows, r)


def base_tensor(module):
    if module == "lm_head":
        return "output.weight"
    m = LAYER_RE.match(module)
    if not m or m.group(2) not in GGUF_NAME:
        return None
    return f"blk.{m.group(1)}.{GGUF_NAME[m.group(2)]}.weight"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    peft_dir, imported, base_path = sys.argv[1:]
    errors = []

    with open(os.path.join(peft_dir, "adapter_config.json")) as f:
        config = json.load(f)
    peft = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
    base = GGUFReader(base_path)
    out = GGUFReader(imported)

    arch = field(base, "general.architecture")
    r = int(config["r"])
    want_alpha = float(config["lora_alpha"]) * (math.sqrt(r) if config.get("use_rslora") else 1.0)

    # Metadata.
    for key, want in [("general.architecture", arch), ("general.type", "adapter"), ("adapter.type", "lora")]:
        got = field(out, key)
        if got != want:
            errors.append(f"{key}: got {got!r}, want {want!r}")
    got_alpha = field(out, "adapter.lora.alpha")
    if got_alpha is None or abs(float(got_alpha) - want_alpha) > 1e-6 * max(1.0, abs(want_alpha)):
        errors.append(f"adapter.lora.alpha: got {got_alpha!r}, want {want_alpha!r}")

    # Expected tensors from PEFT.
    expected = {}
    for name, value in peft.items():
        m = LORA_RE.match(name)
        if not m:
            errors.append(f"PEFT tensor {name} is not a lora_A/lora_B weight (importer should have refused)")
            continue
        module, half = m.groups()
        bt = base_tensor(module)
        if bt is None:
            errors.append(f"PEFT module {module} has no llama.cpp tensor")
            continue
        value = value.astype(np.float32)
        if half == "B" and arch == "llama" and module.endswith(("self_attn.q_proj", "self_attn.k_proj")):
            n_head = int(field(base, "llama.attention.head_count"))
            if module.endswith("k_proj"):
                n_head = int(field(base, "llama.attention.head_count_kv", n_head))
            value = permute(value, n_head)
        expected[f"{bt}.lora_{half.lower()}"] = value

    got = {t.name: t for t in out.tensors}
    for name in sorted(set(expected) - set(got)):
        errors.append(f"missing tensor {name}")
    for name in sorted(set(got) - set(expected)):
        errors.append(f"unexpected tensor {name}")

    base_dims = {t.name: [int(d) for d in t.shape] for t in base.tensors}
    for name in sorted(set(expected) & set(got)):
        want, t = expected[name], got[name]
        data = np.asarray(t.data)
        if t.tensor_type.name not in ("F32", "F16"):
            errors.append(f"{name}: type {t.tensor_type.name}, want F32 or F16")
            continue
        if data.shape != want.shape:
            errors.append(f"{name}: numpy shape {data.shape}, want {want.shape}")
            continue
        if data.dtype == np.float32:
            same = np.array_equal(data, want)
        else:
            same = np.array_equal(data, want.astype(np.float16))
        if not same:
            bad = int(np.sum(data.astype(np.float32) != want.astype(data.dtype).astype(np.float32)))
            errors.append(f"{name}: {bad} of {want.size} values differ")
        # The pair must fit the base tensor: ggml ne [in, out].
        bt = name.rsplit(".", 1)[0]
        in_out = base_dims.get(bt)
        if in_out is None:
            errors.append(f"{name}: base has no {bt}")
        elif name.endswith("lora_a") and [int(d) for d in t.shape] != [in_out[0], r]:
            errors.append(f"{name}: ne {list(t.shape)}, want [{in_out[0]}, {r}]")
        elif name.endswith("lora_b") and [int(d) for d in t.shape] != [r, in_out[1]]:
            errors.append(f"{name}: ne {list(t.shape)}, want [{r}, {in_out[1]}]")

    if errors:
        print(f"FAIL: {imported} does not match {peft_dir}:")
        for e in errors:
            print(f"  {e}")
        sys.exit(1)
    print(f"OK: {imported}: {len(got) // 2} pairs, alpha {got_alpha}, arch {arch}")


if __name__ == "__main__":
    main()
