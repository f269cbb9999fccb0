"""The CPU kernel of the mesh curvature F = M^T P^T W P M, exploiting that M and the PSF are sparse.

Host code (Numba), called from `curvature.sparse_mesh_terms` through `jax.pure_callback`.
The masked pixels are taken in square tiles. For each pixel k of a tile, the blurred mapping row
B_k = sum_i psf(k - i) M_i is gathered (M has at most 4 non-zeros per row, the PSF is small) into
a dense block whose columns are the mesh pixels the tile reaches; the block's Gram product
(BLAS), weighted by 1/sigma^2, is then added to F. Neighbouring pixels reach nearly the same mesh
pixels, so the block is narrow: at the fiducial (N = 15,361, a 21 x 21 PSF, S = 1,225) about 200
columns for an 8 x 8 tile, against 115 for one pixel, and the products cost 6e8 flops where the
dense Gram product B^T W B costs N S^2 = 2.3e10. Tiles of 8 x 8 measured fastest (4 to 12 tried).
The same blocks project the data and the lens-light images (B^T W d, B^T W B_light), and carry
the derivative back (`_mesh_terms_vjp`, the same cost again).
"""

from __future__ import annotations

import numba
import numpy as np

TILE = 8


# indices, weights, inverse_noise, targets, rows, cols, lookup, psf, pixels, order, tile_start
SIGNATURE = ("i8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], i8[::1], i8[::1], i8[:, ::1], "
             "f8[:, ::1], i8, i8[::1], i8[::1]")


@numba.njit(nogil=True, cache=True)
def _tile_block(t, indices, weights, inverse_noise, rows, cols, lookup, psf, order, tile_start,
                block, local, reached):
    """Fill block[j, local[a]] with (W^(1/2) P M)[k, a] for the tile's pixels k = order[...][j];
    local / reached: the columns given to mesh pixels (every corner of every pixel the PSF
    carries onto the tile, whatever its weight). Returns the number of columns."""
    corners = indices.shape[1]
    kh, kw = psf.shape
    width = 0
    for j in range(tile_start[t + 1] - tile_start[t]):
        k = order[tile_start[t] + j]
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
    return width


# Compiled when the module is imported (from Numba's cache after the first time), so that a served
# model is warm when the service reports ready.
@numba.njit(f"Tuple((f8[:, ::1], f8[:, ::1]))({SIGNATURE})", nogil=True, cache=True)
def _mesh_terms(indices, weights, inverse_noise, targets, rows, cols, lookup, psf, pixels, order,
                tile_start):
    curvature = np.zeros((pixels, pixels))
    projections = np.zeros((pixels, targets.shape[0]))
    local = np.full(pixels, -1, np.int64)
    reached = np.zeros(pixels, np.int64)
    largest = np.max(np.diff(tile_start))
    block = np.zeros((largest, pixels))
    tile_targets = np.zeros((largest, targets.shape[0]))
    for t in range(len(tile_start) - 1):
        size = tile_start[t + 1] - tile_start[t]
        width = _tile_block(t, indices, weights, inverse_noise, rows, cols, lookup, psf, order,
                            tile_start, block, local, reached)
        for j in range(size):
            tile_targets[j] = targets[:, order[tile_start[t] + j]]
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


@numba.njit(f"Tuple((f8[:, ::1], f8[:, ::1]))({SIGNATURE}, f8[:, ::1], f8[:, ::1])", nogil=True,
            cache=True)
def _mesh_terms_vjp(indices, weights, inverse_noise, targets, rows, cols, lookup, psf, pixels,
                    order, tile_start, curvature_cotangent, projections_cotangent):
    """The cotangents of (weights, targets) given those of `_mesh_terms`' outputs (G, H): per
    tile, Y = W^(1/2) (block (G + G^T) + targets H^T) is dL/d(P M) on its pixels, carried back
    through the PSF onto the corners it came from; the targets' is block H."""
    kh, kw = psf.shape
    symmetric = curvature_cotangent + curvature_cotangent.T
    weights_cotangent = np.zeros(weights.shape)
    targets_cotangent = np.zeros(targets.shape)
    local = np.full(pixels, -1, np.int64)
    reached = np.zeros(pixels, np.int64)
    largest = np.max(np.diff(tile_start))
    block = np.zeros((largest, pixels))
    tile_targets = np.zeros((largest, targets.shape[0]))
    for t in range(len(tile_start) - 1):
        size = tile_start[t + 1] - tile_start[t]
        width = _tile_block(t, indices, weights, inverse_noise, rows, cols, lookup, psf, order,
                            tile_start, block, local, reached)
        for j in range(size):
            tile_targets[j] = targets[:, order[tile_start[t] + j]]
        reach = reached[:width]
        symmetric_tile = np.empty((width, width))
        for p in range(width):
            symmetric_tile[p] = symmetric[reach[p]][reach]
        tile = np.ascontiguousarray(block[:size, :width])
        projections_tile = np.ascontiguousarray(projections_cotangent[reach])
        pulled = tile @ symmetric_tile + tile_targets[:size] @ projections_tile.T
        projected = tile @ projections_tile
        for j in range(size):
            k = order[tile_start[t] + j]
            targets_cotangent[:, k] = projected[j]
            for dy in range(kh):
                for dx in range(kw):
                    i = lookup[rows[k] + kh - 1 - dy, cols[k] + kw - 1 - dx]
                    if i < 0:
                        continue
                    p = psf[dy, dx] * inverse_noise[k]
                    for c in range(indices.shape[1]):
                        weights_cotangent[i, c] += p * pulled[j, local[indices[i, c]]]
        for p in range(width):
            local[reach[p]] = -1
        block[:size, :width] = 0.0
    return weights_cotangent, targets_cotangent


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

    def _arguments(self, indices, weights, inverse_noise, targets, pixels: int):
        """The kernels' arguments, or None if the mapping is not finite or indexes outside the
        mesh (an unphysical proposal), which must not read or write out of bounds. Copies: the
        compiled signatures take writable arrays, and JAX hands read-only ones."""
        indices = np.array(indices, dtype=np.int64, order="C")
        weights = np.array(weights, dtype=np.float64, order="C")
        if indices.size and (indices.min() < 0 or indices.max() >= pixels
                             or not np.isfinite(weights).all()):
            return None
        return (indices, weights, np.array(inverse_noise, np.float64, order="C"),
                np.array(targets, dtype=np.float64, order="C"), self.rows, self.cols, self.lookup,
                self.psf, pixels, self.order, self.tile_start)

    def terms(self, indices, weights, inverse_noise, targets, pixels: int):
        """(F, T) for the mapping (indices, weights) (N, k) onto `pixels` = S mesh pixels:
        F = M^T P^T W P M (S, S) and T = M^T P^T W^(1/2) targets^T (S, R), with W^(1/2) =
        diag(inverse_noise) (N,) and R images `targets` (R, N); all NaN for a broken mapping."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, pixels)
        if arguments is None:
            return np.full((pixels, pixels), np.nan), np.full((pixels, len(targets)), np.nan)
        return _mesh_terms(*arguments)

    def terms_vjp(self, indices, weights, inverse_noise, targets, pixels: int, cotangents):
        """The cotangents of (weights, targets) for those (G, H) of `terms`' outputs."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, pixels)
        if arguments is None:
            return np.full(np.shape(weights), np.nan), np.full(np.shape(targets), np.nan)
        return _mesh_terms_vjp(*arguments, *(np.array(c, np.float64, order="C")
                                             for c in cotangents))
