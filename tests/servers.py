"""A real uvicorn server in a thread, shared by the service and client test suites."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from service.serve import uvicorn_config


def every_bucket_compiled(client: httpx.Client) -> bool:
    """/readyz is 200 once every model answers; tests want every bucket of every model."""
    if client.get("/readyz").status_code != 200:
        return False
    return all(model["state"] == "ready" for model in client.get("/v1/models").json()["models"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_compiled(process, url: str, token: str, timeout: float = 300) -> None:
    """Wait for the server `process` at `url` to have every bucket compiled; fails if it exits."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "never became ready"
            try:
                if every_bucket_compiled(client):
                    return
                assert client.get("/healthz").json() == {"status": "alive"}
            except httpx.TransportError:
                pass
            time.sleep(0.2)


@contextlib.contextmanager
def running_server(app, token: str, ready_timeout: float) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields the base URL once /readyz is 200."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn_config(app, app.state.settings, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            while not every_bucket_compiled(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not ready: {client.get('/readyz').text}")
                time.sleep(0.2)
        yield url
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        # The app froze everything alive once compiled (`gc.freeze`, for the service's one life):
        # unfrozen, the stopped server's cycles are collected, and its compiled programs with
        # them; else each server a test process starts keeps its memory maps to the end.
        gc.unfreeze()
        gc.collect()
