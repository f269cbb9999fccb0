"""`AsyncClient`: the asyncio twin of `client.Client` (same arguments, awaitable methods)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np

from client.errors import ServiceError, ServiceUnavailable
from client.model import Limits, ModelDescription
from client.protocol import RETRY_STATUSES, CallStats, Evaluation, RetryPolicy, retry_after_seconds
from client.session import RETRYABLE_ERRORS, Session, raise_for_error


class AsyncClient:
    """Like `Client`, for asyncio programs; `model` is known after `await describe()` (or the
    first evaluation). Many coroutines may share one client: the service batches their points."""

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
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._session = Session(url, model, token, transport, retry or RetryPolicy(),
                                max_request_points)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._described: tuple[ModelDescription, Limits] | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def model(self) -> ModelDescription:
        return self._known()[0]

    @property
    def limits(self) -> Limits:
        return self._known()[1]

    @property
    def stats(self) -> CallStats:
        return self._session.stats.snapshot()

    async def describe(self) -> ModelDescription:
        """Fetch the model description (parameter names, priors, dataset) and the limits."""
        response = await self._send("GET", self._session.models_url)
        self._described = self._session.read_models(response)
        return self._described[0]

    async def wait_until_ready(self, timeout: float = 600.0, poll: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = await self._http.get(self._session.ready_url,
                                                headers=self._session.headers)
                if response.status_code == 200:
                    return
                if response.status_code not in RETRY_STATUSES:
                    raise_for_error(response)
                reason = response.text
            except RETRYABLE_ERRORS as error:
                reason = repr(error)
            if time.monotonic() + poll > deadline:
                raise ServiceUnavailable(None, f"not ready after {timeout} s: {reason}")
            await asyncio.sleep(poll)

    async def evaluate(self, theta: Any, gradient: bool = False) -> Evaluation:
        if self._described is None:
            await self.describe()
        model, limits = self._described
        requests = self._session.requests(theta, gradient, model, limits)
        parts = []
        for size, body, headers in requests:
            response = await self._send("POST", self._session.evaluate_url, content=body,
                                        headers=headers)
            parts.append(self._session.read_evaluation(response, size, model.n_params))
        return Evaluation.concatenate(parts)

    async def log_evidence(self, theta: Any) -> np.ndarray:
        return (await self.evaluate(theta)).log_evidence

    async def value_and_grad(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        evaluation = await self.evaluate(theta, gradient=True)
        return evaluation.log_evidence, evaluation.gradient

    def _known(self) -> tuple[ModelDescription, Limits]:
        if self._described is None:
            raise RuntimeError("the model is not known yet: await client.describe() first")
        return self._described

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        session = self._session
        headers = {**session.headers, **kwargs.pop("headers", {})}
        started = time.monotonic()
        attempt = 0
        while True:
            session.stats.add(requests=1)
            try:
                response = await self._http.request(method, url, headers=headers, **kwargs)
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
            await asyncio.sleep(wait)
            attempt += 1
