"""Border relocation of traced points for pixelized sources (autoarray `mesh/border_relocator.py`).

Rays traced far outside the source-plane image of the mask (near the lens centre, where the
deflection is largest) are moved back onto its border so that they cannot stretch the mesh. The
reference fits an ellipse to the traced border pixels by PCA and moves every point outside it
radially (in the ellipse frame) onto it (`ellipse_params_via_border_pca_from`,
`relocated_grid_via_ellipse_border_from`):

    o = mean of the border points b_k, C = cov(b - o) (denominator M - 1),
    phi = direction of C's major axis (0 if C is isotropic to sqrt(machine eps) relative),
    x' = c dx + s dy, y' = -s dx + c dy (frame rotated by phi), a = max|x'| + eps, b = max|y'| + eps,
    rho = (x'/a)^2 + (y'/b)^2, and points with rho > 1 scale to (x', y') / sqrt(rho).

Everything is finite under differentiation, also at an isotropic border (a circular mask through
a round lens), where the major axis is undefined.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from likelihood.extremes import max_by_index

# The reference's numerical epsilon of the ellipse fit.
ELLIPSE_EPS = 1e-12


def border_indices(mask: np.ndarray) -> np.ndarray:
    """(B,) masked-order ("slim") indices of the border pixels of a (H, W) mask (True = fitted).

    A border pixel is a fitted pixel from which one of the four directions reaches the image edge
    without crossing another fitted pixel (autoarray `border_slim_indexes_from`).
    """
    fitted = mask.astype(np.int64)
    before_rows = np.cumsum(fitted, axis=0) - fitted
    after_rows = np.cumsum(fitted[::-1], axis=0)[::-1] - fitted
    before_cols = np.cumsum(fitted, axis=1) - fitted
    after_cols = np.cumsum(fitted[:, ::-1], axis=1)[:, ::-1] - fitted
    exterior = (before_rows == 0) | (after_rows == 0) | (before_cols == 0) | (after_cols == 0)
    slim = np.full(mask.shape, -1)
    slim[mask] = np.arange(mask.sum())
    return slim[mask & exterior]


def _major_axis_angle(covariance_xx, covariance_yy, covariance_xy):
    """Angle of the major axis of a 2x2 covariance in the (x, y) plane; 0 when isotropic.

    0.5 atan2(2 C_xy, C_xx - C_yy) is the eigenvector angle of `eigh` up to a half-turn, which
    leaves the ellipse unchanged. Isotropic (eigenvalue gap <= sqrt(eps) relative): 0, with the
    atan2 arguments sanitised so that its derivative is not evaluated at (0, 0).
    """
    diff = covariance_xx - covariance_yy
    gap_squared = diff**2 + 4.0 * covariance_xy**2
    largest = jnp.maximum(
        jnp.abs(0.5 * (covariance_xx + covariance_yy)) + 0.5 * jnp.sqrt(gap_squared + 1e-300),
        ELLIPSE_EPS,
    )
    tolerance = np.sqrt(np.finfo(np.float64).eps)
    isotropic = gap_squared <= (tolerance * largest) ** 2
    angle = 0.5 * jnp.arctan2(
        jnp.where(isotropic, 0.0, 2.0 * covariance_xy), jnp.where(isotropic, 1.0, diff)
    )
    return jnp.where(isotropic, 0.0, angle)


def relocated(points, border_points):
    """(M, 2) (y, x) points with those outside the ellipse of (B, 2) border points moved onto it."""
    origin = jnp.mean(border_points, axis=0)
    dy = border_points[:, 0] - origin[0]
    dx = border_points[:, 1] - origin[1]
    denominator = max(border_points.shape[0] - 1, 1)
    angle = _major_axis_angle(
        jnp.sum(dx * dx) / denominator, jnp.sum(dy * dy) / denominator,
        jnp.sum(dx * dy) / denominator,
    )
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    semi_major = max_by_index(jnp.abs(cos * dx + sin * dy)) + ELLIPSE_EPS
    semi_minor = max_by_index(jnp.abs(-sin * dx + cos * dy)) + ELLIPSE_EPS

    py = points[:, 0] - origin[0]
    px = points[:, 1] - origin[1]
    xp = cos * px + sin * py
    yp = -sin * px + cos * py
    rho = (xp / semi_major) ** 2 + (yp / semi_minor) ** 2
    outside = rho > 1.0
    shrink = 1.0 / jnp.sqrt(jnp.maximum(rho, 1.0 + ELLIPSE_EPS))
    xp, yp = xp * shrink, yp * shrink
    moved = jnp.stack([origin[0] + sin * xp + cos * yp, origin[1] + cos * xp - sin * yp], axis=-1)
    return jnp.where(outside[:, None], moved, points)
