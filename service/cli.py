"""`lensserve` command line: one subcommand per function, dispatched by argparse."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.environment import set_default_environment

set_default_environment()  # before service.offline imports JAX, NumPy and SciPy, which read it

from service.offline import add_evaluate_arguments, add_simulate_arguments  # noqa: E402


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
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(run=_evaluate)

    simulate = commands.add_parser(
        "simulate", help="simulate an HST-like lens dataset (the embedded default's recipe)")
    add_simulate_arguments(simulate)
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
