"""Elliptical geometry in PyAutoLens' parametrisation (autogalaxy `convert.py`, autoarray
`geometry_util.py`), written to stay finite, with finite gradients, at the circular limit."""

import jax.numpy as jnp

# PyAutoLens caps |ell_comps| so that the axis ratio never reaches 0.
ELL_COMPS_MAGNITUDE_CLAMP = 0.999


def safe_norm(a, b):
    """sqrt(a^2 + b^2) with a zero (not NaN) gradient at the origin (the double-where)."""
    squared = a**2 + b**2
    is_zero = squared == 0.0
    return jnp.where(is_zero, 0.0, jnp.sqrt(jnp.where(is_zero, 1.0, squared)))


def axis_ratio_and_angle(ell_comps):
    """(q, phi) from ell_comps = ((1-q)/(1+q) sin 2phi, (1-q)/(1+q) cos 2phi); phi in radians.

    The angle is folded into [-45, 135) degrees as the reference does; at ell_comps = (0, 0) it is 0.
    """
    e0, e1 = ell_comps[0], ell_comps[1]
    fac = jnp.minimum(safe_norm(e0, e1), ELL_COMPS_MAGNITUDE_CLAMP)
    at_origin = (e0 == 0.0) & (e1 == 0.0)
    angle = 0.5 * jnp.arctan2(e0, jnp.where(at_origin, 1.0, e1))
    angle = jnp.where(angle < -jnp.pi / 4, angle + jnp.pi, angle)
    return (1.0 - fac) / (1.0 + fac), angle


def to_reference_frame(grid, centre, angle):
    """Shift (N, 2) (y, x) coordinates to `centre` and rotate them clockwise by `angle` (radians)."""
    y = grid[:, 0] - centre[0]
    x = grid[:, 1] - centre[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([y * cos - x * sin, x * cos + y * sin], axis=-1)


def from_reference_frame_vectors(vectors, angle):
    """Rotate (N, 2) (y, x) vectors counter-clockwise by `angle`: the inverse rotation of the above."""
    vy, vx = vectors[:, 0], vectors[:, 1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([vy * cos + vx * sin, vx * cos - vy * sin], axis=-1)
