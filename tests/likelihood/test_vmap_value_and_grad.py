"""`vmap(value_and_grad(log_evidence))`, the program the service's engine compiles, equals a loop
of `value_and_grad`, for every model variant; a bad lane leaves the others bit for bit."""

import numpy as np

from tests.likelihood.conftest import GRADIENT_TOLERANCE


def test_equals_a_loop_of_value_and_grad(variant):
    values, gradients = variant.batched_value_and_grad(variant.points)
    for theta, batched_value, batched_gradient in zip(variant.points, values, gradients, strict=True):
        value, gradient = variant.value_and_grad(theta)
        np.testing.assert_allclose(float(batched_value), float(value), rtol=1e-12)
        np.testing.assert_allclose(batched_gradient, gradient, rtol=0,
                                   atol=GRADIENT_TOLERANCE * np.abs(gradient).max())


def test_a_nan_lane_leaves_the_others_bit_for_bit(variant):
    points = variant.points.copy()
    clean = [np.asarray(a) for a in variant.batched_value_and_grad(points)]
    points[1] = np.nan
    mixed = [np.asarray(a) for a in variant.batched_value_and_grad(points)]
    assert np.isnan(mixed[0][1])
    for ours, theirs in zip(mixed, clean, strict=True):
        np.testing.assert_array_equal(np.delete(ours, 1, axis=0), np.delete(theirs, 1, axis=0))
