#!/usr/bin/env python3
"""Prompt (pp) and decode (tg) speed of llmedge-python, llama-cpp-python and the Rust API, side
by side: same model (the default SmolLM2), same threads, same request.

    .venv/bin/python bench/python_bench.py [--threads 2] [--rounds 3] [--reps 3]

The request is llama-bench's: pp = one batch of a 512-token prompt (BOS then pseudo-random
tokens, the same as `llmedge bench`), tg = 128 tokens generated one at a time after a BOS prompt,
greedy, ignoring end-of-generation so exactly 128 are produced. Contexts match too: n_ctx =
pp + tg + 16, n_batch = min(2048, n_ctx), n_ubatch = 512, flash attention as llmedge resolves it
(`auto`, which is enabled on CPU).

How each one is timed:
- Rust API: `llmedge bench --json` (core's own timings, as in BENCHMARKS.md).
- llmedge-python, wall clock as a Python user sees it: pp = `Session.complete(prompt_tokens,
  max_tokens=1)` around the call; tg = a `stream=True` iteration, first piece to last.
  Also reported: `Completion.timings` (core's clock) of the pp request and of the tg request
  made with `complete()` (no streaming; the binding's per-token Ctrl-C check is inside).
- llama-cpp-python, wall clock: pp = `Llama.eval(prompt_tokens)`; tg = `Llama.generate`, first
  token to the 129th (the same 128 decodes as core's generation time).

Every contender runs in its own process (each ships its own llama.cpp), in a rotating order,
`--rounds` times with `--reps` measured repetitions after one warm-up each; the figures are
means over all repetitions. Prints the JSON, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
CONTENDERS = ["rust", "llmedge-python", "llama-cpp-python", "llama-cpp-python-fa-off"]
LABELS = {
    "rust": "Rust API (`llmedge bench`)",
    "llmedge-python": "llmedge-python (wall clock; tg streamed)",
    "llmedge-python-core-timings": "llmedge-python complete() (core timings)",
    "llama-cpp-python": "llama-cpp-python (flash_attn=True, as llmedge)",
    "llama-cpp-python-fa-off": "llama-cpp-python (its defaults: flash_attn=False)",
}


def bench_prompt(n_vocab: int, bos: List[int], pp: int) -> List[int]:
    """BOS, then the pseudo-random tokens of cli/src/bench.rs."""
    prompt = list(bos)
    x = 42
    while len(prompt) < pp:
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        prompt.append((x >> 33) % n_vocab)
    return prompt


def n_ctx(args) -> int:
    return args.pp + args.tg + 16


# --- workers (each in its own process) -------------------------------------------------------


def worker_llmedge(args) -> Dict[str, List[float]]:
    import llmedge

    model = llmedge.Model(args.model, threads=args.threads)
    session = model.session(n_ctx=n_ctx(args))
    bos = model.tokenize("", add_special=True)
    prompt = bench_prompt(model.info.n_vocab, bos, args.pp)
    tg_prompt = bos or prompt[:1]
    out: Dict[str, List[float]] = {"pp": [], "tg": [], "pp_core": [], "tg_core": []}
    for rep in range(args.reps + 1):
        t0 = time.perf_counter()
        c = session.complete(prompt, max_tokens=1, greedy=True)
        t1 = time.perf_counter()
        assert c.usage.prompt_tokens == args.pp
        pp_wall = args.pp / (t1 - t0)
        pp_core = c.timings.prompt_tokens_per_second

        stream = session.generate(tg_prompt, max_tokens=args.tg + 1, ignore_eos=True, greedy=True, stream=True)
        first = last = None
        for _ in stream:
            last = time.perf_counter()
            if first is None:
                first = last
        done = stream.completion
        assert done is not None and len(done.tokens) == args.tg + 1, done
        tg_wall = args.tg / (last - first)
        # The same request without streaming: core's clock, with the binding's per-token
        # Ctrl-C check inside the measured loop.
        full = session.complete(tg_prompt, max_tokens=args.tg + 1, ignore_eos=True, greedy=True)
        assert len(full.tokens) == args.tg + 1 and full.tokens == done.tokens
        tg_core = full.timings.generation_tokens_per_second
        if rep > 0:
            out["pp"].append(pp_wall)
            out["tg"].append(tg_wall)
            out["pp_core"].append(pp_core)
            out["tg_core"].append(tg_core)
    model.close()
    return out


def worker_llama_cpp_python(args, flash_attn: bool) -> Dict[str, List[float]]:
    from llama_cpp import Llama

    ctx = n_ctx(args)
    llm = Llama(
        model_path=args.model,
        n_ctx=ctx,
        n_batch=min(2048, ctx),
        n_ubatch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        flash_attn=flash_attn,
        verbose=False,
    )
    bos_id = llm.token_bos()
    bos = [bos_id] if bos_id >= 0 else []
    prompt = bench_prompt(llm.n_vocab(), bos, args.pp)
    tg_prompt = bos or prompt[:1]
    out: Dict[str, List[float]] = {"pp": [], "tg": []}
    for rep in range(args.reps + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        pp_rate = args.pp / (t1 - t0)

        llm.reset()
        n = 0
        first = last = 0.0
        for _ in llm.generate(tg_prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            last = time.perf_counter()
            if n == 0:
                first = last
            n += 1
            if n == args.tg + 1:
                break
        tg_rate = args.tg / (last - first)
        if rep > 0:
            out["pp"].append(pp_rate)
            out["tg"].append(tg_rate)
    return out


def run_worker(name: str, args) -> Dict[str, List[float]]:
    if name == "rust":
        exe = TARGET / "release" / "llmedge"
        cmd = [str(exe), "bench", "--json", "-t", str(args.threads), "-m", args.model,
               "--pp", str(args.pp), "--tg", str(args.tg), "--reps", str(args.reps)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        # `llmedge bench` reports the mean of its repetitions: one sample per round.
        return {"pp": [res["pp"]["tokens_per_second"]], "tg": [res["tg"]["tokens_per_second"]]}
    cmd = [sys.executable, __file__, "--worker", name, "--model", args.model, "--threads", str(args.threads),
           "--pp", str(args.pp), "--tg", str(args.tg), "--reps", str(args.reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- orchestration -----------------------------------------------------------------------------


def summary(xs: List[float]) -> Dict[str, float]:
    return {
        "tokens_per_second": statistics.fmean(xs),
        "stddev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "median": statistics.median(xs),
        "samples": len(xs),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="GGUF file (default: llmedge's default model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pp", type=int, default=512)
    p.add_argument("--tg", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3, help="times each contender is run (rotating order)")
    p.add_argument("--reps", type=int, default=3, help="measured repetitions per run, after one warm-up")
    p.add_argument("--only", nargs="*", choices=CONTENDERS, help="run only these contenders")
    p.add_argument("--json-out", type=pathlib.Path, help="also write the JSON here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.model is None:
        import llmedge

        args.model = llmedge.default_model_path()

    if args.worker:
        if args.worker == "llmedge-python":
            res = worker_llmedge(args)
        else:
            res = worker_llama_cpp_python(args, flash_attn=args.worker == "llama-cpp-python")
        print(json.dumps(res))
        return 0

    contenders = args.only or CONTENDERS
    samples: Dict[str, Dict[str, List[float]]] = {c: {} for c in contenders}
    for r in range(args.rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for name in order:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            for key, xs in run_worker(name, args).items():
                samples[name].setdefault(key, []).extend(xs)

    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for name, by_key in samples.items():
        results[name] = {k: summary(v) for k, v in by_key.items() if k in ("pp", "tg")}
        if "pp_core" in by_key:
            results["llmedge-python-core-timings"] = {
                "pp": summary(by_key["pp_core"]),
                "tg": summary(by_key["tg_core"]),
            }

    def rate(name: str, test: str) -> float:
        return results[name][test]["tokens_per_second"]

    ratios = {}
    if "llmedge-python" in results:
        for other in ("rust", "llama-cpp-python", "llama-cpp-python-fa-off"):
            if other in results:
                ratios[f"llmedge-python/{other}"] = {t: rate("llmedge-python", t) / rate(other, t) for t in ("pp", "tg")}

    report = {
        "model": args.model,
        "threads": args.threads,
        "pp_tokens": args.pp,
        "tg_tokens": args.tg,
        "rounds": args.rounds,
        "reps": args.reps,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
        "ratios": ratios,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")

    print()
    heads = [f"pp{args.pp} tok/s", f"tg{args.tg} tok/s"]
    width = max(17, *(len(h) for h in heads))
    print(f"| {'contender':<52} | " + " | ".join(h.rjust(width) for h in heads) + " |")
    print(f"|{'-' * 54}|" + "|".join("-" * (width + 1) + ":" for _ in heads) + "|")
    order = ["rust", "llmedge-python", "llmedge-python-core-timings", "llama-cpp-python", "llama-cpp-python-fa-off"]
    for name in [n for n in order if n in results]:
        cells = []
        for t in ("pp", "tg"):
            s = results[name][t]
            cells.append(f"{s['tokens_per_second']:.1f} ± {s['stddev']:.1f}".rjust(width))
        print(f"| {LABELS[name]:<52} | " + " | ".join(cells) + " |")
    if ratios:
        print()
        for key, r in ratios.items():
            print(f"- {key}: pp {r['pp']:.3f}, tg {r['tg']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
