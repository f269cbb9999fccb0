"""Memory per bucket from XLA's memory analysis, and the device memory budget: buckets that would
not fit are dropped at start-up and logged, so no batch runs out of device memory."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest

from service.app import create_app
from service.engine import Engine, configure_jax
from service.models import load_models
from tests.service.conftest import (
    AUTH,
    BUCKETS,
    CACHE_DIR,
    random_points,
    running_server,
    small_settings,
)


@pytest.fixture(scope="module")
def models():
    configure_jax(CACHE_DIR)  # before anything compiles, or JAX ignores it
    return load_models(small_settings().models)


@pytest.mark.timeout(900)
def test_buckets_over_the_budget_are_dropped_and_said_so(models, caplog):
    measuring = Engine(models, {"mge": BUCKETS}, gradient=True, cache_dir=CACHE_DIR)
    measuring.compile()
    working = measuring.working_memory("mge")
    assert sorted(working) == list(BUCKETS)
    assert 0 < working[2] < working[4] < working[8]
    # Room for the model's data and one batch of 2 (one dispatcher: one batch at a time).
    settings = small_settings(dispatchers=1,
                              device_memory_budget=measuring.resident_memory + working[2])
    with caplog.at_level(logging.INFO, logger="service.engine"), \
            running_server(create_app(settings, models)) as url, \
            httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        (described,) = client.get("/v1/models").json()["models"]
        assert described["state"] == "ready"
        assert described["buckets"] == described["compiled_buckets"] == [1, 2]
        assert described["dropped_buckets"] == [4, 8]
        assert described["working_memory_bytes"] == {"1": working[1], "2": working[2]}
        points = random_points(models["mge"], 8, seed=1)  # served as batches of 2
        answer = client.post("/v1/models/mge/log-evidence",
                             json={"parameters": points.tolist()}).json()
        assert answer["status"] == ["ok"] * 8
        expected, _ = measuring.evaluate("mge", points, gradient=False)
        np.testing.assert_allclose(answer["log_evidence"], expected, rtol=1e-12)
    assert "model mge: bucket 4 needs" in caplog.text
    assert "buckets [4, 8] dropped, serving [1, 2]" in caplog.text


@pytest.mark.timeout(600)
def test_a_model_whose_smallest_bucket_does_not_fit_fails_and_compiles_nothing_more(models):
    engine = Engine(models, {"mge": (1, 2)}, gradient=False, cache_dir=CACHE_DIR,
                    device_memory_budget=1)
    engine.compile()
    assert not engine.ready and engine.compile_error is None
    assert engine.model_state("mge").startswith("failed: bucket 1 needs")
    assert "over device_memory_budget" in engine.model_failure("mge")
    assert engine.dropped_buckets["mge"] == (1, 2) and engine.buckets["mge"] == ()
    assert engine.compiled_buckets("mge") == ()
