#!/usr/bin/env python3
"""Prompt (pp) and decode (tg) speed of llmedge-python, llama-cpp-python and the Rust API, side
by side: same model (the default SmolLM2), same threads, same request.

    make bench-python    # installs both packages into .venv, then runs this script
    .venv/bin/python bench/python_bench.py [--threads 2] [--rounds 6] [--reps 3] [--out BENCHMARKS.md]

The request is llama-bench's: pp = one batch of a 512-token prompt (BOS then pseudo-random
tokens, the same as `llmedge bench`), tg = 128 tokens generated one at a time after a BOS prompt,
greedy, ignoring end-of-generation so exactly 128 are produced. Contexts match too: n_ctx =
pp + tg + 16, n_batch = min(2048, n_ctx), n_ubatch = 512, flash attention as llmedge resolves it
(`auto`, which is enabled on CPU).

How each one is timed:
- Rust API: `llmedge bench --json` (core's own timings, as in BENCHMARKS.md).
- llmedge-python, wall clock as a Python user sees it: pp = `Session.complete(prompt_tokens,
  max_tokens=1)` around the call; tg = a `stream=True` iteration, from the stream being ready
  (prompt evaluated) to its end; tokens are counted from `completion.tokens`, not pieces.
  Also reported: `Completion.timings` (core's clock) of the pp request and of the tg request
  made with `complete()` (no streaming; the binding's per-token Ctrl-C check is inside).
- llama-cpp-python, wall clock: pp = `Llama.eval(prompt_tokens)`; tg = `Llama.generate`, first
  token to the 129th (the same 128 decodes as core's generation time).

Every contender runs in its own process (each ships its own llama.cpp), in a rotating order,
`--rounds` times with `--reps` measured repetitions after one warm-up each. A round's figure for
a contender is the mean of its repetitions. This VM's speed drifts by 10-20% between minutes, so
the ratios are paired: llmedge-python over the other contender within each round, then the
median of those per-round ratios. Prints the JSON and a markdown section, and with `--out`
replaces the `python` section of that BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List

from bench import cpu_name, replace_section

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

        # Pieces are text, not tokens (a token may yield no text, and held-back text comes
        # out later), so the clock runs from the stream being ready (prompt evaluated, first
        # token not yet sampled) to its end: the 128 decodes between the first token and the
        # 129th, as in core's generation time, plus one sampling.
        stream = session.generate(tg_prompt, max_tokens=args.tg + 1, ignore_eos=True, greedy=True, stream=True)
        ready = time.perf_counter()
        for _ in stream:
            pass
        end = time.perf_counter()
        done = stream.completion
        assert done is not None and len(done.tokens) == args.tg + 1, done
        tg_wall = args.tg / (end - ready)
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
        "median": statistics.median(xs),
        "mean": statistics.fmean(xs),
        "stddev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "rounds": len(xs),
    }


def markdown(report) -> str:
    """The BENCHMARKS.md section: per-contender medians, then the paired ratios against the goals."""
    results, ratios = report["results"], report["ratios"]
    lines = [
        "## Python binding vs llama-cpp-python and the Rust API (`make bench-python`, `bench/python_bench.py`)",
        "",
        f"SmolLM2-135M-Instruct Q4_1, {report['threads']} threads, pp{report['pp_tokens']} / tg{report['tg_tokens']} "
        "(llama-bench's request); every contender in its own process, in rotating order, "
        f"{report['rounds']} rounds × {report['reps']} repetitions after a warm-up; llama-cpp-python "
        f"{report['llama_cpp_python']} installed from PyPI and built from source (`GGML_NATIVE=ON`). "
        f"Machine: {report['machine']['cpu']}, {report['machine']['cpus']} cores. Measured {report['date']}.",
        "",
        "| contender | pp tok/s (median ± sd of rounds) | tg tok/s (median ± sd of rounds) |",
        "|---|---:|---:|",
    ]
    order = ["rust", "llmedge-python", "llmedge-python-core-timings", "llama-cpp-python", "llama-cpp-python-fa-off"]
    for name in [n for n in order if n in results]:
        r = results[name]
        lines.append(f"| {LABELS[name]} | {r['pp']['median']:.1f} ± {r['pp']['stddev']:.1f} "
                     f"| {r['tg']['median']:.1f} ± {r['tg']['stddev']:.1f} |")
    lines += ["", "Paired ratios (llmedge-python wall clock over the other, per round; median, then min–max):", ""]
    goals = {"rust": ("within 3% of the Rust API", 0.97), "llama-cpp-python": ("at least llama-cpp-python", 1.0)}
    lines += ["| ratio | pp | tg | goal |", "|---|---|---|---|"]
    for other, r in ratios.items():
        goal, bound = goals.get(other, ("(reference)", None))
        cells = [f"{r[t]['median']:.3f} ({r[t]['min']:.3f}–{r[t]['max']:.3f})" for t in ("pp", "tg")]
        if bound is not None:
            met = all(r[t]["median"] >= bound for t in ("pp", "tg"))
            goal += ": " + ("met" if met else "NOT MET")
        lines.append(f"| llmedge-python / {other} | {cells[0]} | {cells[1]} | {goal} |")
    raw = {n: {t: [round(x, 1) for x in xs] for t, xs in d.items()} for n, d in report["rounds_data"].items()}
    lines += ["", "Per-round figures (tok/s): `" + json.dumps(raw) + "`"]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="GGUF file (default: llmedge's default model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pp", type=int, default=512)
    p.add_argument("--tg", type=int, default=128)
    p.add_argument("--rounds", type=int, default=6, help="times each contender is run (rotating order)")
    p.add_argument("--reps", type=int, default=3, help="measured repetitions per run, after one warm-up")
    p.add_argument("--only", nargs="*", choices=CONTENDERS, help="run only these contenders")
    p.add_argument("--json-out", type=pathlib.Path, help="also write the JSON here")
    p.add_argument("--out", type=pathlib.Path, help="replace the python section of this BENCHMARKS.md")
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
    # rounds_data[name][key] = one figure per round: the mean of that round's repetitions.
    rounds_data: Dict[str, Dict[str, List[float]]] = {}
    for r in range(args.rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for name in order:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            for key, xs in run_worker(name, args).items():
                label = "llmedge-python-core-timings" if key.endswith("_core") else name
                rounds_data.setdefault(label, {}).setdefault(key.removesuffix("_core"), []).append(statistics.fmean(xs))

    results = {name: {k: summary(v) for k, v in by_key.items()} for name, by_key in rounds_data.items()}
    ratios = {}
    if "llmedge-python" in rounds_data:
        mine = rounds_data["llmedge-python"]
        for other in ("rust", "llama-cpp-python", "llama-cpp-python-fa-off"):
            if other in rounds_data:
                ratios[other] = {}
                for t in ("pp", "tg"):
                    per_round = [a / b for a, b in zip(mine[t], rounds_data[other][t])]
                    ratios[other][t] = {"median": statistics.median(per_round), "min": min(per_round),
                                        "max": max(per_round), "per_round": per_round}

    try:
        from importlib.metadata import version

        lcp_version = version("llama-cpp-python")
    except Exception:  # noqa: BLE001 - not installed: its contenders were not run
        lcp_version = "(not installed)"
    report = {
        "model": args.model,
        "threads": args.threads,
        "pp_tokens": args.pp,
        "tg_tokens": args.tg,
        "rounds": args.rounds,
        "reps": args.reps,
        "date": str(datetime.date.today()),
        "llama_cpp_python": lcp_version,
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "results": results,
        "ratios": ratios,
        "rounds_data": rounds_data,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    section = markdown(report)
    print()
    print(section)
    if args.out:
        args.out.write_text(replace_section(args.out.read_text(), "python", section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
