"""Start-up of the default `lensserve serve` (every kind, embedded dataset): cold, then warm.

    python benchmarks/startup.py               # the default service, cold then warm (minutes)
    python benchmarks/startup.py --kinds mge   # the README's quick start: the embedded dataset's
                                               # mge model only (LENSSERVE_MODELS)
    python benchmarks/startup.py --smoke       # a small MGE model, Numba's own cache: that the
                                               # script runs (a minute or two)

Runs the real command, `lensserve serve` (as `python -m service.cli serve`), twice on one empty
compilation cache (and an empty Numba cache, so the CPU curvature kernel is compiled as on a fresh
clone), and times from the process's start: the first `/healthz` answer, each model's first
answer (its state leaves `compiling`), `/readyz` 200 (every model answers) and every bucket of
every model compiled. The second start is a restart on the caches the first filled. Prints a
markdown table and the machine's load average, which on a shared machine moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = """buckets = [1, 2]
[[models]]
name = "mge"
kind = "mge"
mask_radius = 1.0
settings = { lens_gaussians = 2, source_gaussians = 2 }
"""


class Start(NamedTuple):
    alive: float  # s to the first /healthz answer
    answers: dict[str, float]  # s until each model answered
    every_model: float  # s to /readyz 200
    every_bucket: float  # s until every model's state is `ready`


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_start(command: list[str], environment: dict[str, str], log: Path,
                timeout: float) -> Start:
    """Start `command` (a `lensserve serve` on `port`), wait for every bucket, stop it."""
    port = command[command.index("--port") + 1]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    alive = every_model = None
    answers: dict[str, float] = {}
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            while True:
                elapsed = time.perf_counter() - started
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited; its log: {log}")
                if elapsed > timeout:
                    raise RuntimeError(f"not ready after {timeout:.0f} s; its log: {log}")
                try:
                    client.get("/healthz")
                    alive = alive or elapsed
                    states = {m["name"]: m["state"] for m in client.get("/v1/models").json()["models"]}
                    for name, state in states.items():
                        if state in ("serving", "ready"):
                            answers.setdefault(name, elapsed)
                    # /readyz also wants every queue below its limit and no batch stuck.
                    if len(answers) == len(states) and client.get("/readyz").status_code == 200:
                        every_model = every_model or elapsed
                    if all(state == "ready" for state in states.values()):
                        return Start(alive, answers, every_model, elapsed)
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", help="serve the embedded dataset with these kinds "
                        "only (default: every kind)")
    parser.add_argument("--smoke", action="store_true", help="a small MGE model, not the default")
    parser.add_argument("--timeout", type=float, default=1800, help="per start, seconds")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lensserve-startup-"))
    environment = {**os.environ, "LENSSERVE_COMPILATION_CACHE_DIR": str(workdir / "jax"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY),
                                                               os.environ.get("PYTHONPATH")]))}
    if not args.smoke:  # the smoke run keeps Numba's cache: a minute less, and it times nothing
        environment["NUMBA_CACHE_DIR"] = str(workdir / "numba")
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())]
    if args.kinds:
        environment["LENSSERVE_MODELS"] = json.dumps([{"name": k, "kind": k} for k in args.kinds])
    if args.smoke:
        config = workdir / "lensserve.toml"
        config.write_text(SMOKE_CONFIG)
        command += ["--config", str(config)]

    load_before = os.getloadavg()
    starts = {}
    for name in ("cold", "warm"):
        starts[name] = timed_start(command, environment, workdir / f"{name}.log", args.timeout)
        print(f"{name} start done ({starts[name].every_bucket:.1f} s)", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    served = ("small MGE, --smoke" if args.smoke else f"kinds {' '.join(args.kinds)}" if args.kinds
              else "default config")
    print(f"\n`lensserve serve` start-up ({served}), {os.cpu_count()} CPUs; logs in {workdir}\n")
    models = list(starts["cold"].answers)
    print("| start | alive (/healthz) | " + " | ".join(f"`{m}` answers" for m in models)
          + " | every model answers (/readyz 200) | every bucket compiled |")
    print("|---|" + "---:|" * (len(models) + 3))
    for name, start in starts.items():
        print(f"| {name} | {start.alive:.1f} s | "
              + " | ".join(f"{start.answers[m]:.1f} s" for m in models)
              + f" | {start.every_model:.1f} s | {start.every_bucket:.1f} s |")
    before, after = (", ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))
    print(f"\nmachine load average (1, 5, 15 min) before {before}, after {after}")


if __name__ == "__main__":
    main()
