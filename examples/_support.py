"""What both example fits share: a service subprocess, progress bars, posterior summaries, the
table, the picture.

The fits go through the service with `client`; only the picture uses `likelihood` in-process (to
render the model image and the source at the best fit), which is why examples run where the
service's package is installed (`pip install -e ".[samplers]"`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

from service.environment import set_default_environment

ROOT = Path(__file__).resolve().parents[1]
# A progress bar is redrawn at least this often (seconds), even while nothing advances it.
REDRAW_S = 5.0

# The picture's in-process fit runs as the service computes: its XLA and thread settings, and
# float64 (the examples ran in JAX's default float32, and a picture came out NaN, its panels empty).
set_default_environment()
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_value(value) -> str:
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


@contextlib.contextmanager
def service(model: dict, buckets: Sequence[int], log: Path) -> Iterator[str]:
    """`lensserve serve` in a subprocess on a free loopback port serving `model`; yields its URL."""
    port = free_port()
    settings = {"buckets": list(buckets), "max_wait_ms": 2.0, "gradient": False,
                "max_request_points": 1024, "max_queue_points": 4096}
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
        config.write("".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items()))
        config.write("[[models]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in model.items()))
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--config", config.name, "--port",
             str(port)], stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_until_compiled(process, url, model["name"], log)
        print(f"service ready in {time.monotonic() - started:.0f} s (log: {log})", flush=True)
        yield url
    finally:
        process.terminate()
        process.wait(60)
        os.unlink(config.name)


def wait_until_compiled(process: subprocess.Popen, url: str, name: str, log: Path,
                        timeout: float = 1800) -> None:
    """Wait, with a progress bar of compiled buckets, until model `name` has every bucket."""
    deadline = time.monotonic() + timeout
    with progress(f"starting the service ({name}): buckets compiled", "bucket") as bar, \
            httpx.Client(base_url=url, timeout=10) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited during start-up; see its log, {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready after {timeout:.0f} s; see {log}")
            try:
                described = http.get(f"/v1/models/{name}").json()
                bar.total = len(described["buckets"])
                bar.update(len(described["compiled_buckets"]) - bar.n)
                if described["state"] == "ready":
                    bar.refresh()
                    return
                if described["state"].startswith("failed"):
                    raise RuntimeError(f"the service could not compile {name}: {described['state']}")
            except httpx.TransportError:
                pass  # not listening yet: importing and building the model
            time.sleep(0.5)


@contextlib.contextmanager
def progress(description: str, unit: str | None = None) -> Iterator[tqdm]:
    """A tqdm bar (on stderr) that is redrawn every `REDRAW_S` seconds even while nothing advances
    it, e.g. while nautilus trains its networks between batches of likelihood calls: its elapsed
    time shows that a long step is still running. Without `unit` it shows the elapsed time only."""
    style = {"unit": unit} if unit else {"bar_format": "{desc}: {elapsed}"}
    with tqdm(desc=description, mininterval=1.0, dynamic_ncols=True, **style) as bar:
        stop = threading.Event()

        def redraw() -> None:
            while not stop.wait(REDRAW_S):
                bar.refresh()

        redrawing = threading.Thread(target=redraw, name="progress-redraw", daemon=True)
        redrawing.start()
        try:
            yield bar
        finally:
            stop.set()
            redrawing.join()


class Counted:
    """A likelihood source (a `Client` or `FixedParameters`) whose `log_evidence` advances a
    progress bar by the points it evaluates and shows the best value so far; for the samplers."""

    def __init__(self, source, bar: tqdm) -> None:
        self.model = source.model
        self._source = source
        self._bar = bar
        self._best = -np.inf

    def log_evidence(self, theta) -> np.ndarray:
        values = self._source.log_evidence(theta)
        self._best = max(self._best, float(np.max(values, initial=-np.inf)))
        self._bar.set_postfix_str(f"best log-evidence {self._best:.2f}", refresh=False)
        self._bar.update(len(values))
        return values


def served_batches(url: str) -> tuple[float, float]:
    """(points, batches) the service has dispatched, from its Prometheus metrics."""
    found = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        for key in found:
            if line.startswith(f"lensserve_batch_size_points_{key}{{"):
                found[key] += float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def posterior_moments(sampler) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of a nautilus posterior, and its best point."""
    points, log_w, log_l = sampler.posterior()
    weights = np.exp(log_w - log_w.max())
    mean = np.average(points, axis=0, weights=weights)
    sigma = np.sqrt(np.average((points - mean) ** 2, axis=0, weights=weights))
    return mean, sigma, points[np.argmax(log_l)]


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def run_summary(seconds: float, sampler, client, url: str, before: tuple[float, float]) -> None:
    after = served_batches(url)
    stats = client.stats
    served_points, batches = after[0] - before[0], after[1] - before[1]
    print_table(["quantity", "value"], [
        ["wall time of the fit", f"{seconds:.0f} s"],
        ["likelihood calls (points)", f"{stats.points} (nautilus n_like {sampler.n_like})"],
        ["sampler calls (vectorized)", stats.calls],
        ["mean points per sampler call", f"{stats.mean_points_per_call:.1f}"],
        ["HTTP requests / retries", f"{stats.requests} / {stats.retries}"],
        ["service batches", int(batches)],
        ["mean service batch size", f"{served_points / max(batches, 1):.1f}"],
        ["log-evidence (nautilus log Z)", f"{sampler.log_z:.2f}"],
        ["effective sample size", f"{sampler.n_eff:.0f}"],
    ])


def plot_fit(model, theta: np.ndarray, path: Path, title: str) -> dict[str, np.ndarray]:
    """Data, model, normalised residuals and the source reconstruction at `theta`, to `path`;
    returns the four panels (NaN outside the mask only). A fit that is not finite inside the mask
    is an error, not a picture with empty panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from likelihood.light import gaussian_basis_images, mge_sigmas

    fit = model.fit(theta)
    mask = model.grids.mask
    rows, cols = np.nonzero(mask)
    crop = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    data = np.where(mask, model.dataset.data, np.nan)[crop]
    image = np.where(mask, fit["model_image"], np.nan)[crop]
    residuals = np.where(mask, fit["normalized_residuals"], np.nan)[crop]

    # The source plane: the source MGE with its solved intensities, around its centre.
    centre, ell_comps = theta[11:13], theta[13:15]
    half = 0.6
    axis = np.linspace(-half, half, 121)
    y, x = np.meshgrid(centre[0] - axis, centre[1] + axis, indexing="ij")
    sigmas = mge_sigmas(model.dataset.mask_radius, model.settings.source_gaussians)
    basis = np.asarray(gaussian_basis_images(np.stack([y.ravel(), x.ravel()], -1), centre,
                                             ell_comps, sigmas))
    source = (basis @ fit["amplitudes"][-len(sigmas):]).reshape(y.shape)
    chi_squared_per_pixel = fit["terms"]["chi_squared"] / mask.sum()
    inside = np.isfinite(data)
    panels = {"data": data, "model": image, "normalised residuals": residuals, "source": source}
    broken = [name for name, values in panels.items()
              if not np.isfinite(values[inside] if values.shape == inside.shape else values).all()]
    if broken or not np.isfinite(chi_squared_per_pixel):
        raise FloatingPointError(f"the fit at {theta.tolist()} is not finite ({', '.join(broken)}, "
                                 f"chi^2 per pixel {chi_squared_per_pixel}); no picture saved")

    extent = np.array([cols.min() - mask.shape[1] / 2, cols.max() - mask.shape[1] / 2,
                       mask.shape[0] / 2 - rows.max(), mask.shape[0] / 2 - rows.min()])
    extent = extent * model.dataset.pixel_scale
    figure, axes = plt.subplots(1, 4, figsize=(17, 4.3))
    limits = np.nanpercentile(data, [1, 99.5])
    panels = [
        (data, "data", dict(vmin=limits[0], vmax=limits[1], cmap="inferno"), extent),
        (image, "model", dict(vmin=limits[0], vmax=limits[1], cmap="inferno"), extent),
        (residuals, "normalised residuals", dict(vmin=-4, vmax=4, cmap="RdBu_r"), extent),
        (source, "source reconstruction (source plane)", dict(cmap="inferno"),
         [centre[1] - half, centre[1] + half, centre[0] - half, centre[0] + half]),
    ]
    for ax, (values, name, style, box) in zip(axes, panels, strict=True):
        shown = ax.imshow(values, origin="upper", extent=box, **style)
        ax.set_title(name)
        ax.set_xlabel("x [arcsec]")
        figure.colorbar(shown, ax=ax, fraction=0.046)
    axes[0].set_ylabel("y [arcsec]")
    figure.suptitle(f"{title}   chi^2 / pixel = {chi_squared_per_pixel:.2f}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"saved {path} (chi^2 per pixel {chi_squared_per_pixel:.2f})")
    return panels
