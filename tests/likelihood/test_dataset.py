import numpy as np
import pytest

from likelihood import DatasetError, default_dataset, imaging_from_arrays, load_imaging
from likelihood.dataset import save_imaging

SHAPE = (40, 40)


def arrays(**changes):
    values = {
        "data": np.ones(SHAPE), "noise_map": np.full(SHAPE, 0.1),
        "psf": np.ones((5, 5)), "pixel_scale": 0.1, "mask_radius": 1.5,
    }
    values.update(changes)
    return values


def test_psf_is_normalised():
    imaging = imaging_from_arrays(**arrays())
    assert imaging.psf.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"noise_map": np.ones((40, 41))}, "noise map shape"),
        ({"noise_map": np.zeros(SHAPE)}, "positive"),
        ({"noise_map": np.full(SHAPE, np.nan)}, "noise map contains non-finite"),
        ({"data": np.full(SHAPE, np.inf)}, "data contains non-finite"),
        ({"psf": np.ones((4, 5))}, "odd size"),
        ({"psf": np.full((5, 5), np.nan)}, "PSF contains non-finite"),
        ({"mask_radius": 0.01}, "holds no pixel"),
        ({"pixel_scale": -0.1}, "pixel scale"),
        ({"data": np.ones(5)}, "2-D image"),
    ],
)
def test_bad_data_names_the_problem(changes, message):
    with pytest.raises(DatasetError, match=message):
        imaging_from_arrays(**arrays(**changes))


def test_npz_round_trip(tmp_path):
    imaging = imaging_from_arrays(**arrays(data=np.random.default_rng(0).random(SHAPE)))
    save_imaging(imaging, tmp_path / "d.npz")
    loaded = load_imaging(tmp_path / "d.npz", mask_radius=1.5)
    np.testing.assert_array_equal(loaded.data, imaging.data)
    assert loaded.pixel_scale == imaging.pixel_scale


def test_fits_directory(tmp_path):
    from astropy.io import fits

    for name, value in (("image", np.ones(SHAPE)), ("noise_map", np.ones(SHAPE)),
                        ("psf", np.ones((3, 3)))):
        fits.PrimaryHDU(value).writeto(tmp_path / f"{name}.fits")
    imaging = load_imaging(tmp_path, pixel_scale=0.1, mask_radius=1.0)
    assert imaging.shape == SHAPE
    with pytest.raises(DatasetError, match="pixel scale"):
        load_imaging(tmp_path)
    (tmp_path / "psf.fits").unlink()
    with pytest.raises(DatasetError, match="no psf.fits"):
        load_imaging(tmp_path, pixel_scale=0.1)


def test_missing_path():
    with pytest.raises(DatasetError, match="no dataset"):
        load_imaging("/nonexistent/dataset.npz")


def test_embedded_default_dataset():
    imaging = default_dataset()
    assert imaging.shape == (181, 181) and imaging.psf.shape == (21, 21)
    assert imaging.pixel_scale == 0.05 and imaging.summary()["masked_pixels"] > 15000
