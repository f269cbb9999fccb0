"""Fit the Hubble image of SDSS J1430+4105 (SLACS) with the MGE model, nautilus and the service.

    python examples/fit_slacs1430_mge.py            # 2x2-binned image (0.10"/pixel), minutes
    python examples/fit_slacs1430_mge.py --bin 1    # native 0.05"/pixel: ~4x the pixels and time
    python examples/fit_slacs1430_mge.py --data DIR # the FITS files from elsewhere

The Hubble images are not in this repository. The example reads `image.fits` (or `data.fits`),
`noise_map.fits` and `psf.fits` from `--data`, by default `../shared/data/slacs/slacs1430+4105`
beside the repository (the project's shared data, with a README on their provenance). They are
those of the public PyAutoLens workspace (`dataset/slacs/slacs1430+4105/` of the GitHub repository
Jammy2211/autolens_workspace); copy that directory anywhere and pass it with `--data`.

The FITS files carry no pixel scale. The PyAutoLens workspace loads this image at 0.03"/pixel;
this example uses 0.05"/pixel, because:
- the PSF's FWHM is 1.45 pixels: 0.073" at 0.05"/pixel, which is HST's diffraction limit at
  814 nm (1.03 lambda / D = 0.072"); at 0.03"/pixel it would be 0.044", sharper than the
  telescope can image;
- SLACS J2303+1422, from the same survey and with a PSF of the same width in pixels (1.53), matches
  its published Einstein radius only at 0.05"/pixel;
- at 0.03"/pixel the MGE model's best fit is an Einstein radius of 0.89" (29.7 pixels), at
  0.05"/pixel 1.49" (the same ring), against the published 1.5" (Bolton et al. 2008).
`--pixel-scale 0.03` runs the workspace's scale. By default the image is binned 2x2 (noise added in
quadrature, PSF binned the same way, both cropped symmetrically so the centre stays on a pixel
centre) to fit on a CPU in minutes.

Needs the samplers extra: `pip install -e ".[samplers]"` in the repository. Progress bars (stderr)
show the service's compilation and the likelihood calls; the picture goes to ./slacs1430_fit.png
unless `--out` says otherwise (examples/fit_slacs1430_mge.png is the committed picture of a run).

Priors are the service's, except the source centre: a real source need not lie within 0.1" of the
lens centre (the published default), so it gets Uniform(-0.4, 0.4) here.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import _support
import numpy as np

from client import Client

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "slacs" / "slacs1430+4105"
PIXEL_SCALE = 0.05  # arcsec per native pixel (see the module docstring)
PUBLISHED_EINSTEIN_RADIUS = 1.5  # arcsec, Bolton et al. 2008
SOURCE_CENTRE_BOUND = 0.4


def fits_files(directory: Path) -> dict[str, Path]:
    """The image, noise map and PSF in `directory`, or SystemExit saying where to get them."""
    image = next((directory / n for n in ("image.fits", "data.fits") if (directory / n).is_file()),
                 directory / "image.fits")
    files = {"image": image, "noise_map": directory / "noise_map.fits", "psf": directory / "psf.fits"}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise SystemExit(
            f"no SLACS J1430+4105 images: {', '.join(missing)} not found. They are not in this "
            "repository; copy dataset/slacs/slacs1430+4105/ of the public PyAutoLens workspace "
            "(Jammy2211/autolens_workspace on GitHub) and pass it with --data DIR")
    return files


def binned_dataset(directory: Path, factor: int, pixel_scale: float, path: Path) -> Path:
    """The FITS images in `directory` binned `factor` x `factor` into an .npz the service loads;
    `pixel_scale` is the native one (arcsec)."""
    from astropy.io import fits

    data, noise, psf = (fits.getdata(file).astype(np.float64)
                        for file in fits_files(directory).values())

    def crop(image: np.ndarray) -> np.ndarray:
        # Keep a multiple of `factor` whose centre pixel is the centre of a binned pixel.
        size = (image.shape[0] // factor) * factor
        size -= (size // factor + 1) % 2 * factor  # an odd number of binned pixels
        start = (image.shape[0] - size) // 2
        return image[start:start + size, start:start + size]

    def bin_sum(image: np.ndarray) -> np.ndarray:
        n = image.shape[0] // factor
        return image.reshape(n, factor, n, factor).sum(axis=(1, 3))

    np.savez(path, data=bin_sum(crop(data)) / factor**2,
             noise_map=np.sqrt(bin_sum(crop(noise) ** 2)) / factor**2, psf=bin_sum(crop(psf)),
             pixel_scale=pixel_scale * factor)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service serving --model (default: start one)")
    parser.add_argument("--model", default="slacs1430-mge")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="directory of image.fits (or data.fits), noise_map.fits, psf.fits "
                        "(default: ../shared/data/slacs/slacs1430+4105 beside the repository)")
    parser.add_argument("--bin", type=int, default=2, help="bin the image N x N (1: native)")
    parser.add_argument("--pixel-scale", type=float, default=PIXEL_SCALE,
                        help="native arcsec per pixel (see the module docstring)")
    parser.add_argument("--mask-radius", type=float, default=3.0)
    parser.add_argument("--lens-gaussians", type=int, default=30)
    parser.add_argument("--source-gaussians", type=int, default=12)
    parser.add_argument("--n-live", type=int, default=400)
    parser.add_argument("--n-eff", type=int, default=2000)
    parser.add_argument("--f-live", type=float, default=0.01)
    parser.add_argument("--timeout-minutes", type=float, default=np.inf)
    parser.add_argument("--out", type=Path, default=Path("slacs1430_fit.png"),
                        help="the picture (default: slacs1430_fit.png in the current directory)")
    args = parser.parse_args()

    if args.bin == 1:
        fits_files(args.data)
        dataset = {"dataset": str(args.data), "pixel_scale": args.pixel_scale}
    else:
        path = Path(tempfile.gettempdir()) / f"slacs1430_{args.pixel_scale}_bin{args.bin}.npz"
        dataset = {"dataset": str(binned_dataset(args.data, args.bin, args.pixel_scale, path))}
    spec = {"name": args.model, "kind": "mge", **dataset, "mask_radius": args.mask_radius,
            "settings": {"lens_gaussians": args.lens_gaussians,
                         "source_gaussians": args.source_gaussians}}
    server = (_support.service(spec, (1, 8, 32), Path("/tmp/lensserve-example-slacs.log"))
              if args.url is None else contextlib.nullcontext(args.url))
    with server as url:
        fit(url, spec, args)


def fit(url: str, spec: dict, args: argparse.Namespace) -> None:
    import nautilus

    with Client(url, args.model) as client:
        model = client.model
        print(f"fitting all {model.n_params} parameters of {model.dataset}", flush=True)
        centre = [model.index("source.bulge.centre_0"), model.index("source.bulge.centre_1")]

        def prior_transform(u: np.ndarray) -> np.ndarray:
            theta = model.prior_transform(u)
            theta[..., centre] = SOURCE_CENTRE_BOUND * (2 * u[..., centre] - 1)
            return theta

        before = _support.served_batches(url)
        started = time.monotonic()
        with _support.progress("nautilus: likelihood calls", "pt") as bar:
            sampler = nautilus.Sampler(prior_transform, _support.Counted(client, bar).log_evidence,
                                       n_dim=model.n_params, n_live=args.n_live, n_batch=128,
                                       vectorized=True, pass_dict=False, seed=0)
            sampler.run(f_live=args.f_live, n_eff=args.n_eff, timeout=args.timeout_minutes * 60,
                        verbose=False)
        seconds = time.monotonic() - started
        mean, sigma, best = _support.posterior_moments(sampler)

        _support.print_table(["parameter", "posterior", "best fit"], [
            [name, f"{m:+.4f} +- {s:.4f}", f"{b:+.4f}"]
            for name, m, s, b in zip(model.parameter_names, mean, sigma, best, strict=True)
        ])
        _support.run_summary(seconds, sampler, client, url, before)
        radius, radius_sigma = mean[model.index("lens.mass.einstein_radius")], \
            sigma[model.index("lens.mass.einstein_radius")]
        offset = radius / PUBLISHED_EINSTEIN_RADIUS - 1
        print(f"Einstein radius {radius:.3f} +- {radius_sigma:.3f} arcsec (pixel scale "
              f"{model.dataset['pixel_scale']:.2f}\"/px, {model.dataset['masked_pixels']} pixels); "
              f"published ~{PUBLISHED_EINSTEIN_RADIUS}\": {100 * offset:+.1f}% "
              f"({'within' if abs(offset) <= 0.05 else 'NOT within'} 5%)")
        with _support.progress("rendering the picture (the fit in-process)"):
            _plot(spec, best, args)


def _plot(spec: dict, theta: np.ndarray, args: argparse.Namespace) -> None:
    from likelihood import ModelSettings, build_model, load_imaging

    dataset = load_imaging(spec["dataset"], pixel_scale=spec.get("pixel_scale"),
                           mask_radius=args.mask_radius)
    model = build_model(dataset, "mge", ModelSettings(lens_gaussians=args.lens_gaussians,
                                                      source_gaussians=args.source_gaussians))
    _support.plot_fit(model, theta, args.out, "SLACS J1430+4105, MGE, nautilus via lensserve")


if __name__ == "__main__":
    main()
