"""PSF convolution of images given on the masked and blurring pixels.

True convolution (the kernel flipped), equal to `scipy.signal.convolve(image, psf, mode="same")`
with the image zero outside the pixels given, evaluated at the masked pixels. Done with real FFTs
on the bounding box of the given pixels, padded so that nothing wraps around.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.pytree import pytree_dataclass

# Images per FFT batch: small enough that the box, its transform and the product stay in cache
# (a 160 x 160 box is 0.2 MB per image as complex128), which halves the CPU time of the FFTs
# against transforming all columns at once.
BLUR_CHUNK = 8


@pytree_dataclass(static=("box_shape", "mask_index", "blurring_index"))
@dataclass(frozen=True, eq=False)
class Convolver:
    """A precomputed PSF convolution on a fixed mask (reused by every call).

    mask_index / blurring_index: flat indices into the FFT box of the masked pixels and of the
    blurring pixels; psf_fft: rfft2 of the kernel on that box, centred on its origin.

    The box only needs to hold the masked and blurring pixels: the convolution it computes is
    circular, but a masked pixel reads inputs at most half a kernel away, which the blurring
    region bounds, so no value read at a masked pixel wraps around.

    A pytree: `psf_fft` is its leaf (a dataset's PSF), the box and indices are static.
    """

    box_shape: tuple[int, int]
    mask_index: np.ndarray
    blurring_index: np.ndarray
    psf_fft: np.ndarray

    def blur(self, image_of, rows, box_index: np.ndarray, scale=None, chunk: int = BLUR_CHUNK):
        """(R, N): for each of the R rows of `rows` (an array or tuple of arrays with leading axis
        R), the image `image_of(row)` (P,), given on the pixels at flat box indices `box_index`
        (P,), blurred and read on the masked pixels in their (slim) order, times `scale` (N,)
        if given (e.g. 1 / noise, applied while the values are in cache).

        The images are made, blurred and read `chunk` at a time, so that each one's values, box
        and transform stay in cache; the box is filled by a gather (fast on CPU and GPU, unlike
        a scatter).
        """
        cells = self.box_shape[0] * self.box_shape[1]
        source = np.full(cells, len(box_index))
        source[box_index] = np.arange(len(box_index))
        fill, read = injective_take(source, len(box_index)), injective_take(self.mask_index, cells)

        def blurred(row):
            box = fill(image_of(row)).reshape(self.box_shape)
            box = jnp.fft.irfft2(jnp.fft.rfft2(box) * self.psf_fft, s=self.box_shape)
            masked = read(box.reshape(-1))
            return masked if scale is None else masked * scale

        return jax.lax.map(blurred, rows, batch_size=chunk)

    def convolve(self, masked, blurring=None):
        """(N, n) [and (Nb, n)] images on masked [and blurring] pixels -> (N, n) blurred, masked."""
        if blurring is None:
            return self.blur(lambda image: image, masked.T, self.mask_index).T
        images = jnp.concatenate([masked, blurring]).T
        index = np.concatenate([self.mask_index, self.blurring_index])
        return self.blur(lambda image: image, images, index).T


def injective_take(source: np.ndarray, size: int):
    """The map x (..., size) -> (..., len(source)), x[..., source[j]] or 0 where source[j] == size.

    No value below `size` appears twice in `source`, so the map's transpose is again such a
    gather (by the inverse map), which it is given, rather than the scatter-add autodiff would
    emit (several times slower on CPU).
    """
    inverse = np.full(size, len(source))
    present = source < size
    inverse[source[present]] = np.flatnonzero(present)

    @jax.custom_vjp
    def take(x):
        return jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)[..., source]

    def transpose(_, cotangent):
        return (injective_take(inverse, len(source))(cotangent),)

    take.defvjp(lambda x: (take(x), None), transpose)
    return take


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (fast for FFTs)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


def convolver(mask: np.ndarray, blurring: np.ndarray, psf: np.ndarray) -> Convolver:
    """Build the `Convolver` for a mask, its blurring region and an odd-sized kernel."""
    support = mask | blurring
    rows = np.flatnonzero(support.any(axis=1))
    cols = np.flatnonzero(support.any(axis=0))
    r0, c0 = rows[0], cols[0]
    height, width = rows[-1] - r0 + 1, cols[-1] - c0 + 1
    kh, kw = psf.shape
    box_shape = (_fft_size(height), _fft_size(width))

    def flat_index(selection):
        r, c = np.nonzero(selection)
        return (r - r0) * box_shape[1] + (c - c0)

    kernel = np.zeros(box_shape)
    kernel[:kh, :kw] = psf
    kernel = np.roll(kernel, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return Convolver(
        box_shape=box_shape,
        mask_index=flat_index(mask),
        blurring_index=flat_index(blurring),
        psf_fft=np.fft.rfft2(kernel),
    )
