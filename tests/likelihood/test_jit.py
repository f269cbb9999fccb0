"""Eager equals jit, for every model variant: the log-evidence and its gradient."""

import jax
import numpy as np

from tests.likelihood.conftest import GRADIENT_TOLERANCE

# One point: the first eager call compiles each operation on its own (as long as a jit).


def test_log_evidence(variant):
    theta = variant.points[0]
    eager = float(variant.model.log_evidence(theta))
    np.testing.assert_allclose(float(variant.value(theta)), eager, rtol=1e-12)


def test_value_and_grad(variant):
    theta = variant.points[0]
    value, gradient = jax.value_and_grad(variant.model.log_evidence)(theta)
    jitted_value, jitted_gradient = variant.value_and_grad(theta)
    np.testing.assert_allclose(float(jitted_value), float(value), rtol=1e-12)
    np.testing.assert_allclose(jitted_gradient, gradient, rtol=0,
                               atol=GRADIENT_TOLERANCE * np.abs(gradient).max())
