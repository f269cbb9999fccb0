"""Kind `rectangular`: MGE lens light + a pixelized source on the adaptive rectangular mesh.

The reference's `Pixelization(mesh=RectangularBilinearAdaptDensity(shape), regularization=
Constant(coefficient))` (or `RectangularRTUAdaptDensity` with `rectangular_transform="kernel"`),
pixelization sub-size 1: the masked pixel centres are traced, border-relocated, and interpolated
onto the mesh. Column order: the S mesh pixels (regularized, the outer ring held at zero), then
the lens-light Gaussians (unregularized).
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
from likelihood.mesh.rectangular import edge_pixels, rectangular_mapping
from likelihood.regularization import (
    ConstantRegularization,
    lattice_regularization,
    log_det_regularization,
    regularization_matrix,
)


class RectangularStatic(NamedTuple):
    """border: (B,) indices of the mask's border pixels; keep: (S + n,) False on the mesh's
    outer ring; regularization: the mesh lattice's Constant regularization; operator: the PSF
    for the mesh's linear system."""

    border: np.ndarray
    keep: np.ndarray
    regularization: ConstantRegularization
    operator: MeshOperator


def prepare(dataset, grids, settings, blur, execution) -> RectangularStatic:
    keep = np.concatenate([~edge_pixels(settings.mesh_shape), np.ones(settings.lens_gaussians, bool)])
    return RectangularStatic(
        border_indices(grids.mask), keep, lattice_regularization(settings.mesh_shape),
        mesh_operator(blur, grids.mask, dataset.psf, execution),
    )


def source_plane_grid(model, theta):
    """(N, 2) traced masked pixel centres, relocated inside the traced border when enabled."""
    traced = traced_grid(jnp.asarray(model.grids.grid), par.mass(theta))
    if model.settings.border_relocation:
        traced = relocated(traced, traced[model.static.border])
    return traced


def rectangular_inversion(model, theta) -> Inversion:
    """The inversion at parameters `theta` (P,); lanes of a `vmap` run one after another (each
    lane's system is a 158 MB matrix at the fiducial: batched, the working sets would add up)."""
    return lane_by_lane(partial(_inversion, model))(theta)


def _inversion(model, theta) -> Inversion:
    settings, grids, static = model.settings, model.grids, model.static
    pixels = settings.mesh_shape[0] * settings.mesh_shape[1]
    source_plane = source_plane_grid(model, theta)
    mapping = rectangular_mapping(
        source_plane, source_plane, settings.mesh_shape, settings.rectangular_transform
    )
    system = mesh_and_light_system(
        mapping, pixels, weighted_lens_light_rows(model, theta), static.operator, grids.data,
        grids.noise,
    )
    coefficient = par.regularization_coefficient(theta)
    return solve_and_evidence(
        system, regularization_matrix(static.regularization, coefficient), pixels,
        static.keep, grids.data, grids.noise,
        log_det_regularization=log_det_regularization(static.regularization, coefficient),
    )


KIND = Kind(
    parameters=par.LENS_PARAMETERS + par.PIXELIZATION_PARAMETERS,
    inversion=rectangular_inversion,
    notes=(
        "Source: adaptive rectangular mesh with Constant regularization; lens light: MGE with "
        "linear intensities. With the default rank transform (PyAutoLens' "
        "RectangularBilinearAdaptDensity) traced pixels are placed on the mesh by their rank, so "
        "the log-evidence is piecewise constant in the lens mass and shear parameters; its "
        "gradient in them is finite but is the derivative with the mesh held fixed, not of the "
        "likelihood. With rectangular_transform='kernel' (RectangularRTUAdaptDensity) the mesh "
        "follows a smooth kernel-density CDF and the gradient is the true derivative, for "
        "gradient-based samplers; it costs an N x N kernel sum per evaluation."
    ),
    prepare=prepare,
)
