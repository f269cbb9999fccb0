"""The Numba kernels of the mesh curvature F = M^T P^T W P M, tile by tile.

The image is cut into TILE x TILE tiles. For a tile, every masked pixel i of its halo (the tile
grown by half the PSF) spreads each of its k <= 4 mapping weights M_ia through the PSF onto the
tile's pixels, into a dense block (mesh pixels reached x tile pixels) whose rows are
W^(1/2) (P M)^T restricted to the tile; the loop runs along image rows, TILE pixels at a time,
which the compiler vectorizes. The block's Gram product (BLAS dsyrk, `gram_upper`) is then added
to F. Neighbouring pixels reach nearly the same mesh pixels, so the block is narrow: at the
fiducial (N = 15,361, a 21 x 21 PSF, S = 1,225) about 200 rows for an 8 x 8 tile, and the
products cost about 1e9 flops where the dense Gram product B^T W B costs N S^2 = 2.3e10. Tiles of
8 x 8 measured fastest (4 to 12 tried). The same blocks project the data and the lens-light
images (B^T W d, B^T W B_light), and carry the derivative back (`add_mesh_terms_vjp`, about the
same cost again).

Every kernel releases the GIL and adds into outputs it is given, so that `stencil.PixelStencil`
can share the tiles out among threads, each with outputs of its own.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from llvmlite import binding
from numba import types
from numba.extending import get_cython_function_address

TILE = 8

# BLAS's dsyrk (scipy's), for the tiles' Gram products: half the flops of a general product.
# Called by a symbol name registered here rather than through a ctypes pointer, which Numba
# cannot cache.
binding.add_symbol("lensserve_dsyrk", get_cython_function_address("scipy.linalg.cython_blas", "dsyrk"))
_DSYRK = types.ExternalFunction("lensserve_dsyrk", types.void(*[types.voidptr] * 10))

# scipy's BLAS takes its sizes as 32-bit ints.
BLAS_INT_MAX = 2**31 - 1

# indices, weights, inverse_noise, targets, slim, psf, tiles, pixels
SIGNATURE = "i8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], i8[:, ::1], f8[:, ::1], i8[:, ::1], i8"


class Scratch(NamedTuple):
    """One thread's work arrays, reused tile after tile (S mesh pixels, R targets, (kh, kw + 2 TILE)
    the padded PSF):

    local: (S,) each mesh pixel's row in `block`, -1 if the tile reaches it not (yet);
    reached: (S,) the mesh pixel of each row of `block`, in the order first reached;
    block: (S, TILE^2) the tile's rows W^(1/2) (P M)^T (only the first `width` in use);
    members: (TILE^2,) the slim index of each of the tile's pixels, -1 off the mask;
    scale: (TILE^2,) their 1/sigma, 0 off the mask;
    tile_targets: (TILE^2, R) their target values;
    halo: ((TILE + kh) (TILE + kw + 2 TILE), 5) the halo pixels' runs (`_halo`).
    """

    local: np.ndarray
    reached: np.ndarray
    block: np.ndarray
    members: np.ndarray
    scale: np.ndarray
    tile_targets: np.ndarray
    halo: np.ndarray


@numba.njit(nogil=True, cache=True)
def _scratch(pixels, targets, psf):
    return Scratch(np.full(pixels, -1, np.int64), np.zeros(pixels, np.int64),
                   np.zeros((pixels, TILE * TILE)), np.zeros(TILE * TILE, np.int64),
                   np.zeros(TILE * TILE), np.zeros((TILE * TILE, targets.shape[0])),
                   np.empty(((TILE + psf.shape[0]) * (TILE + psf.shape[1]), 5), np.int64))


@numba.njit(nogil=True, cache=True)
def _tile_pixels(tile, slim, psf, inverse_noise, targets, scratch):
    """Fill the scratch's members, scale and tile_targets for the tile's pixels."""
    kh, kw = psf.shape[0], psf.shape[1] - 2 * TILE
    for r in range(TILE):
        for c in range(TILE):
            k = slim[tile[0] * TILE + r + kh, tile[1] * TILE + c + kw]
            j = r * TILE + c
            scratch.members[j] = k
            scratch.scale[j] = inverse_noise[k] if k >= 0 else 0.0
            for t in range(targets.shape[0]):
                scratch.tile_targets[j, t] = targets[t, k] if k >= 0 else 0.0


@numba.njit(nogil=True, cache=True)
def _halo(tile, slim, psf, halo):
    """Fill halo[h] with (i, start, low, high, shift) for each masked pixel i of the tile's halo:
    its PSF reaches the tile's rows low <= r < high, row r through psf[r + shift], and a run of
    TILE pixels along row r through psf[r + shift][start:start + TILE]. `psf` is zero-padded by
    TILE columns on each side, so that a run reads zeros beyond the kernel. Returns the count."""
    kh, kw = psf.shape[0], psf.shape[1] - 2 * TILE
    hh, hw = kh // 2, kw // 2
    row0, col0 = tile[0] * TILE, tile[1] * TILE
    count = 0
    for ri in range(row0 - hh, row0 + TILE + hh):
        for ci in range(col0 - hw, col0 + TILE + hw):
            i = slim[ri + kh, ci + kw]
            if i >= 0:
                halo[count] = (i, col0 - ci + hw + TILE, max(0, ri - hh - row0),
                               min(TILE, ri + hh + 1 - row0), row0 - ri + hh)
                count += 1
    return count


@numba.njit(nogil=True, cache=True)
def _tile_block(halo, count, indices, weights, psf, block, local, reached):
    """Add (P M)^T on the tile's pixels into block[local[a], j] (j = r TILE + c in the tile) and
    return the number of rows used: one per mesh pixel that a corner of a halo pixel (`_halo`)
    names, whatever its weight (the reverse pass needs them all)."""
    width = 0
    for h in range(count):
        i, start, low, high, shift = halo[h]
        for corner in range(indices.shape[1]):
            a = indices[i, corner]
            row = local[a]
            if row < 0:
                row = local[a] = width
                reached[width] = a
                width += 1
            w = weights[i, corner]
            for r in range(low, high):
                kernel = psf[r + shift]
                for c in range(TILE):
                    block[row, r * TILE + c] += w * kernel[start + c]
    return width


@numba.njit(nogil=True, cache=True)
def _pull_back(halo, count, indices, psf, pulled, local, weights_cotangent):
    """The transpose of `_tile_block`: weights_cotangent[i, corner] += the PSF-weighted sum of
    pulled[local[a], j] over the tile's pixels j that halo pixel i reaches."""
    for h in range(count):
        i, start, low, high, shift = halo[h]
        for corner in range(indices.shape[1]):
            row = pulled[local[indices[i, corner]]]
            total = 0.0
            for r in range(low, high):
                kernel = psf[r + shift]
                for c in range(TILE):
                    total += row[r * TILE + c] * kernel[start + c]
            weights_cotangent[i, corner] += total


@numba.njit(nogil=True, cache=True)
def blas_sizes(n, k):
    """dsyrk's (n, k, lda, ldc) for the Gram product of a C-ordered (n, k) matrix, as BLAS's
    32-bit ints; ValueError if one does not fit (an int32 cast would wrap round silently, and
    BLAS would read or write out of bounds)."""
    sizes = np.array([n, k, max(k, 1), max(n, 1)], np.int64)
    if sizes.max() > BLAS_INT_MAX:
        raise ValueError("gram_upper: a matrix size exceeds BLAS's 32-bit int (2**31 - 1)")
    return sizes.astype(np.int32)


@numba.njit(nogil=True, cache=True)
def gram_upper(rows):
    """The upper triangle of rows rows^T (the strict lower one is garbage), by dsyrk: rows is
    C-ordered (n, k), so BLAS sees it as the k x n matrix A, and C = A^T A's lower triangle in
    column-major order is the upper one in row-major order."""
    n, k = rows.shape
    sizes = blas_sizes(n, k)
    gram = np.empty((n, n))
    flags = np.array([ord("L"), ord("T")], np.uint8)
    scalars = np.array([1.0, 0.0])  # alpha, beta
    _DSYRK(flags[0:].ctypes, flags[1:].ctypes, sizes[0:].ctypes, sizes[1:].ctypes,
           scalars[0:].ctypes, rows.ctypes, sizes[2:].ctypes, scalars[1:].ctypes, gram.ctypes,
           sizes[3:].ctypes)
    return gram


@numba.njit(nogil=True, cache=True)
def _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch):
    """The tile's block rows W^(1/2) (P M)^T (a view into the scratch block; zero it after use),
    and the halo count, with the tile's members, scale and targets filled in the scratch."""
    _tile_pixels(tile, slim, psf, inverse_noise, targets, scratch)
    count = _halo(tile, slim, psf, scratch.halo)
    width = _tile_block(scratch.halo, count, indices, weights, psf, scratch.block, scratch.local,
                        scratch.reached)
    rows = scratch.block[:width]
    rows *= scratch.scale
    return rows, count


# Compiled when the module is imported (from Numba's cache after the first time), so that a served
# model is warm when the service reports ready. Each adds a share of the tiles into its own outputs
# (one thread's), which `fold_upper` and a sum then combine.
@numba.njit(f"void({SIGNATURE}, f8[:, ::1], f8[:, ::1])", nogil=True, cache=True)
def add_mesh_terms(indices, weights, inverse_noise, targets, slim, psf, tiles, pixels, curvature,
                   projections):
    """Add the tiles' parts of F (upper triangle only) and of the projections."""
    scratch = _scratch(pixels, targets, psf)
    in_order = np.empty_like(scratch.block)
    for tile in tiles:
        rows, _ = _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch)
        width = len(rows)
        # Rows in mesh-pixel order, so that F (larger than the caches) is written row by row and
        # the Gram product's upper triangle maps onto F's.
        ordered = np.argsort(scratch.reached[:width])
        mesh = scratch.reached[:width][ordered]
        sorted_rows = in_order[:width]
        for p in range(width):
            sorted_rows[p] = rows[ordered[p]]
        gram = gram_upper(sorted_rows)
        projected = sorted_rows @ scratch.tile_targets
        for p in range(width):
            a = mesh[p]
            for q in range(p, width):
                curvature[a, mesh[q]] += gram[p, q]
            projections[a] += projected[p]
            scratch.local[a] = -1
        rows[:] = 0.0


@numba.njit("f8[:, ::1](f8[:, :, ::1])", nogil=True, cache=True)
def fold_upper(parts):
    """parts[0] made the symmetric matrix whose upper triangle is the sum of the parts' ones."""
    total = parts[0]
    for part in parts[1:]:
        for a in range(total.shape[0]):
            for b in range(a, total.shape[0]):
                total[a, b] += part[a, b]
    for a in range(total.shape[0]):
        for b in range(a):
            total[a, b] = total[b, a]
    return total


@numba.njit(f"void({SIGNATURE}, f8[:, ::1], f8[:, ::1], f8[:, ::1], f8[:, ::1])", nogil=True,
            cache=True)
def add_mesh_terms_vjp(indices, weights, inverse_noise, targets, slim, psf, tiles, pixels,
                       symmetric, projections_cotangent, weights_cotangent, targets_cotangent):
    """Add the tiles' parts of the cotangents of (weights, targets) given G + G^T and H, those of
    `add_mesh_terms`' outputs: per tile, Y = ((G + G^T) rows + H targets^T) W^(1/2) is
    dL/d(P M)^T on its pixels, carried back through the PSF onto the weights it came from; the
    targets' is H^T rows."""
    scratch = _scratch(pixels, targets, psf)
    for tile in tiles:
        rows, count = _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch)
        width = len(rows)
        reach = scratch.reached[:width]
        symmetric_tile = np.empty((width, width))
        for p in range(width):
            symmetric_tile[p] = symmetric[reach[p]][reach]
        projections_tile = np.ascontiguousarray(projections_cotangent[reach])
        pulled = symmetric_tile @ rows + projections_tile @ scratch.tile_targets.T
        pulled *= scratch.scale
        _pull_back(scratch.halo, count, indices, psf, pulled, scratch.local, weights_cotangent)
        projected = projections_tile.T @ rows
        for j in range(TILE * TILE):
            if scratch.members[j] >= 0:
                targets_cotangent[:, scratch.members[j]] += projected[:, j]
        for p in range(width):
            scratch.local[reach[p]] = -1
        rows[:] = 0.0
