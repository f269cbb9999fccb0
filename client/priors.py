"""Unit-cube transforms of the priors the service publishes (`likelihood/priors.py` `to_dict()`).

NumPy and the standard library only: a sampler machine needs no SciPy. The Gaussian quantile is
`statistics.NormalDist.inv_cdf` (Wichura's AS241, accurate to double precision), the same
algorithm family as `scipy.special.ndtri` that the service's own priors use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

_STANDARD_NORMAL = NormalDist()
_quantile = np.frompyfunc(_STANDARD_NORMAL.inv_cdf, 1, 1)


@dataclass(frozen=True)
class Uniform:
    lower: float
    upper: float

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return self.lower + (self.upper - self.lower) * u


@dataclass(frozen=True)
class LogUniform:
    lower: float
    upper: float

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        log_lower, log_upper = math.log(self.lower), math.log(self.upper)
        return np.exp(log_lower + (log_upper - log_lower) * u)


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian of `mean` and `sigma`, truncated to [lower, upper] (infinite: not truncated)."""

    mean: float
    sigma: float
    lower: float = -math.inf
    upper: float = math.inf

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF of the truncated Gaussian: the CDF's range [lo, hi] rescaled to [0, 1]."""
        lo = _STANDARD_NORMAL.cdf((self.lower - self.mean) / self.sigma)
        hi = _STANDARD_NORMAL.cdf((self.upper - self.mean) / self.sigma)
        return np.clip(self.mean + self.sigma * normal_quantile(lo + (hi - lo) * u),
                       self.lower, self.upper)


@dataclass(frozen=True)
class Unsupported:
    """A prior type this client does not know; using it raises, describing the model does not."""

    spec: Mapping[str, Any]

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"prior {dict(self.spec)} is not supported by this client; known types: "
            f"{', '.join(_TYPES)} (update the client)"
        )


Prior = Uniform | LogUniform | Gaussian | Unsupported


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Standard normal inverse CDF, elementwise; p = 0 and 1 give -inf and +inf."""
    p = np.asarray(p, dtype=np.float64)
    inner = (p > 0) & (p < 1)
    out = np.where(p <= 0, -np.inf, np.inf)
    out[inner] = _quantile(p[inner]).astype(np.float64)
    return out


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)  # JSON carries infinite bounds as null


def _gaussian(spec: Mapping[str, Any]) -> Gaussian:
    return Gaussian(float(spec["mean"]), float(spec["sigma"]),
                    _bound(spec.get("lower"), -math.inf), _bound(spec.get("upper"), math.inf))


_TYPES = {
    "Uniform": lambda s: Uniform(float(s["lower"]), float(s["upper"])),
    "LogUniform": lambda s: LogUniform(float(s["lower"]), float(s["upper"])),
    "Gaussian": _gaussian,
    "TruncatedGaussian": _gaussian,
}


def prior_from_dict(spec: Mapping[str, Any]) -> Prior:
    """The prior a published `{"type": ..., ...}` map describes."""
    make = _TYPES.get(spec.get("type"))
    return Unsupported(dict(spec)) if make is None else make(spec)
