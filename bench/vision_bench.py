#!/usr/bin/env python3
"""Vision: the saving of the image-embedding cache, measured; writes the "vision" section of
BENCHMARKS.md.

Runs core/examples/vision_bench.rs (time of a request whose image is encoded, then of the same
request served from the cache) on the seeded random projectors of `make fixtures`: the tiny test
projector (32 px, 16 image tokens) and a ViT-sized one (224 px, 196 patches, 6 blocks of width
256). Random weights: the encoder's cost is that of its shape, not of a trained model.
"""
import argparse
import datetime
import json
import subprocess

from bench import ROOT, cpu_name, replace_section

VLM = ROOT / "models/cache/fixtures/vlm"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", default=str(ROOT / "target/release/examples"))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for label, mmproj, image in [
        ("tiny test projector, 32 px", "tiny-vlm-mmproj.gguf", "pattern.png"),
        ("ViT-sized projector, 224 px", "bench-mmproj.gguf", "pattern.png"),
    ]:
        out = subprocess.run(
            [f"{args.examples}/vision_bench", str(VLM / "tiny-vlm.gguf"), str(VLM / mmproj), str(VLM / image),
             str(args.reps), str(args.threads)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((label, r))
    lines = [
        "## Vision: image embedding cache (`make bench`, `bench/vision_bench.py`)",
        "",
        f"{datetime.date.today()}, {cpu_name()}, {args.threads} threads, median of {args.reps}. One request = "
        "chat prompt with one image, 1 generated token, on the tiny random text model of `make fixtures`; "
        "\"first\" encodes the image (cache cleared), \"again\" is the same request with the embedding "
        "taken from the cache (content hash). Random weights: the encoder costs what its shape costs.",
        "",
        "| projector | prompt tokens | first request ms | same image again ms | saved |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        saved = 1 - r["cached_ms"] / r["first_ms"]
        lines.append(f"| {label} | {r['prompt_tokens']} | {r['first_ms']:.1f} | {r['cached_ms']:.1f} | {saved:.0%} |")
    lines.append("")
    lines.append("The encoder ran once per \"first\" request and never for \"again\" (encoder runs and cache "
                 "hits are counted by `Projector::stats()`; asserted in core/tests/vision.rs).")
    path = ROOT / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), "vision", "\n".join(lines)) )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
