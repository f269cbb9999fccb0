"""The maxima and minima read by index: the value of jnp.max/min, the whole derivative on one
element, also where XLA's fusions round a recomputed operand differently."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood.border import relocated
from likelihood.extremes import max_by_index, min_by_index


@pytest.mark.parametrize(("ours", "theirs"), [(max_by_index, jnp.max), (min_by_index, jnp.min)])
def test_value_and_one_hot_gradient(ours, theirs):
    values = np.random.default_rng(0).normal(size=(5, 7))
    assert float(ours(values)) == float(theirs(values))
    np.testing.assert_array_equal(ours(values, axis=1), theirs(values, axis=1))
    gradient = np.asarray(jax.grad(ours)(values))
    assert np.count_nonzero(gradient) == 1 and gradient.sum() == 1.0
    assert gradient.ravel()[np.argmax(values) if ours is max_by_index else np.argmin(values)] == 1.0


def test_relocation_gradient_of_a_traced_grid_is_the_same_batched():
    """The shape that lost the maximum's derivative under jit(vmap(grad)): points computed from the
    parameters (here a rotation and a stretch), relocated inside the ellipse of their border."""
    base = np.random.default_rng(1).normal(size=(400, 2))
    border = np.argsort(-np.hypot(*base.T))[:60]

    def relocated_sum(theta):
        c, s = jnp.cos(theta[0]), jnp.sin(theta[0])
        y, x = base[:, 0], base[:, 1]
        points = jnp.stack([c * y - s * x, theta[1] * (s * y + c * x)], axis=-1)
        points = points + 0.3 * jnp.sin(3.0 * points)
        return jnp.sum(relocated(points, points[border]) ** 2)

    thetas = np.array([[0.3, 1.4], [1.1, 0.7], [2.0, 1.9]])
    batched = jax.jit(jax.vmap(jax.grad(relocated_sum)))(thetas)
    for theta, gradient in zip(thetas, batched, strict=True):
        np.testing.assert_allclose(gradient, jax.grad(relocated_sum)(theta), rtol=1e-12, atol=0)
