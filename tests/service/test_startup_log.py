"""What `lensserve serve` logs at info: no probe for absent accelerators, no probe requests."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.serve import ProbesOnlyAtDebug
from tests.servers import free_port, wait_until_compiled
from tests.service.conftest import CACHE_DIR, TOKEN

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_info_log_has_no_tpu_probe_and_no_probe_requests(tmp_path):
    config = tmp_path / "lensserve.toml"
    config.write_text(
        f'buckets = [1, 2]\ncompilation_cache_dir = "{CACHE_DIR}"\ntoken = "{TOKEN}"\n'
        '[[models]]\nname = "mge"\nkind = "mge"\nmask_radius = 1.0\n'
        "settings = { lens_gaussians = 2, source_gaussians = 2 }\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # As a user starts it: the tests' own JAX_PLATFORMS (tests/conftest.py) is not inherited.
    environment = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    command = [sys.executable, "-m", "service.cli", "serve", "--config", str(config),
               "--port", str(port)]
    with subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        try:
            wait_until_compiled(process, url, TOKEN)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                for path in ("/healthz", "/readyz", "/metrics", "/readyz?verbose=1", "/v1/models"):
                    assert client.get(path).status_code == 200, path
            process.send_signal(signal.SIGTERM)
            process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
        log = process.stdout.read()
    assert "serving models ['mge'] on cpu" in log
    assert "model mge (mge): lanes sequential, formulation sparse, kernel threads" in log
    assert "Unable to initialize backend" not in log
    assert '"GET /v1/models HTTP/1.1" 200' in log
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert f"GET {probe}" not in log, log


def access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0,
                             '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", path, "1.1", 200),
                             None)


def test_probe_requests_are_logged_at_debug_only():
    access = logging.getLogger("uvicorn.access")
    level = access.level
    try:
        access.setLevel(logging.INFO)
        assert not ProbesOnlyAtDebug().filter(access_record("/healthz"))
        assert ProbesOnlyAtDebug().filter(access_record("/v1/models"))
        access.setLevel(logging.DEBUG)
        assert ProbesOnlyAtDebug().filter(access_record("/metrics"))
    finally:
        access.setLevel(level)
