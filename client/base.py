"""What `Client` and `AsyncClient` share over their httpx client: arguments, session, counters."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import httpx

from client.protocol import CallStats, RetryPolicy
from client.registration import registration_request, split_registration_options
from client.session import Session

Http = TypeVar("Http", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[Http]):
    """The arguments of both clients; `Client` and `AsyncClient` run the session's calls.

    `model` None makes a client of no model yet, for `register` to bind to the one it registers.
    """

    _http_type: ClassVar[type[Any]]  # what `http` defaults to, made with `timeout`

    def __init__(
        self,
        url: str,
        model: str | None,
        *,
        token: str | None = None,
        timeout: float = 120.0,
        transport: str = "msgpack",
        retry: RetryPolicy | None = None,
        max_request_points: int | None = None,
        http: Http | None = None,
    ) -> None:
        self._session = Session(url, model, token, transport, retry or RetryPolicy(),
                                max_request_points)
        self._owns_http = http is None
        self._http: Http = http if http is not None else self._http_type(timeout=timeout)

    @classmethod
    def _registering(cls, url: str, dataset: Any, fields: dict[str, Any],
                     options: dict[str, Any], wait: float | None, poll: float):
        """A client of no model yet and the steps registering `dataset` with it (`register`)."""
        spec, client_options = split_registration_options(options)
        content, headers = registration_request(dataset, {**fields, **spec})
        client = cls(url, None, **client_options)
        return client, client._session.register(content, headers, wait, poll)

    @property
    def stats(self) -> CallStats:
        """Calls, points, HTTP requests and retries so far."""
        return self._session.stats.snapshot()
