"""A batch that never returns: the watchdog answers its requests 503, `/readyz` turns 503 with
every thread's stack logged, the other dispatcher keeps serving, and SIGTERM still ends the
process within `shutdown_grace_s` + 5 s (non-zero: a batch was still running). Nor does a client
that never finishes sending its body hold up SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.servers import free_port, wait_until_compiled
from tests.service.blocking_server import BLOCK_ABOVE
from tests.service.conftest import AUTH, CACHE_DIR, TOKEN

REPOSITORY = Path(__file__).resolve().parents[2]
GRACE_S = 5.0  # blocking_server's shutdown_grace_s


def point(client: httpx.Client, radius: float) -> list[float]:
    model = client.get("/v1/models/blocking").json()
    theta = np.array(model["reference_parameters"])
    theta[model["parameter_names"].index("lens.mass.einstein_radius")] = radius
    return theta.tolist()


def start_blocking_server(port: int, stderr) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.service.blocking_server", str(port), str(CACHE_DIR)],
        cwd=REPOSITORY, stdout=subprocess.DEVNULL, stderr=stderr,
    )


@pytest.mark.timeout(300)
def test_a_stuck_batch_trips_the_watchdog_and_sigterm_still_exits(tmp_path):
    port = free_port()
    log_path = tmp_path / "stderr.txt"
    with log_path.open("w") as stderr:
        server = start_blocking_server(port, stderr)
    try:
        wait_until_compiled(server, f"http://127.0.0.1:{port}", TOKEN, timeout=240)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60) as client:
            started = time.monotonic()
            stuck = client.post("/v1/models/blocking/log-evidence",
                                json={"parameters": [point(client, BLOCK_ABOVE + 1)]})
            assert stuck.status_code == 503, stuck.text
            assert "watchdog" in stuck.json()["detail"]
            assert stuck.headers["Retry-After"]
            assert time.monotonic() - started < 10  # the watchdog's floor is 2 s

            ready = client.get("/readyz")
            assert ready.status_code == 503 and "stuck" in ready.json()["reason"]
            assert 'lensserve_stuck_batches_total{model="blocking"} 1.0' in client.get(
                "/metrics").text
            # One dispatcher is stuck; the other still answers.
            fine = client.post("/v1/models/blocking/log-evidence",
                               json={"parameters": [point(client, 1.5)]})
            assert fine.status_code == 200 and fine.json()["status"] == ["ok"]

        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert server.wait(timeout=GRACE_S + 5) == 1  # a batch was still running at the end
        assert time.monotonic() - signalled <= GRACE_S + 5
    finally:
        server.kill()
        server.wait()
    log = log_path.read_text()
    assert "watchdog: batch of model blocking bucket 1" in log
    assert "lensserve-dispatcher" in log or "most recent call first" in log  # the stacks
    assert "still running after" in log


@pytest.mark.timeout(300)
def test_a_half_sent_body_does_not_hold_up_sigterm(tmp_path):
    port = free_port()
    server = start_blocking_server(port, subprocess.DEVNULL)
    try:
        wait_until_compiled(server, f"http://127.0.0.1:{port}", TOKEN, timeout=240)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /v1/models/blocking/log-evidence HTTP/1.1\r\nhost: x\r\n"
                         b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{")
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Nothing was stuck: uvicorn ends a clean shutdown by raising the signal again.
            assert server.wait(timeout=GRACE_S + 5) == -signal.SIGTERM
            assert time.monotonic() - signalled <= GRACE_S + 5
    finally:
        server.kill()
        server.wait()
