"""Fit the embedded simulated lens with nautilus through the service; compare with the truth.

    python examples/fit_default_nautilus.py                 # starts a service, fits, plots
    python examples/fit_default_nautilus.py --url http://127.0.0.1:8000 --model mge

The embedded dataset's lens light and source are Sersic profiles; the MGE model approximates them
with Gaussians (chi^2 per pixel ~ 1.05 with 40 + 12 Gaussians inside 2.2"). The defaults are reduced
from the production fiducial (60 + 20 Gaussians, 3.5" mask) so that a fit takes minutes on a CPU.
With `--free mass` only the lens-mass parameters are sampled and the light ellipses are held at the
truth (a quicker check of the mass recovery). Needs the samplers extra: `pip install -e
".[samplers]"` in the repository. Progress bars (stderr) show the service's compilation and the
likelihood calls; the picture goes to ./default_fit.png unless `--out` says otherwise
(examples/fit_default_nautilus.png is the committed picture of a full run).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import _support
import numpy as np

from client import Client, FixedParameters
from client.samplers import nautilus_sampler

MASS = ("lens.mass.centre_0", "lens.mass.centre_1", "lens.mass.ell_comps_0",
        "lens.mass.ell_comps_1", "lens.mass.einstein_radius", "lens.shear.gamma_1",
        "lens.shear.gamma_2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--model", default="default-mge")
    parser.add_argument("--mask-radius", type=float, default=2.2)
    parser.add_argument("--lens-gaussians", type=int, default=40)
    parser.add_argument("--source-gaussians", type=int, default=12)
    parser.add_argument("--free", choices=("all", "mass"), default="all")
    parser.add_argument("--n-live", type=int, default=400)
    parser.add_argument("--n-eff", type=int, default=2000)
    parser.add_argument("--f-live", type=float, default=0.01)
    parser.add_argument("--timeout-minutes", type=float, default=np.inf)
    parser.add_argument("--out", type=Path, default=Path("default_fit.png"),
                        help="the picture (default: default_fit.png in the current directory)")
    args = parser.parse_args()

    spec = {"name": args.model, "kind": "mge", "mask_radius": args.mask_radius,
            "settings": {"lens_gaussians": args.lens_gaussians,
                         "source_gaussians": args.source_gaussians}}
    with _support.service(spec, (1, 8, 32), Path("/tmp/lensserve-example-default.log")) \
            if args.url is None else contextlib.nullcontext(args.url) as url:
        fit(url, args)


def fit(url: str, args: argparse.Namespace) -> None:
    from likelihood import default_truth

    truth = default_truth()
    with Client(url, args.model) as client:
        names = client.model.parameter_names
        source = client if args.free == "all" else FixedParameters(
            client, {n: truth[n] for n in names if n not in MASS})
        free = source.model.parameter_names
        print(f"fitting {len(free)} free parameters of {client.model.dataset}", flush=True)
        before = _support.served_batches(url)
        started = time.monotonic()
        with _support.progress("nautilus: likelihood calls", "pt") as bar:
            sampler = nautilus_sampler(_support.Counted(source, bar), n_live=args.n_live,
                                       n_batch=128, seed=0)
            sampler.run(f_live=args.f_live, n_eff=args.n_eff, timeout=args.timeout_minutes * 60,
                        verbose=False)
        seconds = time.monotonic() - started
        mean, sigma, _ = _support.posterior_moments(sampler)

        rows, mass_ok = [], True
        for name, m, s in zip(free, mean, sigma, strict=True):
            pull = abs(m - truth[name]) / s if s > 0 else np.inf  # s = 0: a short run's one point
            mass_ok &= pull < 3 or name not in MASS
            rows.append([name, f"{truth[name]:+.4f}", f"{m:+.4f} +- {s:.4f}", f"{pull:.2f}",
                         "mass" if name in MASS else ""])
        _support.print_table(["parameter", "truth", "posterior", "|pull| sigma", ""], rows)
        _support.run_summary(seconds, sampler, client, url, before)
        print(f"every lens-mass parameter within 3 sigma of the truth: {mass_ok}")

        shown = mean if args.free == "all" else source.expand(mean)[0]  # the posterior mean
        with _support.progress("rendering the picture (the fit in-process)"):
            _plot(shown, args)


def _plot(theta: np.ndarray, args: argparse.Namespace) -> None:
    import dataclasses

    from likelihood import ModelSettings, build_model, default_dataset

    dataset = dataclasses.replace(default_dataset(), mask_radius=args.mask_radius)
    model = build_model(dataset, "mge", ModelSettings(lens_gaussians=args.lens_gaussians,
                                                      source_gaussians=args.source_gaussians))
    _support.plot_fit(model, theta, args.out, "embedded dataset, MGE, nautilus via lensserve")


if __name__ == "__main__":
    main()
