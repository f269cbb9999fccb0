"""Benchmarks that cannot rot: every script in benchmarks/ runs its `--smoke` mode to its table.

The scripts run as subprocesses, all started together when the first of these tests needs one
(most of their time is XLA compiling, one program at a time on one core: together they keep both
cores of a 2-core machine busy); each test then waits for its own. No timing is asserted: the
numbers of a smoke run mean little.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from likelihood import KINDS

REPOSITORY = Path(__file__).resolve().parents[2]
TIMEOUT = 600  # s, for all of them together
COMMANDS = {
    "likelihood": ["benchmarks/likelihood.py", "--smoke"],
    "nnls": ["benchmarks/nnls.py", "--smoke"],
    "power_law_series": ["benchmarks/power_law_series.py", "--smoke"],
    "service": ["benchmarks/service.py", "--smoke", "--port", "8797"],
    "startup": ["benchmarks/startup.py", "--smoke"],
    "gpu": ["benchmarks/gpu.py", "--smoke"],
}


def test_every_benchmark_has_a_smoke_run():
    scripts = {path.stem for path in (REPOSITORY / "benchmarks").glob("*.py")
               if not path.name.startswith("_")}
    assert scripts == set(COMMANDS)


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """{name: (process, stdout file, stderr file)} of the smoke runs this session's tests need."""
    wanted = {item.callspec.params["name"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")}
    folder = tmp_path_factory.mktemp("smoke")
    started = {}
    for name in sorted(wanted):
        out, err = folder / f"{name}.out", folder / f"{name}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            # Its own process group: a kill reaches the servers that service.py starts.
            started[name] = (subprocess.Popen([sys.executable, *COMMANDS[name]], cwd=REPOSITORY,
                                              stdout=stdout, stderr=stderr, text=True,
                                              start_new_session=True), out, err)
    yield started
    for process, _, _ in started.values():
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finished(runs, name) -> str:
    """The run's standard output, once it has exited 0."""
    process, out, err = runs[name]
    try:
        code = process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(process)
        raise
    assert code == 0, err.read_text()[-3000:]
    return out.read_text()


def rows(stdout: str, start: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(start)]


def likelihood_tables(stdout: str) -> None:
    for kind in KINDS:
        assert f"### likelihood `{kind}`" in stdout
    assert len(rows(stdout, "| single |")) == len(KINDS)
    assert len(rows(stdout, "| value_and_grad single |")) == len(rows(stdout, "| vmap 2 |")) == 1
    # Each kind's stage breakdown: the library's functions that one evaluation calls.
    assert len(rows(stdout, "| sum of the stages")) == len(KINDS)
    assert len(rows(stdout, "| NNLS given the factor |")) == len(KINDS)
    assert len(rows(stdout, "| isothermal | ") + rows(stdout, "| power_law | ")) == 2


def nnls_tables(stdout: str) -> None:
    summary, timings, overall = (table for table in stdout.split("\n\n") if table.startswith("|"))
    assert len(summary.splitlines()) == 4  # header, rule, mge near-truth and prior-draw
    for variant in ("near-truth", "prior-draw"):
        for solver in ("ours, caller's factor", "ours"):
            for batch in (1, 2):
                assert any(row.startswith("| mge K=") and f"{variant} | {solver} | {batch} |" in row
                           for row in timings.splitlines())
    assert any(row.startswith("| mge K=") and "| ours | 4 |" in row  # 2 lanes x 2 variants
               for row in overall.splitlines())


def service_table(stdout: str) -> None:
    assert "time to first answer" in stdout
    assert len(rows(stdout, "| 1 |") + rows(stdout, "| 2 |")) == 2  # 1 and 2 clients


def startup_table(stdout: str) -> None:
    table = rows(stdout, "| cold |") + rows(stdout, "| warm |")
    assert len(table) == 2
    assert all(row.count(" s |") == 4 for row in table), table  # alive, mge, /readyz, every bucket


def series_table(stdout: str) -> None:
    assert stdout.startswith("f    q     N=20")
    assert len(rows(stdout, "0.")) == 2  # f = 0.3 and 0.8


def gpu_tables(stdout: str) -> None:
    assert "| vmap 2 ms/eval |" in stdout and "| value: per lane MiB |" in stdout
    # mge lane after lane and vectorized, in the timing table and in the memory table.
    for lanes in ("sequential", "vectorized"):
        assert len(rows(stdout, f"| mge | {lanes} |")) == 2, stdout


CHECKS = {"likelihood": likelihood_tables, "nnls": nnls_tables,
          "power_law_series": series_table, "service": service_table, "startup": startup_table,
          "gpu": gpu_tables}


@pytest.mark.timeout(TIMEOUT + 60)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_benchmark_runs_to_its_table(runs, name):
    stdout = finished(runs, name)
    try:
        CHECKS[name](stdout)
    except AssertionError:
        print(stdout)
        raise
