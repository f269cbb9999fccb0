"""Parameter vectors: names (PyAutoLens model paths), priors and unpacking into named pieces."""

from __future__ import annotations

from typing import NamedTuple

from likelihood import priors

LENS_PARAMETERS = (
    ("lens.bulge.centre_0", priors.MGE_CENTRE),
    ("lens.bulge.centre_1", priors.MGE_CENTRE),
    ("lens.bulge.ell_comps_0", priors.ELL_COMPS),
    ("lens.bulge.ell_comps_1", priors.ELL_COMPS),
    ("lens.mass.centre_0", priors.MASS_CENTRE),
    ("lens.mass.centre_1", priors.MASS_CENTRE),
    ("lens.mass.ell_comps_0", priors.ELL_COMPS),
    ("lens.mass.ell_comps_1", priors.ELL_COMPS),
    ("lens.mass.einstein_radius", priors.EINSTEIN_RADIUS),
    ("lens.shear.gamma_1", priors.SHEAR),
    ("lens.shear.gamma_2", priors.SHEAR),
)
MGE_SOURCE_PARAMETERS = (
    ("source.bulge.centre_0", priors.MGE_CENTRE),
    ("source.bulge.centre_1", priors.MGE_CENTRE),
    ("source.bulge.ell_comps_0", priors.ELL_COMPS),
    ("source.bulge.ell_comps_1", priors.ELL_COMPS),
)
PIXELIZATION_PARAMETERS = (
    ("source.pixelization.coefficient", priors.REGULARIZATION_COEFFICIENT),
)


class Ellipse(NamedTuple):
    """A centre (y, x) and ell_comps shared by an MGE basis."""

    centre: tuple
    ell_comps: tuple


class Mass(NamedTuple):
    centre: tuple
    ell_comps: tuple
    einstein_radius: object
    gamma_1: object
    gamma_2: object


def lens_light(theta) -> Ellipse:
    return Ellipse((theta[0], theta[1]), (theta[2], theta[3]))


def mass(theta) -> Mass:
    return Mass((theta[4], theta[5]), (theta[6], theta[7]), theta[8], theta[9], theta[10])


def source_light(theta) -> Ellipse:
    return Ellipse((theta[11], theta[12]), (theta[13], theta[14]))


def regularization_coefficient(theta):
    return theta[11]
