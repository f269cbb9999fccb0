"""Linear light profiles: PSF-blurred unit-intensity Gaussian images as mapping-matrix columns.

As in autogalaxy's linear light profiles, each column is the profile's image on the over-sampled
masked grid (sub-pixel values averaged back to their pixel) and on the blurring grid, convolved
with the PSF and read on the masked pixels, so flux from just outside the mask counts.

The Gaussians of one basis share their elliptical radii: those are computed once per basis, and
each Gaussian's image is made inside the convolution loop (`Convolver.blur`), a few at a time, so
that no (n, pixels) array of unblurred images is ever stored.
"""

import jax.numpy as jnp
import numpy as np

from likelihood import parameters as par
from likelihood.light import elliptical_radius_squared, gaussian


def support_points(grids):
    """(M + Nb, 2) where light is evaluated: the over-sampled masked grid, then the blurring
    pixel centres (image plane; ray-trace them for a source)."""
    return jnp.concatenate([grids.light.points, grids.blurring_grid])


def blurred_gaussians(grids, convolver, radii_squared, basis: np.ndarray, sigmas: np.ndarray,
                      scale=None):
    """(K, N) blurred unit-intensity Gaussians, one mapping-matrix column per row.

    radii_squared: (B, M + Nb) squared elliptical radii of `support_points` for each of B bases
    (`light.elliptical_radius_squared`); basis: (K,) int, the basis of each Gaussian; sigmas:
    (K,) arcsec, its width; scale: optional (N,) factors on the masked pixels (`Convolver.blur`).
    """
    light = grids.light
    sub_pixels = len(light.points)
    # A Gaussian picks its basis' radii by one-hot weights (exact: 1 r + 0 r' = r), which fuse
    # with the exponential and whose derivative is a sum over Gaussians, not the scatter-add
    # that indexing by `basis` would give.
    selection = np.eye(len(radii_squared))[basis]

    def image(row):
        selects, sigma = row
        radius_squared = sum(w * r for w, r in zip(selects, radii_squared, strict=True))
        values = gaussian(radius_squared, sigma)
        return jnp.concatenate([light.bin(values[:sub_pixels]), values[sub_pixels:]])

    box_index = np.concatenate([convolver.mask_index[light.binned_pixels],
                                convolver.blurring_index])
    return convolver.blur(image, (selection, sigmas), box_index, scale)


def weighted_lens_light_rows(core, values):
    """(L, N) blurred lens-light Gaussians at named parameter `values`, divided by the noise:
    rows of A = B^T W^(1/2) (`curvature.mesh_and_light_system`). core: a `ModelCore`."""
    ellipse = par.ellipse(values, par.LENS_LIGHT_PATH)
    radii_squared = elliptical_radius_squared(
        support_points(core.grids), ellipse.centre, ellipse.ell_comps)
    return blurred_gaussians(
        core.grids, core.convolver, radii_squared[None],
        np.zeros(core.lens_sigmas.shape[0], int), core.lens_sigmas, scale=1.0 / core.grids.noise,
    )
