"""What `GET /v1/models` tells a client: the model's parameters, priors, dataset and the limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from client.priors import Prior, prior_from_dict


@dataclass(frozen=True)
class Limits:
    """Sizes the service accepts per request (larger ones get 413) and its batch ladder."""

    max_request_points: int
    max_body_bytes: int
    max_batch_size: int
    buckets: tuple[int, ...]

    @classmethod
    def from_json(cls, limits: Mapping[str, Any]) -> Limits:
        return cls(int(limits["max_request_points"]), int(limits["max_body_bytes"]),
                   int(limits["max_batch_size"]), tuple(limits["buckets"]))


@dataclass(frozen=True)
class ModelDescription:
    """A served model: parameter names (PyAutoLens paths) in vector order and their priors.

    `info` holds the whole published description (dataset summary, settings, notes, ...);
    `fixed` the parameters the service holds fixed ({name: value}, not in the vector).
    """

    name: str
    kind: str
    parameter_names: tuple[str, ...]
    priors: tuple[Prior, ...]
    reference_parameters: np.ndarray | None
    dataset: Mapping[str, Any]
    gradient: bool
    info: Mapping[str, Any] = field(repr=False)
    fixed: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, info: Mapping[str, Any]) -> ModelDescription:
        names = tuple(info["parameter_names"])
        reference = info.get("reference_parameters")
        return cls(
            name=info["name"], kind=info["kind"], parameter_names=names,
            priors=tuple(prior_from_dict(info["priors"][name]) for name in names),
            reference_parameters=None if reference is None else np.asarray(reference, float),
            dataset=dict(info.get("dataset", {})), gradient=bool(info.get("gradient", False)),
            info=dict(info), fixed=dict(info.get("fixed", {})),
        )

    @property
    def n_params(self) -> int:
        return len(self.parameter_names)

    def index(self, name: str) -> int:
        try:
            return self.parameter_names.index(name)
        except ValueError:
            raise KeyError(
                f"model {self.name} has no parameter {name!r}; it has {', '.join(self.parameter_names)}"
            ) from None

    def prior_transform(self, u: np.ndarray) -> np.ndarray:
        """Unit cube to parameters: (P,) or (n, P) in [0, 1] -> the same shape, prior by prior."""
        u = np.asarray(u, dtype=np.float64)
        if u.ndim not in (1, 2) or u.shape[-1] != self.n_params:
            raise ValueError(
                f"prior_transform takes (P,) or (n, P) with P = {self.n_params}, got shape {u.shape}"
            )
        if not np.all((u >= 0) & (u <= 1)):
            raise ValueError("prior_transform takes unit-cube coordinates; some lie outside [0, 1]")
        return np.stack([prior.from_unit(u[..., i]) for i, prior in enumerate(self.priors)], -1)

    def restricted(self, free: Sequence[str]) -> ModelDescription:
        """The same model seen through the `free` parameters only (see `client.FixedParameters`)."""
        keep = [self.index(name) for name in free]
        reference = self.reference_parameters
        return ModelDescription(
            name=self.name, kind=self.kind, parameter_names=tuple(free),
            priors=tuple(self.priors[i] for i in keep),
            reference_parameters=None if reference is None else reference[keep],
            dataset=self.dataset, gradient=self.gradient, info=self.info, fixed=self.fixed,
        )
