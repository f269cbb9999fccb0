"""The staged fit's logic as pure functions (`lensserve fit` runs them; its IO is `service/fit/`).

Three stages, each a nested-sampling run (PyAutoLens's SLaM order: a parametric source first, then
a pixelized source with priors from it, then the mass model):

1. `mge` source + MGE lens light + isothermal + shear, broad priors (the service's, with the source
   centre widened to Uniform(-0.4, 0.4): a real source need not lie within 0.1" of the lens);
2. a pixelized source (`delaunay` or `rectangular`) + the same lens, priors from stage 1;
3. `power_law` + shear with the pixelized source, priors from stage 2 (the slope from its default).

Prior passing: a parameter the previous stage fitted gets

    Uniform(max(a, m - w h), min(b, m + w h)),  h = max((p84 - p16) / 2, floor(name))

with m its posterior median, p16 / p84 its percentiles, w = `WIDENING` and [a, b] the support of
the parameter's published prior in the new stage's model (which the service keeps inside the
parameter's physical domain). The floor keeps a posterior that is too narrow (a poor source model
makes it so: stage 1 on SLACS J1430 gives 1.490 +- 0.002") from pinning the next stage to it. A
`LogUniform` prior (the regularization coefficient) is passed in log10 the same way. Other
parameters keep their published priors.

NumPy only, like the rest of `client`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from client.priors import Gaussian, LogUniform, Prior, Uniform

# Prior half-width in units of the previous posterior's 16-84 half-width.
WIDENING = 5.0
# Smallest half-width a passed prior gets, by the end of the parameter's name (log10 for the
# regularization coefficient), as PyAutoLens's absolute `width_modifier`s do.
HALF_WIDTH_FLOORS = {
    "centre_0": 0.05, "centre_1": 0.05,  # arcsec
    "ell_comps_0": 0.05, "ell_comps_1": 0.05,
    "einstein_radius": 0.05,  # arcsec
    "slope": 0.1,
    "gamma_1": 0.02, "gamma_2": 0.02,
    "coefficient": 1.0,  # dex
}
DEFAULT_HALF_WIDTH_FLOOR = 0.05
SOURCE_CENTRE_BOUND = 0.4  # arcsec: stage 1's source centre prior is Uniform(-this, this)
MASS_PREFIXES = ("lens.mass.", "lens.shear.")


@dataclass(frozen=True)
class Stage:
    """One stage: its directory name, the model kind and mass it fits, and the stage whose
    posterior centres its priors (None: broad priors)."""

    name: str
    kind: str
    mass: str
    previous: str | None


def stages(source: str = "delaunay") -> tuple[Stage, ...]:
    """The pipeline's stages, with the pixelized `source` kind ("delaunay" or "rectangular")."""
    if source not in ("delaunay", "rectangular"):
        raise ValueError(f"the pixelized source is delaunay or rectangular, got {source!r}")
    return (
        Stage("stage1_mge", "mge", "isothermal", None),
        Stage(f"stage2_{source}", source, "isothermal", "stage1_mge"),
        Stage(f"stage3_{source}_power_law", source, "power_law", f"stage2_{source}"),
    )


@dataclass(frozen=True)
class Marginal:
    """A parameter's weighted posterior: median, 16th and 84th percentiles, mean and std."""

    median: float
    p16: float
    p84: float
    mean: float
    std: float

    @property
    def half_width(self) -> float:
        return (self.p84 - self.p16) / 2


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles q (in [0, 1]) of (n,) values with (n,) non-negative weights: the weighted CDF at
    the sorted values' midpoints, linearly interpolated."""
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cdf = (np.cumsum(weights) - 0.5 * weights) / np.sum(weights)
    return np.interp(q, cdf, values)


def marginals(names: Sequence[str], points: np.ndarray, log_weights: np.ndarray
              ) -> dict[str, Marginal]:
    """{name: Marginal} of (n, P) posterior points with (n,) log-weights (nautilus's posterior)."""
    weights = np.exp(log_weights - np.max(log_weights))
    mean = np.average(points, axis=0, weights=weights)
    std = np.sqrt(np.average((points - mean) ** 2, axis=0, weights=weights))
    result = {}
    for i, name in enumerate(names):
        p16, median, p84 = weighted_quantiles(points[:, i], weights, (0.16, 0.5, 0.84))
        result[name] = Marginal(float(median), float(p16), float(p84), float(mean[i]),
                                float(std[i]))
    return result


def effective_sample_size(log_weights: np.ndarray) -> float:
    """Kish's (sum w)^2 / sum w^2."""
    weights = np.exp(log_weights - np.max(log_weights))
    return float(np.sum(weights) ** 2 / np.sum(weights**2))


def support(prior: Prior) -> tuple[float, float]:
    """The interval a prior's values lie in."""
    if isinstance(prior, Uniform | LogUniform | Gaussian):
        return prior.lower, prior.upper
    raise ValueError(f"no support for prior {prior!r}")


def half_width_floor(name: str) -> float:
    return HALF_WIDTH_FLOORS.get(name.rsplit(".", 1)[-1], DEFAULT_HALF_WIDTH_FLOOR)


def passed_prior(name: str, marginal: Mapping[str, float], published: Prior,
                 widening: float = WIDENING) -> Prior:
    """The prior of `name` centred on a previous stage's `marginal` ({"median", "p16", "p84"}):
    median +- widening x max(16-84 half-width, floor), clipped to the support of `published`
    (log10 for a `LogUniform`). See the module docstring."""
    lower, upper = support(published)
    log = isinstance(published, LogUniform)
    to = math.log10 if log else float
    median, p16, p84 = (to(marginal[key]) for key in ("median", "p16", "p84"))
    half = widening * max((p84 - p16) / 2, half_width_floor(name))
    low, high = max(to(lower), median - half), min(to(upper), median + half)
    if not low < high:
        raise ValueError(f"{name}: the posterior median {marginal['median']} lies outside the "
                         f"support [{lower}, {upper}] of its prior")
    return LogUniform(10**low, 10**high) if log else Uniform(low, high)


def broad_priors(names: Sequence[str], published: Sequence[Prior]) -> tuple[Prior, ...]:
    """Stage 1's priors: the published ones, with the source centre Uniform(+-SOURCE_CENTRE_BOUND)."""
    wide = Uniform(-SOURCE_CENTRE_BOUND, SOURCE_CENTRE_BOUND)
    return tuple(wide if name.startswith("source.bulge.centre_") else prior
                 for name, prior in zip(names, published, strict=True))


def stage_priors(names: Sequence[str], published: Sequence[Prior],
                 previous: Mapping[str, Mapping[str, float]] | None,
                 widening: float = WIDENING) -> tuple[Prior, ...]:
    """The priors of a stage's parameters `names` whose model publishes `published`: broad without
    a `previous` stage, else passed from its marginals ({name: {"median", "p16", "p84"}}) where it
    has the parameter."""
    if previous is None:
        return broad_priors(names, published)
    return tuple(
        passed_prior(name, previous[name], prior, widening) if name in previous else prior
        for name, prior in zip(names, published, strict=True)
    )


def prior_to_dict(prior: Prior) -> dict:
    """JSON of a prior, in the service's vocabulary (`likelihood.priors` `to_dict`)."""
    if isinstance(prior, Uniform | LogUniform):
        return {"type": type(prior).__name__, "lower": prior.lower, "upper": prior.upper}
    if isinstance(prior, Gaussian):
        bounded = not (math.isinf(prior.lower) and math.isinf(prior.upper))
        return {"type": "TruncatedGaussian" if bounded else "Gaussian", "mean": prior.mean,
                "sigma": prior.sigma, **({"lower": prior.lower, "upper": prior.upper}
                                         if bounded else {})}
    raise ValueError(f"cannot describe prior {prior!r}")


def mass_parameters(names: Sequence[str]) -> list[str]:
    """The lens-mass and shear parameters among `names`, in order (the corner plot's)."""
    return [name for name in names if name.startswith(MASS_PREFIXES)]


def log_evidence_error(log_weights: np.ndarray) -> float:
    """The statistical error of an importance-sampling log Z (nautilus's) from its weights:
    sqrt(1 / N_eff - 1 / N), the relative standard deviation of the mean of the weights. It does
    not hold the error of the exploration (bounds that miss posterior mass)."""
    n = len(log_weights)
    return math.sqrt(max(1 / effective_sample_size(log_weights) - 1 / n, 0.0))


def posterior_summary(names: Sequence[str], points: np.ndarray, log_weights: np.ndarray,
                      log_likelihoods: np.ndarray, log_z: float) -> dict:
    """What `summary.json` says of a posterior ((n, P) points, (n,) log-weights and
    log-likelihoods, nautilus's log Z): per parameter the median, 16/84 percentiles, mean and std;
    the best fit (highest likelihood) and its log-likelihood; log Z, its error and N_eff."""
    best = int(np.argmax(log_likelihoods))
    return {
        "parameters": {name: vars(marginal) for name, marginal in
                       marginals(names, points, log_weights).items()},
        "best_fit": dict(zip(names, map(float, points[best]), strict=True)),
        "best_log_likelihood": float(log_likelihoods[best]),
        "log_z": float(log_z),
        "log_z_error": log_evidence_error(log_weights),
        "effective_sample_size": effective_sample_size(log_weights),
        "samples": len(points),
    }
