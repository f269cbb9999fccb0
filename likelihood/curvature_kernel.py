"""The CPU kernel of the mesh curvature F = M^T P^T W P M, exploiting that M and the PSF are sparse.

Host code (Numba), called from `curvature.sparse_mesh_terms` through `jax.pure_callback`.
The masked pixels are taken in square tiles. For each pixel k of a tile, the blurred mapping row
B_k = sum_i psf(k - i) M_i is gathered (M has at most 4 non-zeros per row, the PSF is small) into
a dense block whose columns are the mesh pixels the tile reaches; the block's Gram product
(BLAS), weighted by 1/sigma^2, is then added to F. Neighbouring pixels reach nearly the same mesh
pixels, so the block is narrow: at the fiducial (N = 15,361, a 21 x 21 PSF, S = 1,225) about 200
columns for an 8 x 8 tile, against 115 for one pixel, and the products cost 6e8 flops where the
dense Gram product B^T W B costs N S^2 = 2.3e10. Tiles of 8 x 8 measured fastest (4 to 12 tried).
The same blocks project the data and the lens-light images (B^T W d, B^T W B_light).
"""

from __future__ import annotations

import numba
import numpy as np

TILE = 8


# Compiled when the module is imported (from Numba's cache after the first time), so that a served
# model is warm when the service reports ready.
@numba.njit("Tuple((f8[:, ::1], f8[:, ::1]))(i8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], i8[::1], "
            "i8[::1], i8[:, ::1], f8[:, ::1], i8, i8[::1], i8[::1])", nogil=True, cache=True)
def _mesh_terms(indices, weights, inverse_noise, targets, rows, cols, lookup, psf, pixels, order,
                tile_start):
    corners = indices.shape[1]
    kh, kw = psf.shape
    curvature = np.zeros((pixels, pixels))
    projections = np.zeros((pixels, targets.shape[0]))
    local = np.full(pixels, -1, np.int64)
    reached = np.zeros(pixels, np.int64)
    largest = np.max(np.diff(tile_start))
    block = np.zeros((largest, pixels))
    tile_targets = np.zeros((largest, targets.shape[0]))
    for t in range(len(tile_start) - 1):
        size = tile_start[t + 1] - tile_start[t]
        width = 0
        for j in range(size):
            k = order[tile_start[t] + j]
            tile_targets[j] = targets[:, k]
            for dy in range(kh):
                for dx in range(kw):
                    i = lookup[rows[k] + kh - 1 - dy, cols[k] + kw - 1 - dx]
                    if i < 0:
                        continue
                    p = psf[dy, dx] * inverse_noise[k]
                    for c in range(corners):
                        a = indices[i, c]
                        column = local[a]
                        if column < 0:
                            column = local[a] = width
                            reached[width] = a
                            width += 1
                        block[j, column] += p * weights[i, c]
        tile = np.ascontiguousarray(block[:size, :width])
        gram = tile.T @ tile
        projected = tile.T @ tile_targets[:size]
        for p in range(width):
            row = reached[p]
            for q in range(width):
                curvature[row, reached[q]] += gram[p, q]
            projections[row] += projected[p]
            local[row] = -1
        block[:size, :width] = 0.0
    return curvature, projections


class PixelStencil:
    """The mask's geometry as the kernel reads it: the masked pixels' (row, column) in slim order;
    `lookup`, a table of slim indices (-1 off the mask) padded so that lookup[r + kh - 1 - dy,
    c + kw - 1 - dx] is the pixel that PSF entry (dy, dx) carries onto pixel (r, c); and the
    pixels grouped by TILE x TILE tile (`order`, with tile t at order[tile_start[t]:
    tile_start[t + 1]])."""

    def __init__(self, mask: np.ndarray, psf: np.ndarray):
        self.psf = np.array(psf, dtype=np.float64, order="C")
        kh, kw = self.psf.shape
        rows, cols = np.nonzero(mask)
        self.rows, self.cols = rows.astype(np.int64), cols.astype(np.int64)
        self.lookup = np.full((mask.shape[0] + 2 * kh, mask.shape[1] + 2 * kw), -1, np.int64)
        self.lookup[rows + kh - 1 - kh // 2, cols + kw - 1 - kw // 2] = np.arange(len(rows))
        tile = (rows // TILE) * (mask.shape[1] // TILE + 1) + cols // TILE
        self.order = np.argsort(tile, kind="stable").astype(np.int64)
        counts = np.unique(tile, return_counts=True)[1]
        self.tile_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def terms(self, indices, weights, inverse_noise, targets, pixels: int):
        """(F, T) for the mapping (indices, weights) (N, k) onto `pixels` = S mesh pixels:
        F = M^T P^T W P M (S, S) and T = M^T P^T W^(1/2) targets^T (S, R), with W^(1/2) =
        diag(inverse_noise) (N,) and R images `targets` (R, N). All NaN if the mapping is not
        finite or indexes outside the mesh (an unphysical proposal), rather than reading or
        writing out of bounds."""
        # Copies: the compiled signature takes writable arrays, and JAX hands read-only ones.
        indices = np.array(indices, dtype=np.int64, order="C")
        weights = np.array(weights, dtype=np.float64, order="C")
        targets = np.array(targets, dtype=np.float64, order="C")
        if indices.size and (indices.min() < 0 or indices.max() >= pixels
                             or not np.isfinite(weights).all()):
            return (np.full((pixels, pixels), np.nan), np.full((pixels, len(targets)), np.nan))
        return _mesh_terms(indices, weights, np.array(inverse_noise, np.float64, order="C"),
                           targets, self.rows, self.cols, self.lookup, self.psf, pixels,
                           self.order, self.tile_start)
