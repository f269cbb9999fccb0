"""Kind `mge`: MGE lens light + MGE source, both with linear intensities (no regularization)."""

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.inversion import Inversion, data_vector_and_curvature, solve_and_evidence
from likelihood.kinds.kind import Kind
from likelihood.light import mge_sigmas
from likelihood.linear_light import blurred_gaussian_columns, lens_light_columns
from likelihood.mass import traced_grid


def mge_inversion(model, theta) -> Inversion:
    grids = model.grids
    mass = par.mass(theta)
    source_columns = blurred_gaussian_columns(
        grids, model.convolver, par.source_light(theta),
        mge_sigmas(model.dataset.mask_radius, model.settings.source_gaussians),
        traced_grid(grids.light.points, mass), traced_grid(grids.blurring_grid, mass),
    )
    blurred_mapping = jnp.concatenate([lens_light_columns(model, theta), source_columns], axis=1)
    data_vector, curvature = data_vector_and_curvature(blurred_mapping, grids.data, grids.noise)
    keep = np.ones(blurred_mapping.shape[1], dtype=bool)
    return solve_and_evidence(
        data_vector, curvature, None, 0, keep, lambda s: blurred_mapping @ s,
        grids.data, grids.noise,
    )


KIND = Kind(
    parameters=par.LENS_PARAMETERS + par.MGE_SOURCE_PARAMETERS,
    inversion=mge_inversion,
    notes=(
        "Lens light and source are MGE bases with linear intensities; the log-evidence is the "
        "log-likelihood (no regularization) and is smooth in every parameter."
    ),
)
