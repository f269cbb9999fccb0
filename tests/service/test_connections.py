"""Slow and surplus connections against a real server: a silent connection or a half-sent
request is closed after its time limit, a connection beyond the cap is refused with 503 while
`/healthz` still answers on an open one, and a half-sent body does not hold up SIGTERM."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from service.app import create_app
from service.engine import configure_jax
from service.models import load_models
from tests.service.conftest import running_server, small_settings

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 6


@pytest.fixture(scope="module")
def limited():
    settings = small_settings(header_timeout_s=HEADER_TIMEOUT_S, body_timeout_s=BODY_TIMEOUT_S,
                              max_connections=MAX_CONNECTIONS, gradient=False)
    configure_jax(settings.compilation_cache_dir)
    with running_server(create_app(settings, load_models(settings.models))) as url:
        yield url


def open_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes `sock` (reads until end of stream)."""
    started = time.monotonic()
    while sock.recv(4096):
        pass
    return time.monotonic() - started


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sent", [b"", b"POST /v1/models/mge/log-evid"], ids=["silent", "half-line"])
def test_a_connection_without_its_headers_is_closed(limited, sent):
    with open_socket(limited) as sock:
        sock.sendall(sent)
        assert closed_after(sock) < HEADER_TIMEOUT_S + 2


@pytest.mark.timeout(300)
def test_a_request_whose_body_never_comes_is_closed(limited):
    with open_socket(limited) as sock:
        sock.sendall(b"POST /v1/models/mge/log-evidence HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"param")
        assert closed_after(sock) < BODY_TIMEOUT_S + 2


@pytest.mark.timeout(300)
def test_connections_beyond_the_cap_are_refused_while_open_ones_still_answer(limited):
    with httpx.Client(base_url=limited, timeout=10) as probe:
        assert probe.get("/healthz").status_code == 200  # its connection is open from now on
        idle = [open_socket(limited) for _ in range(MAX_CONNECTIONS - 1)]
        try:
            with open_socket(limited) as surplus:
                answer = surplus.recv(4096)
                assert answer.startswith(b"HTTP/1.1 503") and b"retry-after" in answer
            assert probe.get("/healthz").status_code == 200
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.5)  # the server sees them closed
        with httpx.Client(base_url=limited, timeout=10) as again:
            assert again.get("/healthz").status_code == 200
