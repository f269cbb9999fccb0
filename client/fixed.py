"""`FixedParameters`: a client seen through some of its parameters, the others held fixed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from client.model import ModelDescription
from client.protocol import CallStats, Evaluation, as_points


class FixedParameters:
    """Wraps a `Client` so that only the parameters not in `fixed` are free.

    `log_evidence`, `evaluate`, `value_and_grad` and `model.prior_transform` take and return the
    free parameters only (in the model's order), so the wrapper plugs into every sampler adapter.
    """

    def __init__(self, client: Any, fixed: Mapping[str, float]) -> None:
        full = client.model
        unknown = sorted(set(fixed) - set(full.parameter_names))
        if unknown:
            raise KeyError(f"model {full.name} has no parameters {unknown}")
        self.client = client
        self.fixed = dict(fixed)
        self._free = np.array([name not in fixed for name in full.parameter_names])
        self._template = np.array([fixed.get(name, np.nan) for name in full.parameter_names])
        self.model: ModelDescription = full.restricted(
            [name for name in full.parameter_names if name not in fixed]
        )

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    def expand(self, theta: Any) -> np.ndarray:
        """(n, P_free) or (P_free,) free values to (n, P) full parameter vectors."""
        free = as_points(theta, self.model.n_params)
        full = np.repeat(self._template[None, :], len(free), axis=0)
        full[:, self._free] = free
        return full

    def evaluate(self, theta: Any, gradient: bool = False) -> Evaluation:
        evaluation = self.client.evaluate(self.expand(theta), gradient)
        if gradient:
            return Evaluation(evaluation.log_evidence, evaluation.gradient[:, self._free],
                              evaluation.status)
        return evaluation

    def log_evidence(self, theta: Any) -> np.ndarray:
        return self.evaluate(theta).log_evidence

    def value_and_grad(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        evaluation = self.evaluate(theta, gradient=True)
        return evaluation.log_evidence, evaluation.gradient
