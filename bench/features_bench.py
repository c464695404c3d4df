#!/usr/bin/env python3
"""What templates' structured output, the safety layer and the audit log cost; writes the
"features" section of BENCHMARKS.md.

Runs three Rust examples built by `make build` (release):
  core/examples/feature_bench.rs  decode tok/s with/without a JSON-schema grammar and with
                                  the safety layer on/off (alternating rounds, median ratios),
                                  and the streaming filter's own ns per token
  core/examples/safety_bench.rs   lexicon scan (10,000 terms) and PII redaction MB/s
  core/examples/audit_bench.rs    audit records/s with batched and per-record fsync
"""
import argparse
import datetime
import json
import subprocess
from pathlib import Path

from bench import ROOT, cpu_name, replace_section


def run(exe, *args):
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", default=str(ROOT / "target" / "release" / "examples"))
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    ex = Path(args.examples)
    feat = run(ex / "feature_bench", args.rounds)
    safety = run(ex / "safety_bench")
    audit_dir = ROOT / "target" / "audit-bench"
    audit_dir.mkdir(parents=True, exist_ok=True)
    audit = run(ex / "audit_bench", audit_dir)

    g, s = feat["grammar"], feat["safety"]
    lines = [
        "## Structured output, safety and audit (`make bench`, `bench/features_bench.py`)",
        "",
        f"Model `{feat['model']}`, 2 threads, greedy, {feat['tokens']['free']} decoded tokens, "
        f"{feat['rounds']} alternating rounds; machine: {cpu_name()}. "
        f"Measured {datetime.date.today()} (figures drift 10–16% run to run on this VM; compare ratios).",
        "",
        "| what | without | with | ratio (median per round) | target |",
        "|---|---|---|---|---|",
        f"| JSON-schema grammar, decode tok/s | {g['free_tps_median']:.1f} | {g['json_schema_tps_median']:.1f} | {g['ratio_median']:.3f} | measured (no target) |",
        f"| safety layer (input check + streaming output filter), decode tok/s | {s['off_tps_median']:.1f} | {s['on_tps_median']:.1f} | {s['ratio_median']:.3f} | ≥ 0.99 |",
        "",
        f"Streaming output filter, timed alone over the generated tokens: {s['filter_ns_per_token']:.0f} ns per token "
        f"= {s['filter_share_of_generation_percent']:.3f}% of the time a token takes to generate (target ≤ 1%).",
        "",
    ]
    lines += ["Safety layer throughput (`safety_bench`, synthetic mixed Chinese/English text):", "",
              "| measure | figure | target |", "|---|---|---|"]
    for key, value in safety.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            target = ""
            if key.startswith("scan_normalised") and key.endswith("mb_s") and "cpu" not in key:
                target = "≥ 500 MB/s (10,000 terms): " + ("met" if value >= 500 else "NOT MET")
            if "pii" in key.lower() and "mb" in key.lower():
                target = "≥ 50 MB/s: " + ("met" if value >= 50 else "NOT MET")
            lines.append(f"| {key} | {value} | {target} |")
    lines += ["", f"Audit log (`audit_bench`, records of ~{audit['results'][0]['bytes_per_record']} bytes, on-disk dir):", "",
              "| fsync policy | threads | records/s | target |", "|---|---|---|---|"]
    for r in audit["results"]:
        target = "≥ 10,000/s" if "Always" not in r["policy"] else "(reference)"
        lines.append(f"| `{r['policy']}` | {r['threads']} | {r['records_per_sec']:.0f} | {target} |")
    lines += ["", "Raw JSON: `" + json.dumps({"features": feat}) + "`"]
    out = Path(args.out)
    out.write_text(replace_section(out.read_text(), "features", "\n".join(lines)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
