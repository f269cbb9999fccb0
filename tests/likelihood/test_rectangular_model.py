"""Kind `rectangular` (rank and kernel transforms): the mesh's outer ring held at exactly zero,
and a finite gradient where traced points tie."""

import numpy as np
import pytest

from likelihood.kinds.pixelized import source_plane
from tests.likelihood.conftest import SMALL_SETTINGS, truth_vector


@pytest.fixture(params=["rectangular", "rectangular-kernel"])
def rectangular(request, small_models):
    return small_models(request.param)


def outer_ring(shape: tuple[int, int]) -> np.ndarray:
    """(rows * cols,) bool: the mesh pixels on its outer ring."""
    ring = np.ones(shape, bool)
    ring[1:-1, 1:-1] = False
    return ring.ravel()


def test_the_outer_ring_is_held_at_exactly_zero(rectangular):
    ring = outer_ring(SMALL_SETTINGS.mesh_shape)
    assert ring.sum() == 44  # 12 x 12
    for theta in np.vstack([truth_vector(rectangular.model), rectangular.points]):
        amplitudes = np.asarray(rectangular.inversion(theta).amplitudes)[:len(ring)]
        assert np.all(amplitudes[ring] == 0.0)
        assert np.any(amplitudes[~ring] > 0.0)


def test_gradient_finite_when_many_traced_points_coincide(rectangular):
    """A round lens centred on the grid: traced points tie exactly by symmetry (the seed's case)."""
    model = rectangular.model
    theta = truth_vector(model)
    # Mass centred on a pixel, axes along the pixel grid, no shear: mirrored pixels trace to
    # exactly equal coordinates. (ell_comps = (0, 0) would add the Isothermal's r = 0, q = 1
    # point, a separate singularity of the mass profile.)
    theta[4:8] = [0.0, 0.0, 0.0, 0.1]
    theta[9:11] = 0.0
    core = model.core
    _, points = source_plane(core.source, core.grids.grid, core.mass, core.layout.values(theta))
    traced = np.sort(np.asarray(points), axis=0)
    assert np.mean(np.diff(traced, axis=0) == 0.0) > 0.3
    assert np.all(np.isfinite(np.asarray(rectangular.value_and_grad(theta)[1])))
