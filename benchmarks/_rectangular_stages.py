"""Stage breakdown of one `rectangular` evaluation, for benchmarks/likelihood.py --model rectangular.

Each stage is jitted alone and fed the previous stages' outputs, so the sum approximates a single
evaluation (fusion across stages is lost).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _system_stages import system_stages
from _timing import median_ms

import nnls
from likelihood import parameters as par
from likelihood.inversion import UNREGULARIZED_DIAGONAL_FLOOR, held_last, log_det_cholesky
from likelihood.kinds.rectangular import source_plane_grid
from likelihood.mesh.rectangular import rectangular_mapping
from likelihood.regularization import log_det_regularization, regularization_matrix


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(stage, median ms)] for one evaluation at `theta` (P,)."""
    theta = jnp.asarray(theta)
    settings, static = model.settings, model.static
    pixels = settings.mesh_shape[0] * settings.mesh_shape[1]
    rows = []

    def stage(label, function, *arguments):
        ms, result = median_ms(jax.jit(function), arguments, repeats)
        rows.append((label, ms))
        return result

    def mapping(theta):
        grid = source_plane_grid(model, theta)
        return rectangular_mapping(grid, grid, settings.mesh_shape, settings.rectangular_transform)

    mesh_mapping = stage(f"mapping (trace, border, {settings.rectangular_transform} mesh)",
                         mapping, theta)
    data_vector, curvature = system_stages(stage, rows, model, static.operator, mesh_mapping,
                                           pixels, theta)

    order = held_last(static.keep, pixels)  # the edge ring last in the mesh block, as solved

    def system(curvature, data_vector, theta):
        coefficient = par.regularization_coefficient(theta)
        floor = np.where(np.arange(curvature.shape[0]) < pixels, 0.0, UNREGULARIZED_DIAGONAL_FLOOR)
        matrix = curvature + jnp.diag(floor)
        matrix = matrix.at[:pixels, :pixels].add(regularization_matrix(static.regularization,
                                                                        coefficient))
        return matrix[np.ix_(order, order)], data_vector[order]

    matrix, data_vector = stage("regularization + system assembly (edge ring ordered last)",
                                system, curvature, data_vector, theta)
    factor = stage("Cholesky of F + H (shared by solve and ln det)", jnp.linalg.cholesky, matrix)
    stage("log-determinants (from the factor; ln det H closed form)",
          lambda f, t: log_det_cholesky(f[:pixels, :pixels])
          - log_det_regularization(static.regularization, par.regularization_coefficient(t)),
          factor, theta)
    stage("NNLS solve (given the factor)",
          lambda q, d, f: nnls.solve(q, d, keep=static.keep[order], cholesky=f),
          matrix, data_vector, factor)
    return rows
