"""A local `lensserve serve` process for a fit: its config (one model per stage still to run),
started on a free loopback port, waited for until every bucket is compiled, stopped at the end."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from service.fit.progress import progress

ROOT = Path(__file__).resolve().parents[2]
# One batch size per model, each compiled at start-up (tens of seconds to minutes each on a busy
# 2-core CPU): nautilus sends batches of `n_batch` points (a multiple of these), so smaller buckets
# would go unused. The MGE kind is cheap per point and batches well; a pixelized point costs tens
# of milliseconds to seconds on a CPU and runs lane after lane, so a large bucket only adds
# compile time (`service.models.PIXELIZED_DEFAULT_BUCKETS`).
MGE_BUCKETS = (32,)
PIXELIZED_BUCKETS = (4,)
START_TIMEOUT_S = 1800.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_value(value: Any) -> str:
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def config_text(models: Sequence[Mapping[str, Any]]) -> str:
    """The TOML of a service serving `models` (ModelSpec fields)."""
    # The fit is the service's only client: a request queued behind a long pixelized batch is
    # worth waiting for, not dropping (the default drops it after 60 s, and a retry starts over).
    settings = {"buckets": list(MGE_BUCKETS), "max_wait_ms": 2.0, "gradient": False,
                "max_request_points": 1024, "max_queue_points": 4096, "request_timeout_s": 600.0}
    lines = [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for model in models:
        lines += ["", "[[models]]"] + [f"{key} = {toml_value(value)}"
                                       for key, value in model.items() if value is not None]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def local_service(models: Sequence[Mapping[str, Any]], directory: Path, quiet: bool
                  ) -> Iterator[str]:
    """`lensserve serve` serving `models`, its config and log in `directory`; yields its URL and
    stops it (SIGTERM, then SIGKILL after a minute) when done."""
    config, log = directory / "service.toml", directory / "service.log"
    config.write_text(config_text(models))
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--config", str(config), "--port",
             str(port)], stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_compiled(process, url, [model["name"] for model in models], log, quiet)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_compiled(process: subprocess.Popen, url: str, names: Sequence[str], log: Path,
                        quiet: bool, timeout: float = START_TIMEOUT_S) -> None:
    """Wait, with a progress bar of compiled buckets, until every model in `names` is ready."""
    deadline = time.monotonic() + timeout
    with progress("starting the service: buckets compiled", "bucket", quiet) as bar, \
            httpx.Client(base_url=url, timeout=10) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited during start-up; see its log, {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready after {timeout:.0f} s; see {log}")
            try:
                described = [http.get(f"/v1/models/{name}").json() for name in names]
            except httpx.TransportError:
                described = None  # not listening yet: importing and building the models
            if described is not None:
                failed = [d["state"] for d in described if d["state"].startswith("failed")]
                if failed:
                    raise RuntimeError(f"the service could not compile a model: {failed}; "
                                       f"see {log}")
                bar.total = sum(len(d["buckets"]) for d in described)
                bar.update(sum(len(d["compiled_buckets"]) for d in described) - bar.n)
                if all(d["state"] == "ready" for d in described):
                    bar.refresh()
                    return
            time.sleep(0.5)
