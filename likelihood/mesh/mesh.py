"""What a pixelized source's mesh provides: the interface every mesh implements.

A mesh turns the traced (and border-relocated) masked pixel centres, with its own traced
image-plane vertices if it has any, into a source-plane mesh, and that into a `Mapping`: each
pixel's interpolation onto the mesh pixels (autoarray `mapper_util.mapping_matrix_from`'s sparse
form, sub-size 1). `kinds.pixelized` builds a model kind from a mesh and a regularization.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class Mapping(NamedTuple):
    """Sparse interpolation of each traced pixel onto mesh pixels.

    indices: (N, k) int32 mesh-pixel indices; weights: (N, k) interpolation weights (rows sum to 1,
    or 0 for a failed mesh).
    """

    indices: jnp.ndarray
    weights: jnp.ndarray


class Mesh(ABC):
    """A source mesh. Concrete meshes are frozen dataclasses holding their own settings."""

    notes: str  # what a user should know of the likelihood with this mesh (smoothness, costs)

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> Mesh:
        """The mesh a `ModelSettings` describes (its keys are the user's vocabulary)."""

    def image_plane_vertices(self, grids, mask_radius: float) -> np.ndarray | None:
        """(V, 2) image-plane points traced with the pixels to place the mesh, or None when the
        mesh adapts to the traced pixels alone."""
        return None

    @abstractmethod
    def held(self, vertices: np.ndarray | None) -> np.ndarray:
        """(S,) bool, True for mesh pixels held at zero amplitude; S is the mesh's pixel count."""

    @abstractmethod
    def source_plane_mesh(self, vertices, points):
        """The mesh on the source plane from traced vertices (V, 2) (or None) and traced pixel
        centres (N, 2): any pytree. Run once per batch (a host call sees the whole batch)."""

    @abstractmethod
    def mapping(self, mesh) -> Mapping:
        """The pixels' `Mapping` on a `source_plane_mesh`; run lane by lane."""

    def valid(self, mesh):
        """() bool: whether the mesh could be built (a lane that could not gets a NaN
        log-evidence, and nothing else in its batch is touched)."""
        return jnp.bool_(True)
