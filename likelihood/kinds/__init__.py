"""The model kinds. A pixelized kind is a mesh and a regularization: adding either is one file
(`likelihood/mesh/`, `likelihood/regularization/`) and one line here."""

from likelihood.kinds import mge
from likelihood.kinds.kind import Kind
from likelihood.kinds.pixelized import pixelized_kind
from likelihood.mesh.delaunay import OverlayDelaunay
from likelihood.mesh.rectangular import AdaptiveRectangular
from likelihood.regularization import ConstantLattice, ConstantSplit

KINDS: dict[str, Kind] = {
    "mge": mge.KIND,
    "delaunay": pixelized_kind(OverlayDelaunay, ConstantSplit()),
    "rectangular": pixelized_kind(AdaptiveRectangular, ConstantLattice()),
}

__all__ = ["KINDS", "Kind"]
