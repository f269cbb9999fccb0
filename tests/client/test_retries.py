"""Retries: a really full queue (503 + Retry-After), refused connections, and the policy itself."""

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import numpy as np
import pytest

from client import AsyncClient, Client, RetryPolicy, ServiceUnavailable
from client.protocol import retry_after_seconds
from tests.client.conftest import TOKEN, points_near
from tests.client.test_session import evaluation_answer, models_answer


def test_a_full_queue_is_retried_until_every_call_is_answered(served, tiny_queue):
    points = points_near(served.truth, served.model, 12, seed=5).reshape(6, 2, -1)
    with Client(tiny_queue, "mge", token=TOKEN, retry=RetryPolicy(max_total=120)) as client:
        _ = client.model
        with ThreadPoolExecutor(6) as pool:
            started = time.monotonic()
            values = list(pool.map(client.log_evidence, points))
            elapsed = time.monotonic() - started
        assert client.stats.retries > 0, "the queue never filled: no 503 was seen"
    assert elapsed >= 1.0  # each retry waited the service's Retry-After: 1
    expected = served.reference(points[:, 0])
    np.testing.assert_allclose([v[0] for v in values], expected, rtol=1e-10)


def test_retries_are_bounded_and_then_raise(tiny_queue, served):
    busy = points_near(served.truth, served.model, 2, seed=6)
    policy = RetryPolicy(max_attempts=1)
    with Client(tiny_queue, "mge", token=TOKEN, retry=policy) as client, ThreadPoolExecutor(8) as pool:
        _ = client.model
        futures = [pool.submit(client.log_evidence, busy) for _ in range(8)]
        errors = [f.exception() for f in futures]
    unavailable = [e for e in errors if e is not None]
    assert unavailable and all(isinstance(e, ServiceUnavailable) for e in unavailable)
    assert "after 1 attempt(s)" in str(unavailable[0]) and "503" in str(unavailable[0])


def test_refused_connections_are_retried_then_reported():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01)
    with Client(url, "mge", retry=policy) as client:
        with pytest.raises(ServiceUnavailable, match=r"after 3 attempt\(s\).*ConnectError"):
            _ = client.model
        assert client.stats.retries == 2


def test_retry_after_is_honoured():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(503, json={"detail": "queue full"}, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"models": [], "limits": None})

    policy = RetryPolicy(initial_delay=0.001)
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = Client("http://service", "mge", retry=policy, http=http)
        with pytest.raises(Exception, match="serves no model"):
            client.describe()
    assert len(calls) == 2 and calls[1] - calls[0] >= 1.0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_both_clients_run_the_steps_through_their_own_httpx_client(kind):
    """A refused connection and a 503 are retried; every request goes out with the httpx
    client's own timeout and default headers."""
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            raise httpx.ConnectError("refused", request=request)
        answers = [httpx.Response(503, headers={"Retry-After": "0"}), models_answer(),
                   evaluation_answer([-2.5])]
        return answers[len(sent) - 2]

    transport, options = httpx.MockTransport(handler), dict(timeout=7.0, headers={"X-Trace": "t"})
    retry = RetryPolicy(initial_delay=0.001)
    if kind == "sync":
        with Client("http://service", "mge", token="secret", retry=retry,
                    http=httpx.Client(transport=transport, **options)) as client:
            values, stats = client.log_evidence([0.5, 0.5]), client.stats
    else:
        async def main():
            async with AsyncClient("http://service", "mge", token="secret", retry=retry,
                                   http=httpx.AsyncClient(transport=transport, **options)) as client:
                return await client.log_evidence([0.5, 0.5]), client.stats

        values, stats = asyncio.run(main())
    assert values.tolist() == [-2.5]
    assert (stats.requests, stats.retries, stats.calls) == (4, 2, 1)
    assert [r.url.path for r in sent] == ["/v1/models"] * 3 + ["/v1/models/mge/log-evidence"]
    assert all(r.extensions["timeout"]["read"] == 7.0 and r.headers["X-Trace"] == "t"
               and r.headers["Authorization"] == "Bearer secret" for r in sent)


def test_total_time_bounds_the_retries():
    policy = RetryPolicy(max_attempts=100, max_total=0.5)
    assert policy.delay(0, retry_after=1.0, elapsed=0.0) is None
    assert 0.05 <= policy.delay(0, retry_after=None, elapsed=0.0) <= 0.1
    assert 0.4 <= RetryPolicy().delay(3, retry_after=None, elapsed=0.0) <= 0.8
    assert RetryPolicy(max_attempts=100).delay(20, None, elapsed=0.0) <= 10.0  # max_delay
    assert RetryPolicy(max_attempts=2).delay(1, None, 0.0) is None


def test_retry_after_header_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(when) <= 30
