"""PSF convolution of images given on the masked and blurring pixels.

True convolution (the kernel flipped), equal to `scipy.signal.convolve(image, psf, mode="same")`
with the image zero outside the pixels given, evaluated at the masked pixels. Done with real FFTs
on the bounding box of the given pixels, padded so that nothing wraps around.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True, eq=False)
class Convolver:
    """A precomputed PSF convolution on a fixed mask (NumPy constants, reused by every call).

    mask_index / blurring_index: flat indices into the FFT box of the masked pixels and of the
    blurring pixels; psf_fft: rfft2 of the kernel on that box, centred on its origin.

    The box only needs to hold the masked and blurring pixels: the convolution it computes is
    circular, but a masked pixel reads inputs at most half a kernel away, which the blurring
    region bounds, so no value read at a masked pixel wraps around.
    """

    box_shape: tuple[int, int]
    mask_index: np.ndarray
    blurring_index: np.ndarray
    psf_fft: np.ndarray

    def convolve(self, masked, blurring=None):
        """(N, n) [and (Nb, n)] images on masked [and blurring] pixels -> (N, n) blurred, masked."""
        columns = masked.shape[1]
        box = jnp.zeros((self.box_shape[0] * self.box_shape[1], columns), masked.dtype)
        box = box.at[self.mask_index].set(masked)
        if blurring is not None:
            box = box.at[self.blurring_index].set(blurring)
        # FFTs over the trailing axes are the fast ones; scatters and gathers over rows likewise.
        images = box.T.reshape((columns,) + self.box_shape)
        blurred = jnp.fft.irfft2(jnp.fft.rfft2(images) * self.psf_fft, s=self.box_shape)
        return blurred.reshape(columns, -1).T[self.mask_index]


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
