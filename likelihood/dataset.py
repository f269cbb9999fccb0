"""Imaging datasets: load, validate and describe.

An `Imaging` holds the full rectangular arrays (data, noise map, PSF) and the geometry that
selects the fitted pixels (pixel scale in arcsec/pixel, circular mask radius in arcsec). It is
plain NumPy: everything derived from it for the likelihood lives in `likelihood.grids`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MASK_RADIUS = 3.5


class DatasetError(ValueError):
    """A dataset that cannot be fitted; the message names what is wrong."""


@dataclass(frozen=True, eq=False)
class Imaging:
    """An imaging dataset.

    data, noise_map: (H, W) float64, electrons per second; PSF: (h, w) odd-sized, sums to 1;
    pixel_scale: arcsec per pixel; mask_radius: arcsec, circle centred on the image centre.
    """

    data: np.ndarray
    noise_map: np.ndarray
    psf: np.ndarray
    pixel_scale: float
    mask_radius: float = DEFAULT_MASK_RADIUS
    name: str = "dataset"

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    def summary(self) -> dict:
        from likelihood.grids import circular_mask

        return {
            "name": self.name,
            "shape": list(self.shape),
            "pixel_scale": self.pixel_scale,
            "mask_radius": self.mask_radius,
            "psf_shape": list(self.psf.shape),
            "masked_pixels": int(circular_mask(self.shape, self.pixel_scale, self.mask_radius).sum()),
        }


def imaging_from_arrays(
    data,
    noise_map,
    psf,
    pixel_scale: float,
    mask_radius: float = DEFAULT_MASK_RADIUS,
    name: str = "dataset",
) -> Imaging:
    """Validate arrays and build an `Imaging`; the PSF is normalised to sum 1."""
    from likelihood.grids import circular_mask

    data = np.asarray(data, dtype=np.float64)
    noise_map = np.asarray(noise_map, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if data.ndim != 2:
        raise DatasetError(f"data must be a 2-D image, got shape {data.shape}")
    if noise_map.shape != data.shape:
        raise DatasetError(
            f"noise map shape {noise_map.shape} does not match data shape {data.shape}"
        )
    if psf.ndim != 2 or psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise DatasetError(f"PSF must be a 2-D kernel of odd size, got shape {psf.shape}")
    if not np.all(np.isfinite(psf)):
        raise DatasetError("PSF contains non-finite values")
    if not np.isfinite(pixel_scale) or pixel_scale <= 0:
        raise DatasetError(f"pixel scale must be a positive number of arcsec, got {pixel_scale}")
    if not np.isfinite(mask_radius) or mask_radius <= 0:
        raise DatasetError(f"mask radius must be a positive number of arcsec, got {mask_radius}")
    psf_sum = psf.sum()
    if not psf_sum > 0:
        raise DatasetError(f"PSF must have a positive sum, got {psf_sum}")
    mask = circular_mask(data.shape, pixel_scale, mask_radius)
    if not mask.any():
        raise DatasetError(
            f"the {mask_radius}\" mask holds no pixel of a {data.shape} image at {pixel_scale}\"/pixel"
        )
    if not np.all(np.isfinite(data[mask])):
        raise DatasetError("data contains non-finite values inside the mask")
    noise_in_mask = noise_map[mask]
    if not np.all(np.isfinite(noise_in_mask)):
        raise DatasetError("noise map contains non-finite values inside the mask")
    if np.any(noise_in_mask <= 0):
        raise DatasetError("noise map must be positive inside the mask")
    return Imaging(data, noise_map, psf / psf_sum, float(pixel_scale), float(mask_radius), name)


def _read_fits(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None:
                return np.asarray(hdu.data, dtype=np.float64)
    raise DatasetError(f"{path} holds no image data")


def load_imaging(
    path: str | Path,
    pixel_scale: float | None = None,
    mask_radius: float = DEFAULT_MASK_RADIUS,
) -> Imaging:
    """Load a dataset from a directory of FITS files or from one `.npz` file.

    A directory holds `data.fits` (or `image.fits`), `noise_map.fits` and `psf.fits`; the pixel
    scale must be given. An `.npz` holds arrays `data`, `noise_map`, `psf` and may hold
    `pixel_scale` (used when the argument is None).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no dataset at {path}")
    if path.is_dir():
        data_file = next((path / n for n in ("data.fits", "image.fits") if (path / n).exists()), None)
        if data_file is None:
            raise DatasetError(f"{path} has neither data.fits nor image.fits")
        for name in ("noise_map.fits", "psf.fits"):
            if not (path / name).exists():
                raise DatasetError(f"{path} has no {name}")
        if pixel_scale is None:
            raise DatasetError(f"FITS dataset {path} needs a pixel scale (arcsec/pixel)")
        arrays = {
            "data": _read_fits(data_file),
            "noise_map": _read_fits(path / "noise_map.fits"),
            "psf": _read_fits(path / "psf.fits"),
        }
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k]) for k in npz.files}
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path} is not a readable .npz file: {error}") from error
        for key in ("data", "noise_map", "psf"):
            if key not in arrays:
                raise DatasetError(f"{path} has no array '{key}'")
        if pixel_scale is None:
            if "pixel_scale" not in arrays:
                raise DatasetError(f"{path} has no pixel_scale; pass one")
            pixel_scale = float(arrays["pixel_scale"])
    return imaging_from_arrays(
        arrays["data"], arrays["noise_map"], arrays["psf"], pixel_scale, mask_radius,
        name=path.stem if path.is_file() else path.name,
    )


def save_imaging(imaging: Imaging, path: str | Path) -> None:
    """Write an `Imaging` as `.npz` (arrays and pixel scale; the mask radius is a fit setting)."""
    np.savez_compressed(
        path, data=imaging.data, noise_map=imaging.noise_map, psf=imaging.psf,
        pixel_scale=np.float64(imaging.pixel_scale),
    )
