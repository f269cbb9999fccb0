"""Simulated HST-like lens imaging: the embedded default dataset is made by `simulate_imaging`.

Sersic lens light, Isothermal + external shear mass, Sersic source, evaluated on a 4x4
over-sampled grid, blurred by a Gaussian PSF, with sky background and Poisson noise in the
Gaussian limit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from likelihood.dataset import DEFAULT_MASK_RADIUS, Imaging, imaging_from_arrays, load_imaging
from likelihood.grids import pixel_centres, sub_pixel_offsets
from likelihood.light import sersic_image
from likelihood.mass import ISOTHERMAL, traced_grid


@dataclass(frozen=True)
class SersicTruth:
    centre: tuple[float, float]
    ell_comps: tuple[float, float]
    intensity: float
    effective_radius: float
    sersic_index: float


@dataclass(frozen=True)
class Truth:
    lens_light: SersicTruth = SersicTruth((0.0, 0.0), (0.05, 0.08), 0.8, 0.8, 3.0)
    mass_centre: tuple[float, float] = (0.0, 0.0)
    mass_ell_comps: tuple[float, float] = (0.05, 0.12)
    einstein_radius: float = 1.6
    gamma_1: float = 0.03
    gamma_2: float = -0.02
    source_light: SersicTruth = SersicTruth((0.05, 0.08), (0.1, -0.06), 0.5, 0.15, 1.2)

    def parameters(self) -> dict[str, float]:
        """The true values under PyAutoLens parameter paths (MGE centres/ellipticities)."""
        return {
            "lens.bulge.centre_0": self.lens_light.centre[0],
            "lens.bulge.centre_1": self.lens_light.centre[1],
            "lens.bulge.ell_comps_0": self.lens_light.ell_comps[0],
            "lens.bulge.ell_comps_1": self.lens_light.ell_comps[1],
            "lens.mass.centre_0": self.mass_centre[0],
            "lens.mass.centre_1": self.mass_centre[1],
            "lens.mass.ell_comps_0": self.mass_ell_comps[0],
            "lens.mass.ell_comps_1": self.mass_ell_comps[1],
            "lens.mass.einstein_radius": self.einstein_radius,
            "lens.shear.gamma_1": self.gamma_1,
            "lens.shear.gamma_2": self.gamma_2,
            "source.bulge.centre_0": self.source_light.centre[0],
            "source.bulge.centre_1": self.source_light.centre[1],
            "source.bulge.ell_comps_0": self.source_light.ell_comps[0],
            "source.bulge.ell_comps_1": self.source_light.ell_comps[1],
        }


def gaussian_psf(size: int, sigma: float, pixel_scale: float) -> np.ndarray:
    """(size, size) circular Gaussian kernel of width `sigma` arcsec, normalised to sum 1."""
    centres = pixel_centres((size, size), pixel_scale)
    kernel = np.exp(-0.5 * (centres[..., 0] ** 2 + centres[..., 1] ** 2) / sigma**2)
    return kernel / kernel.sum()


def noiseless_image(truth: Truth, shape, pixel_scale: float, psf: np.ndarray, sub_size: int = 4):
    """(H, W) blurred lens + lensed source image in electrons per second."""
    centres = pixel_centres(shape, pixel_scale).reshape(-1, 2)
    points = (centres[:, None, :] + sub_pixel_offsets(sub_size, pixel_scale)[None]).reshape(-1, 2)

    def sersic(light: SersicTruth, grid):
        return sersic_image(grid, light.centre, light.ell_comps, light.intensity,
                            light.effective_radius, light.sersic_index)

    values = truth.parameters()
    image = jax.jit(lambda p: sersic(truth.lens_light, p) + sersic(
        truth.source_light, traced_grid(p, ISOTHERMAL, values)))(jnp.asarray(points))
    image = np.asarray(image).reshape(-1, sub_size**2).mean(axis=1).reshape(shape)
    return scipy.signal.convolve(image, psf, mode="same")


def simulate_imaging(
    truth: Truth = Truth(),
    shape: tuple[int, int] = (181, 181),
    pixel_scale: float = 0.05,
    psf_size: int = 21,
    psf_sigma: float = 0.05,
    exposure_time: float = 2000.0,
    background_sky: float = 0.1,
    seed: int = 1,
    mask_radius: float = DEFAULT_MASK_RADIUS,
) -> Imaging:
    """An HST-like imaging dataset with noise from a fixed seed (reproducible bit for bit)."""
    psf = gaussian_psf(psf_size, psf_sigma, pixel_scale)
    signal = noiseless_image(truth, shape, pixel_scale, psf)
    counts_variance = (signal + background_sky) * exposure_time
    noise_map = np.sqrt(counts_variance) / exposure_time
    rng = np.random.default_rng(seed)
    data = signal + rng.standard_normal(shape) * noise_map
    return imaging_from_arrays(data, noise_map, psf, pixel_scale, mask_radius, name="default")


DEFAULT_DATASET_FILE = "default.npz"
DEFAULT_TRUTH_FILE = "default_truth.json"


def default_dataset(mask_radius: float = DEFAULT_MASK_RADIUS) -> Imaging:
    """The embedded default dataset (made by `lensserve simulate` with its defaults)."""
    path = resources.files("likelihood") / "data" / DEFAULT_DATASET_FILE
    with resources.as_file(path) as file:
        imaging = load_imaging(file, mask_radius=mask_radius)
    return Imaging(imaging.data, imaging.noise_map, imaging.psf, imaging.pixel_scale,
                   imaging.mask_radius, name="default")


def default_truth() -> dict[str, float]:
    """The true parameters of the embedded dataset under PyAutoLens paths."""
    text = (resources.files("likelihood") / "data" / DEFAULT_TRUTH_FILE).read_text()
    return json.loads(text)["parameters"]


def truth_record(truth: Truth) -> dict:
    return {"parameters": truth.parameters(), "profiles": asdict(truth)}
