"""Stage breakdown of one `delaunay` evaluation, for benchmarks/likelihood.py --model delaunay.

Each stage is jitted alone and fed the previous stages' outputs, so the sum approximates a single
evaluation (fusion across stages is lost). Host stages (qhull, the point-location walk) are timed in
NumPy on the same traced positions; "callback" is the whole host round trip from a jitted program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _system_stages import system_stages
from _timing import median_ms
from scipy.spatial import Delaunay

import nnls
from likelihood import parameters as par
from likelihood.inversion import UNREGULARIZED_DIAGONAL_FLOOR, log_det_cholesky
from likelihood.kinds import delaunay as kind
from likelihood.mesh import delaunay as mesh_module
from likelihood.regularization.constant_split import constant_split_regularization


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(stage, median ms)] for one evaluation at `theta` (P,)."""
    theta = jnp.asarray(theta)
    rows = []

    def stage(label, function, *arguments, jit=True):
        ms, result = median_ms(jax.jit(function) if jit else function, arguments, repeats)
        rows.append((label, ms))
        return result

    vertices, points = stage("trace + border relocation",
                             lambda t: kind.source_plane(model, par.mass(t)), theta)
    host_vertices, host_points = np.asarray(vertices), np.asarray(points)
    tri = stage("  host: qhull", Delaunay, host_vertices, jit=False)
    stage("  host: locate pixels + split points",
          lambda: mesh_module._triangulate_lane(host_vertices, host_points), jit=False)
    rows[-1] = (rows[-1][0], rows[-1][1] - rows[-2][1])
    del tri
    tables = stage("callback (round trip)", mesh_module.triangulate, vertices, points)

    def weights(vertices, points, tables):
        areas = mesh_module.dual_areas(vertices, tables.simplices)
        split = mesh_module.split_points(vertices, 0.5 * jnp.sqrt(areas))
        return (mesh_module.barycentric_weights(points, tables.point_corners, vertices),
                mesh_module.barycentric_weights(split, tables.split_corners, vertices))

    point_weights, split_weights = stage("mapping: barycentric weights, dual areas", weights,
                                         vertices, points, tables)
    regularization = stage(
        "regularization (ConstantSplit)", constant_split_regularization,
        par.regularization_coefficient(theta), tables.split_corners, split_weights)
    mesh = mesh_module.DelaunayMesh(vertices, tables.point_corners, point_weights,
                                    tables.split_corners, split_weights, tables.status)
    n_vertices = vertices.shape[0]

    data_vector, curvature = system_stages(stage, rows, model, model.static.operator,
                                           kind.mapping(mesh), n_vertices, theta)
    floor = np.where(np.arange(curvature.shape[0]) < n_vertices, 0.0,
                     UNREGULARIZED_DIAGONAL_FLOOR)
    system = curvature.at[:n_vertices, :n_vertices].add(regularization) + jnp.diag(floor)
    factor = stage("determinants: Cholesky of F+H, ln det", lambda s: (
        jnp.linalg.cholesky(s), log_det_cholesky(jnp.linalg.cholesky(regularization))), system)[0]
    stage("solve (NNLS given the factor)", lambda s, d, f: nnls.solve_with_info(
        s, d, keep=model.static.keep, cholesky=f), system, data_vector, factor)
    return rows
