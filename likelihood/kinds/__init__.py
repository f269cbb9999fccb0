"""The model kinds: each module defines one `Kind` (parameters, inversion, notes, preparation)."""

from likelihood.kinds import delaunay, mge, rectangular
from likelihood.kinds.kind import Kind

KINDS: dict[str, Kind] = {"mge": mge.KIND, "delaunay": delaunay.KIND,
                         "rectangular": rectangular.KIND}

__all__ = ["KINDS", "Kind"]
