"""What a pixelized source's regularization provides: the interface every regularization implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple


class RegularizationTerms(NamedTuple):
    """H (S, S) at one coefficient, and how to get ln det H: `log_det` when known in closed form,
    else None and `determinant`, a matrix with H's determinant whose Cholesky factor is accurate
    (None: H itself), which `inversion.solve_and_evidence` factors with the system's matrix."""

    matrix: object
    log_det: object = None
    determinant: object = None


class Regularization(ABC):
    """A regularization of a mesh's amplitudes. Concrete ones are frozen dataclasses."""

    def prepare(self, mesh, vertices):
        """The static part for `mesh` (whose image-plane vertices are `vertices`), a pytree of
        NumPy arrays: e.g. a lattice's Laplacian. None when there is none."""
        return None

    @abstractmethod
    def terms(self, coefficient, source_plane_mesh, prepared) -> RegularizationTerms:
        """H and its log-determinant route at `coefficient` on a `Mesh.source_plane_mesh`."""
