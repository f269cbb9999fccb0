"""The linear-system stages shared by the pixelized kinds' breakdowns, in the formulation the
model was built for (`likelihood.curvature.mesh_and_light_system`)."""

from __future__ import annotations

import jax.numpy as jnp

from likelihood.curvature import dense_mesh_system, sparse_mesh_system, sparse_mesh_terms
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

    if operator.formulation == "dense":
        return stage("D, F = A A^T (FFT blurred mapping rows, dense Gram)",
                     system(dense_mesh_system), mapping, light)
    stage("host kernel: F_mesh, mesh parts of D and of the mesh-light block",
          lambda m, light: sparse_mesh_terms(
              operator, pixels, m.indices, m.weights,
              jnp.concatenate([(grids.data / grids.noise)[None], light]), grids.noise),
          mapping, light)
    terms = stage("assembly of D and F, lens-light Gram", system(sparse_mesh_system), mapping,
                  light)
    rows[-1] = (rows[-1][0], rows[-1][1] - rows[-2][1])  # timed with the kernel inside
    return terms
