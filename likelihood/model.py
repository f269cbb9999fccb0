"""Lens models: a dataset, a kind and settings, turned into a pure log-evidence function.

`build_model(dataset, kind, settings)` precomputes everything that depends only on the dataset
and settings (grids, PSF operator, sigma ladders) and returns a `LensModel` whose
`log_evidence(theta)` is a pure JAX function of the (P,) parameter vector, usable under `jit`,
`vmap` and `grad`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import jax.numpy as jnp
import numpy as np

from likelihood import core
from likelihood.convolution import Convolver, convolver
from likelihood.core import ModelCore
from likelihood.dataset import Imaging
from likelihood.execution import Execution
from likelihood.grids import MaskedGrids, masked_grids
from likelihood.inversion import Inversion
from likelihood.kinds import KINDS as _KINDS
from likelihood.light import mge_sigmas
from likelihood.mass import lens_mass
from likelihood.parameters import ParameterLayout, layout_of
from likelihood.priors import Prior
from likelihood.settings import ModelSettings


@dataclass(frozen=True, eq=False)
class LensModel:
    """A lens model ready to compile: what it is (kind, dataset, settings, notes, reference
    parameters, the `Execution` it was built to run as) and its `core`, the pytree of arrays its
    likelihood is a pure function of (`likelihood.core`). `log_evidence(theta)` closes over the
    core; compile
    `core.log_evidence(core, theta)` with the core as an argument to serve other datasets of the
    same shapes with one executable."""

    kind: str
    dataset: Imaging
    settings: ModelSettings
    core: ModelCore
    reference_parameters: np.ndarray
    notes: str
    execution: Execution

    # The pure function of (core, theta) the service compiles with the core as an argument.
    evidence_function = staticmethod(core.log_evidence)

    @property
    def layout(self) -> ParameterLayout:
        return self.core.layout

    @property
    def grids(self) -> MaskedGrids:
        return self.core.grids

    @property
    def convolver(self) -> Convolver:
        return self.core.convolver

    @cached_property  # read per request by the service
    def parameter_names(self) -> tuple[str, ...]:
        return self.layout.names

    @cached_property
    def priors(self) -> tuple:
        return self.layout.priors

    @property
    def parameter_specs(self) -> tuple:
        """((name, prior), ...) in vector order."""
        return tuple(zip(self.parameter_names, self.priors, strict=True))

    def inversion(self, theta) -> Inversion:
        """The solved inversion at parameters `theta` (P,), with every log-evidence term."""
        return core.inversion(self.core, jnp.asarray(theta))

    def log_evidence(self, theta):
        """Scalar log-evidence at `theta` (P,); pure JAX."""
        return self.inversion(theta).log_evidence

    def invalid_reason(self, theta) -> str | None:
        """Why the point (P,) cannot be evaluated, or None. Cheap NumPy checks only."""
        return self.layout.invalid_reason(theta)

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "parameter_names": list(self.parameter_names),
            "priors": {name: prior.to_dict() for name, prior in self.parameter_specs},
            "fixed": dict(self.layout.fixed),
            "reference_parameters": self.reference_parameters.tolist(),
            "dataset": self.dataset.summary(),
            "settings": {k: getattr(self.settings, k) for k in self.settings.__dataclass_fields__},
            "execution": self.execution.describe(),
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


def prior_medians(priors) -> np.ndarray:
    return np.array([float(prior.from_unit(0.5)) for prior in priors])


def build_model(
    dataset: Imaging,
    kind: str,
    settings: ModelSettings | None = None,
    reference_parameters=None,
    execution: Execution | None = None,
    priors: Mapping[str, Prior] | None = None,
    fixed: Mapping[str, float] | None = None,
) -> LensModel:
    """Precompute a `LensModel` of `kind` (one of `KINDS`) on `dataset`, run as `execution`
    says (None: `Execution()`, the sparse formulation on one kernel thread, lanes in sequence).

    priors: {parameter name: `likelihood.priors` prior} in place of the defaults; fixed:
    {parameter name: value} held fixed, out of the parameter vector (P shrinks by one each).
    A name the model does not have, a prior reaching outside the parameter's domain or a value
    outside it is a `ParameterError` naming the parameter. reference_parameters: (P,) of the
    free parameters (None: the priors' medians)."""
    if kind not in _KINDS:
        raise UnknownKindError(f"unknown model kind {kind!r}; available: {', '.join(KINDS)}")
    definition = _KINDS[kind]
    settings = settings or ModelSettings()
    execution = execution or Execution()
    grids = masked_grids(dataset)
    blur = convolver(grids.mask, grids.blurring, dataset.psf)
    mass = lens_mass(settings.mass)
    layout = layout_of(definition.parameters(mass), priors, fixed)
    reference = (
        prior_medians(layout.priors) if reference_parameters is None
        else np.asarray(reference_parameters, dtype=np.float64)
    )
    model_core = ModelCore(
        grids=grids, convolver=blur,
        lens_sigmas=mge_sigmas(dataset.mask_radius, settings.lens_gaussians),
        source=definition.source(dataset, grids, blur, settings, execution),
        kind=definition, mass=mass, layout=layout, lanes=execution.lanes,
    )
    return LensModel(kind=kind, dataset=dataset, settings=settings, core=model_core,
                     reference_parameters=reference, notes=definition.notes, execution=execution)
