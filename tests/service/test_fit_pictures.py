"""The fit's pictures of a rectangular source (the smoke run of `test_fit.py` draws the Delaunay and
MGE sources): the mesh's cells on the source plane, and a finite picture."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset, default_truth
from likelihood.kinds.pixelized import source_plane
from likelihood.mesh.rectangular import rectangular_mapping
from service.fit.pictures import rectangle_edges, render_fit


@pytest.fixture(scope="module")
def model():
    settings = ModelSettings(lens_gaussians=2, mesh_shape=(9, 9))
    return build_model(default_dataset(1.2), "rectangular", settings)


def test_the_rectangles_cover_the_traced_pixels_in_order(model):
    theta = np.array([{**default_truth(), "source.pixelization.coefficient": 1.0}[name]
                      for name in model.parameter_names])
    _, points = source_plane(model.core.source, model.grids.grid, model.core.mass,
                             model.layout.values(theta))
    points = np.asarray(points)
    y_edges, x_edges = rectangle_edges(points, model.core.source.mesh)
    for edges, axis in ((y_edges, 0), (x_edges, 1)):
        assert edges.shape == (8,)
        assert np.all(np.diff(edges) > 0)
        assert edges[0] == pytest.approx(points[:, axis].min())
        assert edges[-1] == pytest.approx(points[:, axis].max())
    # The rank mesh spreads the points evenly: each inner column holds about 1/(S - 3) of them.
    counts = np.histogram(points[:, 1], bins=x_edges)[0]
    assert counts[1:-1].min() > 0.5 * len(points) / 6

    # Each point lies in the drawn cell of the mesh pixel it gives most weight (the nearest node):
    # flat pixel k is the node (g_y, g_x) = (S - k // S, k % S), its cell edges g - 1 and g.
    mapping = rectangular_mapping(points, points, (9, 9), "rank")
    nearest = np.asarray(mapping.indices)[np.arange(len(points)),
                                          np.argmax(np.asarray(mapping.weights), axis=1)]
    g_y, g_x = 9 - nearest // 9, nearest % 9
    # Points on a cell boundary (t = 1/2) may fall either side: the CDF is inverted on a sampled axis.
    tolerance = 1e-4  # arcsec
    assert np.all(y_edges[g_y - 1] - tolerance <= points[:, 0])
    assert np.all(points[:, 0] <= y_edges[g_y] + tolerance)
    assert np.all(x_edges[g_x - 1] - tolerance <= points[:, 1])
    assert np.all(points[:, 1] <= x_edges[g_x] + tolerance)


def test_a_rectangular_fit_picture_is_finite(model, tmp_path):
    theta = np.array([{**default_truth(), "source.pixelization.coefficient": 1.0}[name]
                      for name in model.parameter_names])
    terms = render_fit(model, theta, tmp_path / "fit.png", "rectangular")
    assert np.isfinite(terms["chi_squared_per_pixel"]) and terms["pixels"] == model.grids.mask.sum()
    pixels = matplotlib.image.imread(tmp_path / "fit.png")
    assert pixels.shape[0] > 100 and np.isfinite(pixels).all()
