"""Kind `delaunay`: every log-evidence term of a small model against PyAutoLens.

Small model: tests/data/delaunay_components.npz (benchmarks/parity/delaunay_components.py); the
production fiducial's records are checked with every kind's in test_parity.py.
"""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from likelihood import ModelSettings, build_model, default_dataset
from tests.likelihood.parity import TERMS


def assert_terms_match(inversion, terms, log_evidence):
    assert inversion.amplitudes.shape[0] == terms["total_linear_params"]
    for ours, theirs in TERMS.items():
        np.testing.assert_allclose(
            getattr(inversion, ours), terms[theirs], rtol=1e-6, atol=1e-6, err_msg=ours
        )
    np.testing.assert_allclose(inversion.log_evidence, log_evidence, rtol=1e-6)


def test_small_model_parity():
    record = np.load(Path(__file__).parents[1] / "data" / "delaunay_components.npz")
    dataset = dataclasses.replace(default_dataset(), mask_radius=float(record["mask_radius"]))
    overlay = int(record["overlay"])
    settings = ModelSettings(delaunay_overlay=(overlay, overlay),
                             lens_gaussians=int(record["lens_gaussians"]))
    inversion = jax.jit(build_model(dataset, "delaunay", settings).inversion)
    for key in (k for k in record.files if k.endswith("_terms")):
        terms = json.loads(str(record[key]))
        point = key.split("_")[0]
        assert_terms_match(inversion(record[f"{point}_parameters"]), terms, terms["log_evidence"])


