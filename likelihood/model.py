"""Lens models: a dataset, a kind and settings, turned into a pure log-evidence function.

`build_model(dataset, kind, settings)` precomputes everything that depends only on the dataset
and settings (grids, PSF operator, sigma ladders) and returns a `LensModel` whose
`log_evidence(theta)` is a pure JAX function of the (P,) parameter vector, usable under `jit`,
`vmap` and `grad`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import jax.numpy as jnp
import numpy as np

from likelihood.convolution import Convolver, convolver
from likelihood.dataset import Imaging
from likelihood.execution import Execution
from likelihood.grids import MaskedGrids, masked_grids
from likelihood.inversion import Inversion
from likelihood.kinds import KINDS as _KINDS
from likelihood.settings import ModelSettings


@dataclass(frozen=True, eq=False)
class LensModel:
    """A compiled-ready lens model; see the module docstring."""

    kind: str
    dataset: Imaging
    settings: ModelSettings
    grids: MaskedGrids
    convolver: Convolver
    parameter_specs: tuple
    reference_parameters: np.ndarray
    notes: str
    _system: object = field(repr=False)
    static: object = field(repr=False, default=None)

    @cached_property  # read per request by the service
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parameter_specs)

    @cached_property
    def priors(self) -> tuple:
        return tuple(prior for _, prior in self.parameter_specs)

    def inversion(self, theta) -> Inversion:
        """The solved inversion at parameters `theta` (P,), with every log-evidence term."""
        return self._system(self, jnp.asarray(theta))

    def log_evidence(self, theta):
        """Scalar log-evidence at `theta` (P,); pure JAX."""
        return self.inversion(theta).log_evidence

    def invalid_reason(self, theta) -> str | None:
        """Why the point (P,) cannot be evaluated, or None. Cheap NumPy checks only."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (len(self.parameter_specs),):
            return f"expected {len(self.parameter_specs)} parameters, got shape {theta.shape}"
        bad = [n for n, v in zip(self.parameter_names, theta, strict=True) if not math.isfinite(v)]
        if bad:
            return "non-finite value for " + ", ".join(bad)
        values = dict(zip(self.parameter_names, theta, strict=True))
        if values["lens.mass.einstein_radius"] < 0:
            return "lens.mass.einstein_radius must be >= 0"
        for name, value in values.items():
            if "ell_comps" in name and abs(value) > 1:
                return f"{name} must lie in [-1, 1]"
        if values.get("source.pixelization.coefficient", 1.0) <= 0:
            return "source.pixelization.coefficient must be > 0"
        return None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "parameter_names": list(self.parameter_names),
            "priors": {name: prior.to_dict() for name, prior in self.parameter_specs},
            "reference_parameters": self.reference_parameters.tolist(),
            "dataset": self.dataset.summary(),
            "settings": {k: getattr(self.settings, k) for k in self.settings.__dataclass_fields__},
            "notes": self.notes,
        }

    def fit(self, theta) -> dict:
        """NumPy pieces of the fit at `theta` for plots and checks: 2-D images and every term."""
        inversion = self.inversion(theta)
        image = np.zeros(self.dataset.shape)
        image[self.grids.mask] = np.asarray(inversion.model_image)
        residuals = np.where(self.grids.mask, self.dataset.data - image, 0.0)
        terms = {k: float(getattr(inversion, k)) for k in (
            "chi_squared", "regularization_term", "log_det_curvature_regularization",
            "log_det_regularization", "noise_normalization", "log_evidence")}
        return {
            "model_image": image, "residuals": residuals,
            "normalized_residuals": np.where(self.grids.mask, residuals / self.dataset.noise_map, 0.0),
            "amplitudes": np.asarray(inversion.amplitudes), "terms": terms,
        }


KINDS = tuple(_KINDS)


class UnknownKindError(ValueError):
    pass


def prior_medians(specs) -> np.ndarray:
    return np.array([float(prior.from_unit(0.5)) for _, prior in specs])


def build_model(
    dataset: Imaging,
    kind: str,
    settings: ModelSettings | None = None,
    reference_parameters=None,
    execution: Execution | None = None,
) -> LensModel:
    """Precompute a `LensModel` of `kind` (one of `KINDS`) on `dataset`, run as `execution`
    says (None: `Execution()`, the sparse formulation on one kernel thread)."""
    if kind not in _KINDS:
        raise UnknownKindError(f"unknown model kind {kind!r}; available: {', '.join(KINDS)}")
    specs, system, notes, prepare = _KINDS[kind]
    settings = settings or ModelSettings()
    grids = masked_grids(dataset)
    blur = convolver(grids.mask, grids.blurring, dataset.psf)
    reference = (
        prior_medians(specs) if reference_parameters is None
        else np.asarray(reference_parameters, dtype=np.float64)
    )
    return LensModel(
        kind=kind, dataset=dataset, settings=settings, grids=grids,
        convolver=blur,
        parameter_specs=specs, reference_parameters=reference, notes=notes, _system=system,
        static=prepare(dataset, grids, settings, blur, execution or Execution()) if prepare else None,
    )
