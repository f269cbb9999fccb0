"""The adaptive rectangular source mesh (autoarray `inversion/mesh/interpolator/rectangular.py`).

Traced (and border-relocated) points are normalised by their own statistics, mapped into the unit
square by a per-axis CDF transform, stretched onto an S x S lattice and interpolated bilinearly
(`adaptive_rectangular_mappings_weights_via_interpolation_from`):

    mu = mean(P), scale = min over axes of std(P), z = (p - mu) / scale
    u = CDF(z) per axis, g = (S - 3) u + 1
    ix = clip(floor(g_y), 0, S - 2), iy = clip(floor(g_x), 0, S - 2), t_r = g_y - ix, t_c = g_x - iy
    corners (ix+1, iy), (ix+1, iy+1), (ix, iy), (ix, iy+1), flat index (S - row) * S + col,
    weights t_r (1-t_c), t_r t_c, (1-t_r)(1-t_c), (1-t_r) t_c

The flat index uses `S - row`, not `S - 1 - row`, as the reference does: rows 2..S-1 of the mesh
receive weight and row 1 only weight zero. The outer ring of mesh pixels is held at zero.

Two CDFs, as the reference's two mesh families:

- "rank" (`RectangularBilinearAdaptDensity`, `create_transforms_rank`): the empirical CDF, linear
  between the sorted knots z_(k) at t_k = k / (N + 1), 0 left and 1 right of the data.
- "kernel" (`RectangularRTUAdaptDensity`, `create_transforms`): F(q) = mean_i Phi((q - z_i) / h),
  h = span / S per axis, rescaled so that the data's extremes map to 0 and 1, clipped to [0, 1].

With pixelization sub-size 1 the queries are the knots themselves, so the rank mesh assigns each
point by its rank only: the mapping, hence the likelihood, is piecewise constant in the lens mass.
Its knots are held constant under differentiation (they choose bins; the exact derivative of a rank
is zero almost everywhere and infinite across ties), so its gradient is the derivative with the
mesh frozen. The kernel CDF is smooth in queries and knots and gets the full derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.extremes import max_by_index, min_by_index
from likelihood.mesh.mesh import Mapping, Mesh

# Half-width, in ranks, of the secant that gives the rank CDF its slope under differentiation: wide
# enough to step over exactly coincident knots (traced grids tie pairs of points by symmetry).
RANK_SLOPE_HALF_WINDOW = 4
# Kernel bandwidth in mesh pixels of the data span (the reference's KERNEL_CDF_DEFAULT_BANDWIDTH).
KERNEL_BANDWIDTH = 1.0
# Queries per block of the (queries x knots) kernel sum, to bound its memory.
KERNEL_BLOCK = 512
TRANSFORMS = ("rank", "kernel")


@jax.custom_jvp
def rank_cdf(sorted_knots, queries):
    """Empirical CDF of (N,) sorted knots at (M,) queries, linear between t_k = k / (N + 1).

    Forward: the reference's `jnp.interp(q, sort(z), t, left=0, right=1)`. Derivative: zero for
    the knots; for the queries the secant of the CDF over +-RANK_SLOPE_HALF_WINDOW ranks around
    the query's bin (zero if all of those knots coincide), finite under exactly tied knots where
    the per-bin slope dt / dz is dt / 0.
    """
    n = sorted_knots.shape[0]
    return jnp.interp(queries, sorted_knots, jnp.arange(1, n + 1) / (n + 1), left=0.0, right=1.0)


@rank_cdf.defjvp
def _rank_cdf_jvp(primals, tangents):
    sorted_knots, queries = primals
    _, query_dot = tangents
    n = sorted_knots.shape[0]
    value = rank_cdf(sorted_knots, queries)
    upper = jnp.clip(jnp.searchsorted(sorted_knots, queries, side="right"), 1, n - 1)
    hi = jnp.clip(upper + RANK_SLOPE_HALF_WINDOW, 0, n - 1)
    lo = jnp.clip(upper - 1 - RANK_SLOPE_HALF_WINDOW, 0, n - 1)
    span = sorted_knots[hi] - sorted_knots[lo]
    tied = span <= 0.0
    slope = jnp.where(tied, 0.0, (hi - lo) / (n + 1) / jnp.where(tied, 1.0, span))
    inside = (queries >= sorted_knots[0]) & (queries <= sorted_knots[-1])
    return value, jnp.where(inside, slope, 0.0) * query_dot


def rank_transform(knots, queries):
    """(M,) unit-interval coordinates of (M,) queries under the rank CDF of (N,) knots."""
    return rank_cdf(jax.lax.stop_gradient(jnp.sort(knots)), queries)


def _kernel_cdf_raw(knots, bandwidth, queries):
    """(M,) mean over knots of Phi((q - z_i) / h), in blocks of KERNEL_BLOCK queries."""
    m = queries.shape[0]
    blocks = -(-m // KERNEL_BLOCK)
    padded = jnp.pad(queries, (0, blocks * KERNEL_BLOCK - m)).reshape(blocks, KERNEL_BLOCK)
    scale = 1.0 / (bandwidth * np.sqrt(2.0))

    # Rematerialised under reverse mode: the backward pass recomputes each block's (block x N)
    # kernel values instead of storing all M x N of them (1.9 GB per axis at the fiducial).
    # Phi(x) as 0.5 erfc(-x / sqrt(2)): equal to `ndtr` within 4e-16, and 3x faster on CPU
    # (`ndtr` evaluates both erf and erfc and selects).
    @jax.checkpoint
    def block(q):
        return jnp.mean(0.5 * jax.lax.erfc((knots[None, :] - q[:, None]) * scale), axis=1)

    return jax.lax.map(block, padded).reshape(-1)[:m]


def kernel_transform(knots, queries, mesh_size: int):
    """(M,) unit-interval coordinates of (M,) queries under the kernel CDF of (N,) knots.

    h = KERNEL_BANDWIDTH * (max - min) / mesh_size; F is rescaled between F(min) and F(max) and
    clipped to [0, 1] (reference `create_transforms`; its inverse knot table is not needed here).
    """
    lo, hi = min_by_index(knots), max_by_index(knots)
    bandwidth = KERNEL_BANDWIDTH * (hi - lo) / mesh_size
    ends = _kernel_cdf_raw(knots, bandwidth, jnp.stack([lo, hi]))
    raw = _kernel_cdf_raw(knots, bandwidth, queries)
    return jnp.clip((raw - ends[0]) / (ends[1] - ends[0]), 0.0, 1.0)


def unit_coordinates(points, queries, mesh_size: int, transform: str):
    """(M, 2) per-axis CDF coordinates of (M, 2) queries, the CDF built on (N, 2) points (public:
    `lensserve fit` inverts it to draw the mesh's rectangles on the source plane)."""
    mu = jnp.mean(points, axis=0)
    scale = min_by_index(jnp.std(points, axis=0))
    knots = (points - mu) / scale
    scaled = (queries - mu) / scale
    if transform == "rank":
        axes = [rank_transform(knots[:, d], scaled[:, d]) for d in range(2)]
    elif transform == "kernel":
        axes = [kernel_transform(knots[:, d], scaled[:, d], mesh_size) for d in range(2)]
    else:
        raise ValueError(f"rectangular transform must be one of {TRANSFORMS}, got {transform!r}")
    return jnp.stack(axes, axis=-1)


def rectangular_mapping(points, queries, shape: tuple[int, int], transform: str) -> Mapping:
    """Bilinear mapping of (M, 2) queries onto the adaptive S x S mesh built on (N, 2) points.

    points: traced, relocated masked pixel centres; queries: the traced (sub-)pixels (at sub-size
    1, the same array). Returns `Mapping` with (M, 4) indices in [0, S^2) and weights.
    """
    size = _square(shape)
    index_space = (size - 3) * unit_coordinates(points, queries, size, transform) + 1.0
    # Bins are chosen by floor; only the offsets inside a bin carry derivatives.
    down = jnp.clip(jnp.floor(jax.lax.stop_gradient(index_space)), 0, size - 2)
    t_row, t_col = (index_space - down).T
    row, col = down.astype(jnp.int32).T
    indices = jnp.stack([
        (size - (row + 1)) * size + col,
        (size - (row + 1)) * size + col + 1,
        (size - row) * size + col,
        (size - row) * size + col + 1,
    ], axis=-1)
    weights = jnp.stack([
        t_row * (1.0 - t_col), t_row * t_col, (1.0 - t_row) * (1.0 - t_col), (1.0 - t_row) * t_col,
    ], axis=-1)
    return Mapping(indices, weights)


def edge_pixels(shape: tuple[int, int]) -> np.ndarray:
    """(S^2,) bool, True on the outer ring of the mesh (held at zero; reference `zeroed_pixels`)."""
    ring = np.ones(shape, dtype=bool)
    ring[1:-1, 1:-1] = False
    return ring.ravel()


def _square(shape: tuple[int, int]) -> int:
    # The reference's interpolator uses shape[0] for both axes.
    if shape[0] != shape[1]:
        raise ValueError(f"the adaptive rectangular mesh must be square, got {shape}")
    return int(shape[0])


@dataclass(frozen=True)
class AdaptiveRectangular(Mesh):
    """The adaptive rectangular mesh of `shape` (square) with CDF `transform` (see the module
    docstring), adapting to the traced pixels alone."""

    shape: tuple[int, int] = (35, 35)
    transform: str = "rank"

    def __post_init__(self) -> None:
        _square(self.shape)
        if self.transform not in TRANSFORMS:
            raise ValueError(f"rectangular transform must be one of {TRANSFORMS}, "
                             f"got {self.transform!r}")

    notes = (
        "Source: adaptive rectangular mesh with Constant regularization; lens light: MGE with "
        "linear intensities. With the default rank transform (PyAutoLens' "
        "RectangularBilinearAdaptDensity) traced pixels are placed on the mesh by their rank, so "
        "the log-evidence is piecewise constant in the lens mass and shear parameters; its "
        "gradient in them is finite but is the derivative with the mesh held fixed, not of the "
        "likelihood. With rectangular_transform='kernel' (RectangularRTUAdaptDensity) the mesh "
        "follows a smooth kernel-density CDF and the gradient is the true derivative, for "
        "gradient-based samplers; it costs an N x N kernel sum per evaluation."
    )

    @classmethod
    def from_settings(cls, settings) -> AdaptiveRectangular:
        return cls(settings.mesh_shape, settings.rectangular_transform)

    def held(self, vertices) -> np.ndarray:
        return edge_pixels(self.shape)

    def source_plane_mesh(self, vertices, points):
        """The traced pixels themselves: the mesh is placed by them, lane by lane."""
        return points

    def mapping(self, mesh) -> Mapping:
        return rectangular_mapping(mesh, mesh, self.shape, self.transform)
