"""Shared helpers for the parity tests against values recorded from PyAutoLens.

Records: tests/data/parity_<dataset>_<kind>.json, written by benchmarks/parity/reference.py from the
parameter vectors in benchmarks/parity/params_<dataset>_<kind>.json. Every record file of a kind is
one parametrization of that kind's parity test: the production fiducial (default ModelSettings),
compiled once and evaluated at every recorded vector.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from likelihood import ModelSettings, build_model, load_imaging

DATA = Path(__file__).parents[1] / "data"
SHARED = Path(__file__).parents[3] / "shared" / "data"

# Our Inversion field -> the reference's name in the records' per-term values.
TERMS = {
    "chi_squared": "chi_squared",
    "regularization_term": "regularization_term",
    "log_det_curvature_regularization": "log_det_curvature_reg_matrix_term",
    "log_det_regularization": "log_det_regularization_matrix_term",
    "noise_normalization": "noise_normalization",
}


def recorded(kind: str) -> list[Path]:
    return sorted(DATA.glob(f"parity_*_{kind}.json"))


def dataset_of(record: dict):
    """The recorded dataset path: absolute, or relative to the repository or shared/ data."""
    path = Path(record["dataset"])
    candidates = [path, Path(__file__).parents[2] / path, SHARED / "slacs" / path.name]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        return None
    return load_imaging(found, pixel_scale=record["pixel_scale"], mask_radius=record["mask_radius"])


def evaluate_record(record: dict, settings: ModelSettings | None = None):
    """[(inversion, point), ...] at every recorded point, one compilation for all of them.

    A loop over one jitted function, not `vmap`: on the 2-core CPU the batched Delaunay record
    (4 points) took 1.4x as long and 2.8x the memory (4.6 GB) of the loop.
    """
    import jax

    imaging = dataset_of(record)
    settings = dataclasses.replace(settings or ModelSettings(),
                                   mass=record.get("mass", "isothermal"))
    model = build_model(imaging, record["kind"], settings)
    inversion = jax.jit(model.inversion)
    rows = []
    for point in record["points"]:
        theta = np.array([point["parameters"][n] for n in model.parameter_names])
        rows.append((inversion(theta), point))
    return rows


def assert_matches_record(inversion, point, rtol: float = 1e-6, atol: float = 1e-6):
    """The log-evidence within `rtol` of the reference's (jitted) value, and every recorded term
    within rtol (or `atol` absolute, for terms near zero), so a failure names the term."""
    terms = point["terms"]
    if "total_linear_params" in terms:
        assert inversion.amplitudes.shape[0] == terms["total_linear_params"]
    for ours, theirs in TERMS.items():
        np.testing.assert_allclose(float(getattr(inversion, ours)), terms[theirs], rtol=rtol,
                                   atol=atol, err_msg=f"{ours} at {point['parameters']}")
    log_evidence = float(inversion.log_evidence)
    assert np.isfinite(log_evidence)
    np.testing.assert_allclose(log_evidence, point["log_evidence"], rtol=rtol, atol=0,
                               err_msg=f"log_evidence at {point['parameters']}")


def record_parity(path: Path) -> None:
    """Check every point of one record file (skips when its dataset is not on this machine)."""
    import pytest

    record = json.loads(path.read_text())
    if dataset_of(record) is None:
        pytest.skip(f"dataset {record['dataset']} is not on this machine")
    for inversion, point in evaluate_record(record):
        assert_matches_record(inversion, point)
