"""A real uvicorn server on a loopback port, serving the real likelihood on a small configuration.

The server runs in a thread of the test process (so tests can compare with in-process results
and read its state); clients are real HTTP clients (httpx) over 127.0.0.1. Compiled executables
go to a persistent JAX cache (LENSSERVE_TEST_CACHE, default /tmp/lensserve-test-jax-cache): the
first run compiles every bucket, later runs start in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import jax
import numpy as np
import pytest

from service.app import create_app
from service.engine import configure_jax
from service.models import load_models
from service.settings import ModelSpec, ServiceSettings
from tests import servers

CACHE_DIR = Path(os.environ.get("LENSSERVE_TEST_CACHE", "/tmp/lensserve-test-jax-cache"))
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUCKETS = (1, 2, 4, 8)
# Small and fast: a 1" mask (~1,250 pixels) and two Gaussians per MGE basis.
SMALL_MODEL = ModelSpec(
    name="mge", kind="mge", mask_radius=1.0, settings={"lens_gaussians": 2, "source_gaussians": 2}
)


def small_settings(**overrides) -> ServiceSettings:
    values = dict(
        models=[SMALL_MODEL], buckets=BUCKETS, max_wait_ms=5.0, compilation_cache_dir=CACHE_DIR,
        token=TOKEN, gradient=True, max_request_points=64, max_queue_points=512, max_body_bytes=200_000,
    )
    return ServiceSettings(**{**values, **overrides})


running_server = partial(servers.running_server, token=TOKEN, ready_timeout=600.0)


@dataclass(frozen=True)
class Served:
    url: str
    app: object
    model: object  # the likelihood.LensModel the server evaluates

    def reference(self, points: np.ndarray) -> np.ndarray:
        """In-process log-evidence, one point at a time (no vmap, no batching)."""
        return np.array([float(_single(self.model)(p)) for p in np.atleast_2d(points)])


_compiled_single: dict[int, object] = {}


def _single(model):
    if id(model) not in _compiled_single:
        _compiled_single[id(model)] = jax.jit(model.log_evidence)
    return _compiled_single[id(model)]


@pytest.fixture(scope="session")
def served() -> Iterator[Served]:
    settings = small_settings()
    configure_jax(settings.compilation_cache_dir)  # before anything compiles, or JAX ignores it
    models = load_models(settings.models)
    app = create_app(settings, models)
    with running_server(app) as url:
        yield Served(url, app, models["mge"])


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=60) as http:
        yield http


def random_points(model, n: int, seed: int) -> np.ndarray:
    """`n` valid points near the reference point (so every one computes a finite value)."""
    rng = np.random.default_rng(seed)
    points = model.reference_parameters + rng.normal(0.0, 0.02, (n, len(model.parameter_names)))
    radius = model.parameter_names.index("lens.mass.einstein_radius")
    points[:, radius] = rng.uniform(1.2, 2.0, n)
    return points
