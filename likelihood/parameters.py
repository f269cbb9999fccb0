"""Parameter vectors: one layout per model, and the named pieces the components read from it.

A `ParameterLayout` orders a model's parameters (PyAutoLens model paths, e.g.
`lens.mass.einstein_radius`), each with its prior and physical domain. Only the layout knows
positions: `layout.values(theta)` gives {name: value}, and each component takes its own values by
name (`ellipse(values, "lens.bulge")`, `mass.LensMass`), so a model is free to order, add or fix
parameters without any component changing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from likelihood import priors
from likelihood.priors import Gaussian, LogUniform, Prior, Uniform


@dataclass(frozen=True)
class Parameter:
    """A named parameter, its prior and the interval [low, high] it must lie in (low excluded
    when `low_open`)."""

    name: str
    prior: Prior
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False

    def support_problem(self, prior: Prior) -> str | None:
        """Why `prior` cannot be this parameter's (its values reach outside the domain), or None."""
        lower, upper = prior.support()
        below = lower <= self.low if self.low_open else lower < self.low
        if below or upper > self.high:
            bound = "(" if self.low_open else "["
            return (f"the prior {prior.to_dict()} of {self.name} reaches outside its domain "
                    f"{bound}{self.low:g}, {self.high:g}]")
        return None

    def invalid_reason(self, value: float) -> str | None:
        if self.low_open and value <= self.low:
            return f"{self.name} must be > {self.low:g}"
        if value < self.low or value > self.high:
            if math.isinf(self.high):
                return f"{self.name} must be >= {self.low:g}"
            return f"{self.name} must lie in [{self.low:g}, {self.high:g}]"
        return None


class ParameterError(ValueError):
    """A prior or fixed value given for a model's parameters that the model cannot take."""


@dataclass(frozen=True)
class ParameterLayout:
    """The order of a model's parameter vector (P,): its free `parameters`; the `fixed` ones,
    ((name, value), ...), are not in the vector and reach the components by value."""

    parameters: tuple[Parameter, ...]
    fixed: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        every = self.names + tuple(name for name, _ in self.fixed)
        if len(set(every)) != len(every):
            raise ValueError(f"duplicate parameter names in {every}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters)

    @property
    def priors(self) -> tuple[Prior, ...]:
        return tuple(parameter.prior for parameter in self.parameters)

    def values(self, theta) -> dict:
        """{name: value} of every parameter: theta[i] for the free ones of a (P,) vector (NumPy or
        JAX, traced or not), the fixed ones' values (constants of a compiled program)."""
        return {**{name: theta[i] for i, name in enumerate(self.names)}, **dict(self.fixed)}

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


def layout_of(parameters: tuple[Parameter, ...], priors: Mapping[str, Prior] | None = None,
              fixed: Mapping[str, float] | None = None) -> ParameterLayout:
    """The layout of `parameters` (vector order) with some `priors` replaced ({name: prior}) and
    some parameters `fixed` ({name: value}: they leave the vector). `ParameterError` names the
    parameter of an unknown name, a prior reaching outside its domain, a value outside it, or a
    parameter both given a prior and fixed."""
    priors, fixed = dict(priors or {}), dict(fixed or {})
    by_name = {parameter.name: parameter for parameter in parameters}
    for what, given in (("a prior", priors), ("a fixed value", fixed)):
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            raise ParameterError(f"{what} given for {', '.join(unknown)}, not a parameter of this "
                                 f"model; its parameters: {', '.join(by_name)}")
    both = sorted(set(priors) & set(fixed))
    if both:
        raise ParameterError(f"{', '.join(both)}: given both a prior and a fixed value")
    for name, prior in priors.items():
        if not isinstance(prior, Uniform | LogUniform | Gaussian):
            raise ParameterError(f"the prior of {name} must be a likelihood.priors prior, got "
                                 f"{prior!r}")
        problem = by_name[name].support_problem(prior)
        if problem:
            raise ParameterError(problem)
    for name, value in fixed.items():
        problem = by_name[name].invalid_reason(float(value))
        if problem or not math.isfinite(float(value)):
            raise ParameterError(f"fixed value {value!r} of {name}: {problem or 'not finite'}")
    free = tuple(dataclasses.replace(parameter, prior=priors.get(parameter.name, parameter.prior))
                 for parameter in parameters if parameter.name not in fixed)
    return ParameterLayout(free, tuple((name, float(fixed[name]))
                                       for name in by_name if name in fixed))


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
