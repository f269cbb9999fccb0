"""Delaunay mesh components: parity with PyAutoLens on identical vertices, and degenerate input.

tests/data/delaunay_components.npz is written by benchmarks/parity/delaunay_components.py (the
reference's own arrays on the embedded dataset, 1.5" mask, 15 x 15 overlay).
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood import default_dataset
from likelihood.grids import masked_grids
from likelihood.inversion import log_det_cholesky
from likelihood.mesh import delaunay as dm
from likelihood.regularization.constant_split import (
    constant_split_determinant,
    constant_split_regularization,
)

COMPONENTS = np.load(Path(__file__).parents[1] / "data" / "delaunay_components.npz")
POINTS = sorted({int(key.split("_")[0]) for key in COMPONENTS.files if key[0].isdigit()})


def dense_mapping(corners, weights, n_vertices):
    """(Q, V) matrix of a (Q, 3) -1-padded corner table and its weights."""
    matrix = np.zeros((len(corners), n_vertices))
    rows = np.broadcast_to(np.arange(len(corners))[:, None], corners.shape)
    valid = corners >= 0
    np.add.at(matrix, (rows[valid], corners[valid]), weights[valid])
    return matrix


def test_image_plane_vertices_match_the_reference_overlay():
    radius = float(COMPONENTS["mask_radius"])
    grids = masked_grids(dataclasses.replace(default_dataset(), mask_radius=radius))
    overlay = int(COMPONENTS["overlay"])
    vertices = dm.image_plane_vertices(grids.mask, grids.pixel_scale, radius, (overlay, overlay), 30)
    np.testing.assert_allclose(vertices, COMPONENTS["image_mesh_grid"], rtol=0, atol=1e-14)


@pytest.mark.parametrize("point", POINTS)
def test_weights_and_regularization_match_the_reference(point):
    vertices, points = COMPONENTS[f"{point}_vertices"], COMPONENTS[f"{point}_points"]
    mesh = dm.delaunay_mesh(jnp.asarray(vertices), jnp.asarray(points))
    assert int(mesh.status) == dm.OK
    n = len(vertices)
    ours = dense_mapping(np.asarray(mesh.point_corners), np.asarray(mesh.point_weights), n)
    theirs = dense_mapping(COMPONENTS[f"{point}_mappings"], COMPONENTS[f"{point}_weights"], n)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-13)
    regularization = constant_split_regularization(
        float(COMPONENTS[f"{point}_coefficient"]), mesh.split_corners, mesh.split_weights
    )
    expected = COMPONENTS[f"{point}_regularization"]
    np.testing.assert_allclose(regularization, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("coefficient", [1e-6, 1.0, 1e3, 1e6])
def test_log_det_regularization_is_accurate_at_any_coefficient(coefficient):
    """Against a QR factor of the square root [lambda S; 1e-4 I] of H (S: the (4V, V) stencils),
    which keeps the constant null vector's 1e-8 that H's rounded entries lose for lambda >~ 1e2."""
    mesh = dm.delaunay_mesh(jnp.asarray(COMPONENTS["0_vertices"]), jnp.asarray(COMPONENTS["0_points"]))
    n = len(COMPONENTS["0_vertices"])
    stencils = np.repeat(np.eye(n), 4, axis=0) - dense_mapping(
        np.asarray(mesh.split_corners), np.asarray(mesh.split_weights), n)
    root = np.linalg.qr(np.vstack([coefficient * stencils, 1e-4 * np.eye(n)]), mode="r")
    expected = 2.0 * np.sum(np.log(np.abs(np.diagonal(root))))

    def log_det(coefficient, split_weights):
        regularization = constant_split_regularization(coefficient, mesh.split_corners, split_weights)
        return log_det_cholesky(jnp.linalg.cholesky(constant_split_determinant(
            regularization, coefficient, mesh.split_corners, split_weights)))

    np.testing.assert_allclose(log_det(coefficient, mesh.split_weights), expected, rtol=1e-12)
    gradients = jax.grad(log_det, argnums=(0, 1))(coefficient, mesh.split_weights)
    assert all(np.all(np.isfinite(g)) for g in gradients)


def test_jit_equals_eager():
    vertices, points = COMPONENTS["0_vertices"], COMPONENTS["0_points"]

    def regularization(vertices, points):
        mesh = dm.delaunay_mesh(vertices, points)
        return mesh.point_weights, constant_split_regularization(
            2.0, mesh.split_corners, mesh.split_weights)

    eager = regularization(jnp.asarray(vertices), jnp.asarray(points))
    jitted = jax.jit(regularization)(vertices, points)
    for ours, theirs in zip(jitted, eager, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-13)


def test_outside_the_hull_maps_to_the_nearest_vertex_and_flat_triangles_to_nothing():
    vertices = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1e-7, 1e-7]])
    points = jnp.array([[0.25, 0.25], [2.0, 2.0], [5e-7, 1e-7]])
    corners = jnp.array([[0, 1, 2], [2, -1, -1], [0, 3, 3]])
    weights = np.asarray(dm.barycentric_weights(points, corners, vertices))
    np.testing.assert_allclose(weights[0], [0.5, 0.25, 0.25], atol=1e-15)
    np.testing.assert_array_equal(weights[1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(weights[2], [0.0, 0.0, 0.0])


def test_walk_agrees_with_scipy_find_simplex():
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(1)
    vertices, points = rng.normal(size=(300, 2)), 1.2 * rng.normal(size=(4000, 2))
    tri = Delaunay(vertices)
    status, _, corners, _ = dm._triangulate_lane(vertices, points)
    simplex = tri.find_simplex(points)
    assert status == dm.OK
    np.testing.assert_array_equal(corners[:, 1] < 0, simplex < 0)
    np.testing.assert_array_equal(np.sort(corners[simplex >= 0], 1),
                                  np.sort(tri.simplices[simplex[simplex >= 0]], 1))
    nearest = np.argmin(((points[simplex < 0, None] - vertices) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(corners[simplex < 0, 0], nearest)


def _degenerate(kind):
    rng = np.random.default_rng(2)
    vertices = rng.normal(size=(40, 2))
    if kind == dm.NON_FINITE:
        vertices[7] = np.nan
    elif kind == dm.QHULL_FAILED:
        vertices[:, 1] = 2.0 * vertices[:, 0]
    else:
        vertices[5] = vertices[9]
    return vertices


@pytest.mark.parametrize("status", [dm.NON_FINITE, dm.QHULL_FAILED, dm.COINCIDENT])
def test_degenerate_vertices_give_a_status_and_sentinel_tables_without_raising(status):
    points = np.random.default_rng(3).normal(size=(50, 2))
    mesh = dm.delaunay_mesh(jnp.asarray(_degenerate(status)), jnp.asarray(points))
    assert int(mesh.status) == status and status in dm.STATUS_REASONS
    assert np.all(np.asarray(mesh.point_corners) == -1)
    assert np.all(np.asarray(mesh.point_weights) == 0) and np.all(np.asarray(mesh.split_weights) == 0)
