"""A stage's pictures: the fit at its best point, evaluated in-process with `likelihood` (the
service answers log-evidences only), and a corner plot of the mass parameters (matplotlib).

`fit.png`: data, model image, normalized residuals and the source reconstruction on its own mesh:
a Delaunay source as its triangles (linear within each, as the barycentric interpolation the
likelihood uses), a rectangular source as its rectangles (the adaptive mesh's cells mapped back to
the source plane through the inverse of its per-axis CDF), an MGE source as the image of its
Gaussians.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Points of the dense axis on which the rectangular mesh's CDF is inverted.
CDF_SAMPLES = 4001


def render_fit(model, theta: np.ndarray, path: Path, title: str) -> dict:
    """Save `fit.png`-style panels of `model` (a `likelihood.LensModel`) at `theta` (P,) to `path`;
    return the fit's terms with `chi_squared_per_pixel`. A fit that is not finite is an error."""
    fit = model.fit(theta)
    mask = model.grids.mask
    pixels = int(mask.sum())
    terms = {**fit["terms"], "chi_squared_per_pixel": fit["terms"]["chi_squared"] / pixels,
             "pixels": pixels}
    if not all(np.isfinite(value) for value in terms.values()):
        raise FloatingPointError(f"the fit at {theta.tolist()} is not finite: {terms}")

    rows, cols = np.nonzero(mask)
    crop = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    extent = model.dataset.pixel_scale * np.array([
        cols.min() - mask.shape[1] / 2, cols.max() + 1 - mask.shape[1] / 2,
        mask.shape[0] / 2 - rows.max() - 1, mask.shape[0] / 2 - rows.min()])
    data = np.where(mask, model.dataset.data, np.nan)[crop]
    image = np.where(mask, fit["model_image"], np.nan)[crop]
    residuals = np.where(mask, fit["normalized_residuals"], np.nan)[crop]

    figure, axes = plt.subplots(1, 4, figsize=(18, 4.4))
    limits = np.nanpercentile(data, [1, 99.5])
    for ax, values, name, style in (
        (axes[0], data, "data", dict(vmin=limits[0], vmax=limits[1], cmap="inferno")),
        (axes[1], image, "model image", dict(vmin=limits[0], vmax=limits[1], cmap="inferno")),
        (axes[2], residuals, "normalized residuals", dict(vmin=-4, vmax=4, cmap="RdBu_r")),
    ):
        shown = ax.imshow(values, origin="upper", extent=extent, **style)
        ax.set_title(name)
        ax.set_xlabel("x [arcsec]")
        figure.colorbar(shown, ax=ax, fraction=0.046)
    axes[0].set_ylabel("y [arcsec]")
    shown = draw_source(axes[3], model, theta, fit["amplitudes"])
    figure.colorbar(shown, ax=axes[3], fraction=0.046)
    axes[3].set_xlabel("x [arcsec] (source plane)")
    figure.suptitle(f"{title}   chi^2 / pixel = {terms['chi_squared_per_pixel']:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return terms


def draw_source(ax, model, theta: np.ndarray, amplitudes: np.ndarray):
    """Draw the source reconstruction of `model` at `theta` on `ax`; return the mappable."""
    if model.core.kind.pixelized:
        from likelihood.kinds.pixelized import source_plane

        source = model.core.source
        vertices, points = (None if v is None else np.asarray(v) for v in source_plane(
            source, model.grids.grid, model.core.mass, model.layout.values(np.asarray(theta))))
        values = np.asarray(amplitudes)[:source.pixels]
        if vertices is not None:
            shown = _draw_triangles(ax, vertices, values)
            ax.set_title(f"source: Delaunay mesh, {len(vertices)} vertices")
        else:
            shown = _draw_rectangles(ax, points, values, source.mesh)
            ax.set_title(f"source: rectangular mesh {source.mesh.shape[0]}x{source.mesh.shape[1]}")
        low, high = np.percentile(points, [0.5, 99.5], axis=0)
        pad = 0.05 * (high - low)
        ax.set_xlim(low[1] - pad[1], high[1] + pad[1])
        ax.set_ylim(low[0] - pad[0], high[0] + pad[0])
        ax.set_aspect("equal")
        return shown
    return _draw_mge_source(ax, model, theta, amplitudes)


def _draw_triangles(ax, vertices: np.ndarray, values: np.ndarray):
    from scipy.spatial import Delaunay

    triangles = Delaunay(vertices).simplices
    shown = ax.tripcolor(vertices[:, 1], vertices[:, 0], triangles, values, shading="gouraud",
                         cmap="inferno")
    ax.triplot(vertices[:, 1], vertices[:, 0], triangles, color="white", linewidth=0.15,
               alpha=0.5)
    return shown


def rectangle_edges(points: np.ndarray, mesh) -> tuple[np.ndarray, np.ndarray]:
    """The source-plane (y, x) edges of the adaptive rectangular mesh's cells that receive weight,
    (S - 1,) each: the cells about the mesh nodes g = 1 .. S - 2 (index space, see
    `likelihood.mesh.rectangular`), their edges at g +- 1/2 clipped to the data's range, mapped
    back through the inverse of the per-axis CDF u = (g - 1) / (S - 3)."""
    from likelihood.mesh.rectangular import unit_coordinates

    size = mesh.shape[0]
    edges_g = np.concatenate([[1.0], np.arange(1.5, size - 2, 1.0), [size - 2.0]])
    edges_u = (edges_g - 1) / (size - 3)
    queries = np.linspace(points.min(axis=0), points.max(axis=0), CDF_SAMPLES)  # (M, 2)
    cdf = np.asarray(unit_coordinates(points, queries, size, mesh.transform))
    return tuple(np.interp(edges_u, np.maximum.accumulate(cdf[:, d]), queries[:, d])
                 for d in range(2))


def _draw_rectangles(ax, points: np.ndarray, values: np.ndarray, mesh):
    size = mesh.shape[0]
    y_edges, x_edges = rectangle_edges(points, mesh)
    # Node (g_y, g_x) is the flat mesh pixel (S - g_y) S + g_x (the reference's `S - row`).
    g = np.arange(1, size - 1)
    grid = values[(size - g[:, None]) * size + g[None, :]]
    return ax.pcolormesh(x_edges, y_edges, grid, cmap="inferno", edgecolors="white",
                         linewidth=0.1)


def _draw_mge_source(ax, model, theta: np.ndarray, amplitudes: np.ndarray):
    from likelihood.light import gaussian_basis_images, mge_sigmas

    values = model.layout.values(np.asarray(theta))
    centre = np.array([values["source.bulge.centre_0"], values["source.bulge.centre_1"]])
    ell_comps = np.array([values["source.bulge.ell_comps_0"], values["source.bulge.ell_comps_1"]])
    half = 0.6
    axis = np.linspace(-half, half, 121)
    y, x = np.meshgrid(centre[0] - axis, centre[1] + axis, indexing="ij")
    sigmas = mge_sigmas(model.dataset.mask_radius, model.settings.source_gaussians)
    basis = np.asarray(gaussian_basis_images(np.stack([y.ravel(), x.ravel()], -1), centre,
                                             ell_comps, sigmas))
    image = (basis @ np.asarray(amplitudes)[-len(sigmas):]).reshape(y.shape)
    ax.set_title(f"source: MGE, {len(sigmas)} Gaussians")
    return ax.imshow(image, origin="upper", cmap="inferno",
                     extent=[centre[1] - half, centre[1] + half, centre[0] - half, centre[0] + half])


def corner_plot(names: Sequence[str], points: np.ndarray, log_weights: np.ndarray, path: Path,
                title: str, truth: dict[str, float] | None = None) -> None:
    """A corner plot of (n, len(names)) weighted posterior points: weighted histograms on the
    diagonal, 2-D weighted histograms below it; `truth` ({name: value}) marked if given."""
    weights = np.exp(log_weights - np.max(log_weights))
    n = len(names)
    figure, axes = plt.subplots(n, n, figsize=(1.9 * n + 1, 1.9 * n + 1), squeeze=False)
    ranges = [_weighted_range(points[:, i], weights, (truth or {}).get(name))
              for i, name in enumerate(names)]
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(points[:, i], bins=30, range=ranges[i], weights=weights, color="k",
                        histtype="step")
                ax.set_yticks([])
            else:
                ax.hist2d(points[:, j], points[:, i], bins=30, range=[ranges[j], ranges[i]],
                          weights=weights, cmap="Greys")
                if truth and names[i] in truth:
                    ax.axhline(truth[names[i]], color="tab:blue", linewidth=0.8)
            if truth and names[j] in truth:
                ax.axvline(truth[names[j]], color="tab:blue", linewidth=0.8)
            ax.tick_params(labelsize=6)
            if i == n - 1:
                ax.set_xlabel(names[j].removeprefix("lens."), fontsize=7)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i].removeprefix("lens."), fontsize=7)
            elif j > 0:
                ax.set_yticklabels([])
    figure.suptitle(title)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.94, wspace=0.08, hspace=0.08)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _weighted_range(values: np.ndarray, weights: np.ndarray, truth: float | None
                    ) -> tuple[float, float]:
    """The central 99.8% of the weighted values, widened to hold `truth` (if given)."""
    from client.pipeline import weighted_quantiles

    lo, hi = weighted_quantiles(values, weights, (0.001, 0.999))
    if truth is not None:
        lo, hi = min(lo, truth), max(hi, truth)
    if not hi > lo:
        lo, hi = lo - 1e-6, hi + 1e-6
    return float(lo), float(hi)
