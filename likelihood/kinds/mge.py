"""Kind `mge`: MGE lens light + MGE source, both with linear intensities (no regularization)."""

from functools import partial

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.inversion import Inversion, dense_system, solve_and_evidence
from likelihood.kinds.kind import Kind
from likelihood.lanes import lane_by_lane
from likelihood.light import elliptical_radius_squared, mge_sigmas
from likelihood.linear_light import blurred_gaussians, support_points
from likelihood.mass import traced_grid


def mge_inversion(model, theta) -> Inversion:
    """The inversion at parameters `theta` (P,); lanes of a `vmap` run one after another."""
    return lane_by_lane(partial(_inversion, model))(theta)


def radii_squared(model, theta):
    """(2, M + Nb) squared elliptical radii of the support points (`support_points`) in the lens
    light's ellipse (image plane) and in the source's (traced to the source plane)."""
    points = support_points(model.grids)
    lens, source = par.lens_light(theta), par.source_light(theta)
    traced = traced_grid(points, par.mass(theta))
    return jnp.stack([elliptical_radius_squared(points, lens.centre, lens.ell_comps),
                      elliptical_radius_squared(traced, source.centre, source.ell_comps)])


def weighted_columns(model, radii):
    """(K, N) B^T W^(1/2): one blurred Gaussian (column of the mapping matrix) per row, divided by
    the noise; the lens light's first, then the source's. radii: `radii_squared(model, theta)`."""
    counts = [model.settings.lens_gaussians, model.settings.source_gaussians]
    sigmas = np.concatenate([mge_sigmas(model.dataset.mask_radius, n) for n in counts])
    return blurred_gaussians(model.grids, model.convolver, radii, np.repeat([0, 1], counts),
                             sigmas, scale=1.0 / model.grids.noise)


def _inversion(model, theta) -> Inversion:
    grids = model.grids
    weighted = weighted_columns(model, radii_squared(model, theta))
    keep = np.ones(weighted.shape[0], dtype=bool)
    return solve_and_evidence(dense_system(weighted, grids.data, grids.noise), None, 0, keep,
                              grids.data, grids.noise)


KIND = Kind(
    parameters=par.LENS_PARAMETERS + par.MGE_SOURCE_PARAMETERS,
    inversion=mge_inversion,
    notes=(
        "Lens light and source are MGE bases with linear intensities; the log-evidence is the "
        "log-likelihood (no regularization) and is smooth in every parameter."
    ),
)
