"""The pixelized kinds under concurrent load over HTTP (issue 16: two `delaunay` batches on the
two dispatchers of a 2-core machine deadlocked the whole server).

`delaunay` and `rectangular` are served together by `lensserve serve` with the default
dispatchers (one per core), three single-point clients and one 8-point client per kind (the
latter asking for gradients) for 30 s: every request is answered, and the answers equal
in-process values. The server runs in its own process, as in production (and so its executables
do not add to the test process's memory mappings, which XLA's code takes a share of each).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from client import Client
from service.models import load_models
from service.settings import ModelSpec
from tests.servers import free_port, wait_until_compiled
from tests.service.conftest import CACHE_DIR, TOKEN

REPOSITORY = Path(__file__).resolve().parents[2]

SECONDS = 30.0
PIXELIZED = [
    ModelSpec(name="delaunay", kind="delaunay", mask_radius=1.5,
              settings={"lens_gaussians": 4, "delaunay_overlay": [15, 15]}),
    ModelSpec(name="rectangular", kind="rectangular", mask_radius=1.5,
              settings={"lens_gaussians": 4, "mesh_shape": [14, 14]}),
]


def near_reference(model, n: int, rng) -> np.ndarray:
    """Points near the model's reference, Einstein radius 1.2-1.6" (what a sampler proposes)."""
    points = model.reference_parameters + rng.normal(0.0, 0.01, (n, len(model.parameter_names)))
    points[:, model.parameter_names.index("lens.mass.einstein_radius")] = rng.uniform(1.2, 1.6, n)
    return points


def load(url: str, name: str, model, seed: int, points_per_call: int, gradient: bool,
         answers: list, failures: list) -> None:
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + SECONDS
    with Client(url, name, token=TOKEN) as client:
        while time.monotonic() < deadline:
            theta = near_reference(model, points_per_call, rng)
            try:
                if gradient:
                    values, _ = client.value_and_grad(theta)
                else:
                    values = client.log_evidence(theta)
            except Exception as error:  # noqa: BLE001 - every failure is reported by the test
                failures.append(f"{name}: {type(error).__name__}: {error}")
                return
            answers.extend(zip(theta, values, strict=True))


def config_text() -> str:
    """The TOML file `lensserve serve --config` reads: PIXELIZED, buckets 1, 2, 4, gradients."""
    def model(spec: ModelSpec) -> str:
        settings = ", ".join(f"{key} = {value}" for key, value in spec.settings.items())
        return (f'[[models]]\nname = "{spec.name}"\nkind = "{spec.kind}"\n'
                f"mask_radius = {spec.mask_radius}\nsettings = {{ {settings} }}\n")

    return (f'buckets = [1, 2, 4]\ngradient = true\ntoken = "{TOKEN}"\nlog_level = "warning"\n'
            f'compilation_cache_dir = "{CACHE_DIR}"\n' + "".join(map(model, PIXELIZED)))


@pytest.mark.timeout(900)
def test_delaunay_and_rectangular_under_concurrent_clients(tmp_path):
    config = tmp_path / "lensserve.toml"
    config.write_text(config_text())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    models = load_models(PIXELIZED)
    answers = {name: [] for name in models}
    failures: list[str] = []
    command = [sys.executable, "-m", "service.cli", "serve", "--config", str(config),
               "--port", str(port)]
    with subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.DEVNULL) as server:
        try:
            wait_until_compiled(server, url, TOKEN, timeout=600)
            run_clients(url, models, answers, failures)
        finally:
            server.terminate()
            server.wait(60)
    assert failures == []
    for name, model in models.items():
        assert len(answers[name]) >= 8, f"{name}: only {len(answers[name])} points answered"
        single = jax.jit(model.log_evidence)
        for theta, value in answers[name][:: max(1, len(answers[name]) // 12)]:
            np.testing.assert_allclose(value, float(single(theta)), rtol=1e-10, err_msg=name)


def run_clients(url: str, models: dict, answers: dict, failures: list) -> None:
    threads = [
        threading.Thread(target=load, args=(url, name, model, seed, n, gradient,
                                            answers[name], failures))
        for name, model in models.items()
        for seed, n, gradient in ((0, 1, False), (1, 1, False), (2, 1, False), (3, 8, True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads), "a client is still waiting"
