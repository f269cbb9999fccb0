"""Priors of the model parameters, as PyAutoLens' default configuration sets them.

Each prior maps a unit-cube coordinate to a parameter value (`from_unit`, vectorised, NumPy),
describes itself as JSON for clients (`to_dict`, read back by `prior_from_dict`) and gives the
interval its values lie in (`support`). A prior that describes no distribution is a ValueError.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri


@dataclass(frozen=True)
class Uniform:
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"Uniform needs lower < upper, got {self.lower}, {self.upper}")

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper

    def from_unit(self, u):
        return self.lower + (self.upper - self.lower) * np.asarray(u, dtype=np.float64)

    def to_dict(self) -> dict:
        return {"type": "Uniform", **asdict(self)}


@dataclass(frozen=True)
class LogUniform:
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not 0 < self.lower < self.upper:
            raise ValueError(f"LogUniform needs 0 < lower < upper, got {self.lower}, {self.upper}")

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper

    def from_unit(self, u):
        log_lower, log_upper = math.log(self.lower), math.log(self.upper)
        return np.exp(log_lower + (log_upper - log_lower) * np.asarray(u, dtype=np.float64))

    def to_dict(self) -> dict:
        return {"type": "LogUniform", **asdict(self)}


@dataclass(frozen=True)
class Gaussian:
    mean: float
    sigma: float
    lower: float = -math.inf
    upper: float = math.inf

    def __post_init__(self) -> None:
        if not (self.sigma > 0 and self.lower < self.upper):
            raise ValueError(f"Gaussian needs sigma > 0 and lower < upper, got sigma {self.sigma}, "
                             f"bounds {self.lower}, {self.upper}")

    def support(self) -> tuple[float, float]:
        return self.lower, self.upper

    def from_unit(self, u):
        """Inverse CDF of the Gaussian truncated to [lower, upper]."""
        from scipy.special import ndtr

        lo = ndtr((self.lower - self.mean) / self.sigma)
        hi = ndtr((self.upper - self.mean) / self.sigma)
        p = lo + (hi - lo) * np.asarray(u, dtype=np.float64)
        return np.clip(self.mean + self.sigma * ndtri(p), self.lower, self.upper)

    def to_dict(self) -> dict:
        d = {"type": "Gaussian" if math.isinf(self.lower) and math.isinf(self.upper)
             else "TruncatedGaussian", "mean": self.mean, "sigma": self.sigma}
        if not math.isinf(self.lower) or not math.isinf(self.upper):
            d.update(lower=self.lower, upper=self.upper)
        return d


Prior = Uniform | LogUniform | Gaussian


def prior_from_dict(spec: dict) -> Prior:
    """The prior a `to_dict()` map (or the same keys in a config file) describes."""
    kind = spec.get("type")
    arguments = {key: float(value) for key, value in spec.items() if key != "type"}
    make = {"Uniform": Uniform, "LogUniform": LogUniform, "Gaussian": Gaussian,
            "TruncatedGaussian": Gaussian}.get(kind)
    if make is None:
        raise ValueError(f"unknown prior type {kind!r}; known: Uniform, LogUniform, Gaussian, "
                         "TruncatedGaussian")
    try:
        return make(**arguments)
    except TypeError:
        raise ValueError(f"a {kind} prior takes {', '.join(make.__dataclass_fields__)}; "
                         f"got {', '.join(arguments)}") from None

ELL_COMPS = Gaussian(0.0, 0.3, -1.0, 1.0)
MGE_CENTRE = Uniform(-0.1, 0.1)
MASS_CENTRE = Gaussian(0.0, 0.1)
EINSTEIN_RADIUS = Uniform(0.0, 8.0)
SLOPE = Uniform(1.5, 3.0)
SHEAR = Uniform(-0.3, 0.3)
REGULARIZATION_COEFFICIENT = LogUniform(1e-6, 1e6)
