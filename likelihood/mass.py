"""Lens mass: the singular isothermal ellipsoid and external shear (autogalaxy `Isothermal`,
`ExternalShear`), the lens mass models a model is built with (`MASSES`: a profile + external
shear, each listing its parameters), and ray tracing to the source plane.

All deflection functions take (N, 2) arrays of (y, x) arcsec coordinates and return (N, 2)
deflections. Every singular point (the centre, q = 1, zero shear) gives finite values and finite
gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp

from likelihood import priors
from likelihood.geometry import (
    axis_ratio_and_angle,
    from_reference_frame_vectors,
    to_reference_frame,
)
from likelihood.parameters import Parameter, ellipse, ellipse_parameters
from likelihood.power_law import power_law_deflections

# Below this 1 - q^2 the closed forms are 0/0-prone and the Taylor series (to s^6) is exact to fp64.
_SERIES_THRESHOLD = 1.0e-4


def _arctanh_over_s(s2, t):
    """arctanh(s t) / s for s^2 = s2 >= 0 (the SIE's y deflection)."""
    return _series_or_closed(s2, t, jnp.arctanh, sign=1.0)


def _arctan_over_s(s2, t):
    """arctan(s t) / s for s^2 = s2 >= 0 (the SIE's x deflection)."""
    return _series_or_closed(s2, t, jnp.arctan, sign=-1.0)


def _series_or_closed(s2, t, function, sign):
    small = s2 < _SERIES_THRESHOLD
    # The double-where's placeholder: |t| <= 1, so |s t| stays below 1 where the closed form is
    # discarded (with s = 1, arctanh(t) and its derivative are infinite at t = +-1, i.e. on the
    # profile's y axis beyond 1e-8", and the infinite VJP turns the discarded branch's zero into NaN).
    s = jnp.sqrt(jnp.where(small, 0.25, s2))
    closed = function(s * t) / s
    u = sign * s2 * t**2
    series = t * (1.0 + u * (1.0 / 3.0 + u * (1.0 / 5.0 + u / 7.0)))
    return jnp.where(small, series, closed)


def isothermal_deflections(grid, centre, ell_comps, einstein_radius):
    """Deflections of the singular isothermal ellipsoid (Kormann et al. 1994).

    With s^2 = 1 - q^2 and Psi = sqrt(q^2 x^2 + y^2) in the profile frame, alpha_y = 2 b q
    arctanh(s y / Psi) / s and alpha_x = 2 b q arctan(s x / Psi) / s, b = einstein_radius / (1 + q),
    rotated back to the sky frame. Psi carries the reference's 1e-16 floor so the centre is finite.
    """
    axis_ratio, angle = axis_ratio_and_angle(ell_comps)
    frame = to_reference_frame(grid, centre, angle)
    y, x = frame[:, 0], frame[:, 1]
    psi = jnp.sqrt(axis_ratio**2 * x**2 + y**2 + 1e-16)
    s2 = 1.0 - axis_ratio**2
    factor = 2.0 * einstein_radius / (1.0 + axis_ratio) * axis_ratio
    deflections = factor * jnp.stack(
        [_arctanh_over_s(s2, y / psi), _arctan_over_s(s2, x / psi)], axis=-1
    )
    return from_reference_frame_vectors(deflections, angle)


def external_shear_deflections(grid, gamma_1, gamma_2):
    """Deflections of a constant external shear about the origin.

    In the frame aligned with the shear angle the deflection is (-|g| y, |g| x); rotated back this
    is the linear map alpha_y = gamma_2 x - gamma_1 y, alpha_x = gamma_1 x + gamma_2 y, which is
    smooth everywhere (also at zero shear, where the polar form's angle is undefined).
    """
    y, x = grid[:, 0], grid[:, 1]
    return jnp.stack([gamma_2 * x - gamma_1 * y, gamma_1 * x + gamma_2 * y], axis=-1)


@dataclass(frozen=True)
class LensMass:
    """A lens mass model: `name`, its `parameters` in vector order (the profile's, then the
    shear's) and `profile(grid, values) -> (N, 2)` deflections of the profile, reading its
    parameters by name from `values` ({name: value})."""

    name: str
    parameters: tuple[Parameter, ...]
    profile: Callable

    def deflections(self, grid, values):
        """(N, 2) deflections of the profile and the external shear."""
        return self.profile(grid, values) + external_shear_deflections(
            grid, values["lens.shear.gamma_1"], values["lens.shear.gamma_2"])


def _isothermal(grid, values):
    lens = ellipse(values, "lens.mass")
    return isothermal_deflections(grid, lens.centre, lens.ell_comps,
                                  values["lens.mass.einstein_radius"])


def _power_law(grid, values):
    lens = ellipse(values, "lens.mass")
    return power_law_deflections(grid, lens.centre, lens.ell_comps,
                                 values["lens.mass.einstein_radius"], values["lens.mass.slope"])


_EINSTEIN_RADIUS = Parameter("lens.mass.einstein_radius", priors.EINSTEIN_RADIUS, low=0.0)
_SHEAR = (Parameter("lens.shear.gamma_1", priors.SHEAR), Parameter("lens.shear.gamma_2", priors.SHEAR))
# The slope's domain is its default prior's: kappa ~ R^(1 - slope) has a finite mass at the centre
# only below 3, and the series' coefficients are defined up to slope 5.
_SLOPE = Parameter("lens.mass.slope", priors.SLOPE, low=priors.SLOPE.lower, high=priors.SLOPE.upper)

ISOTHERMAL = LensMass(
    "isothermal", (*ellipse_parameters("lens.mass", priors.MASS_CENTRE), _EINSTEIN_RADIUS, *_SHEAR),
    _isothermal)
POWER_LAW = LensMass(
    "power_law",
    (*ellipse_parameters("lens.mass", priors.MASS_CENTRE), _EINSTEIN_RADIUS, _SLOPE, *_SHEAR),
    _power_law)
MASSES: dict[str, LensMass] = {mass.name: mass for mass in (ISOTHERMAL, POWER_LAW)}


def lens_mass(name: str) -> LensMass:
    """The `LensMass` called `name` (`ModelSettings.mass`)."""
    if name not in MASSES:
        raise ValueError(f"unknown lens mass {name!r}; available: {', '.join(MASSES)}")
    return MASSES[name]


def traced_grid(grid, mass: LensMass, values):
    """Source-plane positions beta = theta - alpha(theta) of (N, 2) `grid` through `mass` at the
    parameter `values` ({name: value})."""
    return grid - mass.deflections(grid, values)
