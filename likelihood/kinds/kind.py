"""What a model kind provides to `build_model`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from likelihood.parameters import Parameter


@dataclass(frozen=True)
class Kind:
    """parameters: the kind's `Parameter`s in vector order; notes: what a user should know (e.g.
    smoothness); pixelized: whether the source is a mesh (seconds and a large matrix per point on
    a CPU: the service gives such models small batches); source(dataset, grids, convolver,
    settings, execution) -> the source's pytree, stored as `ModelCore.source`;
    inversion(core, theta) -> `Inversion`."""

    parameters: tuple[Parameter, ...]
    notes: str
    pixelized: bool
    source: Callable
    inversion: Callable
