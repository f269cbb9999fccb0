"""The Delaunay source mesh: image-plane vertices, qhull on the host, barycentric interpolation in JAX.

Reproduces PyAutoArray's `Delaunay` mesh with an `Overlay` image mesh
(`inversion/mesh/image_mesh/overlay.py`, `image_mesh/abstract.py: append_with_circle_edge_points`,
`inversion/mesh/interpolator/delaunay.py`). The vertices are fixed image-plane points (static); their
traced source-plane positions are triangulated by `scipy.spatial.Delaunay` inside one
`jax.pure_callback` per batch, which also locates every query point (the traced pixels and the
regularization split points) in that triangulation. Connectivity is integer-valued and gets no
derivative; the barycentric weights, dual areas and split points are recomputed in JAX from the
traced positions, so gradients with respect to them are exact within a triangulation topology.

A lane whose positions are non-finite or degenerate (qhull fails, or drops coincident vertices)
gets status != 0, sentinel (-1) tables and zero weights; it never raises and never touches another
lane of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numba
import numpy as np
from scipy.spatial import Delaunay, QhullError, cKDTree

from likelihood.mesh.mesh import Mapping, Mesh

# Edge points appended to the overlay vertices (the reference's fiducial), held at zero.
EDGE_POINTS = 30
# PyAutoArray's `Delaunay(areas_factor=0.5)`: split points sit 0.5 sqrt(dual area) from their vertex.
SPLIT_AREA_FACTOR = 0.5
# The reference treats a triangle whose doubled sub-areas sum to at most this as degenerate (weights 0).
DEGENERATE_AREA = 1e-12
# Barycentric coordinates >= -this count as inside a triangle (the reference walk's tolerance).
INSIDE_TOLERANCE = 1e-12

OK, NON_FINITE, QHULL_FAILED, COINCIDENT = 0, 1, 2, 3
STATUS_REASONS = {
    NON_FINITE: "non-finite source-plane positions",
    QHULL_FAILED: "degenerate mesh vertices (qhull failed, e.g. all collinear)",
    COINCIDENT: "coincident mesh vertices (qhull dropped some)",
}

# Offsets of the four split points of a vertex, in units of its half-width: +y, -y, +x, -x.
_CROSS = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


# --- image-plane vertices (NumPy, static) ---------------------------------------------------------


def mask_centre(mask: np.ndarray, pixel_scale: float) -> tuple[float, float]:
    """(y, x) midpoint of the extreme unmasked pixel centres (autoarray `Mask2D.mask_centre`)."""
    rows, cols = np.nonzero(mask)
    cy, cx = (mask.shape[0] - 1) / 2.0, (mask.shape[1] - 1) / 2.0
    y = (cy - np.array([rows.min(), rows.max()])) * pixel_scale
    x = (np.array([cols.min(), cols.max()]) - cx) * pixel_scale
    return float(y.mean()), float(x.mean())


def overlay_vertices(mask: np.ndarray, pixel_scale: float, shape: tuple[int, int]) -> np.ndarray:
    """(V_in, 2) centres of an overlay grid of `shape` cells spanning the image, inside the mask.

    The overlay spans the unmasked pixel centres' extent plus one pixel per axis, in shape[0] x
    shape[1] cells, centred on the mask centre; a cell centre is kept when the image pixel
    containing it, index int(-y/ps + cy + 1/2), int(x/ps + cx + 1/2), is unmasked. Row-major
    order (autoarray `Overlay.image_plane_mesh_grid_from`).
    """
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    extent = ((rows.max() - rows.min() + 1) * pixel_scale, (cols.max() - cols.min() + 1) * pixel_scale)
    cell = (extent[0] / shape[0], extent[1] / shape[1])
    origin = mask_centre(mask, pixel_scale)
    cell_row, cell_col = np.indices(shape, dtype=np.float64)
    y = ((shape[0] - 1) / 2.0 - cell_row) * cell[0] + origin[0]
    x = (cell_col - (shape[1] - 1) / 2.0) * cell[1] + origin[1]
    pixel_row = (-y / pixel_scale + (height - 1) / 2.0 + 0.5).astype(int)
    pixel_col = (x / pixel_scale + (width - 1) / 2.0 + 0.5).astype(int)
    inside = mask[pixel_row, pixel_col]
    return np.stack([y[inside], x[inside]], axis=-1)


def circle_edge_points(centre: tuple[float, float], radius: float, n: int) -> np.ndarray:
    """(n, 2) points at angles 2 pi k / n on a circle: (y0 + r sin, x0 + r cos)."""
    angle = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + radius * np.sin(angle), centre[1] + radius * np.cos(angle)], -1)


def image_plane_vertices(
    mask: np.ndarray, pixel_scale: float, mask_radius: float, shape: tuple[int, int], edge: int
) -> np.ndarray:
    """(V, 2) overlay vertices then `edge` ring points at mask_radius + ps/2, appended last."""
    ring = circle_edge_points(mask_centre(mask, pixel_scale), mask_radius + pixel_scale / 2.0, edge)
    return np.concatenate([overlay_vertices(mask, pixel_scale, shape), ring])


# --- triangulation and point location on the host (NumPy) ----------------------------------------


def _cross(u, v):
    """z-component of the cross product of (..., 2) vectors; NumPy or JAX arrays."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _doubled_sub_areas(a, b, c):
    """Signed doubled areas of (q, b, c), (q, c, a), (q, a, b) given corners relative to q, (Q, 2)
    each: the unnormalised barycentric coordinates of q."""
    return _cross(b, c), _cross(c, a), _cross(a, b)


def split_points(vertices, half_widths):
    """(4V, 2) points +-half_width along y then x around each vertex (V, 2); NumPy or JAX arrays.

    autoarray `regularization_util.split_points_from`, half_width = 0.5 sqrt(dual area).
    """
    return (vertices[:, None, :] + half_widths[:, None, None] * _CROSS).reshape(-1, 2)


def _locate(tri: Delaunay, *point_sets: np.ndarray) -> list[np.ndarray]:
    """For each point set (Q, 2), the (Q, 3) vertex indices of the triangle containing each point;
    [nearest, -1, -1] outside.

    A visibility walk from a triangle of each point's nearest vertex: step across the edge opposite
    the most negative barycentric coordinate until none is below -INSIDE_TOLERANCE (found) or the
    edge is on the hull (outside: the nearest vertex, as the reference maps it).
    """
    simplices = np.ascontiguousarray(tri.simplices, dtype=np.int64)
    incident = np.empty(len(tri.points), dtype=np.int64)
    for k in range(3):
        incident[simplices[:, k]] = np.arange(len(simplices))
    vertices = np.ascontiguousarray(tri.points, dtype=np.float64)
    neighbors = np.ascontiguousarray(tri.neighbors, dtype=np.int64)
    tree = cKDTree(vertices)
    located = []
    for points in point_sets:
        nearest = tree.query(points)[1]
        found = _walk(np.ascontiguousarray(points, dtype=np.float64), vertices, simplices,
                      neighbors, incident[nearest])
        corners = np.full((len(points), 3), -1, dtype=np.int32)
        corners[found >= 0] = simplices[found[found >= 0]]
        corners[found < 0, 0] = nearest[found < 0]
        located.append(corners)
    return located


@numba.njit(nogil=True, cache=True)
def _walk(points, vertices, simplices, neighbors, start):
    """The triangle (index) each point's walk from `start` ends in, or -1 where it leaves the hull;
    signed barycentric coordinates are the doubled sub-areas (`_doubled_sub_areas`) over their sum;
    a NaN one is never inside, and the first NaN or smallest picks the edge, as NumPy's min and
    argmin would."""
    triangles = np.full(len(points), -1, np.int64)
    coords = np.empty(3)
    for p in range(len(points)):
        t = start[p]
        y, x = points[p, 0], points[p, 1]
        for _ in range(len(simplices)):
            ay, ax = vertices[simplices[t, 0], 0] - y, vertices[simplices[t, 0], 1] - x
            by, bx = vertices[simplices[t, 1], 0] - y, vertices[simplices[t, 1], 1] - x
            cy, cx = vertices[simplices[t, 2], 0] - y, vertices[simplices[t, 2], 1] - x
            coords[0] = by * cx - bx * cy
            coords[1] = cy * ax - cx * ay
            coords[2] = ay * bx - ax * by
            coords /= coords[0] + coords[1] + coords[2]
            edge = np.argmin(coords)
            if coords[edge] >= -INSIDE_TOLERANCE:
                triangles[p] = t
                break
            t = neighbors[t, edge]
            if t < 0:
                break
    return triangles


def _triangulate_lane(vertices: np.ndarray, points: np.ndarray):
    """One lane: (status, simplices (2V, 3), point corners (Q, 3), split corners (4V, 3)), -1 padded."""
    n = len(vertices)
    simplices = np.full((2 * n, 3), -1, dtype=np.int32)
    point_corners = np.full((len(points), 3), -1, dtype=np.int32)
    split_corners = np.full((4 * n, 3), -1, dtype=np.int32)
    sentinel = (simplices, point_corners, split_corners)
    if not (np.isfinite(vertices).all() and np.isfinite(points).all()):
        return (np.int32(NON_FINITE), *sentinel)
    try:
        tri = Delaunay(vertices)
    except (QhullError, ValueError):
        return (np.int32(QHULL_FAILED), *sentinel)
    if len(np.unique(tri.simplices)) < n:
        return (np.int32(COINCIDENT), *sentinel)
    simplices[: len(tri.simplices)] = tri.simplices
    corners = tri.points[tri.simplices]
    edges = corners[:, 1:] - corners[:, :1]
    area = 0.5 * np.abs(edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0])
    dual = np.bincount(tri.simplices.ravel(), np.repeat(area / 3.0, 3), minlength=n)
    split = split_points(vertices, SPLIT_AREA_FACTOR * np.sqrt(dual))
    return np.int32(OK), simplices, *_locate(tri, points, split)


def _triangulate_host(vertices: np.ndarray, points: np.ndarray):
    """`_triangulate_lane` over any leading batch axes (one host call for a whole vmap batch)."""
    vertices, points = np.asarray(vertices), np.asarray(points)
    batch = vertices.shape[:-2]
    lanes = [
        _triangulate_lane(v, p)
        for v, p in zip(vertices.reshape(-1, *vertices.shape[-2:]),
                        points.reshape(-1, *points.shape[-2:]), strict=True)
    ]
    columns = zip(*lanes, strict=True)
    return tuple(np.stack(column).reshape(batch + column[0].shape) for column in columns)


class Triangulation(NamedTuple):
    """Integer connectivity from the host: status () (0 = OK), simplices (2V, 3), the corners
    (Q, 3) of each query point's triangle and (4V, 3) of each split point's; -1 padded."""

    status: jnp.ndarray
    simplices: jnp.ndarray
    point_corners: jnp.ndarray
    split_corners: jnp.ndarray


def triangulate(vertices, points) -> Triangulation:
    """Triangulate vertices (V, 2) and locate points (Q, 2) on the host; no derivative flows.

    Under `vmap` the callback receives the whole batch ("broadcast_all") and loops in NumPy, so a
    batch costs one host round trip.
    """
    n, q = vertices.shape[0], points.shape[0]
    shapes = (
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((2 * n, 3), jnp.int32),
        jax.ShapeDtypeStruct((q, 3), jnp.int32),
        jax.ShapeDtypeStruct((4 * n, 3), jnp.int32),
    )
    result = jax.pure_callback(
        _triangulate_host, shapes, jax.lax.stop_gradient(vertices),
        jax.lax.stop_gradient(points), vmap_method="broadcast_all",
    )
    return Triangulation(*result)


# --- differentiable geometry (JAX) ----------------------------------------------------------------


def barycentric_weights(points, corners, vertices):
    """(Q, 3) interpolation weights of points (Q, 2) in their triangles `corners` (Q, 3) of vertices.

    a_k = |cross(p_{k+1} - q, p_{k+2} - q)| / sum_j a_j; a sum <= DEGENERATE_AREA gives weights 0;
    outside the hull (corners [v, -1, -1]) the weights are [1, 0, 0]
    (autoarray `pixel_weights_delaunay_from`). Division and selection are NaN-safe for gradients.
    """
    relative = vertices[jnp.maximum(corners, 0)] - points[:, None, :]
    areas = jnp.abs(jnp.stack(_doubled_sub_areas(*(relative[:, k] for k in range(3))), axis=1))
    total = areas.sum(axis=1, keepdims=True)
    degenerate = total <= DEGENERATE_AREA
    weights = jnp.where(degenerate, 0.0, areas / jnp.where(degenerate, 1.0, total))
    outside = corners[:, 1:2] < 0
    return jnp.where(outside, jnp.array([1.0, 0.0, 0.0]), weights)


def dual_areas(vertices, simplices):
    """(V,) barycentric dual areas: a third of the area of every triangle around each vertex.

    simplices (T, 3), -1 padded (autoarray `barycentric_dual_area_from`).
    """
    valid = simplices[:, :1] >= 0
    corners = vertices[jnp.maximum(simplices, 0)]
    edges = corners[:, 1:] - corners[:, :1]
    third = jnp.abs(_cross(edges[:, 0], edges[:, 1])) / 6.0
    contribution = jnp.where(valid, third[:, None], 0.0)
    return jnp.zeros(vertices.shape[0]).at[jnp.maximum(simplices, 0)].add(contribution)


def _safe_sqrt(x):
    """sqrt with a finite derivative at 0 (a vertex with no triangle has zero dual area)."""
    positive = x > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


class DelaunayMesh(NamedTuple):
    """A traced Delaunay mesh: vertices (V, 2); interpolation of the query points, point_corners /
    point_weights (Q, 3); of the 4V regularization split points, split_corners / split_weights
    (4V, 3); status () int32 (0 = OK, else a key of STATUS_REASONS, with all weights zero)."""

    vertices: jnp.ndarray
    point_corners: jnp.ndarray
    point_weights: jnp.ndarray
    split_corners: jnp.ndarray
    split_weights: jnp.ndarray
    status: jnp.ndarray


def delaunay_mesh(vertices, points) -> DelaunayMesh:
    """Triangulate source-plane vertices (V, 2) and interpolate the points (Q, 2) on them."""
    tri = triangulate(vertices, points)
    valid = tri.status == OK
    half_widths = SPLIT_AREA_FACTOR * _safe_sqrt(dual_areas(vertices, tri.simplices))
    split = split_points(vertices, half_widths)
    # Zero weights keep a failed lane's inversion well posed; its log-evidence is set non-finite.
    point_weights = jnp.where(valid, barycentric_weights(points, tri.point_corners, vertices), 0.0)
    split_weights = jnp.where(valid, barycentric_weights(split, tri.split_corners, vertices), 0.0)
    return DelaunayMesh(
        vertices, tri.point_corners, point_weights, tri.split_corners, split_weights, tri.status
    )


@dataclass(frozen=True)
class OverlayDelaunay(Mesh):
    """The reference's `Overlay` image mesh of `overlay` shape with `append_with_circle_edge_points`
    and `Delaunay(pixels, zeroed_pixels=EDGE_POINTS)`: the overlay vertices inside the mask plus a
    ring of EDGE_POINTS points at mask_radius + ps/2 (held at zero), traced and border-relocated
    with the masked pixel centres (pixelization sub-size 1)."""

    overlay: tuple[int, int] = (39, 39)
    notes = (
        "Source on a Delaunay mesh of traced image-plane overlay vertices (scipy qhull in a host "
        "callback, one call per batch) with barycentric interpolation and ConstantSplit "
        "regularization. The log-evidence is smooth within a triangulation and jumps where the "
        "triangulation re-wires; gradients are exact almost everywhere. Non-finite or degenerate "
        "source-plane vertices give a NaN log-evidence for that point only."
    )

    @classmethod
    def from_settings(cls, settings) -> OverlayDelaunay:
        return cls(settings.delaunay_overlay)

    def image_plane_vertices(self, grids, mask_radius: float) -> np.ndarray:
        return image_plane_vertices(grids.mask, grids.pixel_scale, mask_radius, self.overlay,
                                    EDGE_POINTS)

    def held(self, vertices) -> np.ndarray:
        return np.arange(len(vertices)) >= len(vertices) - EDGE_POINTS

    def source_plane_mesh(self, vertices, points) -> DelaunayMesh:
        return delaunay_mesh(vertices, points)

    def mapping(self, mesh: DelaunayMesh) -> Mapping:
        """Barycentric weights on each pixel's triangle (padding: index 0, weight 0)."""
        return Mapping(jnp.maximum(mesh.point_corners, 0), mesh.point_weights)

    def valid(self, mesh: DelaunayMesh):
        return mesh.status == OK
