"""`lensserve fit`'s arguments (argparse only: `lensserve fit --help` loads no NumPy or JAX)."""

from __future__ import annotations

import argparse


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    from service.cli import DEFAULT_MASK_RADIUS_TEXT

    parser.add_argument("dataset", metavar="DATASET",
                        help="a directory of FITS files, an .npz file, or 'default' (the embedded "
                        "simulated lens)")
    parser.add_argument("--pixel-scale", type=float, help="arcsec per pixel (FITS datasets)")
    parser.add_argument("--mask-radius", type=float, help="circular mask radius in arcsec "
                        f"(default {DEFAULT_MASK_RADIUS_TEXT})")
    parser.add_argument("--url", help="a running service (default: start one for this fit)")
    parser.add_argument("--token", help="the service's bearer token (with --url)")
    parser.add_argument("--models", help="with --url: the served models of the three stages, "
                        "comma-separated: mge + isothermal, the pixelized source + isothermal, "
                        "the pixelized source + power_law (default: the names a local service "
                        "gets, fit-mge,fit-delaunay,fit-delaunay-power_law)")
    parser.add_argument("--output", default="fit", help="results directory (default ./fit); "
                        "a fit there resumes after its last finished stage")
    parser.add_argument("--source", default="delaunay", choices=("delaunay", "rectangular"),
                        help="the pixelized source of stages 2 and 3 (default delaunay)")
    parser.add_argument("--stages", type=int, default=3, choices=(1, 2, 3),
                        help="run the first N stages only (default 3: all); a later run with "
                        "more resumes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    parser.add_argument("--n-live", type=int, default=400, help="nautilus live points (400)")
    parser.add_argument("--n-batch", type=int, default=128,
                        help="nautilus points per batch, one request each (128)")
    parser.add_argument("--n-eff", type=int, default=2000,
                        help="effective sample size each stage reaches (2000)")
    parser.add_argument("--f-live", type=float, default=0.01,
                        help="nautilus's exploration stopping fraction (0.01)")
    parser.add_argument("--max-calls", type=int, help="likelihood calls per stage at most")
    parser.add_argument("--timeout-minutes", type=float,
                        help="stop a stage's sampling after this long")
    parser.add_argument("--seed", type=int, default=0, help="nautilus's seed (0)")
    parser.add_argument("--lens-gaussians", type=int, default=30,
                        help="Gaussians of the lens light MGE (30)")
    parser.add_argument("--source-gaussians", type=int, default=12,
                        help="Gaussians of stage 1's source MGE (12)")
    parser.add_argument("--overlay-size", type=int, default=39,
                        help="the Delaunay source's N x N image-plane overlay (39)")
    parser.add_argument("--mesh-size", type=int, default=35,
                        help="the rectangular source's N x N mesh (35)")
