"""Shared fixtures: the real default model (no mocks) and the Rust CLI."""

import json
import os
import pathlib
import subprocess

import pytest

import llmedge

ROOT = pathlib.Path(__file__).resolve().parents[3]


def cli_path() -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "llmedge"


@pytest.fixture(scope="session")
def model_path() -> str:
    return llmedge.default_model_path()


@pytest.fixture(scope="session")
def model(model_path):
    with llmedge.Model(model_path) as m:
        yield m


@pytest.fixture(scope="session")
def cli():
    """Run the Rust CLI with --json and return its parsed output."""
    exe = cli_path()
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: run `cargo build --release --workspace` first")

    def run(*args: str) -> dict:
        out = subprocess.run(
            [str(exe), "--json", *args], check=True, capture_output=True, text=True, timeout=600
        )
        return json.loads(out.stdout)

    return run
