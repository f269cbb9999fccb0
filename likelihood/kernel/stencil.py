"""`PixelStencil`: the mask's geometry as the kernels of `tiles` read it, and the threads that
share out its tiles.

The stencil holds no dataset values, only shapes and indices (the mask's, the tiles', the PSF's
shape): the PSF and the noise are arguments of every call, so one stencil serves any dataset of
the same mask and PSF shape. The tiles are shared out among `threads` threads (the kernels
release the GIL), each adding into outputs of its own, which are then summed: two threads made
the kernel 1.7x faster on this machine's two cores (about 50 ms against 85 ms at the fiducial;
its reverse pass 80 ms against 160 ms). The threads are made per call and end with it.
"""

from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from likelihood.kernel.blas_threads import ONE_BLAS_THREAD
from likelihood.kernel.tiles import TILE, add_mesh_terms, add_mesh_terms_vjp, fold_upper


def thread_count(threads) -> int:
    """`threads` as an int, if it is a whole number >= 1; else ValueError."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"kernel threads must be a whole number >= 1, got {threads!r}")
    return int(threads)


class PixelStencil:
    """`slim`: the slim index of each image pixel (-1 off the mask) in a frame padded by the PSF's
    size (plus a tile) on every side; `tiles`: the (row, column) of every tile holding a masked
    pixel; `psf_shape`: (kh, kw), odd; `threads`: among how many threads a call shares the tiles."""

    def __init__(self, mask: np.ndarray, psf_shape: tuple[int, int], threads: int = 1):
        kh, kw = psf_shape
        self.psf_shape = (int(kh), int(kw))
        self.threads = thread_count(threads)
        rows, cols = np.nonzero(mask)
        self.slim = np.full((mask.shape[0] + 2 * kh + TILE, mask.shape[1] + 2 * kw + TILE), -1,
                            np.int64)
        self.slim[rows + kh, cols + kw] = np.arange(len(rows))
        self.tiles = np.unique(np.stack([rows // TILE, cols // TILE], axis=1), axis=0).astype(
            np.int64)
        self.shares = min(self.threads, len(self.tiles))
        # A stencil is static in a model's pytree (`likelihood.core`): stencils of the same
        # geometry and threads are equal, so one executable serves every such model.
        self._identity = (self.psf_shape, self.threads, self.slim.shape, self.slim.tobytes())
        self._hash = hash(self._identity)

    def __eq__(self, other) -> bool:
        if not isinstance(other, PixelStencil):
            return NotImplemented
        return self is other or self._identity == other._identity

    def __hash__(self) -> int:
        return self._hash

    def _arguments(self, indices, weights, inverse_noise, targets, psf, pixels: int):
        """The kernels' arguments, or None if the mapping is not finite or indexes outside the
        mesh (an unphysical proposal), which must not read or write out of bounds. Copies: the
        compiled signatures take writable arrays, and JAX hands read-only ones. The PSF is
        zero-padded by TILE columns on each side (see `tiles._halo`)."""
        if np.shape(psf) != self.psf_shape:
            raise ValueError(f"the stencil is for a {self.psf_shape} PSF, got {np.shape(psf)}")
        indices = np.array(indices, dtype=np.int64, order="C")
        weights = np.array(weights, dtype=np.float64, order="C")
        if indices.size and (indices.min() < 0 or indices.max() >= pixels
                             or not np.isfinite(weights).all()):
            return None
        padded_psf = np.pad(np.asarray(psf, dtype=np.float64), ((0, 0), (TILE, TILE)))
        return (indices, weights, np.array(inverse_noise, np.float64, order="C"),
                np.array(targets, dtype=np.float64, order="C"), self.slim, padded_psf,
                self.tiles, pixels)

    def _over_tile_shares(self, kernel, arguments, inputs, outputs) -> None:
        """kernel(*arguments, *inputs, *outputs[t]) with the tiles of `arguments` cut to their
        share tiles[t::n], for each share t of n = len(outputs[0]), one share per thread, each
        adding into its own outputs[t]."""
        *head, tiles, pixels = arguments
        shares = len(outputs[0])

        def run(t):
            kernel(*head, np.ascontiguousarray(tiles[t::shares]), pixels, *inputs,
                   *(output[t] for output in outputs))

        if shares == 1:
            run(0)
            return
        with ONE_BLAS_THREAD, ThreadPoolExecutor(shares, "curvature-kernel") as pool:
            list(pool.map(run, range(shares)))

    def terms(self, indices, weights, inverse_noise, targets, psf, pixels: int):
        """(F, T) for the mapping (indices, weights) (N, k) onto `pixels` = S mesh pixels:
        F = M^T P^T W P M (S, S) and T = M^T P^T W^(1/2) targets^T (S, R), with W^(1/2) =
        diag(inverse_noise) (N,), R images `targets` (R, N) and P the convolution by `psf`
        (psf_shape); all NaN for a broken mapping."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, psf, pixels)
        if arguments is None:
            return np.full((pixels, pixels), np.nan), np.full((pixels, len(targets)), np.nan)
        curvature = np.zeros((self.shares, pixels, pixels))
        projections = np.zeros((self.shares, pixels, len(targets)))
        self._over_tile_shares(add_mesh_terms, arguments, (), (curvature, projections))
        return fold_upper(curvature), projections.sum(axis=0)

    def terms_vjp(self, indices, weights, inverse_noise, targets, psf, pixels: int, cotangents):
        """The cotangents of (weights, targets) for those (G, H) of `terms`' outputs."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, psf, pixels)
        if arguments is None:
            return np.full(np.shape(weights), np.nan), np.full(np.shape(targets), np.nan)
        curvature_cotangent, projections_cotangent = (np.array(c, np.float64, order="C")
                                                      for c in cotangents)
        symmetric = curvature_cotangent + curvature_cotangent.T
        weights_cotangent = np.zeros((self.shares, *np.shape(weights)))
        targets_cotangent = np.zeros((self.shares, *np.shape(targets)))
        self._over_tile_shares(add_mesh_terms_vjp, arguments,
                               (symmetric, projections_cotangent),
                               (weights_cotangent, targets_cotangent))
        return weights_cotangent.sum(axis=0), targets_cotangent.sum(axis=0)
