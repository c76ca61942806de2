"""Shared helpers: the `relevance` command line the bindings are compared with, and fixtures."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def cli_binary() -> Path:
    """The `relevance` binary built from the same checkout (`cargo build` or `cargo test`)."""
    path = Path(os.environ.get("RELEVANCE_BIN", REPO / "target" / "debug" / "relevance"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build` (or set RELEVANCE_BIN)")
    return path


def run_cli(*args, check=True):
    """Runs the command line; returns the completed process."""
    proc = subprocess.run([str(cli_binary()), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"relevance {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def cli_error(*args) -> str:
    """The message the command line prints for a failing command, without `error: `."""
    proc = run_cli(*args, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0][len("error: "):]


def cli_maps(out: Path, inputs, model, method, *flags):
    """`relevance explain` of `inputs` with one method; the maps in the order of the rows."""
    run_cli("explain", "--model", model, "--method", method, "--out", out, *flags, *inputs)
    record = json.loads((out / "explain.json").read_text())
    maps = []
    for output in record["outputs"]:
        files = [f["npy"] for f in output["files"].values() if isinstance(f, dict) and "npy" in f]
        assert len(files) == 1, output
        maps.append(np.load(out / files[0]))
    return np.stack(maps), record


def skip(reason: str):
    """Skips with `reason`, or fails where a skip is not allowed (RELEVANCE_PY_NO_SKIP=1, as CI
    sets it, so a check CI promises cannot silently not run)."""
    if os.environ.get("RELEVANCE_PY_NO_SKIP") == "1":
        pytest.fail(f"not skipped under RELEVANCE_PY_NO_SKIP=1: {reason}")
    pytest.skip(reason)


def brain_mri() -> Path:
    """The brain-MRI model and images from tools/fetch-data.sh (RELEVANCE_DATA)."""
    data = os.environ.get("RELEVANCE_DATA")
    if not data:
        skip("RELEVANCE_DATA is not set: run `export RELEVANCE_DATA=$(tools/fetch-data.sh)` "
                    "(.ci/run sets it)")
    return Path(data) / "brain-mri"
