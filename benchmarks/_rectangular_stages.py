"""Stage breakdown of one `rectangular` evaluation, for benchmarks/likelihood.py --model rectangular.

Each stage is jitted alone and fed the previous stages' outputs, so the sum approximates a single
evaluation (fusion across stages is lost).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_ms

import nnls
from likelihood import parameters as par
from likelihood.curvature import mesh_and_light_rows
from likelihood.inversion import UNREGULARIZED_DIAGONAL_FLOOR, log_det_cholesky, normal_equations
from likelihood.kinds.rectangular import source_plane_grid
from likelihood.linear_light import weighted_lens_light_rows
from likelihood.mesh.rectangular import rectangular_mapping
from likelihood.regularization import log_det_regularization, regularization_matrix


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(stage, median ms)] for one evaluation at `theta` (P,)."""
    theta = jnp.asarray(theta)
    settings, grids, static = model.settings, model.grids, model.static
    pixels = settings.mesh_shape[0] * settings.mesh_shape[1]
    rows = []

    def mapping(theta):
        grid = source_plane_grid(model, theta)
        return rectangular_mapping(grid, grid, settings.mesh_shape, settings.rectangular_transform)

    ms, mesh_mapping = median_ms(jax.jit(mapping), (theta,), repeats)
    rows.append((f"mapping (trace, border, {settings.rectangular_transform} mesh)", ms))

    def weighted_rows(mesh_mapping, theta):
        return mesh_and_light_rows(mesh_mapping, pixels, weighted_lens_light_rows(model, theta),
                                   model.convolver, grids.noise)

    ms, system_rows = median_ms(jax.jit(weighted_rows), (mesh_mapping, theta), repeats)
    rows.append(("blurred mapping matrix (mesh FFT + lens light)", ms))

    ms, (data_vector, curvature) = median_ms(
        jax.jit(lambda a: normal_equations(a, grids.data / grids.noise)), (system_rows,), repeats)
    rows.append(("curvature F = B^T W B, D (dense Gram)", ms))

    def system(curvature, theta):
        coefficient = par.regularization_coefficient(theta)
        floor = np.where(np.arange(curvature.shape[0]) < pixels, 0.0, UNREGULARIZED_DIAGONAL_FLOOR)
        matrix = curvature + jnp.diag(floor)
        return matrix.at[:pixels, :pixels].add(regularization_matrix(static.regularization,
                                                                      coefficient))

    ms, matrix = median_ms(jax.jit(system), (curvature, theta), repeats)
    rows.append(("regularization + system assembly", ms))
    ms, factor = median_ms(jax.jit(jnp.linalg.cholesky), (matrix,), repeats)
    rows.append(("Cholesky of F + H (shared by solve and ln det)", ms))
    ms, _ = median_ms(jax.jit(lambda f, t: log_det_cholesky(f[:pixels, :pixels])
                               - log_det_regularization(static.regularization,
                                                        par.regularization_coefficient(t))),
                       (factor, theta), repeats)
    rows.append(("log-determinants (from the factor; ln det H closed form)", ms))
    ms, _ = median_ms(jax.jit(lambda q, d, f: nnls.solve(q, d, keep=static.keep, cholesky=f)),
                       (matrix, data_vector, factor), repeats)
    rows.append(("NNLS solve (given the factor)", ms))
    return rows
