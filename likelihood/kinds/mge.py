"""Kind `mge`: MGE lens light + MGE source, both with linear intensities (no regularization)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.inversion import Inversion, dense_system, solve_and_evidence
from likelihood.kinds.kind import Kind
from likelihood.lanes import with_lanes
from likelihood.light import elliptical_radius_squared, mge_sigmas
from likelihood.linear_light import blurred_gaussians, support_points
from likelihood.mass import traced_grid
from likelihood.pytree import pytree_dataclass


@pytree_dataclass()
@dataclass(frozen=True, eq=False)
class MGESource:
    """sigmas: (G,) arcsec, the source MGE's widths."""

    sigmas: np.ndarray


def source(dataset, grids, convolver, settings, execution) -> MGESource:
    return MGESource(mge_sigmas(dataset.mask_radius, settings.source_gaussians))


def mge_inversion(core, theta) -> Inversion:
    """The inversion at parameters `theta` (P,); lanes of a `vmap` run as `core.lanes` says."""
    return with_lanes(core.lanes, partial(_inversion, core))(theta)


def radii_squared(core, values):
    """(2, M + Nb) squared elliptical radii of the support points (`support_points`) in the lens
    light's ellipse (image plane) and in the source's (traced to the source plane)."""
    points = support_points(core.grids)
    lens = par.ellipse(values, par.LENS_LIGHT_PATH)
    source_light = par.ellipse(values, par.SOURCE_LIGHT_PATH)
    traced = traced_grid(points, core.mass, values)
    return jnp.stack([elliptical_radius_squared(points, lens.centre, lens.ell_comps),
                      elliptical_radius_squared(traced, source_light.centre,
                                                source_light.ell_comps)])


def weighted_columns(core, radii):
    """(K, N) B^T W^(1/2): one blurred Gaussian (column of the mapping matrix) per row, divided by
    the noise; the lens light's first, then the source's. radii: `radii_squared(core, values)`."""
    sigmas = jnp.concatenate([core.lens_sigmas, core.source.sigmas])
    basis = np.repeat([0, 1], [core.lens_sigmas.shape[0], core.source.sigmas.shape[0]])
    return blurred_gaussians(core.grids, core.convolver, radii, basis, sigmas,
                             scale=1.0 / core.grids.noise)


def _inversion(core, theta) -> Inversion:
    grids = core.grids
    weighted = weighted_columns(core, radii_squared(core, core.layout.values(theta)))
    keep = np.ones(weighted.shape[0], dtype=bool)
    return solve_and_evidence(dense_system(weighted, grids.data, grids.noise), None, 0, keep,
                              grids.data, grids.noise)


KIND = Kind(
    source_parameters=par.ellipse_parameters(par.SOURCE_LIGHT_PATH, par.priors.MGE_CENTRE),
    notes=(
        "Lens light and source are MGE bases with linear intensities; the log-evidence is the "
        "log-likelihood (no regularization) and is smooth in every parameter."
    ),
    pixelized=False,
    source=source,
    inversion=mge_inversion,
)
