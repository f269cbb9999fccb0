"""Light profiles: elliptical Gaussians and the multi-Gaussian expansion (MGE) basis.

A Gaussian in PyAutoLens (autogalaxy `Gaussian`) has, in its own frame, the image
I exp(-(q^2 x^2 + y^2) / (2 sigma^2)); an MGE basis (`mge_model_from`) is `n` such Gaussians with
log-spaced widths from `sigma_min` to the mask radius, sharing one centre and one ell_comps, each
with its own linear intensity.
"""

import jax.numpy as jnp
import numpy as np

from likelihood.geometry import axis_ratio_and_angle, to_reference_frame

MGE_SIGMA_MIN = 1e-4


def mge_sigmas(mask_radius: float, total_gaussians: int, sigma_min: float = MGE_SIGMA_MIN):
    """(n,) Gaussian widths in arcsec, log-spaced from `sigma_min` to `mask_radius` inclusive."""
    return 10.0 ** np.linspace(np.log10(sigma_min), np.log10(mask_radius), total_gaussians)


def elliptical_radius_squared(grid, centre, ell_comps):
    """(N,) q^2 x^2 + y^2 of (N, 2) (y, x) `grid` in the frame of an ellipse (centre, ell_comps)."""
    axis_ratio, angle = axis_ratio_and_angle(ell_comps)
    frame = to_reference_frame(grid, centre, angle)
    return axis_ratio**2 * frame[:, 1] ** 2 + frame[:, 0] ** 2


def gaussian(radius_squared, sigma):
    """Unit-intensity Gaussian exp(-r^2 / (2 sigma^2)) at squared elliptical radius r^2 (arcsec^2;
    broadcasting)."""
    return jnp.exp(-0.5 * radius_squared / sigma**2)


def gaussian_basis_images(grid, centre, ell_comps, sigmas):
    """(N, n) unit-intensity images of Gaussians sharing a centre and ellipticity.

    grid: (N, 2) (y, x) arcsec; sigmas: (n,) arcsec.
    """
    radius_squared = elliptical_radius_squared(grid, centre, ell_comps)
    return gaussian(radius_squared[:, None], jnp.asarray(sigmas)[None, :])


def sersic_image(grid, centre, ell_comps, intensity, effective_radius, sersic_index):
    """(N,) image of an elliptical Sersic profile (autogalaxy `Sersic`), used to simulate data.

    I(R) = intensity exp(-b_n ((R / R_eff)^(1/n) - 1)), with R = sqrt(q) sqrt(x^2 + y^2/q^2) the
    profile's eccentric radius and b_n from the Ciotti & Bertin (1999) expansion.
    """
    n = sersic_index
    b_n = 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)
    axis_ratio, angle = axis_ratio_and_angle(ell_comps)
    frame = to_reference_frame(grid, centre, angle)
    radius = jnp.sqrt(axis_ratio) * jnp.sqrt(frame[:, 1] ** 2 + (frame[:, 0] / axis_ratio) ** 2)
    return intensity * jnp.exp(-b_n * ((radius / effective_radius) ** (1.0 / n) - 1.0))
