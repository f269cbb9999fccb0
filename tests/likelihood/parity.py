"""Shared helpers for the parity tests against values recorded from PyAutoLens."""

from pathlib import Path

import numpy as np

from likelihood import ModelSettings, build_model, load_imaging

DATA = Path(__file__).parents[1] / "data"
SHARED = Path(__file__).parents[3] / "shared" / "data"


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
    """[(ours, theirs), ...] of every term at every recorded point."""
    import jax

    imaging = dataset_of(record)
    model = build_model(imaging, record["kind"], settings)
    inversion = jax.jit(model.inversion)
    rows = []
    for point in record["points"]:
        theta = np.array([point["parameters"][n] for n in model.parameter_names])
        rows.append((inversion(theta), point))
    return rows
