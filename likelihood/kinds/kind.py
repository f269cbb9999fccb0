"""What a model kind provides to `build_model`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from likelihood.parameters import LENS_LIGHT_PATH, Parameter, ellipse_parameters
from likelihood.priors import MGE_CENTRE


@dataclass(frozen=True)
class Kind:
    """source_parameters: the source's `Parameter`s, last in the vector (`parameters`); notes:
    what a user should know (e.g. smoothness); pixelized: whether the source is a mesh (seconds
    and a large matrix per point on a CPU: the service gives such models small batches);
    source(dataset, grids, convolver, settings, execution) -> the source's pytree, stored as
    `ModelCore.source`; inversion(core, theta) -> `Inversion`."""

    source_parameters: tuple[Parameter, ...]
    notes: str
    pixelized: bool
    source: Callable
    inversion: Callable

    def parameters(self, mass) -> tuple[Parameter, ...]:
        """Every parameter in vector order: the lens light's, the lens mass's (a
        `mass.LensMass`), then the source's."""
        return (*ellipse_parameters(LENS_LIGHT_PATH, MGE_CENTRE), *mass.parameters,
                *self.source_parameters)
