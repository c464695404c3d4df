#!/usr/bin/env python3
"""Side-by-side speed of llmedge against llama.cpp itself; writes BENCHMARKS.md.

Contenders, same model, same threads, same llama.cpp version, run alternately in one session:
  - llmedge (Rust API)      `llmedge bench --json`
  - llmedge (C API)         bench/c_bench.c linked against libllmedge.so
  - llama-cpp-2 raw loop    core/examples/llama_reference.rs `bench` (no llmedge code)
  - llama.cpp llama-bench   built by bench/build-llama-tools.sh at the same llama.cpp version
pp = one batch of N prompt tokens; tg = N single-token decodes (llama-bench's definitions).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_c_bench():
    """Install the C package into .bench/c-install and link the C bench against it."""
    prefix = ROOT / ".bench" / "c-install"
    subprocess.run([str(ROOT / "scripts/install-c.sh"), str(prefix)], check=True, capture_output=True)
    exe = ROOT / ".bench" / "c_bench"
    subprocess.run(
        ["cc", "-O2", "-std=c99", "-Wall", "-Werror", str(ROOT / "bench" / "c_bench.c"), f"-I{prefix / 'include'}",
         f"-L{prefix / 'lib'}", "-lllmedge", f"-Wl,-rpath,{prefix / 'lib'}", "-o", str(exe)],
        check=True)
    return exe


def llama_bench(exe, model, threads, pp, tg, reps):
    out = subprocess.run([str(exe), "-m", str(model), "-t", str(threads), "-p", str(pp), "-n", str(tg),
                          "-r", str(reps), "-o", "json"], check=True, capture_output=True, text=True).stdout
    res = {}
    for r in json.loads(out):
        key = "pp" if r["n_prompt"] > 0 else "tg"
        res[key] = {"tokens_per_second": r["avg_ts"]}
    return res


def replace_section(text, name, body):
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text:
        return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text.rstrip() + "\n\n" + block + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmedge", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--llama-bench", default=str(ROOT / ".bench/llama.cpp/build/bin/llama-bench"))
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds over all contenders")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()

    if not Path(args.llama_bench).exists():
        subprocess.run([str(ROOT / "bench/build-llama-tools.sh"), "llama-bench"], check=True)
    model = args.model or run_json([args.llmedge, "fetch", "--json"])["path"]
    c_bench = build_c_bench()
    t, pp, tg, reps = str(args.threads), str(args.pp), str(args.tg), str(args.reps)
    contenders = {
        "llmedge (Rust API)": lambda: run_json([args.llmedge, "bench", "--json", "-m", model, "-t", t, "--pp", pp,
                                                "--tg", tg, "--reps", reps]),
        "llmedge (C API)": lambda: run_json([str(c_bench), model, t, pp, tg, reps]),
        "llama-cpp-2 raw loop": lambda: run_json([args.reference, "bench", model, t, pp, tg, reps]),
        "llama.cpp llama-bench": lambda: llama_bench(args.llama_bench, model, t, pp, tg, reps),
    }
    results = {name: {"pp": [], "tg": []} for name in contenders}
    for rnd in range(args.rounds):
        for name, fn in contenders.items():
            r = fn()
            for k in ("pp", "tg"):
                results[name][k].append(r[k]["tokens_per_second"])
            print(f"round {rnd + 1}: {name}: pp {r['pp']['tokens_per_second']:.1f}  tg {r['tg']['tokens_per_second']:.1f}",
                  file=sys.stderr)
    # This machine's speed drifts between runs (shared host), so ratios are taken within each
    # round (contenders run back to back) and summarised by their median.
    def ratio(name, base, k):
        return statistics.median(a / b for a, b in zip(results[name][k], results[base][k]))

    median = {n: {k: statistics.median(v[k]) for k in v} for n, v in results.items()}
    rows = []
    for name, m in median.items():
        rows.append(f"| {name} | {m['pp']:.1f} | {ratio(name, 'llama.cpp llama-bench', 'pp'):.3f} | "
                    f"{m['tg']:.1f} | {ratio(name, 'llama.cpp llama-bench', 'tg'):.3f} |")
    c_vs_rust = {k: ratio("llmedge (C API)", "llmedge (Rust API)", k) for k in ("pp", "tg")}
    body = f"""## Core engine vs llama.cpp (`make bench`)

Model `{Path(model).name}`, {args.threads} threads, pp{args.pp} / tg{args.tg}, {args.reps} repetitions per run after a
warm-up, {args.rounds} alternating rounds. Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}.
Measured {datetime.date.today().isoformat()} with `make bench` (`bench/bench.py`).

| contender | pp{args.pp} tok/s (median) | ratio to llama-bench (median per round) | tg{args.tg} tok/s (median) | ratio to llama-bench (median per round) |
|---|---|---|---|---|
{chr(10).join(rows)}

Target: llmedge / llama-bench >= 0.98 on both figures. C API / Rust API: pp {c_vs_rust['pp']:.3f}, tg {c_vs_rust['tg']:.3f} (target: within 2%).
Raw per-round figures: `{json.dumps(results)}`
"""
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# llmedge benchmarks\n\nAll figures come from scripts in `bench/`; absolute numbers vary between machines, so compare the ratios measured in one run.\n"
    out.write_text(replace_section(text, "core", body))
    print(body)


if __name__ == "__main__":
    main()
