"""Answer one log-evidence request: screen its points, batch the valid ones, assemble statuses.

Points that `model.invalid_reason` rejects (non-finite, unphysical) are answered here and never
reach the device, so they can neither poison a batch nor cost a lane.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from service.batcher import Batcher
from service.engine import Engine
from service.metrics import Metrics
from service.wire import Evaluation


class UnknownModel(LookupError):
    pass


class NotReady(Exception):
    """The model's buckets are still compiling (or compilation failed)."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready; its points were withdrawn."""


class WrongParameterCount(ValueError):
    pass


class GradientsDisabled(ValueError):
    """A gradient was asked of a service started without its value-and-gradient executables."""


@dataclass
class Evaluator:
    """The service's use case; routes reach it through the app's state."""

    engine: Engine
    batcher: Batcher
    metrics: Metrics
    request_timeout_s: float

    def model(self, name: str):
        try:
            return self.engine.models[name]
        except KeyError:
            raise UnknownModel(
                f"no model named {name!r}; served: {', '.join(self.engine.models)}"
            ) from None

    async def evaluate(
        self,
        name: str,
        points: np.ndarray,
        gradient: bool,
        client_gone: Callable[[], Awaitable[object]] | None = None,
    ) -> Evaluation:
        """Answer `points` (n, P); withdraws the request if `client_gone()` completes first."""
        model = self.model(name)
        n_params = len(model.parameter_names)
        if points.shape[1] != n_params:
            raise WrongParameterCount(
                f"model {name} takes {n_params} parameters ({', '.join(model.parameter_names)}); "
                f"got {points.shape[1]} per point"
            )
        if gradient and not self.engine.gradient:
            raise GradientsDisabled(
                "this service computes no gradients: start it with gradient = true "
                "(LENSSERVE_GRADIENT=true) to ask for them"
            )
        if not self.engine.model_ready(name):
            raise NotReady(self.engine.model_failure(name) or f"model {name} is still compiling")
        started = time.perf_counter()
        reasons = [model.invalid_reason(point) for point in points]
        valid = np.array([reason is None for reason in reasons])
        values = np.full(len(points), np.nan)
        gradients = np.full(points.shape, np.nan) if gradient else None
        if valid.any():
            future = self.batcher.submit(name, points[valid], gradient, self.request_timeout_s)
            result = await _first_or_withdraw(future, client_gone)
            values[valid] = result.values
            if gradient:
                gradients[valid] = result.gradients
        status = [_status(reason, value, gradients, i) for i, (reason, value) in
                  enumerate(zip(reasons, values, strict=True))]
        self._count_points(name, status)
        self.metrics.request_seconds.labels(name).observe(time.perf_counter() - started)
        return Evaluation(values, gradients, status)

    def _count_points(self, name: str, status: list[str]) -> None:
        counts: dict[str, int] = {}
        for s in status:
            key = s.split(":", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            self.metrics.points.labels(name, key).inc(count)


async def _first_or_withdraw(future, client_gone: Callable[[], Awaitable[object]] | None):
    answer = asyncio.wrap_future(future)
    if client_gone is None:
        return await answer
    # A done-callback rather than `asyncio.wait`: this runs once per request on the event loop.
    gone = asyncio.ensure_future(client_gone())
    gone.add_done_callback(lambda _: answer.cancel())
    try:
        return await answer
    except asyncio.CancelledError:
        if not gone.done() or gone.cancelled():
            raise  # this request itself was cancelled
        future.cancel()
        raise ClientGone("the client disconnected; its request was withdrawn") from None
    finally:
        gone.cancel()


def _status(reason: str | None, value: float, gradients: np.ndarray | None, row: int) -> str:
    if reason is not None:
        return f"invalid: {reason}"
    if not np.isfinite(value):
        return f"non_finite: log-evidence is {value}"
    if gradients is not None and not np.isfinite(gradients[row]).all():
        return "non_finite: gradient has non-finite entries"
    return "ok"
