#!/usr/bin/env python3
"""Summarise one column of a CSV file with a local model, row by row.

An analyst's script: every row's text goes through the same prompt, the answers are written to
a new CSV (the input columns plus a ``summary`` column). Nothing leaves the machine.

    python examples/python/summarize_csv.py examples/python/sample_feedback.csv
    python examples/python/summarize_csv.py feedback.csv --column text -o out.csv \\
        --prompt "Summarise this complaint in one sentence:\\n\\n{text}" --max-tokens 60

A progress bar is shown with tqdm when it is installed (``pip install tqdm``), else a simple
one. Ctrl-C stops early and still writes the rows done so far.
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys
import time
from typing import Iterable, Iterator, List, Optional, TypeVar

import llmedge

T = TypeVar("T")

DEFAULT_PROMPT = "Summarise the following customer feedback in one short sentence.\n\n{text}"
SYSTEM = "You are a helpful assistant who writes short, factual summaries."


def progress(items: List[T], desc: str) -> Iterator[T]:
    """tqdm when installed, else a plain text bar on stderr."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _simple_progress(items, desc)
    return iter(tqdm(items, desc=desc, unit="row"))


def _simple_progress(items: List[T], desc: str) -> Iterator[T]:
    total = len(items)
    start = time.monotonic()

    def show(done: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        rate = done / max(time.monotonic() - start, 1e-9)
        sys.stderr.write(f"\r{desc}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:.2f} rows/s)")
        sys.stderr.flush()

    show(0)
    for i, item in enumerate(items, 1):
        yield item
        show(i)
    sys.stderr.write("\n")


def summarise(model: llmedge.Model, text: str, prompt: str, max_tokens: int) -> str:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": prompt.format(text=text)},
    ]
    reply = model.chat(messages, max_tokens=max_tokens, greedy=True, truncation="drop_oldest")
    return " ".join(reply.split())  # one line per cell


def read_rows(path: pathlib.Path) -> tuple[List[str], List[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def write_rows(path: pathlib.Path, fields: Iterable[str], rows: List[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", type=pathlib.Path, help="CSV file to read")
    p.add_argument("-o", "--output", type=pathlib.Path, help="CSV file to write (default: INPUT.summaries.csv)")
    p.add_argument("--column", default="text", help="column to summarise (default: text)")
    p.add_argument("--summary-column", default="summary", help="name of the new column (default: summary)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt template; {text} is the cell")
    p.add_argument("--max-tokens", type=int, default=48, help="longest summary in tokens (default: 48)")
    p.add_argument("--model", help="GGUF model file (default: llmedge's default model)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--limit", type=int, help="only the first N rows")
    args = p.parse_args(argv)

    if "{text}" not in args.prompt:
        p.error("--prompt must contain {text}")
    fields, rows = read_rows(args.input)
    if args.column not in fields:
        p.error(f"column {args.column!r} not in {args.input} (columns: {', '.join(fields)})")
    if args.limit is not None:
        rows = rows[: args.limit]
    output = args.output or args.input.with_suffix(".summaries.csv")
    out_fields = fields + ([args.summary_column] if args.summary_column not in fields else [])

    done: List[dict] = []
    try:
        with llmedge.Model(args.model, threads=args.threads) as model:
            for row in progress(rows, desc="summarising"):
                text = (row.get(args.column) or "").strip()
                summary = summarise(model, text, args.prompt, args.max_tokens) if text else ""
                done.append({**row, args.summary_column: summary})
    except KeyboardInterrupt:
        print(f"\ninterrupted: writing the {len(done)} rows done so far", file=sys.stderr)
    except llmedge.Error as e:
        print(f"error {e.code} ({e.name}): {e}", file=sys.stderr)
        return 1
    write_rows(output, out_fields, done)
    print(f"wrote {len(done)} rows to {output}", file=sys.stderr)
    return 0 if len(done) == len(rows) else 130


if __name__ == "__main__":
    sys.exit(main())
