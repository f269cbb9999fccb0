"""`lensserve fit`'s command: the stages in order, a local service or --url, the report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

from client.pipeline import Stage, stages
from service.fit.stage import SamplerSettings, finished_summary, run_stage

DEFAULT_DATASET = "default"


def model_name(stage: Stage) -> str:
    """The name a locally started service gives a stage's model."""
    return f"fit-{stage.kind}" + ("" if stage.mass == "isothermal" else f"-{stage.mass}")


def stage_spec(stage: Stage, args: argparse.Namespace) -> dict:
    """The `ModelSpec` fields of `stage`'s model on the fit's dataset and settings."""
    from service.fit.local import MGE_BUCKETS, PIXELIZED_BUCKETS

    settings = {"lens_gaussians": args.lens_gaussians}
    if stage.kind == "mge":
        settings["source_gaussians"] = args.source_gaussians
    elif stage.kind == "rectangular":
        settings["mesh_shape"] = [args.mesh_size, args.mesh_size]
    else:
        settings["delaunay_overlay"] = [args.overlay_size, args.overlay_size]
    dataset = None if args.dataset == DEFAULT_DATASET else str(Path(args.dataset).resolve())
    return {"name": model_name(stage), "kind": stage.kind, "dataset": dataset,
            "pixel_scale": args.pixel_scale, "mask_radius": args.mask_radius, "mass": stage.mass,
            "settings": settings,
            "buckets": list(MGE_BUCKETS if stage.kind == "mge" else PIXELIZED_BUCKETS)}


class InProcess:
    """Builds a served model in-process (for the pictures) from its description: the fit's
    dataset, the served settings, kind and fixed parameters. The dataset is loaded once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._dataset = None

    def dataset(self):
        if self._dataset is None:
            from likelihood import default_dataset, load_imaging
            from likelihood.dataset import DEFAULT_MASK_RADIUS

            radius = self._args.mask_radius or DEFAULT_MASK_RADIUS
            self._dataset = (default_dataset(radius) if self._args.dataset == DEFAULT_DATASET
                             else load_imaging(self._args.dataset, self._args.pixel_scale, radius))
        return self._dataset

    def __call__(self, description):
        import jax

        jax.config.update("jax_enable_x64", True)  # as the service computes
        from likelihood import ModelSettings, build_model

        dataset = self.dataset()
        served = description.dataset.get("masked_pixels")
        here = dataset.summary()["masked_pixels"]
        if served is not None and served != here:
            raise ValueError(f"the served model {description.name} has {served} masked pixels, "
                             f"the dataset given here {here}: the pictures need the same dataset "
                             "and --mask-radius as the service")
        settings = ModelSettings(**{
            key: tuple(value) if isinstance(value, list) else value
            for key, value in description.info.get("settings", {}).items()})
        return build_model(dataset, description.kind, settings, fixed=dict(description.fixed))


def served_names(url: str, token: str | None) -> set[str]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{url}/v1/models", headers=headers, timeout=30)
    answer.raise_for_status()
    return {model["name"] for model in answer.json()["models"]}


def say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def fit(args: argparse.Namespace) -> int:
    from likelihood.dataset import DatasetError
    from service.fit.local import local_service
    from service.fit.report import write_report

    in_process = InProcess(args)
    try:  # before a service starts on it: a bad dataset is the user's error, said in one line
        in_process.dataset()
    except DatasetError as error:
        raise SystemExit(f"lensserve fit: {error}") from None
    pipeline = stages(args.source)[:args.stages]
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    names = {stage.name: model_name(stage) for stage in pipeline}
    if args.models is not None:
        given = args.models.split(",")
        if len(given) != len(pipeline):
            raise SystemExit(f"--models names {len(pipeline)} models, one per stage; got {given}")
        names = dict(zip(names, given, strict=True))
    settings = SamplerSettings(
        n_live=args.n_live, n_batch=args.n_batch, n_eff=args.n_eff, f_live=args.f_live,
        max_calls=args.max_calls, timeout_s=None if args.timeout_minutes is None
        else 60 * args.timeout_minutes, seed=args.seed)
    truth = None
    if args.dataset == DEFAULT_DATASET:
        from likelihood import default_truth

        truth = {**default_truth(), "lens.mass.slope": 2.0}  # the isothermal's slope

    to_run = [stage for stage in pipeline if finished_summary(output / stage.name) is None]
    for stage in pipeline:
        if stage not in to_run:
            say(f"{stage.name}: finished before ({output / stage.name / 'summary.json'}), "
                "not run again", args.quiet)
    server = contextlib.nullcontext(args.url)
    if args.url is None and to_run:
        server = local_service([stage_spec(stage, args) for stage in to_run], output, args.quiet)
    summaries = {}
    with server as url:
        available = served_names(url, args.token) if to_run else set()
        for stage in pipeline:
            summary = finished_summary(output / stage.name)
            if summary is None and names[stage.name] not in available:
                say(f"{stage.name}: the service has no model {names[stage.name]!r}; skipped "
                    "(and every later stage)", args.quiet)
                break
            if summary is None:
                previous = summaries.get(stage.previous)
                summary = run_stage(stage, url, names[stage.name], previous, output / stage.name,
                                    settings, in_process, token=args.token, quiet=args.quiet,
                                    truth=truth)
                say(f"{stage.name}: log Z {summary['log_z']:.2f}, chi^2/pixel "
                    f"{summary['chi_squared_per_pixel']:.3f}, {summary['likelihood_calls']} calls, "
                    f"{summary['wall_time_s']:.0f} s", args.quiet)
            summaries[stage.name] = summary
    report = write_report(output, pipeline, summaries, truth,
                          {**vars(args), "sampler": dataclasses.asdict(settings)})
    say(f"report: {report}", args.quiet)
    return 0
