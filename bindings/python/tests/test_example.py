"""The analyst example runs end to end on its sample CSV."""

import csv
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "examples" / "python" / "summarize_csv.py"
SAMPLE = ROOT / "examples" / "python" / "sample_feedback.csv"


def run(args, block_tqdm=False):
    prelude = "import sys; sys.modules['tqdm'] = None\n" if block_tqdm else ""
    code = prelude + f"import runpy, sys; sys.argv = {[str(SCRIPT), *args]!r}; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_summarize_csv_with_fallback_progress(tmp_path):
    out = tmp_path / "out.csv"
    proc = run([str(SAMPLE), "-o", str(out), "--max-tokens", "24"], block_tqdm=True)
    assert proc.returncode == 0, proc.stderr
    assert "summarising: [" in proc.stderr and "5/5" in proc.stderr
    rows = read(out)
    source = read(SAMPLE)
    assert len(rows) == len(source) == 5
    for got, src in zip(rows, source):
        assert {k: got[k] for k in src} == src  # the input columns are kept as they were
        assert got["summary"].strip(), got
        assert "\n" not in got["summary"]


def test_summarize_csv_bad_column(tmp_path):
    proc = run([str(SAMPLE), "-o", str(tmp_path / "x.csv"), "--column", "nope"])
    assert proc.returncode == 2
    assert "column 'nope'" in proc.stderr
