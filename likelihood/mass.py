"""Lens mass: the singular isothermal ellipsoid and external shear (autogalaxy `Isothermal`,
`ExternalShear`), and ray tracing to the source plane.

All functions take (N, 2) arrays of (y, x) arcsec coordinates and return (N, 2) deflections.
Every singular point (the centre, q = 1, zero shear) gives finite values and finite gradients.
"""

import jax.numpy as jnp

from likelihood.geometry import (
    axis_ratio_and_angle,
    from_reference_frame_vectors,
    to_reference_frame,
)

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


def traced_grid(grid, mass):
    """Source-plane positions beta = theta - alpha(theta) for a `parameters.Mass`."""
    alpha = isothermal_deflections(grid, mass.centre, mass.ell_comps, mass.einstein_radius)
    alpha = alpha + external_shear_deflections(grid, mass.gamma_1, mass.gamma_2)
    return grid - alpha
