"""`AsyncClient`: the asyncio twin of `client.Client` (same arguments, awaitable methods)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import httpx
import numpy as np

from client.base import BaseClient
from client.model import Limits, ModelDescription
from client.protocol import Evaluation
from client.session import Call, Reply, Sleep, Step, Steps

T = TypeVar("T")


class AsyncClient(BaseClient[httpx.AsyncClient]):
    """Like `Client`, for asyncio programs; `model` is known after `await describe()` (or the
    first evaluation). Many coroutines may share one client: the service batches their points."""

    _http_type = httpx.AsyncClient

    @classmethod
    async def register(cls, url: str, dataset: Any, *, kind: str,
                       pixel_scale: float | None = None, mask_radius: float | None = None,
                       name: str | None = None, settings: dict[str, Any] | None = None,
                       token: str | None = None, wait: float | None = 600.0, poll: float = 0.5,
                       **options: Any) -> AsyncClient:
        """`Client.register` for asyncio programs: a new `AsyncClient` of the registered model."""
        client, steps = cls._registering(url, dataset, dict(
            kind=kind, pixel_scale=pixel_scale, mask_radius=mask_radius, name=name,
            settings=settings), dict(token=token, **options), wait, poll)
        try:
            await client._run(steps)
        except BaseException:
            await client.aclose()
            raise
        return client

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

    async def describe(self) -> ModelDescription:
        """Fetch the model description (parameter names, priors, dataset) and the limits."""
        return (await self._run(self._session.describe()))[0]

    async def wait_until_ready(self, timeout: float = 600.0, poll: float = 1.0) -> None:
        await self._run(self._session.wait_until_ready(timeout, poll))

    async def evaluate(self, theta: Any, gradient: bool = False) -> Evaluation:
        return await self._run(self._session.evaluate(theta, gradient))

    async def log_evidence(self, theta: Any) -> np.ndarray:
        return (await self.evaluate(theta)).log_evidence

    async def value_and_grad(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        evaluation = await self.evaluate(theta, gradient=True)
        return evaluation.log_evidence, evaluation.gradient

    def _known(self) -> tuple[ModelDescription, Limits]:
        if self._session.described is None:
            raise RuntimeError("the model is not known yet: await client.describe() first")
        return self._session.described

    async def _run(self, steps: Steps[T]) -> T:
        call = Call(steps)
        while not call.done:
            call.resume(await self._do(call.step))
        return call.result

    async def _do(self, step: Step) -> Reply:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.request(step.method, step.url, headers=step.headers,
                                            content=step.content)
        except httpx.TransportError as error:
            return error
