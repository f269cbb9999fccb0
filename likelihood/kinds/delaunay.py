"""Kind `delaunay`: MGE lens light + a pixelized source on a Delaunay mesh with `ConstantSplit`.

The reference's setup (autoarray `Overlay` image mesh, `append_with_circle_edge_points`,
`Delaunay(pixels, zeroed_pixels=30)`, `ConstantSplit`): the overlay vertices inside the mask plus a
ring of 30 points at mask_radius + ps/2, traced through the lens with the masked pixel centres
(pixelization sub-size 1) and border-relocated with them; the ring's amplitudes are held at zero.
Columns: the V mesh vertices first (regularized), then the lens-light Gaussians.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.border import border_indices, relocated
from likelihood.curvature import MeshOperator, mesh_and_light_system, mesh_operator
from likelihood.inversion import Inversion, solve_and_evidence
from likelihood.kinds.kind import Kind
from likelihood.lanes import lane_by_lane
from likelihood.linear_light import weighted_lens_light_rows
from likelihood.mass import traced_grid
from likelihood.mesh.delaunay import OK, delaunay_mesh, image_plane_vertices
from likelihood.mesh.rectangular import Mapping
from likelihood.regularization.constant_split import (
    constant_split_determinant,
    constant_split_regularization,
)

# Edge points appended to the overlay vertices (the reference's fiducial), held at zero.
EDGE_POINTS = 30


class DelaunayStatic(NamedTuple):
    """vertices: (V, 2) image-plane mesh vertices, the edge ring last; border: (B,) indices of the
    mask's border pixels; keep: (V + L,) bool, False for the ring's columns; operator: the PSF
    for the mesh's linear system."""

    vertices: np.ndarray
    border: np.ndarray
    keep: np.ndarray
    operator: MeshOperator


def prepare(dataset, grids, settings, blur, execution) -> DelaunayStatic:
    vertices = image_plane_vertices(
        grids.mask, grids.pixel_scale, dataset.mask_radius, settings.delaunay_overlay, EDGE_POINTS
    )
    n_solved = len(vertices) - EDGE_POINTS
    keep = np.concatenate([np.arange(len(vertices)) < n_solved, np.ones(settings.lens_gaussians, bool)])
    return DelaunayStatic(vertices, border_indices(grids.mask), keep,
                          mesh_operator(blur, grids.mask, dataset.psf, execution))


def source_plane(model, mass):
    """Traced mesh vertices (V, 2) and masked pixel centres (N, 2), both relocated inside the
    ellipse of the traced border pixels when enabled (autoarray `relocated_mesh_grid_from`)."""
    vertices = traced_grid(jnp.asarray(model.static.vertices), mass)
    points = traced_grid(jnp.asarray(model.grids.grid), mass)
    if model.settings.border_relocation:
        border = points[model.static.border]
        vertices, points = relocated(vertices, border), relocated(points, border)
    return vertices, points


def mapping(mesh) -> Mapping:
    """The pixels' interpolation as (N, 3) vertex indices and weights (padding: index 0, weight 0)."""
    return Mapping(jnp.maximum(mesh.point_corners, 0), mesh.point_weights)


def delaunay_inversion(model, theta) -> Inversion:
    """The inversion at parameters `theta` (P,). Under `vmap` the triangulation is one host call
    for the batch; the inversions then run lane after lane (`lanes.lane_by_lane`)."""
    mesh = delaunay_mesh(*source_plane(model, par.mass(theta)))
    return lane_by_lane(partial(_inversion, model))((theta, mesh))


def _inversion(model, theta_and_mesh) -> Inversion:
    theta, mesh = theta_and_mesh
    grids, vertices = model.grids, mesh.vertices
    coefficient = par.regularization_coefficient(theta)
    regularization = constant_split_regularization(coefficient, mesh.split_corners, mesh.split_weights)
    system = mesh_and_light_system(
        mapping(mesh), vertices.shape[0], weighted_lens_light_rows(model, theta),
        model.static.operator, grids.data, grids.noise,
    )
    inversion = solve_and_evidence(
        system, regularization, vertices.shape[0], model.static.keep, grids.data, grids.noise,
        regularization_determinant=constant_split_determinant(
            regularization, coefficient, mesh.split_corners, mesh.split_weights
        ),
    )
    # A lane whose mesh failed (status in mesh.delaunay.STATUS_REASONS) has no log-evidence.
    return inversion._replace(
        log_evidence=jnp.where(mesh.status == OK, inversion.log_evidence, jnp.nan)
    )


KIND = Kind(
    parameters=par.LENS_PARAMETERS + par.PIXELIZATION_PARAMETERS,
    inversion=delaunay_inversion,
    notes=(
        "Source on a Delaunay mesh of traced image-plane overlay vertices (scipy qhull in a host "
        "callback, one call per batch) with barycentric interpolation and ConstantSplit "
        "regularization. The log-evidence is smooth within a triangulation and jumps where the "
        "triangulation re-wires; gradients are exact almost everywhere. Non-finite or degenerate "
        "source-plane vertices give a NaN log-evidence for that point only."
    ),
    prepare=prepare,
)
