"""Benchmarks that cannot rot: each one's `--smoke` mode runs to its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_service_benchmark_runs():
    done = subprocess.run([sys.executable, "benchmarks/service.py", "--smoke", "--port", "8797"],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "time to first answer" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |")
            or line.startswith("| 2 |")]
    assert len(rows) == 2, done.stdout


@pytest.mark.timeout(600)
def test_the_startup_benchmark_runs():
    done = subprocess.run([sys.executable, "benchmarks/startup.py", "--smoke"], cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| cold |", "| warm |"))]
    assert len(rows) == 2, done.stdout
    assert all(row.count(" s |") == 4 for row in rows), rows  # alive, mge, /readyz, every bucket
