"""Stage breakdown of one evaluation, for benchmarks/likelihood.py: the library's own functions,
each timed alone on the arguments that one evaluation gave it.

A stage is a function of the library that a kind's evaluation calls, named by its module and the
name under which the caller looks it up (`STAGES`). One jitted evaluation at theta runs with each
stage wrapped so that every call's arguments are recorded (traced values through a host
callback); then each stage is jitted alone and timed on what it was given (the median of
`repeats`, summed over its calls). Nothing of the pipeline is re-implemented here: a library
change that renames or stops calling a stage fails (`RuntimeError`), and so does the smoke test
(tests/benchmarks/). Fusion across stages is lost, so their sum only approximates one evaluation;
both are printed. Nested stages run inside the stage above them and are left out of the sum.
"""

from __future__ import annotations

import importlib
import statistics
import time
from contextlib import ExitStack
from typing import NamedTuple
from unittest import mock

import jax


class Stage(NamedTuple):
    """`module.name` as its caller looks it up ("{kind}": the module of the kind's inversion,
    likelihood.kinds.mge or likelihood.kinds.pixelized);
    depth: 1 for a stage inside the one above it; optional: a stage the evaluation may not call;
    last: nothing after it is a stage, so the recording run returns zeros of its result's shapes
    instead of calling it (not compiling the solver there saves seconds)."""

    module: str
    name: str
    label: str
    depth: int = 0
    optional: bool = False
    last: bool = False


_LIGHT = Stage("{kind}", "weighted_lens_light_rows", "lens-light rows (MGE, FFT blurred)")
_MESH_SYSTEM = (
    Stage("{kind}", "mesh_and_light_system", "D, F of the mesh and lens-light columns"),
    # Called by the CPU's formulation only (likelihood.curvature).
    Stage("likelihood.curvature", "sparse_mesh_terms",
          "host kernel: F_mesh, mesh parts of D and of the mesh-light block", depth=1,
          optional=True),
)
# Every kind's inversion ends in likelihood.inversion.solve_and_evidence.
_SOLVE = (
    Stage("jax.numpy.linalg", "cholesky", "Cholesky of F + H (with H's when ln det H has no "
          "closed form)"),
    Stage("nnls", "solve_with_info", "NNLS given the factor", last=True),
)
STAGES = {
    "mge": (
        Stage("{kind}", "radii_squared", "ray tracing + elliptical radii of the support points"),
        Stage("{kind}", "weighted_columns",
              "Gaussians: over-sampled images + PSF (FFT) convolution"),
        Stage("{kind}", "dense_system", "normal equations D, F = B^T W B"),
        *_SOLVE,
    ),
    "rectangular": (
        Stage("{kind}", "source_plane", "ray tracing + border relocation"),
        Stage("likelihood.mesh.rectangular", "rectangular_mapping",
              "adaptive rectangular mesh: interpolation weights"),
        _LIGHT, *_MESH_SYSTEM,
        Stage("likelihood.regularization.constant", "regularization_matrix",
              "regularization H (Constant)"),
        *_SOLVE,
    ),
    "delaunay": (
        Stage("{kind}", "source_plane", "ray tracing + border relocation (vertices and pixels)"),
        Stage("likelihood.mesh.delaunay", "delaunay_mesh",
              "Delaunay mesh: triangulation, barycentric weights, split points"),
        Stage("likelihood.mesh.delaunay", "triangulate",
              "host callback: qhull, point location (round trip)", depth=1),
        Stage("likelihood.mesh.delaunay", "Delaunay", "qhull (scipy, host)", depth=2),
        Stage("likelihood.regularization.constant_split", "constant_split_regularization",
              "regularization H (ConstantSplit)"),
        _LIGHT, *_MESH_SYSTEM,
        *_SOLVE,
    ),
}


def median_ms(function, arguments, repeats: int) -> float:
    """Median ms of `function(*arguments)` over `repeats` calls after one warm-up (compiling)."""
    jax.block_until_ready(function(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


class Call(NamedTuple):
    """One recorded call: its function, its flattened (args, kwargs), and which leaves were traced
    (those the replay passes to `jit` as arguments; the rest are static)."""

    function: object
    tree: object
    leaves: list
    traced: tuple


def record_calls(model, theta, stages) -> list[list[Call]]:
    """The calls of each stage during one jitted evaluation of `model` at `theta`."""
    calls = [[] for _ in stages]

    def recording(function, found, last):
        def record(*args, **kwargs):
            leaves, tree = jax.tree.flatten((args, kwargs))
            traced = tuple(i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.core.Tracer))

            def store(*values):
                filled = list(leaves)
                for i, value in zip(traced, values, strict=True):
                    filled[i] = value
                found.append(Call(function, tree, filled, traced))

            if traced:
                jax.debug.callback(store, *(leaves[i] for i in traced))
            else:  # a host function, called with NumPy values
                store()
            if last:
                shapes = jax.eval_shape(lambda: function(*args, **kwargs))
                return jax.tree.map(lambda shape: jax.numpy.zeros(shape.shape, shape.dtype), shapes)
            return function(*args, **kwargs)

        return record

    with ExitStack() as patches:
        for stage, found in zip(stages, calls, strict=True):
            name = _module_name(stage, model)
            module = importlib.import_module(name)
            if not hasattr(module, stage.name):
                raise RuntimeError(f"stage {stage.label!r}: {name}.{stage.name} is gone")
            patches.enter_context(mock.patch.object(
                module, stage.name, recording(getattr(module, stage.name), found, stage.last)))
        jax.block_until_ready(jax.jit(model.log_evidence)(theta))
        jax.effects_barrier()  # every recording callback has run
    return calls


def _module_name(stage: Stage, model) -> str:
    from likelihood.kinds import KINDS

    return stage.module.format(kind=KINDS[model.kind].inversion.__module__)


def replay_ms(call: Call, repeats: int) -> float:
    """Median ms of the recorded call alone, jitted unless it took no traced value."""

    def run(*values):
        leaves = list(call.leaves)
        for i, value in zip(call.traced, values, strict=True):
            leaves[i] = value
        args, kwargs = jax.tree.unflatten(call.tree, leaves)
        result = call.function(*args, **kwargs)
        return [leaf for leaf in jax.tree.leaves(result) if isinstance(leaf, jax.Array)]

    if not call.traced:
        return median_ms(run, (), repeats)
    return median_ms(jax.jit(run), tuple(call.leaves[i] for i in call.traced), repeats)


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(label, ms)] of the kind's stages (indented by depth; a stage called n > 1 times says so),
    then the sum of the outermost ones. A stage that is not optional and that the evaluation
    never called is an error."""
    stages = STAGES.get(model.kind, _SOLVE)
    rows, total = [], 0.0
    for stage, calls in zip(stages, record_calls(model, theta, stages), strict=True):
        if not calls:
            if stage.optional:
                continue
            raise RuntimeError(f"stage {stage.label!r}: {_module_name(stage, model)}.{stage.name} "
                               f"was not called by one `{model.kind}` evaluation")
        ms = sum(replay_ms(call, repeats) for call in calls)
        label = "  " * stage.depth + ("of which " if stage.depth else "") + stage.label
        rows.append((label + (f" ({len(calls)} calls)" if len(calls) > 1 else ""), ms))
        total += ms if stage.depth == 0 else 0.0
    rows.append(("sum of the stages (nested ones excluded)", total))
    return rows
