"""Likelihood benchmark: ms per evaluation, single and under vmap, compile time, and PyAutoLens in
the same run when its interpreter is available.

    python benchmarks/likelihood.py --model mge [--batches 8 32] [--repeats 7] [--no-reference]
    python benchmarks/likelihood.py --model mge rectangular delaunay   # one table per kind
    python benchmarks/likelihood.py --smoke   # seconds: every kind at tiny sizes (CI)
    python benchmarks/likelihood.py --model mge --mass power_law   # the power-law lens mass
    python benchmarks/likelihood.py --compare-mass   # mge: power law against isothermal only

Prints a markdown table per kind, then where the time of one evaluation goes: the library's own
functions, each timed alone on the arguments one evaluation gave it (benchmarks/_stages.py).
The reference runs in its own interpreter (LENSSERVE_REFERENCE_PYTHON, default
/opt/refvenv/bin/python) through benchmarks/parity/reference.py --time-only; it is never a
dependency of lensserve. Timings are medians; ratios are taken within this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder heads sys.path and its name would shadow the package.
sys.path[:] = [entry for entry in sys.path
               if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from service.environment import set_default_environment  # noqa: E402

# The service's thread settings, so that ms per evaluation here is what a served point costs.
set_default_environment()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from likelihood import (  # noqa: E402
    KINDS,
    ModelSettings,
    build_model,
    default_dataset,
    default_truth,
)
from likelihood.dataset import save_imaging  # noqa: E402
from likelihood.mass import MASSES  # noqa: E402
from service.models import service_execution  # noqa: E402

HERE = Path(__file__).parent
REFERENCE_PYTHON = os.environ.get("LENSSERVE_REFERENCE_PYTHON", "/opt/refvenv/bin/python")
# --smoke: the tables in seconds (the reference aside); the numbers mean little.
SMOKE_SETTINGS = {"lens_gaussians": 4, "source_gaussians": 3, "mesh_shape": (8, 8),
                  "delaunay_overlay": (9, 9)}
SMOKE_MASK_RADIUS = 2.0  # arcsec: 5,013 pixels, the Einstein ring (1.6") inside


def points(model, n: int, seed: int = 0) -> np.ndarray:
    """(n, P): the truth and small perturbations of it (in-prior, near-truth proposals)."""
    truth = default_truth()
    centre = np.array([truth.get(name, model.reference_parameters[i])
                       for i, name in enumerate(model.parameter_names)])
    rng = np.random.default_rng(seed)
    scale = np.where(np.array([n.endswith("coefficient") for n in model.parameter_names]), 0.0, 0.01)
    return centre + scale * rng.standard_normal((n, len(centre)))


def median_seconds(function, argument, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(argument))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model, batches, repeats: int, gradient: bool = True) -> list[tuple[str, float, float]]:
    """[(label, compile s, ms per evaluation)]: single, single with the core as an argument and
    value_and_grad single (if `gradient`), then vmap of each batch size."""
    rows = []
    theta = points(model, max(batches + [1]))
    single = jax.jit(model.log_evidence)
    start = time.perf_counter()
    jax.block_until_ready(single(theta[0]))
    rows.append(("single", time.perf_counter() - start,
                 1e3 * median_seconds(single, theta[0], repeats)))
    if gradient:
        # The service's form: the core (the dataset's arrays) an argument, not constants.
        core = jax.device_put(model.core)
        with_core = jax.jit(model.evidence_function)
        start = time.perf_counter()
        jax.block_until_ready(with_core(core, theta[0]))
        rows.append(("single, core as argument", time.perf_counter() - start,
                     1e3 * median_seconds(lambda t: with_core(core, t), theta[0], repeats)))
        both = jax.jit(jax.value_and_grad(model.log_evidence))
        start = time.perf_counter()
        jax.block_until_ready(both(theta[0]))
        rows.append(("value_and_grad single", time.perf_counter() - start,
                     1e3 * median_seconds(both, theta[0], repeats)))
    for batch in batches:
        batched = jax.jit(jax.vmap(model.log_evidence))
        start = time.perf_counter()
        jax.block_until_ready(batched(theta[:batch]))
        seconds = median_seconds(batched, theta[:batch], max(3, repeats // 2))
        rows.append((f"vmap {batch}", time.perf_counter() - start, 1e3 * seconds / batch))
    return rows


def reference_rows(model, batches, repeats: int) -> list[tuple[str, float, float]]:
    """The same rows from PyAutoLens, or [] if its interpreter is missing."""
    if not Path(REFERENCE_PYTHON).exists():
        return []
    with tempfile.TemporaryDirectory() as folder:
        dataset = Path(folder) / "dataset.npz"
        save_imaging(model.dataset, dataset)
        params = Path(folder) / "params.json"
        theta = points(model, 1)[0]
        params.write_text(json.dumps([dict(zip(model.parameter_names, map(float, theta),
                                               strict=True))]))
        out = Path(folder) / "timing.json"
        command = [REFERENCE_PYTHON, str(HERE / "parity" / "reference.py"), "--dataset",
                   str(dataset), "--mask-radius", str(model.dataset.mask_radius), "--kind",
                   model.kind, "--params", str(params), "--time-only", "--batches",
                   ",".join(map(str, batches)), "--repeats", str(repeats), "--out", str(out)]
        if model.kind == "rectangular" and model.settings.rectangular_transform == "kernel":
            command += ["--rectangular-mesh", "kernel"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"(reference failed: {result.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
            return []
        timing = json.loads(out.read_text())
    rows = [("single", timing["single"]["first_call_s"], 1e3 * timing["single"]["median_s"])]
    for batch, entry in timing.get("vmap", {}).items():
        rows.append((f"vmap {batch}", entry["first_call_s"], 1e3 * entry["per_eval_s"]))
    return rows


def stage_rows(model, repeats: int) -> list[tuple[str, float]]:
    """[(stage, ms)] of one evaluation near the truth (benchmarks/_stages.py)."""
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))  # after the packages: `likelihood` is the package
    import _stages

    return _stages.stage_timings(model, points(model, 1)[0], repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=KINDS, default=None,
                        help="kinds to measure, one table each (default mge; --smoke: all)")
    parser.add_argument("--rectangular-transform", default="rank", choices=("rank", "kernel"))
    parser.add_argument("--mass", default="isothermal", choices=tuple(MASSES))
    parser.add_argument("--compare-mass", action="store_true",
                        help="only the mge table of every lens mass (ms per evaluation, single and "
                        "value_and_grad, timed in interleaved rounds; --smoke prints it too)")
    parser.add_argument("--batches", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds, not minutes: tiny models (4 + 3 Gaussians, 8 x 8 mesh, 9 x 9 "
                        "overlay, 2\" mask), 3 repeats, no reference, the value_and_grad and vmap "
                        "2 rows for the first kind only (the same code for every kind, and each "
                        "costs a compilation of 10-20 s for the pixelized ones); checks the script "
                        "runs (its numbers mean little)")
    args = parser.parse_args()
    sizes, dataset = {}, default_dataset()
    if args.smoke:
        args.model = args.model or list(KINDS)
        args.batches, args.repeats, args.no_reference = [2], 3, True
        sizes, dataset = SMOKE_SETTINGS, default_dataset(mask_radius=SMOKE_MASK_RADIUS)
    if not args.compare_mass:
        for i, kind in enumerate(args.model or ["mge"]):
            settings = ModelSettings(rectangular_transform=args.rectangular_transform,
                                     mass=args.mass, **sizes)
            model = build_model(dataset, kind, settings, execution=service_execution())
            report(model, args, every_row=i == 0 or not args.smoke)
    if args.compare_mass or args.smoke:
        compare_masses(dataset, sizes, args)


def compare_masses(dataset, sizes: dict, args) -> None:
    """The `mge` kind with each lens mass: ms per evaluation (jit of the log-evidence and of its
    value_and_grad), and its ratio to the isothermal. Every function is compiled first, then the
    calls are interleaved (one of each per round, `args.repeats` rounds): on a shared machine a
    change of load then moves every row alike, not the one that happened to run during it."""
    functions = {}
    for mass in MASSES:
        model = build_model(dataset, "mge", ModelSettings(mass=mass, **sizes))
        theta = points(model, 1)[0]
        for form, function in (("single", model.log_evidence),
                               ("value_and_grad", jax.value_and_grad(model.log_evidence))):
            functions[mass, form] = (jax.jit(function), theta)
            jax.block_until_ready(functions[mass, form][0](theta))
    times = {key: [] for key in functions}
    for _ in range(args.repeats):
        for key, (function, theta) in functions.items():
            start = time.perf_counter()
            jax.block_until_ready(function(theta))
            times[key].append(time.perf_counter() - start)
    ms = {key: 1e3 * statistics.median(seconds) for key, seconds in times.items()}
    sizes_text = " (--smoke sizes)" if args.smoke else ""
    print(f"\n### lens mass, `mge`{sizes_text} ({dataset.mask_radius:g}\" mask, medians of "
          f"{args.repeats} interleaved rounds)\n")
    print("| mass | ms / evaluation | / isothermal | value_and_grad ms | / isothermal |")
    print("|---|---:|---:|---:|---:|")
    for mass in MASSES:
        single, both = ms[mass, "single"], ms[mass, "value_and_grad"]
        print(f"| {mass} | {single:.1f} | {single / ms['isothermal', 'single']:.2f} | {both:.1f} "
              f"| {both / ms['isothermal', 'value_and_grad']:.2f} |", flush=True)


def report(model, args, every_row: bool = True) -> None:
    """Print the kind's table: ours (single only unless `every_row`), PyAutoLens' if asked and
    available, and the stages of one evaluation."""
    ours = (measure(model, args.batches, args.repeats) if every_row
            else measure(model, [], args.repeats, gradient=False))
    # The reference is timed with its isothermal mass only (reference.py builds that model).
    theirs = ([] if args.no_reference or model.settings.mass != "isothermal"
              else reference_rows(model, args.batches, args.repeats))
    theirs_by_label = {label: ms for label, _, ms in theirs}
    single_ms = ours[0][2]

    sizes = " (--smoke sizes)" if args.smoke else ""
    print(f"\n### likelihood `{model.kind}`{sizes} on the embedded dataset "
          f"({model.dataset.mask_radius:g}\" mask, {len(model.grids.data)} pixels, "
          f"jax {jax.__version__}, {jax.default_backend()})\n")
    print("| what | compile s | ms / evaluation | per-eval / single | PyAutoLens ms / eval "
          "| speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, compile_s, ms in ours:
        reference = theirs_by_label.get(label)
        ref_text = f"{reference:.1f}" if reference else "n/a"
        speedup = f"{reference / ms:.1f}x" if reference else "n/a"
        print(f"| {label} | {compile_s:.1f} | {ms:.1f} | {ms / single_ms:.2f} | {ref_text} "
              f"| {speedup} |")
    print("\n| stage of one evaluation (alone, on its arguments) | ms | / single |\n|---|---:|---:|")
    for label, ms in stage_rows(model, args.repeats):
        print(f"| {label} | {ms:.2f} | {ms / single_ms:.2f} |")
    print(f"| one evaluation (the table's single) | {single_ms:.2f} | 1.00 |", flush=True)


if __name__ == "__main__":
    main()
