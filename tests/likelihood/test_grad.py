"""grad equals central finite differences where the log-evidence is smooth, for every kind; and
gradients are finite at random prior points, for every model variant.

The log-evidence is smooth in every parameter except where: the rectangular rank mesh is
piecewise constant in the lens mass (its kernel variant stands in); a Delaunay mesh re-wires (a
jump: its overlay vertices form a square lattice, so traced quadruples are nearly cocircular and
a diagonal flips under a mass step of ~1e-5); a traced pixel crosses the border it is relocated
onto (a kink, which steps of ~1e-5 also meet). Hence tiny steps, and a check that the interval
holds no jump nor kink: the differences at steps h and 2h agree to their rounding error,
whereas a jump J within 2h moves one of them by at least J / 4h.
"""

import numpy as np

from tests.likelihood.conftest import BATCH, prior_draws

# Steps relative to max(1, |theta_i|).
STEP = 1e-8
# At STEP the truncation error of the differences (h^2 f'''/6) is negligible and their rounding
# error (~eps |f| / h, |f| ~ 1e5) was at most 2e-8 of the largest gradient component, as was the
# h-2h disagreement (Delaunay; MGE and the kernel mesh less): tolerated to 1e-7 of the largest
# component. At 1e-7 Delaunay's h-2h disagreement reached 7e-7 at one of the points.
TOLERANCE = 1e-7


def central_differences(value, theta, step):
    """(P, 2) central differences of `value` at `theta` (P,), at steps h and 2h per parameter."""
    h = step * np.maximum(1.0, np.abs(theta))
    differences = np.empty((len(theta), 2))
    for i, unit in enumerate(np.eye(len(theta))):
        for j, k in enumerate((1, 2)):
            plus, minus = value(theta + k * h[i] * unit), value(theta - k * h[i] * unit)
            differences[i, j] = (float(plus) - float(minus)) / (2 * k * h[i])
    return differences


def test_gradient_matches_central_differences(smooth_variant):
    theta = smooth_variant.points[0]
    gradient = np.asarray(smooth_variant.value_and_grad(theta)[1])
    differences = central_differences(smooth_variant.value, theta, STEP)
    tolerance = TOLERANCE * np.abs(gradient).max()
    names = np.array(smooth_variant.model.parameter_names)
    rough = np.abs(differences[:, 0] - differences[:, 1]) > tolerance
    assert not np.any(rough), "a jump or a kink within 2h in " + ", ".join(names[rough])
    np.testing.assert_allclose(gradient, differences[:, 0], rtol=0, atol=tolerance,
                               err_msg=", ".join(names))


def test_gradients_finite_at_prior_draws(variant):
    draws = prior_draws(variant.model, 12 * BATCH, seed=3)
    gradients = np.concatenate([np.asarray(variant.batched_value_and_grad(batch)[1])
                                for batch in draws.reshape(-1, BATCH, draws.shape[1])])
    assert np.all(np.isfinite(gradients)), np.argwhere(~np.isfinite(gradients))


def test_gradients_at_prior_draws_are_stable_under_rounding(variant):
    """A relative change of 1e-14 in the point moves the gradient by rounding only, also at wild
    draws (e.g. an Einstein radius of 7" in a 1.6" mask). When `jnp.max` in the border relocation
    lost its derivative to XLA's rounding (`likelihood.extremes`), it moved by up to 39%."""
    draws = prior_draws(variant.model, 12, seed=0)
    for theta in draws:
        value, gradient = variant.value_and_grad(theta)
        nudged = np.asarray(variant.value_and_grad(theta * (1.0 + 1e-14))[1])
        if np.isfinite(value):
            np.testing.assert_allclose(nudged, gradient, rtol=0,
                                       atol=1e-9 * np.abs(gradient).max())
