"""Build the configured lens models (the likelihood side of start-up; no compilation here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from service.environment import usable_cores
from service.settings import ModelSpec

# A pixelized-source batch holds a (pixels x mesh) blurred mapping matrix per point (~160 MB for the
# embedded dataset) and costs seconds per point on a CPU: larger default buckets would only add
# memory and compile time.
PIXELIZED_DEFAULT_BUCKETS = (1, 2, 4)


def default_specs() -> list[ModelSpec]:
    """The embedded dataset with every model kind the likelihood package offers."""
    from likelihood.kinds import KINDS

    return [ModelSpec(name=kind, kind=kind,
                      buckets=PIXELIZED_DEFAULT_BUCKETS if definition.pixelized else None)
            for kind, definition in KINDS.items()]


def default_buckets(kind: str, ladder: tuple[int, ...]) -> tuple[int, ...]:
    """A registered model's batch sizes when it names none: as the default models'."""
    from likelihood.kinds import KINDS

    definition = KINDS.get(kind)
    return PIXELIZED_DEFAULT_BUCKETS if definition is not None and definition.pixelized else ladder


def served_specs(specs: list[ModelSpec] | None) -> list[ModelSpec]:
    return specs if specs is not None else default_specs()


def model_buckets(
    names: Iterable[str], specs: list[ModelSpec], ladder: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """Each model's batch sizes: its spec's own, else the service's `ladder`."""
    own = {spec.name: spec.buckets for spec in specs}
    return {name: own.get(name) or ladder for name in names}


def service_execution(kernel_threads: int | None = None, *, lanes: str | None = None,
                      formulation: str | None = None):
    """The `likelihood.execution.Execution` the served models run with: the lanes policy and the
    formulation for the backend JAX runs on (asked once, here at start-up, never while tracing)
    unless given, and `kernel_threads` (None: the usable cores)."""
    import jax

    from likelihood.execution import execution_for

    threads = usable_cores() if kernel_threads is None else kernel_threads
    device = execution_for(jax.default_backend(), threads)
    return dataclasses.replace(device, lanes=lanes or device.lanes,
                               formulation=formulation or device.formulation)


def load_models(specs: list[ModelSpec] | None, kernel_threads: int | None = None, *,
                lanes: str | None = None, formulation: str | None = None) -> dict:
    """`{name: likelihood.LensModel}` for `specs` (None: `default_specs()`), in order, with the
    curvature kernel on `kernel_threads` threads (None: the usable cores), each model's lanes
    policy and formulation its spec's, else `lanes` and `formulation`, else the device's."""
    from likelihood import default_dataset, load_imaging

    models = {}
    for spec in served_specs(specs):
        if spec.dataset is None:
            dataset = default_dataset()
        else:
            dataset = load_imaging(spec.dataset, pixel_scale=spec.pixel_scale)
        models[spec.name] = build_served_model(spec, dataset, kernel_threads, lanes=lanes,
                                               formulation=formulation)
    return models


def build_served_model(spec: ModelSpec, dataset, kernel_threads: int | None = None, *,
                       lanes: str | None = None, formulation: str | None = None):
    """The `likelihood.LensModel` of `spec` on `dataset` (a `likelihood.Imaging`; the spec's
    `mask_radius`, if set, replaces the dataset's); see `load_models` for the rest. Raises
    `likelihood.ParameterError` naming the model for a spec the model cannot take."""
    from likelihood import ModelSettings, build_model
    from likelihood.parameters import ParameterError
    from likelihood.priors import prior_from_dict

    if spec.mask_radius is not None:
        dataset = dataclasses.replace(dataset, mask_radius=spec.mask_radius)
    settings = ModelSettings(**{
        key: tuple(value) if isinstance(value, list) else value
        for key, value in {**spec.settings, "mass": spec.mass}.items()
    })
    priors = {}
    for name, prior in spec.priors.items():
        try:
            priors[name] = prior_from_dict(prior)
        except ValueError as error:
            raise ParameterError(f"model {spec.name}: the prior of {name}: {error}") from None
    execution = service_execution(kernel_threads, lanes=spec.lanes or lanes,
                                  formulation=spec.formulation or formulation)
    try:
        return build_model(dataset, spec.kind, settings, execution=execution, priors=priors,
                           fixed=spec.fixed)
    except ParameterError as error:
        raise ParameterError(f"model {spec.name}: {error}") from None
