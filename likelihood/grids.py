"""The fitted pixels and the coordinates the model is evaluated on (NumPy, built once per dataset).

Conventions of PyAutoArray: pixel (row, col) of an (H, W) image has its centre at
y = (cy - row) ps, x = (col - cx) ps with cy = (H-1)/2, cx = (W-1)/2; masked ("slim") pixels are
in row-major order; coordinates are (y, x) arcsec.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from likelihood.pytree import pytree_dataclass

# Radial over-sampling of light profiles: sub-size 4 inside 0.3", 2 inside 0.6", 1 beyond
# (PyAutoArray `over_sample_size_via_radial_bins_from`, the reference's production setting).
LIGHT_SUB_SIZES = (4, 2, 1)
LIGHT_SUB_RADII = (0.3, 0.6)


def pixel_centres(shape: tuple[int, int], pixel_scale: float) -> np.ndarray:
    """(H, W, 2) (y, x) centres of every pixel."""
    rows, cols = np.indices(shape, dtype=np.float64)
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    return np.stack([(cy - rows) * pixel_scale, (cols - cx) * pixel_scale], axis=-1)


def circular_mask(shape: tuple[int, int], pixel_scale: float, radius: float) -> np.ndarray:
    """(H, W) bool, True for pixels whose centre lies strictly within `radius` arcsec of the image
    centre, with y^2 + x^2 < radius^2 evaluated as PyAutoArray does: pixels on the circle to
    rounding fall on the same side as in the reference."""
    centres = pixel_centres(shape, pixel_scale)
    return centres[..., 0] ** 2 + centres[..., 1] ** 2 < radius**2


def blurring_mask(mask: np.ndarray, kernel_shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels outside `mask` whose light the PSF spreads into some masked pixel."""
    half_y, half_x = kernel_shape[0] // 2, kernel_shape[1] // 2
    padded = np.pad(mask, ((half_y, half_y), (half_x, half_x)))
    reach = np.zeros_like(mask)
    height, width = mask.shape
    for dy in range(kernel_shape[0]):
        for dx in range(kernel_shape[1]):
            reach |= padded[dy : dy + height, dx : dx + width]
    return reach & ~mask


def sub_pixel_offsets(sub_size: int, pixel_scale: float) -> np.ndarray:
    """(sub_size^2, 2) (y, x) offsets of the sub-pixel centres of a pixel, row-major from top-left."""
    steps = (np.arange(sub_size) + 0.5) / sub_size - 0.5
    dy, dx = np.meshgrid(-steps * pixel_scale, steps * pixel_scale, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=-1)


def radial_sub_sizes(
    grid: np.ndarray,
    sub_sizes: tuple[int, ...] = LIGHT_SUB_SIZES,
    radii: tuple[float, ...] = LIGHT_SUB_RADII,
) -> np.ndarray:
    """(N,) sub-size of each pixel: sub_sizes[i] for the first radii[i] its centre's radius is at
    most (r = sqrt(y^2 + x^2) as the reference computes it, so ties to rounding agree)."""
    radius = np.sqrt(grid[:, 0] ** 2 + grid[:, 1] ** 2)
    bins = np.searchsorted(np.asarray(radii), radius, side="left")
    return np.asarray(sub_sizes)[bins]


@pytree_dataclass(static=("pixel", "binned_pixels", "sub_sizes", "group_pixels"))
@dataclass(frozen=True, eq=False)
class OverSampledGrid:
    """Sub-pixel coordinates grouped by sub-size (ascending); in group g, sub_sizes[g]^2 blocks of
    group_pixels[g] points, block j holding sub-pixel j of every pixel of the group.

    Averaging back to pixels (`bin`) is then a sum of contiguous slices: no scatter, no reduction
    over a short minor axis, and it fuses with whatever consumes it.
    """

    points: np.ndarray  # (M, 2)
    pixel: np.ndarray  # (M,) int: index of the parent pixel in its grid
    weight: np.ndarray  # (M,) 1 / sub_size^2
    binned_pixels: np.ndarray  # (pixels,) int: the parent pixel of each value `bin` returns
    sub_sizes: tuple[int, ...]  # sub-size of each group
    group_pixels: tuple[int, ...]  # number of pixels in each group

    @property
    def pixels(self) -> int:
        """Number of parent pixels."""
        return len(self.binned_pixels)

    def bin(self, values):
        """(..., M) sub-pixel values -> (..., pixels) their means, ordered as `binned_pixels`."""
        means, start = [], 0
        for count, size in zip(self.group_pixels, self.sub_sizes, strict=True):
            blocks = [values[..., start + j * count : start + (j + 1) * count]
                      for j in range(size * size)]
            means.append(sum(blocks[1:], blocks[0]) / size**2)
            start += count * size * size
        return jnp.concatenate(means, axis=-1)


def over_sampled(grid: np.ndarray, sub_sizes: np.ndarray, pixel_scale: float) -> OverSampledGrid:
    """Split each pixel of (N, 2) `grid` into sub_sizes[i]^2 sub-pixels."""
    points, pixel, weight, binned, sizes = [], [], [], [], []
    for size in np.unique(sub_sizes):
        members = np.flatnonzero(sub_sizes == size)
        offsets = sub_pixel_offsets(int(size), pixel_scale)
        points.append((grid[None, members, :] + offsets[:, None]).reshape(-1, 2))
        pixel.append(np.tile(members, len(offsets)))
        weight.append(np.full(len(members) * len(offsets), 1.0 / size**2))
        binned.append(members)
        sizes.append(int(size))
    return OverSampledGrid(
        np.concatenate(points), np.concatenate(pixel), np.concatenate(weight),
        np.concatenate(binned), tuple(sizes), tuple(len(members) for members in binned),
    )


@pytree_dataclass(static=("mask", "blurring", "pixel_scale"))
@dataclass(frozen=True, eq=False)
class MaskedGrids:
    """Everything geometric the likelihood needs of a dataset and mask.

    mask, blurring: (H, W) bool; grid: (N, 2) masked pixel centres; blurring_grid: (Nb, 2);
    light: over-sampled masked grid for light profiles; data, noise: (N,) masked values.
    A pytree: the masks and pixel scale are static, the coordinates and values its leaves.
    """

    mask: np.ndarray
    blurring: np.ndarray
    grid: np.ndarray
    blurring_grid: np.ndarray
    light: OverSampledGrid
    data: np.ndarray
    noise: np.ndarray
    pixel_scale: float


def masked_grids(imaging) -> MaskedGrids:
    """Build the `MaskedGrids` of an `Imaging` dataset."""
    mask = circular_mask(imaging.shape, imaging.pixel_scale, imaging.mask_radius)
    blurring = blurring_mask(mask, imaging.psf.shape)
    centres = pixel_centres(imaging.shape, imaging.pixel_scale)
    grid = centres[mask]
    light = over_sampled(grid, radial_sub_sizes(grid), imaging.pixel_scale)
    return MaskedGrids(
        mask=mask, blurring=blurring, grid=grid, blurring_grid=centres[blurring], light=light,
        data=imaging.data[mask], noise=imaging.noise_map[mask], pixel_scale=imaging.pixel_scale,
    )
