"""`lensserve` command line: one subcommand per function, dispatched by argparse.

Parsing imports nothing heavy: `lensserve --help` and each subcommand's `--help` answer without
loading JAX, NumPy or `likelihood` (which take seconds); a subcommand imports what it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.environment import set_default_environment

# `likelihood.dataset.DEFAULT_MASK_RADIUS`, for the help text only (importing it loads NumPy and
# JAX); tests/service/test_cli_help.py checks that the two agree.
DEFAULT_MASK_RADIUS_TEXT = "3.5"


def _serve(args: argparse.Namespace) -> int:
    from service.serve import serve

    serve(args.config, host=args.host, port=args.port)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from service.offline import evaluate

    return evaluate(args)


def _simulate(args: argparse.Namespace) -> int:
    from service.offline import simulate

    return simulate(args)


def _register(args: argparse.Namespace) -> int:
    import json
    import os

    from client import Client, ServiceError

    try:
        settings = None if args.settings is None else json.loads(args.settings)
    except ValueError as error:
        raise SystemExit(f"--settings must be JSON: {error}") from None
    try:
        client = Client.register(
            args.url, args.dataset, kind=args.kind, pixel_scale=args.pixel_scale,
            mask_radius=args.mask_radius, name=args.name, settings=settings, mass=args.mass,
            buckets=args.buckets, token=args.token or os.environ.get("LENSSERVE_TOKEN"),
            wait=None if args.no_wait else args.wait)
        with client:
            info = client.model.info
    except (ServiceError, ValueError) as error:
        raise SystemExit(f"lensserve register: {error}") from None
    print(json.dumps({key: info.get(key) for key in (
        "name", "kind", "state", "parameter_names", "registration")}, indent=2))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from service.fit.command import fit

    return fit(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensserve", description="A warm, batching strong-lens likelihood service."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="compile the configured models and serve them over HTTP",
        description="Settings come from LENSSERVE_* environment variables and --config; "
        "--host/--port override both.",
    )
    serve.add_argument("--config", help="TOML settings file")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.set_defaults(run=_serve)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a model in-process and print its log-evidence as JSON")
    _add_dataset_arguments(evaluate)
    evaluate.add_argument("--model", default="mge", help="model kind (default mge)")
    evaluate.add_argument("--mass", default="isothermal", choices=("isothermal", "power_law"),
                          help="lens mass profile, with external shear (default isothermal; "
                          "power_law adds lens.mass.slope)")
    evaluate.add_argument("--params", help="JSON file {parameter name: value}; required with "
                          "--dataset (default: the embedded dataset's true parameters)")
    evaluate.add_argument("--gradient", action="store_true", help="also print the gradient")
    evaluate.set_defaults(run=_evaluate)

    simulate = commands.add_parser(
        "simulate", help="simulate an HST-like lens dataset (the embedded default's recipe)")
    simulate.add_argument("--output", default="simulated.npz", help="output .npz path")
    simulate.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    simulate.set_defaults(run=_simulate)

    register = commands.add_parser(
        "register", help="register a dataset as a new model of a running service",
        description="POST /v1/models: the dataset is stored in the service's registry and "
        "served until deleted, across restarts. Prints the model's name and state as JSON.")
    register.add_argument("dataset", help="a .npz file or a directory of FITS files")
    register.add_argument("--url", default="http://127.0.0.1:8000",
                          help="the service (default http://127.0.0.1:8000)")
    register.add_argument("--kind", default="mge", help="model kind (default mge)")
    register.add_argument("--name", help="its name (default: the service makes one up)")
    register.add_argument("--pixel-scale", type=float,
                          help="arcsec per pixel (default: the .npz file's)")
    register.add_argument("--mask-radius", type=float,
                          help=f"circular mask radius in arcsec (default {DEFAULT_MASK_RADIUS_TEXT})")
    register.add_argument("--mass", choices=("isothermal", "power_law"),
                          help="lens mass profile (default isothermal)")
    register.add_argument("--settings", help='likelihood.ModelSettings fields as JSON, e.g. '
                          '\'{"lens_gaussians": 30}\'')
    register.add_argument("--buckets", type=int, nargs="+", help="its batch sizes (default: "
                          "the service's)")
    register.add_argument("--token", help="the service's token (default: $LENSSERVE_TOKEN)")
    register.add_argument("--wait", type=float, default=600.0,
                          help="seconds to wait for it to serve (default 600)")
    register.add_argument("--no-wait", action="store_true", help="return once it is registered")
    register.set_defaults(run=_register)

    from service.fit.arguments import add_fit_arguments

    fit = commands.add_parser(
        "fit", help="fit a lens in stages (MGE source, pixelized source, power-law mass) with "
        "nautilus through the service",
        description="Three nested-sampling stages, each through the service: (1) MGE source + "
        "isothermal + shear, broad priors; (2) a pixelized source, priors from stage 1; (3) "
        "power-law + shear, priors from stage 2. Results, pictures and report.md go to --output; "
        "a fit there resumes after its last finished stage.")
    add_fit_arguments(fit)
    fit.set_defaults(run=_fit)
    return parser


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="a .npz file or a directory of FITS files "
                        "(default: the embedded dataset)")
    parser.add_argument("--pixel-scale", type=float, help="arcsec per pixel (FITS datasets)")
    parser.add_argument("--mask-radius", type=float,
                        help=f"circular mask radius in arcsec (default {DEFAULT_MASK_RADIUS_TEXT})")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_default_environment()  # before the subcommand imports JAX, NumPy and SciPy, which read it
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
