#!/usr/bin/env python3
"""LoRA, merge and quantization, measured: writes the "lora" section of BENCHMARKS.md.

1. Tool speed side by side with llama.cpp's own tools on the same inputs (same run):
   `llmedge lora merge` vs `llama-export-lora`, `llmedge quantize` vs `llama-quantize`.
2. `llmedge eval` over the variants an operator compares: the base model, the base with a
   runtime adapter, the merged model, and quantized models; perplexity on
   tests/data/eval/ppl_en.txt (llama-perplexity's method), accuracy on
   tests/data/eval/tasks_en.jsonl, file size, peak RSS (one process per variant), decode tok/s.

Needs `make fixtures` and `make reference-tools`. The adapters are the seeded random test
fixtures, so accuracy measures the harness, not a trained adapter.
"""
import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

from bench import ROOT, cpu_name, replace_section

FIX = ROOT / "models/cache/fixtures"
TOOLS = ROOT / ".bench/llama.cpp/build/bin"


def timed(cmd):
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return time.perf_counter() - start


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmedge", default=str(ROOT / "target/release/llmedge"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    exe, t = args.llmedge, str(args.threads)
    work = ROOT / "target/lora-bench"
    work.mkdir(parents=True, exist_ok=True)
    q4 = ROOT / "models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
    f16 = FIX / "smollm2-f16.gguf"
    lora = FIX / "lora/lora_smollm2_a.gguf"

    tools = {"merge": ([], []), "quantize Q4_K_M": ([], [])}
    for _ in range(args.rounds):
        tools["merge"][0].append(timed([exe, "lora", "merge", "--base", f16, "--lora", lora, "-o", work / "merged-f16.gguf"]))
        tools["merge"][1].append(timed([TOOLS / "llama-export-lora", "-m", f16, "--lora", lora, "-o", work / "export-lora.gguf", "-t", t]))
        tools["quantize Q4_K_M"][0].append(timed([exe, "quantize", "--type", "Q4_K_M", "-t", t, f16, work / "q4_k_m.gguf"]))
        tools["quantize Q4_K_M"][1].append(timed([TOOLS / "llama-quantize", f16, work / "q4_k_m-ref.gguf", "Q4_K_M", t]))
    subprocess.run([exe, "quantize", "--type", "Q8_0", "-t", t, f16, work / "q8_0.gguf"], check=True, capture_output=True)
    subprocess.run([exe, "quantize", "--type", "Q4_K_M", "-t", t, work / "merged-f16.gguf", work / "merged-q4_k_m.gguf"],
                   check=True, capture_output=True)

    variants = [
        f"base Q4_1={q4}",
        f"base Q4_1 + runtime LoRA={q4}+{lora}",
        f"base F16={f16}",
        f"base F16 + runtime LoRA={f16}+{lora}",
        f"merged F16={work / 'merged-f16.gguf'}",
        f"merged → Q4_K_M={work / 'merged-q4_k_m.gguf'}",
        f"F16 → Q8_0={work / 'q8_0.gguf'}",
        f"F16 → Q4_K_M={work / 'q4_k_m.gguf'}",
    ]
    cmd = [exe, "--json", "eval", "--ppl", ROOT / "tests/data/eval/ppl_en.txt", "--ctx", "128",
           "--tasks", ROOT / "tests/data/eval/tasks_en.jsonl", "--chat", "--speed-tokens", "128", "-t", t]
    for v in variants:
        cmd += ["--variant", v]
    rows = json.loads(subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True).stdout)

    lines = [
        "## LoRA, merge and quantization (`make bench`, `bench/lora_bench.py`)",
        "",
        f"SmolLM2-135M, {args.threads} threads; machine: {cpu_name()}. Measured {datetime.date.today()}. "
        "The adapter is the seeded random rank-8 q/v fixture (alpha 8), so accuracy shows the harness "
        "working, not a trained adapter's gain.",
        "",
        f"Tools against llama.cpp's own, same inputs, median of {args.rounds} rounds (wall time, including process start):",
        "",
        "| task | llmedge s | llama.cpp s | llmedge / llama.cpp |",
        "|---|---:|---:|---:|",
    ]
    for name, (ours, ref) in tools.items():
        ref_name = "llama-export-lora" if name == "merge" else "llama-quantize"
        lines.append(f"| {name} (vs {ref_name}) | {median(ours):.2f} | {median(ref):.2f} | {median(ours) / median(ref):.3f} |")
    lines += [
        "",
        "`llmedge eval` (perplexity: ctx 128 over the whole text, as llama-perplexity computes it; "
        "accuracy: 6 multiple-choice tasks by log-likelihood + 2 exact-match tasks, chat template; "
        "tok/s: 128 greedy tokens):",
        "",
        "| variant | adapter params | file size | peak RSS | accuracy | perplexity | tok/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        acc, ppl = r["accuracy"], r["perplexity"]
        lines.append(
            f"| {r['variant']} | {r['adapter_params']} | {r['file_bytes'] / 1048576:.1f} MiB | "
            f"{(r['peak_rss_bytes'] or 0) / 1048576:.1f} MiB | {acc['accuracy'] * 100:.1f}% ({acc['correct']}/{acc['total']}) | "
            f"{ppl['perplexity']:.3f} ± {ppl['stderr']:.3f} | {r['tok_s']:.1f} |")
    lines += ["", "Raw JSON: `" + json.dumps({"tools": tools, "eval": rows}) + "`"]
    out = Path(args.out)
    out.write_text(replace_section(out.read_text(), "lora", "\n".join(lines)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
