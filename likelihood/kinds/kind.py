"""What a model kind provides to `build_model`."""

from collections.abc import Callable
from typing import NamedTuple


class Kind(NamedTuple):
    """parameters: ((name, prior), ...) in vector order; inversion(model, theta) -> Inversion;
    notes: what a user should know (e.g. smoothness); prepare(dataset, grids, settings,
    convolver, execution) -> the kind's static precomputation, stored as `model.static` (None if
    not needed)."""

    parameters: tuple
    inversion: Callable
    notes: str
    prepare: Callable | None = None
