"""GPU benchmark: the likelihood as the service runs it, per kind, on whatever device JAX sees.

    python benchmarks/gpu.py                  # every kind at the fiducial, the device's execution
    python benchmarks/gpu.py --kinds mge --lanes sequential vectorized
    python benchmarks/gpu.py --memory-table   # device memory per lane, both executions
    python benchmarks/gpu.py --smoke          # mge at tiny settings, both tables (CI, on the CPU)

Timing table, one row per kind and execution (`likelihood.Execution`: lanes policy and
formulation): compile seconds (the vmap-8 value and value_and_grad executables), ms per
evaluation single, under vmap 8 and vmap 64, and of value_and_grad under vmap 8 (medians), the
device's peak memory as its allocator reports it (a GPU does, a CPU does not: n/a) and XLA's
memory analysis of the largest executable. The batched executables are the service's
(`service.executables.compile_batched`: the model's core an argument). Each row runs in a process
of its own, so its peak is its own. A batch whose executable would not fit the device's memory
(XLA's analysis against the allocator's limit) is not run: "over memory". By default each kind runs
with the device's execution (a CPU: sequential lanes, the sparse kernel; an accelerator:
vectorized lanes, the dense formulation), and `mge` with the other lanes policy as well, in the
same run, so the default's reason stays a measured one.

Memory table (`--memory-table`): for each kind, both executions, compiled but not run at buckets 1
and 8: the model's core (resident), what a batch of 1 needs besides it, and each further lane
(the slope from 1 to 8), for the value and the value_and_grad executables. On a CPU these are
XLA's CPU buffer assignments of the same programs; a GPU's compiler assigns its own (run it there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this file's folder heads sys.path and its name would shadow the package.
sys.path[:] = [entry for entry in sys.path
               if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.environment import set_default_environment, usable_cores  # noqa: E402

# The service's thread settings, so that ms per evaluation here is what a served point costs.
set_default_environment()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

from likelihood import (  # noqa: E402
    KINDS,
    Execution,
    ModelSettings,
    build_model,
    core,
    default_dataset,
    default_truth,
    execution_for,
)
from service.executables import compile_batched  # noqa: E402

# --smoke: tiny settings on a small mask, one repetition; the numbers mean little.
SMOKE_SETTINGS = ModelSettings(lens_gaussians=4, source_gaussians=3, mesh_shape=(8, 8),
                               delaunay_overlay=(9, 9))
SMOKE_MASK_RADIUS = 1.2  # arcsec
MIB = 2**20


def dataset(smoke: bool):
    return default_dataset(mask_radius=SMOKE_MASK_RADIUS) if smoke else default_dataset()


def points(model, n: int, seed: int = 0) -> np.ndarray:
    """(n, P): the truth and small perturbations of it (in-prior, near-truth proposals)."""
    truth = default_truth()
    centre = np.array([truth.get(name, model.reference_parameters[i])
                       for i, name in enumerate(model.parameter_names)])
    rng = np.random.default_rng(seed)
    scale = np.where(np.array([n.endswith("coefficient") for n in model.parameter_names]), 0.0, 0.01)
    return centre + scale * rng.standard_normal((n, len(centre)))


def median_ms(function, arguments, repeats: int) -> float:
    """Median ms of `function(*arguments)` over `repeats` calls after one warm-up call."""
    jax.block_until_ready(function(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def device_limit() -> int | None:
    """The device allocator's limit in bytes, where the device reports one (not a CPU)."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("bytes_limit")


def device_peak() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use")


def value_and_grad(model_core, theta):
    return jax.value_and_grad(core.log_evidence, argnums=1)(model_core, theta)


def measure_row(kind: str, execution: Execution, batches: list[int], gradient_batch: int,
                repeats: int, smoke: bool) -> dict:
    """One row of the timing table, measured in this process."""
    settings = SMOKE_SETTINGS if smoke else ModelSettings()
    model = build_model(dataset(smoke), kind, settings, execution=execution)
    model_core = jax.device_put(model.core)
    n_params = len(model.parameter_names)
    theta = points(model, max(batches + [gradient_batch]))
    row = {"kind": kind, "lanes": execution.lanes, "formulation": execution.formulation,
           "pixels": int(len(model.grids.data)), "batches": {}, "compile_s": {}}
    single = jax.jit(core.log_evidence)
    row["single_ms"] = median_ms(single, (model_core, theta[0]), repeats)
    limit, largest = device_limit(), None
    for label, function, batch in ([("value", core.log_evidence, b) for b in batches]
                                   + [("value_and_grad", value_and_grad, gradient_batch)]):
        start = time.perf_counter()
        compiled = compile_batched(function, model_core, batch, n_params, None)
        compile_s = time.perf_counter() - start
        if batch == (batches[0] if label == "value" else gradient_batch):
            row["compile_s"][label] = compile_s
        memory = compiled.memory
        needed = None if memory is None else memory.core + memory.working
        if needed is not None and (largest is None or needed > largest):
            largest = needed
        if limit is not None and needed is not None and needed > limit:
            ms = None  # would run out of device memory
        else:
            ms = median_ms(compiled.run, (model_core, theta[:batch]), repeats) / batch
        row["batches"][f"{label} {batch}"] = ms
    row["peak_bytes"] = device_peak()
    row["largest_executable_bytes"] = largest
    return row


def executions(kinds: list[str], lanes: list[str] | None, formulation: str | None):
    """(kind, Execution) rows: the device's execution, or the given lanes and formulation; mge
    with both lanes policies unless lanes are given."""
    device = execution_for(jax.default_backend(), usable_cores())
    formulation = formulation or device.formulation
    rows = []
    for kind in kinds:
        policies = lanes or ([device.lanes, *(p for p in ("sequential", "vectorized")
                                              if p != device.lanes)]
                             if kind == "mge" else [device.lanes])
        rows += [(kind, dataclasses.replace(device, lanes=policy, formulation=formulation))
                 for policy in policies]
    return rows


def run_row(kind: str, execution: Execution, args: argparse.Namespace) -> dict:
    """`measure_row` in a process of its own (its peak device memory is its own)."""
    command = [sys.executable, __file__, "--row", kind, execution.lanes, execution.formulation,
               "--repeats", str(args.repeats), "--batches", *map(str, args.batches)]
    command += ["--smoke"] if args.smoke else []
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(size) -> str:
    return "n/a" if size is None else f"{size / MIB:.1f}"


def timing_table(rows: list[dict], batches: list[int]) -> str:
    gradient = f"value_and_grad {batches[0]}"
    header = (f"| kind | lanes | formulation | compile s, vmap {batches[0]} (value / "
              "value_and_grad) | single ms | "
              + " | ".join(f"vmap {b} ms/eval" for b in batches)
              + f" | value_and_grad vmap {batches[0]} ms/eval | peak device MiB "
              "| largest executable MiB (XLA) |")
    lines = [header, "|" + "---|" * 3 + "---:|" * (len(batches) + 5)]
    for row in rows:
        cells = [row["batches"][f"value {b}"] for b in batches] + [row["batches"][gradient]]
        formulation = row["formulation"] if row["kind"] != "mge" else "(no mesh)"
        lines.append(
            f"| {row['kind']} | {row['lanes']} | {formulation} | "
            f"{row['compile_s']['value']:.1f} / {row['compile_s']['value_and_grad']:.1f} | "
            f"{row['single_ms']:.1f} | "
            + " | ".join("over memory" if ms is None else f"{ms:.1f}" for ms in cells)
            + f" | {mib(row['peak_bytes'])} | {mib(row['largest_executable_bytes'])} |")
    return "\n".join(lines)


def memory_table(kinds: list[str], smoke: bool, buckets: tuple[int, int]) -> str:
    """Device memory per lane per kind for both executions, from XLA's memory analysis."""
    settings = SMOKE_SETTINGS if smoke else ModelSettings()
    data = dataset(smoke)
    small, large = buckets
    lines = [f"| kind | lanes | formulation | core MiB | value: bucket {small} MiB | value: per "
             f"lane MiB | value_and_grad: bucket {small} MiB | value_and_grad: per lane MiB |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for kind in kinds:
        for execution in (Execution("sparse", usable_cores(), "sequential"),
                          Execution("dense", usable_cores(), "vectorized")):
            model = build_model(data, kind, settings, execution=execution)
            n_params = len(model.parameter_names)
            cells = []
            for function in (core.log_evidence, value_and_grad):
                working = {}
                for bucket in buckets:
                    memory = compile_batched(function, model.core, bucket, n_params, None).memory
                    working[bucket] = memory.working
                    print(f"compiled {kind} {execution.lanes} {execution.formulation} "
                          f"bucket {bucket}", file=sys.stderr, flush=True)
                cells += [mib(working[small]), mib((working[large] - working[small])
                                                   / (large - small))]
            formulation = execution.formulation if kind != "mge" else "(no mesh)"
            lines.append(f"| {kind} | {execution.lanes} | {formulation} | {mib(memory.core)} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(smoke: bool) -> str:
    device = jax.devices()[0]
    data = dataset(smoke)
    what = "smoke settings" if smoke else "the fiducial settings"
    return (f"### on {device.platform} ({device.device_kind}), jax {jax.__version__}: "
            f"{what}, embedded dataset in a {data.mask_radius}\" mask")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="*", choices=list(KINDS),
                        help="default: every kind (--smoke: mge)")
    parser.add_argument("--lanes", nargs="*", choices=("sequential", "vectorized"),
                        help="lanes policies to run every kind with (default: the device's, "
                        "and both for mge)")
    parser.add_argument("--formulation", choices=("sparse", "dense"),
                        help="default: the device's")
    parser.add_argument("--batches", type=int, nargs="*", default=[8, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-table", action="store_true",
                        help="only the table of device memory per lane (compiles, runs nothing)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny settings, vmap 2, one repetition, mge unless --kinds, then the "
                        "memory table (buckets 1 and 2): minutes on a CPU, nearly all compiling")
    parser.add_argument("--row", nargs=3, metavar=("KIND", "LANES", "FORMULATION"),
                        help=argparse.SUPPRESS)  # one timing row, as JSON (run_row)
    args = parser.parse_args()
    if args.smoke:
        args.batches, args.repeats = [2], 1
    args.kinds = args.kinds or (["mge"] if args.smoke else list(KINDS))
    if args.row:
        kind, lanes, formulation = args.row
        execution = Execution(formulation, usable_cores(), lanes)
        print(json.dumps(measure_row(kind, execution, args.batches, args.batches[0],
                                     args.repeats, args.smoke)))
        return
    memory_buckets = (1, 2) if args.smoke else (1, 8)
    print(heading(args.smoke), flush=True)
    if not args.memory_table:
        rows = []
        for kind, execution in executions(args.kinds, args.lanes, args.formulation):
            print(f"measuring {kind} ({execution.lanes}, {execution.formulation})",
                  file=sys.stderr, flush=True)
            rows.append(run_row(kind, execution, args))
        print("\n" + timing_table(rows, args.batches), flush=True)
    if args.memory_table or args.smoke:
        print("\n" + memory_table(args.kinds, args.smoke, memory_buckets))


if __name__ == "__main__":
    main()
