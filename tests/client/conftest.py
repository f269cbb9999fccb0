"""Real uvicorn servers on loopback ports, serving a small MGE model, for the client tests.

The dataset is the embedded one made self-consistent: its image is the small MGE model's own image
at the true parameters plus Gaussian noise of the embedded noise map. With 4+4 Gaussians the MGE
cannot fit the embedded Sersic galaxies (chi^2 ~ 100 per pixel), and a biased posterior would make
"recover the truth within 3 sigma" meaningless; on the self-consistent image it is a fair test.

Compiled executables and the generated dataset persist under /tmp (LENSSERVE_CLIENT_TEST_CACHE):
the first run compiles every bucket (minutes on a busy 2-core machine), later runs start in seconds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset, default_truth
from service.app import create_app
from service.engine import configure_jax
from service.models import load_models
from service.settings import ModelSpec, ServiceSettings
from tests import servers

CACHE = Path(os.environ.get("LENSSERVE_CLIENT_TEST_CACHE", "/tmp/lensserve-client-test-cache"))
TOKEN = "client-test-token"
MASK_RADIUS = 2.0  # arcsec: holds the Einstein ring (1.6") and little else
MODEL_SETTINGS = {"lens_gaussians": 4, "source_gaussians": 4}
BUCKETS = (1, 2, 4, 8)
MAX_REQUEST_POINTS = 16  # small, so that chunking shows with a few dozen points


@dataclass(frozen=True)
class Served:
    url: str
    model: object  # the likelihood.LensModel the server evaluates
    truth: np.ndarray  # (P,) true parameters of the served dataset

    def reference(self, points: np.ndarray) -> np.ndarray:
        """In-process log-evidence, one point at a time (no vmap, no batching, no HTTP)."""
        return np.array([float(_jitted(self.model, "value")(p)) for p in np.atleast_2d(points)])

    def reference_value_and_grad(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = [_jitted(self.model, "value_and_grad")(p) for p in np.atleast_2d(points)]
        return np.array([float(v) for v, _ in pairs]), np.array([np.asarray(g) for _, g in pairs])


_compiled: dict[tuple[int, str], object] = {}


def _jitted(model, what: str):
    if (id(model), what) not in _compiled:
        function = model.log_evidence if what == "value" else jax.value_and_grad(model.log_evidence)
        _compiled[id(model), what] = jax.jit(function)
    return _compiled[id(model), what]


def self_consistent_dataset(path: Path) -> Path:
    """The embedded dataset with its image replaced by the small model's image at the truth."""
    if path.exists():
        return path
    embedded = dataclasses.replace(default_dataset(), mask_radius=MASK_RADIUS)
    model = build_model(embedded, "mge", ModelSettings(**MODEL_SETTINGS))
    truth = np.array([default_truth()[name] for name in model.parameter_names])
    image = np.zeros(embedded.shape)
    image[model.grids.mask] = np.asarray(jax.jit(lambda t: model.inversion(t).model_image)(truth))
    noise = np.random.default_rng(7).normal(0.0, embedded.noise_map)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, data=image + noise, noise_map=embedded.noise_map, psf=embedded.psf,
             pixel_scale=embedded.pixel_scale)
    return path


def settings_for(dataset: Path, **overrides) -> ServiceSettings:
    spec = ModelSpec(name="mge", kind="mge", dataset=dataset, mask_radius=MASK_RADIUS,
                     settings=MODEL_SETTINGS)
    # One dispatcher: with one per core, concurrent single-point calls would be spread over
    # the cores instead of batched, and the dynesty test reads batching as "calls in flight".
    # tests/service covers several dispatchers.
    values = dict(
        models=[spec], buckets=BUCKETS, max_wait_ms=5.0, compilation_cache_dir=CACHE / "jax",
        token=TOKEN, gradient=True, max_request_points=MAX_REQUEST_POINTS, max_queue_points=256,
        max_body_bytes=200_000, dispatchers=1,
    )
    return ServiceSettings(**{**values, **overrides})


running_server = partial(servers.running_server, token=TOKEN, ready_timeout=900.0)


@pytest.fixture(scope="session")
def dataset_path() -> Path:
    configure_jax(CACHE / "jax")  # before anything compiles, or JAX ignores the cache
    return self_consistent_dataset(CACHE / "mge_self_consistent.npz")


@pytest.fixture(scope="session")
def served_models(dataset_path: Path) -> dict:
    return load_models(settings_for(dataset_path).models)


@pytest.fixture(scope="session")
def served(dataset_path: Path, served_models: dict) -> Iterator[Served]:
    model = served_models["mge"]
    truth = np.array([default_truth()[name] for name in model.parameter_names])
    with running_server(create_app(settings_for(dataset_path), served_models)) as url:
        yield Served(url, model, truth)


@pytest.fixture(scope="session")
def tiny_queue(dataset_path: Path, served_models: dict) -> Iterator[str]:
    """A server whose queue holds 2 points and dispatches one at a time: easy to overload."""
    settings = settings_for(
        dataset_path, buckets=(1,), max_batch_size=1, max_queue_points=2, max_request_points=2,
        gradient=False, retry_after_s=1,
    )
    with running_server(create_app(settings, served_models)) as url:
        yield url


def points_near(truth: np.ndarray, model, n: int, seed: int) -> np.ndarray:
    """`n` valid points around the truth (every one computes a finite value)."""
    rng = np.random.default_rng(seed)
    points = truth + rng.normal(0.0, 0.02, (n, len(truth)))
    points[:, model.parameter_names.index("lens.mass.einstein_radius")] = rng.uniform(1.4, 1.8, n)
    return points
