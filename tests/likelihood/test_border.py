"""Border relocation against PyAutoArray's ellipse border relocator, and its gradients."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.border import border_indices, relocated

COMPONENTS = Path(__file__).parents[1] / "data" / "rectangular_components.npz"


def test_border_pixels_match_reference():
    record = np.load(COMPONENTS)
    np.testing.assert_array_equal(border_indices(record["mask"]), record["border"])


def test_relocation_matches_reference():
    record = np.load(COMPONENTS)
    for traced, theirs in zip(record["traced"], record["relocated"], strict=True):
        ours = relocated(jnp.asarray(traced), jnp.asarray(traced[record["border"]]))
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=1e-13)


def test_relocation_moves_outside_points_onto_the_ellipse():
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    border = np.stack([np.sin(angles), 2.0 * np.cos(angles)], axis=1)
    points = jnp.asarray([[0.0, 4.0], [0.5, 0.5]])
    moved = np.asarray(relocated(points, jnp.asarray(border)))
    np.testing.assert_allclose(moved[0], [0.0, 2.0], atol=1e-9)
    np.testing.assert_array_equal(moved[1], [0.5, 0.5])


def test_gradient_finite_at_an_isotropic_border():
    """A circle of border points has no major axis; the fit must still differentiate."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    circle = jnp.asarray(np.stack([np.sin(angles), np.cos(angles)], axis=1))
    points = jnp.asarray([[0.0, 3.0], [2.0, 2.0], [0.1, 0.1]])

    def loss(scale):
        return jnp.sum(relocated(points * scale, circle * scale) ** 2)

    assert np.isfinite(jax.grad(loss)(1.0))
