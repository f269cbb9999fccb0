"""`Client`: the blocking HTTP client of one served model."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import httpx
import numpy as np

from client.base import BaseClient
from client.model import Limits, ModelDescription
from client.protocol import Evaluation
from client.session import Call, Reply, Sleep, Step, Steps

T = TypeVar("T")


class Client(BaseClient[httpx.Client]):
    """Log-evidence of one model served at `url`, e.g. `Client("http://gpu-node:8000", "mge")`.

    `transport` is "msgpack" (raw float64, the default) or "json". Batches larger than the
    service accepts (`limits.max_request_points`, `max_body_bytes`, or the `max_request_points`
    given here) are sent in consecutive chunks; 502/503/504 answers and dropped connections are
    retried under `retry`. Safe to share between threads (e.g. the dynesty adapter's pool).
    """

    _http_type = httpx.Client

    @classmethod
    def register(cls, url: str, dataset: Any, *, kind: str, pixel_scale: float | None = None,
                 mask_radius: float | None = None, name: str | None = None,
                 settings: dict[str, Any] | None = None, token: str | None = None,
                 wait: float | None = 600.0, poll: float = 0.5, **options: Any) -> Client:
        """Register `dataset` as a new model of the service at `url` and return a client of it.

        `dataset`: a FITS directory (uploaded), an `.npz` path, a mapping of arrays or an object
        with `data`, `noise_map`, `psf` (and `pixel_scale`). `kind`, `pixel_scale` (default: the
        dataset's), `mask_radius`, `name` (default: the service makes one up), `settings` and the
        other `POST /v1/models` fields in `options` (`mass`, `priors`, `fixed`, `buckets`) make
        its spec; the rest of `options` go to `Client`. Waits up to `wait` seconds (None: not at
        all) for it to serve; `ServiceError` if the service refuses it or it fails to compile.
        """
        client, steps = cls._registering(url, dataset, dict(
            kind=kind, pixel_scale=pixel_scale, mask_radius=mask_radius, name=name,
            settings=settings), dict(token=token, **options), wait, poll)
        try:
            client._run(steps)
        except BaseException:
            client.close()
            raise
        return client

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
        return self._run(self._session.description())[0]

    @property
    def limits(self) -> Limits:
        return self._run(self._session.description())[1]

    def describe(self) -> ModelDescription:
        """Fetch the model description again (e.g. after the service restarted)."""
        return self._run(self._session.describe())[0]

    def wait_until_ready(self, timeout: float = 600.0, poll: float = 1.0) -> None:
        """Block until `/readyz` answers 200 (every bucket compiled), or raise `ServiceUnavailable`."""
        self._run(self._session.wait_until_ready(timeout, poll))

    def evaluate(self, theta: Any, gradient: bool = False) -> Evaluation:
        """Log-evidence, per-point status and (if `gradient`) gradients of (P,) or (n, P) points."""
        return self._run(self._session.evaluate(theta, gradient))

    def log_evidence(self, theta: Any) -> np.ndarray:
        """(n,) log-evidence of (P,) or (n, P) points; -inf where not finite (see `evaluate`)."""
        return self.evaluate(theta).log_evidence

    def value_and_grad(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n,) log-evidence and (n, P) gradients of (P,) or (n, P) points."""
        evaluation = self.evaluate(theta, gradient=True)
        return evaluation.log_evidence, evaluation.gradient

    def _run(self, steps: Steps[T]) -> T:
        call = Call(steps)
        while not call.done:
            call.resume(self._do(call.step))
        return call.result

    def _do(self, step: Step) -> Reply:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.request(step.method, step.url, headers=step.headers,
                                      content=step.content)
        except httpx.TransportError as error:
            return error
