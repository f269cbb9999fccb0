"""What `Client` and `AsyncClient` share: every call as steps, free of I/O.

A call (describe, evaluate, wait until ready) is a generator that yields what to do, `Send` a
request or `Sleep`, and is sent back what came of it: the `httpx.Response`, or None after a sleep;
a transport error (`httpx.TransportError`) is thrown into it where it yielded. The calls decide
everything else (addresses, headers, chunking, retries and backoff, reading answers, errors), so
the two clients differ only in how they send and wait. `Call` runs the steps for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import quote

import httpx

from client.errors import ServiceError, ServiceUnavailable
from client.model import Limits, ModelDescription
from client.protocol import (
    RETRY_STATUSES,
    TRANSPORTS,
    Evaluation,
    RetryPolicy,
    StatsCounter,
    as_points,
    chunk_size,
    decode_evaluation,
    encode_request,
    error_detail,
    retry_after_seconds,
)

# Transport failures after which the same request may simply be sent again. A read timeout is
# not among them: the service is slow, and asking again would only add to its queue.
RETRYABLE_ERRORS = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ReadError,
    httpx.WriteError, httpx.RemoteProtocolError,
)
# Used only when the service does not publish its limits.
FALLBACK_LIMITS = Limits(max_request_points=1024, max_body_bytes=16 * 2**20, max_batch_size=64,
                         buckets=())

T = TypeVar("T")


class Send(NamedTuple):
    """Send this request with the client's httpx client (its timeout and defaults apply) and
    reply with the response, or with the `httpx.TransportError` raised instead."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None


class Sleep(NamedTuple):
    """Wait this long, then reply None."""

    seconds: float


Step = Send | Sleep
Reply = httpx.Response | httpx.TransportError | None
Steps = Generator[Step, Reply, T]


class Call(Generic[T]):
    """One call's steps as a client runs them: do `step`, `resume` with what came of it, until
    `done`; then `result` is what the call returned (its exceptions propagate from `resume`)."""

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
        self.step: Step | None = None
        self.result: T | None = None
        self.resume(None)  # what starts a generator

    @property
    def done(self) -> bool:
        return self.step is None

    def resume(self, reply: Reply) -> None:
        try:
            if isinstance(reply, Exception):
                self.step = self._steps.throw(reply)
            else:
                self.step = self._steps.send(reply)
        except StopIteration as finished:
            self.step, self.result = None, finished.value


class Session:
    """One client's configuration, what it knows of the service, and its calls as steps.

    `clock` (seconds, monotonic) times the retries and readiness; tests may pass their own.
    """

    def __init__(
        self,
        url: str,
        model: str | None,
        token: str | None,
        transport: str,
        retry: RetryPolicy,
        max_request_points: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.media = TRANSPORTS[transport]
        self.retry = retry
        self.max_request_points = max_request_points
        self.clock = clock
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.models_url = f"{self.url}/v1/models"
        self.ready_url = f"{self.url}/readyz"
        self.stats = StatsCounter()
        self.bind(model)

    def bind(self, model: str | None) -> None:
        """Make this the session of `model` (None: of no model yet, e.g. before registering)."""
        self.model_name = model
        self.evaluate_url = (None if model is None
                             else f"{self.url}/v1/models/{quote(model, safe='')}/log-evidence")
        self.described: tuple[ModelDescription, Limits] | None = None

    def describe(self) -> Steps[tuple[ModelDescription, Limits]]:
        """Fetch this client's model and the service limits (`GET /v1/models`) and keep them."""
        response = yield from self.send("GET", self.models_url)
        self.described = self.read_models(response)
        return self.described

    def description(self) -> Steps[tuple[ModelDescription, Limits]]:
        """The model and limits, fetched on first use."""
        return self.described or (yield from self.describe())

    def evaluate(self, theta: Any, gradient: bool) -> Steps[Evaluation]:
        """Validate `theta` and evaluate it, chunk by chunk, in one `Evaluation`."""
        if self.model_name is None:
            raise ValueError("this client has no model: name one, or register one")
        model, limits = yield from self.description()
        parts = []
        for n, body, headers in self.requests(theta, gradient, model, limits):
            response = yield from self.send("POST", self.evaluate_url, body, headers)
            parts.append(self.read_evaluation(response, n, model.n_params))
        return Evaluation.concatenate(parts)

    def wait_until_ready(self, timeout: float, poll: float) -> Steps[None]:
        """Ask `/readyz` every `poll` seconds until it answers 200; `ServiceUnavailable` once
        `timeout` seconds would pass. Overload and dropped connections count as not ready."""
        deadline = self.clock() + timeout
        while True:
            try:
                response = yield Send("GET", self.ready_url, self.headers)
                if response.status_code == 200:
                    return
                if response.status_code not in RETRY_STATUSES:
                    raise_for_error(response)
                reason = response.text
            except RETRYABLE_ERRORS as error:
                reason = repr(error)
            if self.clock() + poll > deadline:
                raise ServiceUnavailable(None, f"not ready after {timeout} s: {reason}")
            yield Sleep(poll)

    def register(self, content: bytes, headers: dict[str, str], wait: float | None,
                 poll: float) -> Steps[dict[str, Any]]:
        """Register a model (`client.registration` makes the body) and bind this session to it;
        then, unless `wait` is None, poll its status for up to `wait` seconds until it serves.
        Returns its last status; `ServiceError` if it is refused or fails to compile."""
        response = yield from self.send("POST", self.models_url, content, headers)
        if response.status_code not in (201, 202):
            raise_for_error(response)
        status = response.json()
        self.bind(status["name"])
        deadline = None if wait is None else self.clock() + wait
        while deadline is not None and status["state"] not in ("ready", "serving"):
            if status["state"].startswith("failed"):
                raise ServiceError(None, f"model {status['name']} {status['state']}")
            if self.clock() + poll > deadline:
                raise ServiceUnavailable(None, f"model {status['name']} still "
                                         f"{status['state']} after {wait} s")
            yield Sleep(poll)
            response = yield from self.send("GET", f"{self.models_url}/{quote(status['name'])}")
            raise_for_error(response)
            status = response.json()
        return status

    def send(
        self, method: str, url: str, content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Steps[httpx.Response]:
        """One request, retried on overload and dropped connections under the retry policy;
        the first answer that is neither (an error included) is returned."""
        step = Send(method, url, {**self.headers, **(headers or {})}, content)
        started = self.clock()
        attempt = 0
        while True:
            self.stats.add(requests=1)
            try:
                response = yield step
            except RETRYABLE_ERRORS as error:
                failure, retry_after, cause = f"{type(error).__name__}: {error}", None, error
            except httpx.TimeoutException as error:
                raise ServiceError(None, f"no answer from {url} in time: {error!r}") from error
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                failure = f"{response.status_code}: {response.text[:200]}"
                retry_after, cause = retry_after_seconds(response.headers.get("retry-after")), None
            wait = self.retry.delay(attempt, retry_after, self.clock() - started)
            if wait is None:
                raise ServiceUnavailable(
                    None, f"{method} {url}: gave up after {attempt + 1} attempt(s) in "
                    f"{self.clock() - started:.1f} s; last: {failure}"
                ) from cause
            self.stats.add(retries=1)
            yield Sleep(wait)
            attempt += 1

    def read_models(self, response: httpx.Response) -> tuple[ModelDescription, Limits]:
        """This client's model and the service limits from a `GET /v1/models` answer."""
        raise_for_error(response)
        try:
            listing: dict[str, Any] = response.json()
            served = {info["name"]: info for info in listing["models"]}
        except (ValueError, KeyError, TypeError) as error:
            raise ServiceError(response.status_code, f"unreadable model list: {error!r}") from None
        if self.model_name not in served:
            raise ServiceError(404, f"the service at {self.url} serves no model named "
                               f"{self.model_name!r}; it serves {', '.join(served) or 'none'}")
        limits = listing.get("limits")
        limits = FALLBACK_LIMITS if limits is None else Limits.from_json(limits)
        return ModelDescription.from_json(served[self.model_name]), limits

    def requests(
        self, theta: Any, gradient: bool, model: ModelDescription, limits: Limits
    ) -> Iterator[tuple[int, bytes, dict[str, str]]]:
        """Validate `theta`; the requests (points, body, headers) to send, one per chunk."""
        points = as_points(theta, model.n_params)
        if gradient and not model.gradient:
            raise ValueError(f"the service does not compute gradients for model {model.name} "
                             "(start it with gradient enabled)")
        most = limits.max_request_points
        if self.max_request_points is not None:
            most = min(most, self.max_request_points)
        size = chunk_size(most, limits.max_body_bytes, model.n_params, self.media)
        self.stats.add(calls=1, points=len(points))

        def bodies() -> Iterator[tuple[int, bytes, dict[str, str]]]:
            for start in range(0, len(points), size):
                chunk = points[start:start + size]
                yield (len(chunk), *encode_request(chunk, gradient, self.media))

        return bodies()

    def read_evaluation(self, response: httpx.Response, n: int, n_params: int) -> Evaluation:
        raise_for_error(response)
        return decode_evaluation(response.content, response.headers.get("content-type"), n, n_params)


def raise_for_error(response: httpx.Response) -> None:
    """`ServiceError` with the service's own words for any answer but 200."""
    if response.status_code == 200:
        return
    detail = error_detail(response.content)
    if response.status_code == 401:
        detail += " (pass token=... to the client)"
    raise ServiceError(response.status_code, detail)

