import jax.numpy as jnp
import numpy as np
import scipy.signal

from likelihood.convolution import convolver
from likelihood.grids import (
    blurring_mask,
    circular_mask,
    over_sampled,
    pixel_centres,
    radial_sub_sizes,
)


def test_pixel_centres_follow_pyautoarray():
    centres = pixel_centres((3, 4), 0.5)
    np.testing.assert_allclose(centres[0, 0], [0.5, -0.75])
    np.testing.assert_allclose(centres[2, 3], [-0.5, 0.75])


def test_circular_mask_is_symmetric_and_excludes_pixels_on_the_circle():
    mask = circular_mask((11, 11), 1.0, 3.0)
    assert mask[5, 3] and mask[3, 5] and not mask[5, 2] and not mask[2, 5]
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])


def test_blurring_mask_is_the_psf_reach_outside_the_mask():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    blurring = blurring_mask(mask, (3, 5))
    assert blurring.sum() == 3 * 5 - 1 and not blurring[4, 4]
    assert blurring[3, 2] and not blurring[2, 4]


def test_over_sampling_averages_to_the_pixel_value():
    grid = pixel_centres((9, 9), 0.1).reshape(-1, 2)
    sizes = radial_sub_sizes(grid, (4, 2, 1), (0.15, 0.3))
    assert set(np.unique(sizes)) == {1, 2, 4} and sizes[40] == 4
    over = over_sampled(grid, sizes, 0.1)
    assert len(over.points) == int((sizes**2).sum())
    # A linear function averages exactly to its value at the pixel centre.
    values = 2.0 * over.points[:, 0] - 3.0 * over.points[:, 1]
    averaged = np.bincount(over.pixel, values * over.weight, minlength=len(grid))
    np.testing.assert_allclose(averaged, 2.0 * grid[:, 0] - 3.0 * grid[:, 1], atol=1e-14)


def test_convolution_equals_scipy_same_mode():
    rng = np.random.default_rng(1)
    mask = circular_mask((41, 39), 0.1, 1.5)
    psf = rng.random((5, 7))
    blurring = blurring_mask(mask, psf.shape)
    image = np.zeros(mask.shape)
    image[mask | blurring] = rng.random((mask | blurring).sum())
    expected = scipy.signal.convolve(image, psf, mode="same")[mask]
    blurred = convolver(mask, blurring, psf).convolve(
        jnp.asarray(image[mask][:, None]), jnp.asarray(image[blurring][:, None]))
    np.testing.assert_allclose(blurred[:, 0], expected, atol=1e-13)
