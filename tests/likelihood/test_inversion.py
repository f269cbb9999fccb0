"""The inversion's column order: held mesh columns solved last change nothing but the cost."""

import numpy as np

from likelihood import inversion
from likelihood.inversion import dense_system, held_last, solve_and_evidence


def test_held_last_moves_the_held_regularized_columns_behind_the_kept_ones():
    keep = np.array([False, True, True, False, True, True, False])
    np.testing.assert_array_equal(held_last(keep, 5), [1, 2, 4, 0, 3, 5, 6])
    assert held_last(np.array([True, True, False, True, False]), 3) is None


def test_the_evidence_is_the_same_whether_held_columns_are_moved_or_not(monkeypatch):
    rng = np.random.default_rng(0)
    regularized, light, pixels = 12, 4, 200
    rows = rng.normal(size=(regularized + light, pixels))
    noise = 0.5 + rng.random(pixels)
    data = (rng.random(regularized + light) @ rows) * noise + noise * rng.normal(size=pixels)
    difference = np.eye(regularized) - np.eye(regularized, k=1)
    regularization = 0.3 * difference.T @ difference + 1e-2 * np.eye(regularized)
    keep = np.ones(regularized + light, bool)
    keep[[0, 5, 7]] = False

    def inverted():
        return solve_and_evidence(dense_system(rows, data, noise), regularization, regularized,
                                  keep, data, noise)

    moved = inverted()
    monkeypatch.setattr(inversion, "held_last", lambda keep, n_regularized: None)
    in_place = inverted()
    assert np.all(np.asarray(moved.amplitudes)[~keep] == 0.0)
    for field in ("amplitudes", "chi_squared", "regularization_term",
                  "log_det_curvature_regularization", "log_det_regularization", "log_evidence"):
        ours, expected = np.asarray(getattr(moved, field)), np.asarray(getattr(in_place, field))
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12, err_msg=field)
