"""Parameter vectors: one layout per model, and the named pieces the components read from it.

A `ParameterLayout` orders a model's parameters (PyAutoLens model paths, e.g.
`lens.mass.einstein_radius`), each with its prior and physical domain. Only the layout knows
positions: `layout.values(theta)` gives {name: value}, and each component takes its own values by
name (`ellipse(values, "lens.bulge")`, `mass.LensMass`), so a model is free to order, add or fix
parameters without any component changing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from likelihood import priors
from likelihood.priors import Prior


@dataclass(frozen=True)
class Parameter:
    """A named parameter, its prior and the interval [low, high] it must lie in (low excluded
    when `low_open`)."""

    name: str
    prior: Prior
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False

    def invalid_reason(self, value: float) -> str | None:
        if self.low_open and value <= self.low:
            return f"{self.name} must be > {self.low:g}"
        if value < self.low or value > self.high:
            if math.isinf(self.high):
                return f"{self.name} must be >= {self.low:g}"
            return f"{self.name} must lie in [{self.low:g}, {self.high:g}]"
        return None


@dataclass(frozen=True)
class ParameterLayout:
    """The order of a model's parameter vector (P,)."""

    parameters: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate parameter names in {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters)

    @property
    def priors(self) -> tuple[Prior, ...]:
        return tuple(parameter.prior for parameter in self.parameters)

    def values(self, theta) -> dict:
        """{name: theta[i]} of a (P,) vector (NumPy or JAX, traced or not)."""
        return {name: theta[i] for i, name in enumerate(self.names)}

    def invalid_reason(self, theta) -> str | None:
        """Why the point (P,) cannot be evaluated, or None. Cheap NumPy checks only."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (len(self.parameters),):
            return f"expected {len(self.parameters)} parameters, got shape {theta.shape}"
        bad = [p.name for p, v in zip(self.parameters, theta, strict=True) if not math.isfinite(v)]
        if bad:
            return "non-finite value for " + ", ".join(bad)
        reasons = (p.invalid_reason(float(v)) for p, v in zip(self.parameters, theta, strict=True))
        return next((reason for reason in reasons if reason is not None), None)


def ellipse_parameters(path: str, centre_prior: Prior) -> tuple[Parameter, ...]:
    """centre_0, centre_1, ell_comps_0, ell_comps_1 of the profile at `path` (e.g. "lens.bulge")."""
    return (
        Parameter(f"{path}.centre_0", centre_prior),
        Parameter(f"{path}.centre_1", centre_prior),
        Parameter(f"{path}.ell_comps_0", priors.ELL_COMPS, -1.0, 1.0),
        Parameter(f"{path}.ell_comps_1", priors.ELL_COMPS, -1.0, 1.0),
    )


LENS_LIGHT_PATH = "lens.bulge"
SOURCE_LIGHT_PATH = "source.bulge"
REGULARIZATION_COEFFICIENT = "source.pixelization.coefficient"
PIXELIZATION_PARAMETERS = (
    Parameter(REGULARIZATION_COEFFICIENT, priors.REGULARIZATION_COEFFICIENT, low=0.0,
              low_open=True),
)


class Ellipse(NamedTuple):
    """A profile's centre (y, x) and ell_comps (an MGE basis shares one)."""

    centre: tuple
    ell_comps: tuple


def ellipse(values: dict, path: str) -> Ellipse:
    return Ellipse((values[f"{path}.centre_0"], values[f"{path}.centre_1"]),
                   (values[f"{path}.ell_comps_0"], values[f"{path}.ell_comps_1"]))
