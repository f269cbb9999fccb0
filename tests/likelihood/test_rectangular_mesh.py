"""The adaptive rectangular mesh against PyAutoArray's own function, and its gradients."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood.mesh.rectangular import edge_pixels, rank_transform, rectangular_mapping
from likelihood.regularization.constant import lattice_laplacian, lattice_laplacian_eigenvalues

# Recorded with /opt/refvenv (PyAutoArray 2026.10.26.1):
# adaptive_rectangular_mappings_weights_via_interpolation_from(12, grid, grid, transform=...) on
# border-relocated traced grids of the 1.5" small dataset, three lens models.
COMPONENTS = Path(__file__).parents[1] / "data" / "rectangular_components.npz"


def dense(indices, weights, pixels):
    matrix = np.zeros((len(indices), pixels))
    np.add.at(matrix, (np.repeat(np.arange(len(indices)), indices.shape[1]), indices.ravel()),
              weights.ravel())
    return matrix


def tied(grid):
    """(N,) True where a coordinate of the point is shared exactly by another point."""
    shared = [np.unique(axis, return_inverse=True, return_counts=True) for axis in grid.T]
    return np.any([counts[inverse] > 1 for _, inverse, counts in shared], axis=0)


@pytest.mark.parametrize("transform", ["rank", "kernel"])
def test_mapping_matches_reference(transform):
    record = np.load(COMPONENTS)
    for k, grid in enumerate(record["relocated"]):
        mapping = rectangular_mapping(jnp.asarray(grid), jnp.asarray(grid), (12, 12), transform)
        theirs = dense(record[f"indices_{transform}_{k}"], record[f"weights_{transform}_{k}"], 144)
        ours = dense(np.asarray(mapping.indices), np.asarray(mapping.weights), 144)
        # The rank of a coordinate that other points share exactly is whatever interpolation on
        # duplicate knots gives, which last-bit rounding decides (CONVENTIONS.md, rank transform
        # and (m)): a few such points may interpolate differently; every other point must agree.
        np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        # Compared as mapping matrices: a point exactly on a bin edge may be bracketed by either
        # neighbouring cell with the same weights on the same mesh pixels.
        differing = np.any(np.abs(ours - theirs) > 1e-12, axis=1)
        if transform == "rank":
            assert not np.any(differing & ~tied(grid)) and differing.sum() <= 0.002 * len(grid)
        else:
            assert not np.any(differing)

def test_edge_ring_is_the_136_outer_pixels():
    ring = edge_pixels((35, 35))
    assert ring.sum() == 136 and not ring.reshape(35, 35)[1:-1, 1:-1].any()


def test_lattice_laplacian_eigenvalues_in_closed_form():
    expected = np.linalg.eigvalsh(lattice_laplacian((6, 6)))
    np.testing.assert_allclose(np.sort(lattice_laplacian_eigenvalues((6, 6))), expected, atol=1e-12)


def test_rank_slope_is_finite_through_exactly_coincident_knots():
    """The seed's case: about half of all sorted neighbours tie exactly."""
    base = np.random.default_rng(0).normal(size=500)
    knots = jnp.asarray(np.concatenate([base, base, np.full(50, base[0])]))

    def total(shift):
        return jnp.sum(rank_transform(knots + shift, knots + 2.0 * shift) ** 2)

    gradient = jax.grad(total)(0.0)
    assert np.isfinite(gradient) and abs(gradient) < 1e6


@pytest.mark.parametrize("transform", ["rank", "kernel"])
def test_mapping_gradient_finite_with_coincident_points(transform):
    grid = np.random.default_rng(1).normal(size=(400, 2))
    grid = np.concatenate([grid, grid * [1.0, -1.0], grid[:1].repeat(40, axis=0)])

    def loss(scale):
        points = jnp.asarray(grid) * scale
        mapping = rectangular_mapping(points, points, (8, 8), transform)
        return jnp.sum(mapping.weights**2 * jnp.arange(4.0))

    assert np.isfinite(jax.grad(loss)(1.3))
