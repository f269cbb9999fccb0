"""The in-process subcommands: `lensserve evaluate` and `lensserve simulate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from likelihood.dataset import DEFAULT_MASK_RADIUS


def _enable_float64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def _dataset(args: argparse.Namespace):
    from likelihood import default_dataset, load_imaging

    mask_radius = DEFAULT_MASK_RADIUS if args.mask_radius is None else args.mask_radius
    if args.dataset is None:
        return default_dataset(mask_radius=mask_radius)
    return load_imaging(args.dataset, pixel_scale=args.pixel_scale, mask_radius=mask_radius)


def parameter_vector(names: tuple[str, ...], values: dict) -> list[float]:
    """Order a {name: value} mapping as `names`; unknown or missing names are a ValueError."""
    if not isinstance(values, dict):
        raise ValueError("parameters must be a JSON object mapping parameter names to numbers")
    unknown = sorted(set(values) - set(names))
    missing = [n for n in names if n not in values]
    problems = []
    if unknown:
        problems.append("unknown parameters: " + ", ".join(unknown))
    if missing:
        problems.append("missing parameters: " + ", ".join(missing))
    if problems:
        raise ValueError("; ".join(problems))
    vector = []
    for name in names:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {name} must be a number, got {value!r}")
        vector.append(float(value))
    return vector


def evaluate(args: argparse.Namespace) -> int:
    """Print {"log_evidence": x, "gradient": {...}} for the parameters in a JSON file (by default,
    for the embedded dataset only, its true parameters)."""
    if args.dataset is not None and args.params is None:
        print("lensserve evaluate: --dataset needs --params (a JSON file of parameter name to "
              "value): the default parameters are the embedded simulated lens's truth, which "
              "says nothing about another image", file=sys.stderr)
        return 2
    _enable_float64()
    import jax
    import numpy as np

    from likelihood import DatasetError, ModelSettings, UnknownKindError, build_model
    from service.models import service_execution

    try:
        model = build_model(_dataset(args), args.model, ModelSettings(mass=args.mass),
                            execution=service_execution())
        if args.params is None:
            from likelihood import default_truth

            # The embedded dataset's lens is isothermal: a power law's true slope is 2.
            truth = {**default_truth(), "lens.mass.slope": 2.0}
            values = {n: v for n, v in truth.items() if n in model.parameter_names}
            values = {n: values.get(n, float(model.reference_parameters[i]))
                      for i, n in enumerate(model.parameter_names)}
        else:
            values = json.loads(Path(args.params).read_text())
        theta = np.asarray(parameter_vector(model.parameter_names, values))
    except (DatasetError, UnknownKindError, ValueError, OSError) as error:
        print(f"lensserve evaluate: {error}", file=sys.stderr)
        return 2
    reason = model.invalid_reason(theta)
    if reason:
        print(f"lensserve evaluate: {reason}", file=sys.stderr)
        return 2
    if args.gradient:
        value, gradient = jax.jit(jax.value_and_grad(model.log_evidence))(theta)
        result = {"log_evidence": float(value), "gradient": dict(
            zip(model.parameter_names, map(float, np.asarray(gradient)), strict=True))}
    else:
        result = {"log_evidence": float(jax.jit(model.log_evidence)(theta))}
    print(json.dumps(result, indent=2, allow_nan=True))
    return 0


def simulate(args: argparse.Namespace) -> int:
    """Write a simulated dataset (.npz) and its true parameters (.json beside it)."""
    _enable_float64()
    from likelihood.dataset import save_imaging
    from likelihood.simulate import Truth, simulate_imaging, truth_record

    imaging = simulate_imaging(seed=args.seed)
    output = Path(args.output)
    save_imaging(imaging, output)
    output.with_name(output.stem + "_truth.json").write_text(
        json.dumps(truth_record(Truth()), indent=1) + "\n")
    print(json.dumps(imaging.summary()))
    return 0
