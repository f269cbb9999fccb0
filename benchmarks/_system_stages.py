"""The linear-system stages shared by the pixelized kinds' breakdowns, in the formulation the
backend runs (`likelihood.curvature.mesh_and_light_system`)."""

from __future__ import annotations

import jax

from likelihood.curvature import dense_mesh_system, sparse_mesh_curvature, sparse_mesh_system
from likelihood.linear_light import weighted_lens_light_rows


def system_stages(stage, rows, model, operator, mapping, pixels: int, theta):
    """Time the lens-light rows and the mesh + light system with `stage(label, function, *args)`,
    which appends (label, median ms) to `rows` and returns the result; returns (D, F)."""
    grids = model.grids
    light = stage("lens-light rows (MGE, FFT blurred)",
                  lambda t: weighted_lens_light_rows(model, t), theta)

    def system(formulation):
        def terms(mapping, light):
            linear = formulation(mapping, pixels, light, operator, grids.data, grids.noise)
            return linear.data_vector, linear.curvature

        return terms

    if jax.default_backend() != "cpu":
        return stage("D, F = A A^T (FFT blurred mapping rows, dense Gram)",
                     system(dense_mesh_system), mapping, light)
    stage("mesh curvature M^T P^T W P M (sparse host kernel)",
          lambda m: sparse_mesh_curvature(operator, pixels, m.indices, m.weights, grids.noise),
          mapping)
    terms = stage("D, mesh-light block (n + 1 correlations, M^T), light Gram", system(
        sparse_mesh_system), mapping, light)
    rows[-1] = (rows[-1][0], rows[-1][1] - rows[-2][1])  # timed with the kernel inside
    return terms
