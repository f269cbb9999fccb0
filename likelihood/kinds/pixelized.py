"""Pixelized kinds: MGE lens light + a source on a mesh with a regularization, for any `Mesh` and
`Regularization`.

The reference's `Pixelization(mesh, regularization)` with pixelization sub-size 1: the masked pixel
centres (and the mesh's image-plane vertices, if it has any) are traced through the lens,
border-relocated inside the traced mask border, and the mesh built on them interpolates every pixel
onto its S pixels. Columns of the linear system: the S mesh pixels (regularized; those the mesh
holds, e.g. its outer ring, fixed at zero), then the lens-light Gaussians (unregularized).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.border import border_indices, relocated
from likelihood.curvature import MeshOperator, mesh_and_light_system, mesh_operator
from likelihood.inversion import Inversion, solve_and_evidence
from likelihood.kinds.kind import Kind
from likelihood.lanes import with_lanes
from likelihood.linear_light import weighted_lens_light_rows
from likelihood.mass import traced_grid
from likelihood.mesh.mesh import Mesh
from likelihood.pytree import pytree_dataclass
from likelihood.regularization import Regularization


@pytree_dataclass(static=("mesh", "regularization", "pixels", "border", "keep", "relocate"))
@dataclass(frozen=True, eq=False)
class PixelizedSource:
    """vertices: (V, 2) the mesh's image-plane vertices, or None; operator: the PSF for the mesh's
    linear system; regularization_data: the regularization's arrays (`Regularization.prepare`);
    mesh, regularization: the components; pixels: S, the mesh's pixel count; border: (B,) indices
    of the mask's border pixels; keep: (S + L,) bool, False for the columns held at zero;
    relocate: whether traced points are border-relocated."""

    vertices: np.ndarray | None
    operator: MeshOperator
    regularization_data: object
    mesh: Mesh
    regularization: Regularization
    pixels: int
    border: np.ndarray
    keep: np.ndarray
    relocate: bool


def pixelized_source(mesh_type: type[Mesh], regularization: Regularization, dataset, grids,
                     convolver, settings, execution) -> PixelizedSource:
    """The `PixelizedSource` of `mesh_type` (configured by `settings`) on a dataset."""
    mesh = mesh_type.from_settings(settings)
    vertices = mesh.image_plane_vertices(grids, dataset.mask_radius)
    held = mesh.held(vertices)
    return PixelizedSource(
        vertices=vertices,
        operator=mesh_operator(convolver, grids.mask, dataset.psf, execution),
        regularization_data=regularization.prepare(mesh, vertices),
        mesh=mesh, regularization=regularization, pixels=len(held),
        border=border_indices(grids.mask),
        keep=np.concatenate([~held, np.ones(settings.lens_gaussians, bool)]),
        relocate=settings.border_relocation,
    )


def source_plane(source: PixelizedSource, grid, mass, values):
    """The traced mesh vertices (V, 2) (or None) and masked pixel centres (N, 2) through the
    `mass.LensMass` `mass` at parameter `values`, relocated inside
    the ellipse of the traced border pixels when enabled (autoarray `relocated_grid_from`,
    `relocated_mesh_grid_from`)."""
    vertices = None if source.vertices is None else traced_grid(source.vertices, mass, values)
    points = traced_grid(grid, mass, values)
    if source.relocate:
        border = points[source.border]
        points = relocated(points, border)
        vertices = None if vertices is None else relocated(vertices, border)
    return vertices, points


def pixelized_inversion(core, theta) -> Inversion:
    """The inversion at parameters theta (P,). The source-plane mesh is built once for a batch
    (a host call, e.g. the Delaunay triangulation, sees all of it, whatever the lanes policy);
    the inversions then run as `core.lanes` says (`likelihood.lanes`): on a CPU lane after lane
    (each lane's dense system is a 158 MB matrix at the fiducial, and batched the working sets
    would add up), on an accelerator vectorized."""
    source = core.source
    vertices, points = source_plane(source, core.grids.grid, core.mass, core.layout.values(theta))
    mesh = source.mesh.source_plane_mesh(vertices, points)
    return with_lanes(core.lanes, partial(_inversion, core))((theta, mesh))


def _inversion(core, theta_and_mesh) -> Inversion:
    theta, mesh = theta_and_mesh
    source, grids = core.source, core.grids
    values = core.layout.values(theta)
    regularization = source.regularization.terms(
        values[par.REGULARIZATION_COEFFICIENT], mesh, source.regularization_data)
    system = mesh_and_light_system(
        source.mesh.mapping(mesh), source.pixels, weighted_lens_light_rows(core, values),
        source.operator, grids.data, grids.noise,
    )
    inversion = solve_and_evidence(
        system, regularization.matrix, source.pixels, source.keep, grids.data, grids.noise,
        log_det_regularization=regularization.log_det,
        regularization_determinant=regularization.determinant,
    )
    return inversion._replace(
        log_evidence=jnp.where(source.mesh.valid(mesh), inversion.log_evidence, jnp.nan))


def pixelized_kind(mesh_type: type[Mesh], regularization: Regularization) -> Kind:
    """The kind of MGE lens light + a source on `mesh_type` regularized by `regularization`."""
    return Kind(
        source_parameters=par.PIXELIZATION_PARAMETERS,
        notes=mesh_type.notes,
        pixelized=True,
        source=partial(pixelized_source, mesh_type, regularization),
        inversion=pixelized_inversion,
    )
