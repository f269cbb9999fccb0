"""What `Client` and `AsyncClient` share: addresses, headers, reading answers, splitting batches.

Everything here is free of I/O; the two clients differ only in how they send and wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from client.errors import ServiceError
from client.model import Limits, ModelDescription
from client.protocol import (
    TRANSPORTS,
    Evaluation,
    RetryPolicy,
    StatsCounter,
    as_points,
    chunk_size,
    decode_evaluation,
    encode_request,
    error_detail,
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


class Session:
    """One client's configuration and the pure steps of a call."""

    def __init__(
        self,
        url: str,
        model: str,
        token: str | None,
        transport: str,
        retry: RetryPolicy,
        max_request_points: int | None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.model_name = model
        self.media = TRANSPORTS[transport]
        self.retry = retry
        self.max_request_points = max_request_points
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.models_url = f"{self.url}/v1/models"
        self.evaluate_url = f"{self.url}/v1/models/{quote(model, safe='')}/log-evidence"
        self.ready_url = f"{self.url}/readyz"
        self.stats = StatsCounter()

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

