"""`Client`: the blocking HTTP client of one served model."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np

from client.errors import ServiceError, ServiceUnavailable
from client.model import Limits, ModelDescription
from client.protocol import RETRY_STATUSES, CallStats, Evaluation, RetryPolicy, retry_after_seconds
from client.session import RETRYABLE_ERRORS, Session, raise_for_error


class Client:
    """Log-evidence of one model served at `url`, e.g. `Client("http://gpu-node:8000", "mge")`.

    `transport` is "msgpack" (raw float64, the default) or "json". Batches larger than the
    service accepts (`limits.max_request_points`, `max_body_bytes`, or the `max_request_points`
    given here) are sent in consecutive chunks; 502/503/504 answers and dropped connections are
    retried under `retry`. Safe to share between threads (e.g. the dynesty adapter's pool).
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        token: str | None = None,
        timeout: float = 120.0,
        transport: str = "msgpack",
        retry: RetryPolicy | None = None,
        max_request_points: int | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._session = Session(url, model, token, transport, retry or RetryPolicy(),
                                max_request_points)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._described: tuple[ModelDescription, Limits] | None = None
        self._describe_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    @property
    def model(self) -> ModelDescription:
        """Parameter names, priors (`model.prior_transform`) and dataset, fetched once."""
        return self._description()[0]

    @property
    def limits(self) -> Limits:
        return self._description()[1]

    @property
    def stats(self) -> CallStats:
        return self._session.stats.snapshot()

    def describe(self) -> ModelDescription:
        """Fetch the model description again (e.g. after the service restarted)."""
        with self._describe_lock:
            self._described = self._session.read_models(self._send("GET", self._session.models_url))
        return self._described[0]

    def wait_until_ready(self, timeout: float = 600.0, poll: float = 1.0) -> None:
        """Block until `/readyz` answers 200 (every bucket compiled), or raise `ServiceUnavailable`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = self._http.get(self._session.ready_url, headers=self._session.headers)
                if response.status_code == 200:
                    return
                if response.status_code not in RETRY_STATUSES:
                    raise_for_error(response)
                reason = response.text
            except RETRYABLE_ERRORS as error:
                reason = repr(error)
            if time.monotonic() + poll > deadline:
                raise ServiceUnavailable(None, f"not ready after {timeout} s: {reason}")
            time.sleep(poll)

    def evaluate(self, theta: Any, gradient: bool = False) -> Evaluation:
        """Log-evidence, per-point status and (if `gradient`) gradients of (P,) or (n, P) points."""
        model, limits = self._description()
        requests = self._session.requests(theta, gradient, model, limits)
        parts = []
        for size, body, headers in requests:
            response = self._send("POST", self._session.evaluate_url, content=body, headers=headers)
            parts.append(self._session.read_evaluation(response, size, model.n_params))
        return Evaluation.concatenate(parts)

    def log_evidence(self, theta: Any) -> np.ndarray:
        """(n,) log-evidence of (P,) or (n, P) points; -inf where not finite (see `evaluate`)."""
        return self.evaluate(theta).log_evidence

    def value_and_grad(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n,) log-evidence and (n, P) gradients of (P,) or (n, P) points."""
        evaluation = self.evaluate(theta, gradient=True)
        return evaluation.log_evidence, evaluation.gradient

    def _description(self) -> tuple[ModelDescription, Limits]:
        if self._described is None:
            self.describe()
        return self._described

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on overload and dropped connections under the retry policy."""
        session = self._session
        headers = {**session.headers, **kwargs.pop("headers", {})}
        started = time.monotonic()
        attempt = 0
        while True:
            session.stats.add(requests=1)
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except RETRYABLE_ERRORS as error:
                failure, retry_after, cause = f"{type(error).__name__}: {error}", None, error
            except httpx.TimeoutException as error:
                raise ServiceError(None, f"no answer from {url} in time: {error!r}") from error
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                failure = f"{response.status_code}: {response.text[:200]}"
                retry_after, cause = retry_after_seconds(response.headers.get("retry-after")), None
            wait = session.retry.delay(attempt, retry_after, time.monotonic() - started)
            if wait is None:
                raise ServiceUnavailable(
                    None, f"{method} {url}: gave up after {attempt + 1} attempt(s) in "
                    f"{time.monotonic() - started:.1f} s; last: {failure}"
                ) from cause
            session.stats.add(retries=1)
            time.sleep(wait)
            attempt += 1
