"""`lensserve serve` as a process: start-up from a TOML file, readiness, graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.servers import free_port, wait_until_compiled
from tests.service.conftest import CACHE_DIR, TOKEN, random_points

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_serve_compiles_reports_ready_and_finishes_in_flight_work_on_sigterm(tmp_path, served):
    # Same model and buckets as the session server: the compilation cache is warm.
    config = tmp_path / "lensserve.toml"
    config.write_text(
        f'buckets = [1, 2, 4, 8]\nmax_wait_ms = 5\ncompilation_cache_dir = "{CACHE_DIR}"\n'
        '[[models]]\nname = "mge"\nkind = "mge"\nmask_radius = 1.0\n'
        "settings = { lens_gaussians = 2, source_gaussians = 2 }\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    points = random_points(served.model, 64, seed=42)
    answer: dict[str, httpx.Response] = {}

    def post() -> None:
        answer["response"] = httpx.post(
            f"{url}/v1/models/mge/log-evidence", json={"parameters": points.tolist()}, timeout=120
        )

    command = [sys.executable, "-m", "service.cli", "serve", "--config", str(config),
               "--port", str(port)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        try:
            wait_until_compiled(process, url, TOKEN)
            in_flight = threading.Thread(target=post)
            in_flight.start()
            time.sleep(0.3)  # the 64 points are queued or running (8 batches of 8)
            process.send_signal(signal.SIGTERM)
            in_flight.join(120)
            # uvicorn shuts down gracefully, then re-raises the signal it captured.
            assert process.wait(120) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()
        log = process.stdout.read()
    response = answer["response"]
    assert response.status_code == 200
    np.testing.assert_allclose(response.json()["log_evidence"], served.reference(points),
                               rtol=1e-10)
    for bucket in (1, 2, 4, 8):
        assert f"compiled model mge bucket {bucket} " in log
    assert "batcher drained" in log
