"""A model's core: the pytree every compiled program takes as its argument.

Its leaves are the dataset-dependent arrays (masked data and noise, the PSF's transform, the
coordinates, the MGE widths, the mesh's image-plane vertices); its static part (masks, pixel
indices, the kind, the lens mass, the parameter layout, the components' settings, the lanes
policy) fixes the program. So one executable evaluates any dataset whose core has the same static
part and leaf shapes:
`jax.jit(log_evidence).lower(core, theta).compile()(other_core, theta)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from likelihood.convolution import Convolver
from likelihood.grids import MaskedGrids
from likelihood.inversion import Inversion
from likelihood.mass import LensMass
from likelihood.parameters import ParameterLayout
from likelihood.pytree import pytree_dataclass


@pytree_dataclass(static=("kind", "mass", "layout", "lanes"))
@dataclass(frozen=True, eq=False)
class ModelCore:
    """grids, convolver: the dataset on its mask; lens_sigmas: (L,) arcsec, the lens light's MGE
    widths; source: the kind's source pytree (`Kind.source`); kind: its `Kind`; mass: the lens's
    `mass.LensMass`; layout: the parameter vector's `ParameterLayout`; lanes: how the kind's
    inversion runs under `vmap`, "sequential" or "vectorized" (`likelihood.execution`,
    `likelihood.lanes`)."""

    grids: MaskedGrids
    convolver: Convolver
    lens_sigmas: np.ndarray
    source: object
    kind: object
    mass: LensMass
    layout: ParameterLayout
    lanes: str


def inversion(core: ModelCore, theta) -> Inversion:
    """The solved inversion at parameters theta (P,), with every log-evidence term."""
    return core.kind.inversion(core, theta)


def log_evidence(core: ModelCore, theta):
    """Scalar log-evidence at theta (P,); pure JAX in both arguments."""
    return inversion(core, theta).log_evidence
