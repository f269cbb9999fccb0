"""Service benchmark: HTTP throughput and latency against the same model called in-process.

    python benchmarks/service.py                 # small MGE model, buckets 1..64, 1/8/64 clients
    python benchmarks/service.py --fiducial      # the production MGE settings (slow on a CPU)
    python benchmarks/service.py --model delaunay --dispatchers 1   # a pixelized kind (its
                                                 # production settings, buckets 1, 2, 4)
    python benchmarks/service.py --smoke         # seconds: that the script still runs (CI)

Steps: (1) start `lensserve serve` twice on one compilation cache and time each to /readyz 200
(cold, then warm); (2) compile the same model in this process (`service.engine`); (3) for 1, 8
and 64 concurrent clients, `--rounds` times in turn: the clients send one-point msgpack requests
in a closed loop for `--seconds`, or until a batch has completed if none has by then (points/s,
latencies, and the mean batch size from /metrics; a longer window is said below the table),
then `jit(vmap(log_evidence))` runs in this process at the bucket the service used, for as long.
The table gives medians over the rounds, the ratio being the median of each round's own ratio:
other tenants' load drifts over minutes, and a round's two halves share it. Prints markdown.

The clients run in a separate process, one thread and one keep-alive connection each, through the
standard library's `http.client`: on a 2-core machine httpx's asyncio client spent 0.7-1.4 ms of
CPU per request, more than the server spent answering it, so the load generator rather than the
service set the throughput. The table reports the CPU the load generator still used and the
server's CPU per point (compute plus HTTP): on a shared machine other processes' load (printed
with the table) takes CPU from the server's threads as well as from the in-process reference.

"added p50" is the p50 latency minus the least time the in-process model needs to answer every
client once: one batch of the bucket, or, with more clients than the bucket holds, one point per
client (in a closed loop the 64 clients' points queue for the device in-process as well).

On a CPU the server runs one dispatcher thread per core by default, the in-process reference one
thread: `--dispatchers 1` compares like with like, the default shows what the service delivers.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the `service` package, not this file

# The in-process reference runs with the server's thread settings.
from service.environment import DEFAULT_ENVIRONMENT, set_default_environment  # noqa: E402

set_default_environment()

import httpx  # noqa: E402
import msgpack  # noqa: E402
import numpy as np  # noqa: E402

MODEL = "benchmarked"  # the served model's name
PIXELIZED_BUCKETS = [1, 2, 4]  # the service's default for the pixelized kinds


def config_text(args: argparse.Namespace, cache: Path) -> str:
    """The MGE small unless --fiducial; the pixelized kinds at their production settings."""
    small = args.model == "mge" and not args.fiducial
    settings = "{ lens_gaussians = 6, source_gaussians = 4 }" if small else "{}"
    mask = "mask_radius = 1.5\n" if small else ""
    return (
        f"buckets = {list(args.buckets)}\nmax_wait_ms = {args.max_wait_ms}\n"
        + (f"dispatchers = {args.dispatchers}\n" if args.dispatchers else "")
        + f'compilation_cache_dir = "{cache}"\nmax_queue_points = 100000\nlog_level = "warning"\n'
        f'[[models]]\nname = "{MODEL}"\nkind = "{args.model}"\n{mask}settings = {settings}\n'
    )


class Started(NamedTuple):
    process: subprocess.Popen
    first_answer: float  # s to /readyz 200: every model answers (its smallest bucket compiled)
    every_bucket: float  # s until every bucket is compiled


def start_server(config: Path, port: int) -> Started:
    """Spawn `lensserve serve` and time it to /readyz 200 and to every bucket compiled."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--config", str(config), "--port", str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    first_answer = None
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
        except httpx.TransportError:
            ready = None
        if ready is not None and ready.status_code == 200:
            first_answer = first_answer or time.perf_counter() - started
            if all(state == "ready" for state in ready.json()["models"].values()):
                return Started(process, first_answer, time.perf_counter() - started)
        time.sleep(0.1)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(60)


def metric_sum(text: str, name: str) -> float:
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


# A window closes once each of these has grown in it (a batch completed, a point answered).
COMPLETED = ("lensserve_batch_size_points_count", "lensserve_points_total")
WINDOW_LIMIT = 300.0  # s: the clients' own timeout; a window still without a batch past it fails


class LoadRun(NamedTuple):
    latencies: np.ndarray  # (requests,) s, of the requests sent in the recorded window; never empty
    seconds: float  # the recorded window's wall time: `seconds`, or longer (`closed_loop`)
    load_cpu: float  # CPU seconds of the load generator over it
    server_cpu: float  # CPU seconds of the server over it
    metrics_before: str  # /metrics at the window's start and end: the points answered in it
    metrics_after: str


def closed_loop(
    port: int, server_pid: int, clients: int, warmup: float, seconds: float, points: np.ndarray
) -> LoadRun:
    """`clients` threads, each with its own connection, sending one-point msgpack requests back
    to back: `warmup` seconds unrecorded (connections open, caches warm), then `seconds` recorded.
    Runs in its own process (`run_load`). Throughput and server CPU are counted over the window
    itself, not until the last answer: with a slow model many clients wait longer than a window.
    The window stays open, the clients sending, until a batch has completed in it, a point has
    been answered in it and a request sent in it has been answered: under load one batch can
    outlast `seconds`, and a window with none has no mean batch, rate or latency to report.
    """
    latencies: list[float] = []
    measure_from = time.perf_counter() + warmup
    stop = measure_from + seconds
    done = threading.Event()
    headers = {"content-type": "application/msgpack", "accept": "application/msgpack"}
    path = f"/v1/models/{MODEL}/log-evidence"

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        i = index
        while not done.is_set():
            sent = time.perf_counter()
            point = points[i % len(points)][None, :]
            body = msgpack.packb({"parameters": {
                "shape": list(point.shape), "dtype": "<f8", "data": point.tobytes()}})
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            if sent >= measure_from:
                latencies.append(time.perf_counter() - sent)
            i += clients
        connection.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    # The window runs from one /metrics answer to the next, CPU times read beside each.
    before = metrics_text(port)
    started, cpu_before, server_before = (
        time.perf_counter(), time.process_time(), process_cpu_seconds(server_pid))
    time.sleep(max(0.0, stop - time.perf_counter()))
    while True:
        after = metrics_text(port)
        seconds, load_cpu, server_cpu = (
            time.perf_counter() - started, time.process_time() - cpu_before,
            process_cpu_seconds(server_pid) - server_before)
        if latencies and all(metric_sum(after, name) > metric_sum(before, name)
                             for name in COMPLETED):
            break
        if seconds > WINDOW_LIMIT or not any(thread.is_alive() for thread in threads):
            done.set()
            raise RuntimeError(f"no batch completed in {seconds:.0f} s of load (or every client "
                               "failed): the window has nothing to measure")
        time.sleep(0.05)
    done.set()
    for thread in threads:
        thread.join()
    return LoadRun(np.array(latencies), seconds, load_cpu, server_cpu, before, after)


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics_text(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text


def in_process_seconds(engine, bucket: int, points: np.ndarray, seconds: float) -> float:
    """Median wall time of one `bucket`-sized batch through the engine (jit(vmap), no HTTP),
    over `seconds` and at least 3 batches."""
    batch = np.resize(points, (bucket, points.shape[1]))
    engine.evaluate(MODEL, batch, False)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        started = time.perf_counter()
        engine.evaluate(MODEL, batch, False)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


class Round(NamedTuple):
    latencies: np.ndarray  # (requests,) s
    seconds: float  # the recorded window's wall time
    http_rate: float  # points/s
    mean_batch: float
    mean_padded: float
    bucket: int  # the in-process batch size: the bucket the service's mean batch fills
    batch_seconds: float  # in-process wall time of one batch of `bucket`
    server_cpu_per_point: float  # s
    load_cpu: float  # the load generator's share of a core

    @property
    def local_rate(self) -> float:
        return self.bucket / self.batch_seconds


def measure_round(load_process, args, server_pid: int, clients: int, engine, buckets,
                  points: np.ndarray) -> Round:
    """One round: the HTTP closed loop, then the same model in-process at the service's bucket."""
    run = load_process.apply(
        closed_loop, (args.port, server_pid, clients, args.warmup, args.seconds, points))
    delta = {name: metric_sum(run.metrics_after, name) - metric_sum(run.metrics_before, name)
             for name in ("lensserve_batch_size_points_sum", "lensserve_batch_size_points_count",
                          "lensserve_batch_padded_size_points_sum", "lensserve_points_total")}
    # Both positive: `closed_loop` keeps the window open until a batch completes and is answered.
    answered = delta["lensserve_points_total"]
    batches = delta["lensserve_batch_size_points_count"]
    mean_batch = delta["lensserve_batch_size_points_sum"] / batches
    bucket = next(b for b in buckets if b >= round(mean_batch))
    return Round(
        run.latencies, run.seconds, answered / run.seconds, mean_batch,
        delta["lensserve_batch_padded_size_points_sum"] / batches, bucket,
        in_process_seconds(engine, bucket, points, args.seconds),
        run.server_cpu / answered, run.load_cpu / run.seconds,
    )


def summarize(clients: int, rounds: list[Round]) -> str:
    """One table row: medians over the rounds; latency percentiles over all their requests."""
    def median(values) -> float:
        return float(np.median(list(values)))

    latencies = np.concatenate([r.latencies for r in rounds])
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
    local_rate = median(r.local_rate for r in rounds)
    batch_ms = median(r.batch_seconds for r in rounds) * 1e3
    buckets = "/".join(str(b) for b in sorted({r.bucket for r in rounds}))
    # The least time the in-process model needs to answer every client once (module docstring).
    floor_ms = max(batch_ms, clients / local_rate * 1e3)
    ratios = ", ".join(f"{r.http_rate / r.local_rate:.2f}" for r in rounds)
    return (
        f"| {clients} | {len(latencies)} | {median(r.mean_batch for r in rounds):.1f} "
        f"| {median(r.mean_padded for r in rounds):.1f} | {median(r.http_rate for r in rounds):.3g} "
        f"| {buckets} | {local_rate:.3g} "
        f"| {median(r.http_rate / r.local_rate for r in rounds):.2f} ({ratios}) "
        f"| {p50:.1f} | {p99:.1f} | {batch_ms:.1f} | {p50 - floor_ms:.1f} "
        f"| {median(r.server_cpu_per_point for r in rounds) * 1e3:.2f} "
        f"| {median(r.load_cpu for r in rounds):.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("mge", "delaunay", "rectangular"), default="mge",
                        help="the model kind served")
    parser.add_argument("--fiducial", action="store_true", help="production MGE settings")
    parser.add_argument("--buckets", type=int, nargs="+", default=None,
                        help="default: 1..64 for mge, 1, 2, 4 for the pixelized kinds")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--dispatchers", type=int, default=None,
                        help="server dispatcher threads (default: the service's, one per core)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="per round: the HTTP load's, and the in-process timing's")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per concurrency level")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of HTTP load before each round's recording")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cache", type=Path, default=None, help="compilation cache directory")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds, not minutes: small MGE, buckets 1 2, 1 and 2 clients, one "
                        "short round (checks the script runs; its numbers mean little)")
    args = parser.parse_args()
    if args.smoke:
        args.model, args.fiducial, args.buckets, args.clients = "mge", False, [1, 2], [1, 2]
        args.rounds, args.seconds, args.warmup = 1, 0.5, 0.2
    if args.buckets is None:
        args.buckets = [1, 2, 4, 8, 16, 32, 64] if args.model == "mge" else PIXELIZED_BUCKETS

    workdir = Path(tempfile.mkdtemp(prefix="lensserve-bench-"))
    cache = args.cache or workdir / "jax-cache"
    config = workdir / "lensserve.toml"
    config.write_text(config_text(args, cache))

    cold = start_server(config, args.port)
    stop_server(cold.process)
    warm = start_server(config, args.port)
    server = warm.process
    try:
        from service.engine import Engine, configure_jax
        from service.models import load_models
        from service.settings import load_settings

        settings = load_settings(config)
        configure_jax(settings.compilation_cache_dir)
        models = load_models(settings.models, settings.kernel_threads, lanes=settings.lanes,
                             formulation=settings.formulation)
        model = models[MODEL]
        rng = np.random.default_rng(0)
        points = model.reference_parameters + rng.normal(0, 0.02, (4096, len(model.priors)))
        points[:, model.parameter_names.index("lens.mass.einstein_radius")] = rng.uniform(
            1.2, 2.0, 4096)
        engine = Engine(models, dict.fromkeys(models, settings.buckets), gradient=False,
                        cache_dir=settings.compilation_cache_dir)
        engine.compile()

        rows, windows = [], []
        load_before = os.getloadavg()
        # The clients run in another process, so its CPU and GIL are not this (JAX) process's.
        with multiprocessing.get_context("spawn").Pool(1) as load_process:
            for clients in args.clients:
                rounds = [measure_round(load_process, args, server.pid, clients, engine,
                                        settings.buckets, points) for _ in range(args.rounds)]
                rows.append(summarize(clients, rounds))
                windows += [r.seconds for r in rounds]
        load_after = os.getloadavg()
    finally:
        stop_server(server)

    kind = ("MGE small (1.5\" mask, 6+4 Gaussians)" if args.model == "mge" and not args.fiducial
            else f"{args.model} fiducial")
    threads = ", ".join(f"{name}={os.environ.get(name)!r}" for name in DEFAULT_ENVIRONMENT)
    print(f"\nlensserve service benchmark: {kind}, {os.cpu_count()} CPUs, {threads}, "
          f"max_wait_ms={args.max_wait_ms}, buckets {args.buckets}, "
          f"{args.rounds} rounds of {args.seconds:g} s per level, "
          f"server dispatchers {args.dispatchers or engine.default_dispatchers} (in-process: 1), "
          "1-point msgpack requests\n")
    print(f"time to first answer (/readyz 200): cold cache {cold.first_answer:.1f} s, warm cache "
          f"{warm.first_answer:.1f} s; to every bucket compiled: cold {cold.every_bucket:.1f} s, "
          f"warm {warm.every_bucket:.1f} s")
    before, after = (", ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))
    print(f"machine load average (1, 5, 15 min) before the runs {before}, after {after}\n")
    print("| clients | requests | mean batch | mean padded | HTTP pts/s | in-process bucket "
          "| in-process pts/s | HTTP / in-process (each round) | p50 ms | p99 ms "
          "| in-process batch ms | added p50 ms | server CPU ms/pt | load generator CPU |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)
    # Printed only when it happened: the table's rates are over these longer windows.
    longer = [s for s in windows if s > args.seconds * 1.5]
    if longer:
        print(f"\n{len(longer)} of {len(windows)} windows stayed open past {args.seconds:g} s "
              f"until a batch completed in them (longest {max(longer):.1f} s)")


if __name__ == "__main__":
    main()
