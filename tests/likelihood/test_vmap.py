"""vmap equals a loop, for every model variant; a bad lane leaves the others bit for bit."""

import numpy as np

from tests.likelihood.conftest import BATCH, prior_draws


def test_vmap_equals_a_loop(variant):
    # Near the truth and far from it: prior draws trace the pixels anywhere.
    for points in (variant.points, prior_draws(variant.model, BATCH, seed=11)):
        batched = np.asarray(variant.batched_value(points))
        loop = [float(variant.value(theta)) for theta in points]
        assert np.all(np.isfinite(batched))
        np.testing.assert_allclose(batched, loop, rtol=1e-12)


def test_a_nan_lane_leaves_the_others_bit_for_bit(variant):
    points = variant.points.copy()
    clean = np.asarray(variant.batched_value(points))
    points[1] = np.nan  # an unphysical proposal: every traced position is NaN
    mixed = np.asarray(variant.batched_value(points))
    assert np.isnan(mixed[1])
    np.testing.assert_array_equal(np.delete(mixed, 1), np.delete(clean, 1))
