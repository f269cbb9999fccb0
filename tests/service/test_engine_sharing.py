"""Models of the same kind, settings and shapes share their compiled executables: the engine
compiles the first and runs the second's core through it, with the second's own answers."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset
from service.engine import Engine
from service.metrics import Metrics

SETTINGS = ModelSettings(lens_gaussians=2, source_gaussians=2)


def lens(scale: float, seed: int):
    """The embedded dataset on a 1" mask, its data and noise changed: same shapes, other values."""
    dataset = dataclasses.replace(default_dataset(), mask_radius=1.0)
    rng = np.random.default_rng(seed)
    return dataclasses.replace(dataset, data=scale * dataset.data,
                               noise_map=dataset.noise_map * rng.uniform(1.0, 1.5, dataset.shape))


@pytest.mark.timeout(600)
def test_models_of_the_same_shapes_share_executables_and_keep_their_own_answers():
    models = {"first": build_model(lens(1.0, 0), "mge", SETTINGS),
              "second": build_model(lens(1.4, 1), "mge", SETTINGS),
              "smaller": build_model(dataclasses.replace(lens(1.0, 0), mask_radius=0.8), "mge",
                                     SETTINGS)}
    metrics = Metrics()
    engine = Engine(models, dict.fromkeys(models, (2,)), gradient=True, metrics=metrics)
    engine.compile()
    assert engine.ready and engine.compile_error is None
    compilations = {
        (name, variant): metrics.registry.get_sample_value(
            "lensserve_compilations_total", {"model": name, "variant": variant}) or 0
        for name in models for variant in ("value", "value_and_grad")}
    assert compilations == {("first", "value"): 1, ("first", "value_and_grad"): 1,
                            ("second", "value"): 0, ("second", "value_and_grad"): 0,
                            ("smaller", "value"): 1, ("smaller", "value_and_grad"): 1}
    batch = np.stack([models["first"].reference_parameters] * 2)
    batch[1, 8] = 1.1
    for name, model in models.items():
        values, gradients = engine.evaluate(name, batch, gradient=True)
        own = jax.jit(jax.vmap(jax.value_and_grad(model.log_evidence)))(batch)
        np.testing.assert_allclose(values, own[0], rtol=1e-12)
        np.testing.assert_allclose(gradients, own[1], rtol=1e-9, atol=1e-9)
    first, _ = engine.evaluate("first", batch, gradient=False)
    second, _ = engine.evaluate("second", batch, gradient=False)
    assert np.all(np.abs(first - second) > 1.0)
