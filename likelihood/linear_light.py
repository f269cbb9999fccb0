"""Linear light profiles: PSF-blurred unit-intensity Gaussian images as mapping-matrix columns.

As in autogalaxy's linear light profiles, each column is the profile's image on the over-sampled
masked grid (sub-pixel values averaged back to their pixel) and on the blurring grid, convolved
with the PSF and read on the masked pixels, so flux from just outside the mask counts.
"""

import jax.numpy as jnp

from likelihood.light import gaussian_basis_images


def blurred_gaussian_columns(grids, convolver, ellipse, sigmas, light_points, blurring_points):
    """(N, n) blurred unit-intensity Gaussian images sharing `ellipse` (centre, ell_comps).

    light_points: (M, 2) the over-sampled masked grid (`grids.light`), in the image or the source
    plane; blurring_points: (Nb, 2) the blurring pixel centres in the same plane.
    """
    light = grids.light
    sub_images = gaussian_basis_images(light_points, ellipse.centre, ellipse.ell_comps, sigmas)
    weighted = sub_images * light.weight[:, None]
    masked = jnp.zeros((light.pixels, len(sigmas)), weighted.dtype).at[light.pixel].add(weighted)
    blurring = gaussian_basis_images(blurring_points, ellipse.centre, ellipse.ell_comps, sigmas)
    return convolver.convolve(masked, blurring)


def lens_light_columns(model, theta):
    """(N, lens_gaussians) blurred columns of the lens light MGE at parameters `theta`."""
    from likelihood import parameters as par
    from likelihood.light import mge_sigmas

    sigmas = mge_sigmas(model.dataset.mask_radius, model.settings.lens_gaussians)
    grids = model.grids
    return blurred_gaussian_columns(
        grids, model.convolver, par.lens_light(theta), sigmas, grids.light.points,
        grids.blurring_grid,
    )
