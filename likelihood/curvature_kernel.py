"""The CPU kernel of the mesh curvature F = M^T P^T W P M, exploiting that M and the PSF are sparse.

Host code (Numba), called from `curvature.sparse_mesh_terms` through `jax.pure_callback`.
The image is cut into TILE x TILE tiles. For a tile, every masked pixel i of its halo (the tile
grown by half the PSF) spreads each of its k <= 4 mapping weights M_ia through the PSF onto the
tile's pixels, into a dense block (mesh pixels reached x tile pixels) whose rows are
W^(1/2) (P M)^T restricted to the tile; the loop runs along image rows, TILE pixels at a time,
which the compiler vectorizes. The block's Gram product (BLAS dsyrk) is then added to F. Neighbouring
pixels reach nearly the same mesh pixels, so the block is narrow: at the fiducial (N = 15,361,
a 21 x 21 PSF, S = 1,225) about 200 rows for an 8 x 8 tile, and the products cost about 1e9
flops where the dense Gram product B^T W B costs N S^2 = 2.3e10. Tiles of 8 x 8 measured fastest
(4 to 12 tried). The same blocks project the data and the lens-light images (B^T W d,
B^T W B_light), and carry the derivative back (`_add_mesh_terms_vjp`, about the same cost again).
The tiles are shared out among THREADS threads (the kernels release the GIL), each adding into
outputs of its own, which are then summed: 1.7x faster on this machine's two cores.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import binding
from numba import types
from numba.extending import get_cython_function_address
from threadpoolctl import ThreadpoolController

TILE = 8

# BLAS's dsyrk (scipy's), for the tiles' Gram products: half the flops of a general product.
# Called by a symbol name registered here rather than through a ctypes pointer, which Numba
# cannot cache.
binding.add_symbol("lensserve_dsyrk", get_cython_function_address("scipy.linalg.cython_blas", "dsyrk"))
_DSYRK = types.ExternalFunction("lensserve_dsyrk", types.void(*[types.voidptr] * 10))

# indices, weights, inverse_noise, targets, slim, psf, tiles, pixels
SIGNATURE = "i8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], i8[:, ::1], f8[:, ::1], i8[:, ::1], i8"


@numba.njit(nogil=True, cache=True)
def _tile_pixels(tile, slim, psf, inverse_noise, targets, members, scale, tile_targets):
    """The tile's pixels' slim indices (-1 off the mask) into `members` (TILE^2,), their 1/sigma
    (0 off the mask) into `scale` and their target values into `tile_targets` (TILE^2, R)."""
    kh, kw = psf.shape[0], psf.shape[1] - 2 * TILE
    for r in range(TILE):
        for c in range(TILE):
            k = slim[tile[0] * TILE + r + kh, tile[1] * TILE + c + kw]
            j = r * TILE + c
            members[j] = k
            scale[j] = inverse_noise[k] if k >= 0 else 0.0
            for t in range(targets.shape[0]):
                tile_targets[j, t] = targets[t, k] if k >= 0 else 0.0


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
def _gram_upper(rows):
    """The upper triangle of rows rows^T (the strict lower one is garbage), by dsyrk: rows is
    C-ordered (n, k), so BLAS sees it as the k x n matrix A, and C = A^T A's lower triangle in
    column-major order is the upper one in row-major order."""
    n, k = rows.shape
    gram = np.empty((n, n))
    flags = np.array([ord("L"), ord("T")], np.uint8)
    sizes = np.array([n, k, max(k, 1), max(n, 1)], np.int32)  # n, k, lda, ldc
    scalars = np.array([1.0, 0.0])  # alpha, beta
    _DSYRK(flags[0:].ctypes, flags[1:].ctypes, sizes[0:].ctypes, sizes[1:].ctypes,
           scalars[0:].ctypes, rows.ctypes, sizes[2:].ctypes, scalars[1:].ctypes, gram.ctypes,
           sizes[3:].ctypes)
    return gram


@numba.njit(nogil=True, cache=True)
def _scratch(pixels, targets, psf):
    """Per-call work arrays: (local, reached, block, members, scale, tile_targets, halo)."""
    return (np.full(pixels, -1, np.int64), np.zeros(pixels, np.int64),
            np.zeros((pixels, TILE * TILE)), np.zeros(TILE * TILE, np.int64), np.zeros(TILE * TILE),
            np.zeros((TILE * TILE, targets.shape[0])),
            np.empty(((TILE + psf.shape[0]) * (TILE + psf.shape[1]), 5), np.int64))


@numba.njit(nogil=True, cache=True)
def _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch):
    """The tile's block rows W^(1/2) (P M)^T (a view into the scratch block; zero it after use),
    and the halo count, with the tile's members, scale and targets filled in the scratch."""
    local, reached, block, members, scale, tile_targets, halo = scratch
    _tile_pixels(tile, slim, psf, inverse_noise, targets, members, scale, tile_targets)
    count = _halo(tile, slim, psf, halo)
    rows = block[:_tile_block(halo, count, indices, weights, psf, block, local, reached)]
    rows *= scale
    return rows, count


# Compiled when the module is imported (from Numba's cache after the first time), so that a served
# model is warm when the service reports ready. Each adds a share of the tiles into its own outputs
# (one thread's), which `_fold_upper` and a sum then combine.
@numba.njit(f"void({SIGNATURE}, f8[:, ::1], f8[:, ::1])", nogil=True, cache=True)
def _add_mesh_terms(indices, weights, inverse_noise, targets, slim, psf, tiles, pixels, curvature,
                    projections):
    """Add the tiles' parts of F (upper triangle only) and of the projections."""
    scratch = _scratch(pixels, targets, psf)
    local, reached, tile_targets = scratch[0], scratch[1], scratch[5]
    in_order = np.empty_like(scratch[2])
    for tile in tiles:
        rows, _ = _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch)
        width = len(rows)
        # Rows in mesh-pixel order, so that F (larger than the caches) is written row by row and
        # the Gram product's upper triangle maps onto F's.
        ordered = np.argsort(reached[:width])
        mesh = reached[:width][ordered]
        sorted_rows = in_order[:width]
        for p in range(width):
            sorted_rows[p] = rows[ordered[p]]
        gram = _gram_upper(sorted_rows)
        projected = sorted_rows @ tile_targets
        for p in range(width):
            a = mesh[p]
            for q in range(p, width):
                curvature[a, mesh[q]] += gram[p, q]
            projections[a] += projected[p]
            local[a] = -1
        rows[:] = 0.0


@numba.njit("f8[:, ::1](f8[:, :, ::1])", nogil=True, cache=True)
def _fold_upper(parts):
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
def _add_mesh_terms_vjp(indices, weights, inverse_noise, targets, slim, psf, tiles, pixels,
                        symmetric, projections_cotangent, weights_cotangent, targets_cotangent):
    """Add the tiles' parts of the cotangents of (weights, targets) given G + G^T and H, those of
    `_add_mesh_terms`' outputs: per tile, Y = ((G + G^T) rows + H targets^T) W^(1/2) is
    dL/d(P M)^T on its pixels, carried back through the PSF onto the weights it came from; the
    targets' is H^T rows."""
    scratch = _scratch(pixels, targets, psf)
    local, reached, _, members, scale, tile_targets, halo = scratch
    for tile in tiles:
        rows, count = _tile_rows(tile, indices, weights, inverse_noise, targets, slim, psf, scratch)
        width = len(rows)
        reach = reached[:width]
        symmetric_tile = np.empty((width, width))
        for p in range(width):
            symmetric_tile[p] = symmetric[reach[p]][reach]
        projections_tile = np.ascontiguousarray(projections_cotangent[reach])
        pulled = symmetric_tile @ rows + projections_tile @ tile_targets.T
        pulled *= scale
        _pull_back(halo, count, indices, psf, pulled, local, weights_cotangent)
        projected = projections_tile.T @ rows
        for j in range(TILE * TILE):
            if members[j] >= 0:
                targets_cotangent[:, members[j]] += projected[:, j]
        for p in range(width):
            local[reach[p]] = -1
        rows[:] = 0.0


def _kernel_threads() -> int:
    """Threads per kernel call: LENSSERVE_KERNEL_THREADS, else the cores this process may use."""
    value = os.environ.get("LENSSERVE_KERNEL_THREADS", "").strip()
    if not value:
        return len(os.sched_getaffinity(0))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"LENSSERVE_KERNEL_THREADS must be a whole number >= 1, got {value!r}")
    return int(value)


THREADS = _kernel_threads()
_POOL = ThreadPoolExecutor(THREADS, thread_name_prefix="curvature-kernel")


class _OneBlasThread:
    """While any kernel call runs on several threads, every BLAS library runs single-threaded:
    each thread's small products need no more, and OpenBLAS's busy-waiting workers took the other
    core (a reverse pass went from 122 ms on one thread to 220 ms on two). Counted, so that
    concurrent calls restore the libraries' settings once, after the last. The service's
    environment (OPENBLAS_NUM_THREADS=1) makes this a no-op."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls = 0
        self._controller = self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._calls == 0:
                # Made at the first call, when every BLAS a kernel may use has been loaded.
                self._controller = self._controller or ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._calls += 1

    def __exit__(self, *_):
        with self._lock:
            self._calls -= 1
            if self._calls == 0:
                self._limiter.restore_original_limits()


_ONE_BLAS_THREAD = _OneBlasThread()


def _over_tile_shares(kernel, arguments, inputs, outputs):
    """kernel(*arguments, *inputs, *outputs[t]) with the tiles of `arguments` cut to their share
    tiles[t::n], for each share t of n = len(outputs[0]), one share per thread (the kernels release
    the GIL), each adding into its own outputs[t]."""
    *head, tiles, pixels = arguments
    shares = len(outputs[0])

    def run(t):
        kernel(*head, np.ascontiguousarray(tiles[t::shares]), pixels, *inputs,
               *(output[t] for output in outputs))

    if shares == 1:
        run(0)
        return
    with _ONE_BLAS_THREAD:
        list(_POOL.map(run, range(shares)))


class PixelStencil:
    """The mask's geometry as the kernels read it: `slim`, the slim index of each image pixel
    (-1 off the mask) in a frame padded by the PSF's size (plus a tile) on every side; the PSF
    zero-padded by TILE columns on each side; and the (row, column) of every tile holding a
    masked pixel."""

    def __init__(self, mask: np.ndarray, psf: np.ndarray):
        kh, kw = psf.shape
        self.psf = np.pad(np.asarray(psf, dtype=np.float64), ((0, 0), (TILE, TILE)))
        rows, cols = np.nonzero(mask)
        self.slim = np.full((mask.shape[0] + 2 * kh + TILE, mask.shape[1] + 2 * kw + TILE), -1,
                            np.int64)
        self.slim[rows + kh, cols + kw] = np.arange(len(rows))
        self.tiles = np.unique(np.stack([rows // TILE, cols // TILE], axis=1), axis=0).astype(
            np.int64)

    @property
    def _shares(self) -> int:
        """Into how many shares the tiles go (one thread each)."""
        return min(THREADS, len(self.tiles))

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
                np.array(targets, dtype=np.float64, order="C"), self.slim, self.psf, self.tiles,
                pixels)

    def terms(self, indices, weights, inverse_noise, targets, pixels: int):
        """(F, T) for the mapping (indices, weights) (N, k) onto `pixels` = S mesh pixels:
        F = M^T P^T W P M (S, S) and T = M^T P^T W^(1/2) targets^T (S, R), with W^(1/2) =
        diag(inverse_noise) (N,) and R images `targets` (R, N); all NaN for a broken mapping."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, pixels)
        if arguments is None:
            return np.full((pixels, pixels), np.nan), np.full((pixels, len(targets)), np.nan)
        curvature = np.zeros((self._shares, pixels, pixels))
        projections = np.zeros((self._shares, pixels, len(targets)))
        _over_tile_shares(_add_mesh_terms, arguments, (), (curvature, projections))
        return _fold_upper(curvature), projections.sum(axis=0)

    def terms_vjp(self, indices, weights, inverse_noise, targets, pixels: int, cotangents):
        """The cotangents of (weights, targets) for those (G, H) of `terms`' outputs."""
        arguments = self._arguments(indices, weights, inverse_noise, targets, pixels)
        if arguments is None:
            return np.full(np.shape(weights), np.nan), np.full(np.shape(targets), np.nan)
        curvature_cotangent, projections_cotangent = (np.array(c, np.float64, order="C")
                                                      for c in cotangents)
        symmetric = curvature_cotangent + curvature_cotangent.T
        weights_cotangent = np.zeros((self._shares, *np.shape(weights)))
        targets_cotangent = np.zeros((self._shares, *np.shape(targets)))
        _over_tile_shares(_add_mesh_terms_vjp, arguments,
                          (symmetric, projections_cotangent),
                          (weights_cotangent, targets_cotangent))
        return weights_cotangent.sum(axis=0), targets_cotangent.sum(axis=0)
