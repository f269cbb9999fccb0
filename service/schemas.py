"""Request and response schemas of the HTTP API (pydantic: validated at the boundary, in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, field_validator

# The documentation's example point: one a served model answers, of the `mge` kind (15 parameters)
# that the README's examples use.
EXAMPLE_MGE_POINT = [0.0, 0.0, 0.05, 0.08, 0.0, 0.0, 0.05, 0.12, 1.6, 0.01, 0.02, 0.1, 0.05, 0.1, 0.1]


class LogEvidenceRequest(BaseModel):
    """Points to evaluate: `parameters` is (n, P), one row per point (a flat list is one point).

    Values must be numbers: strict, so "0.05" or true is refused rather than read as 0.05 or 1.
    """

    model_config = ConfigDict(extra="forbid")

    parameters: list[list[StrictFloat]] = Field(
        description="(n, P) parameter vectors in the order of the model's parameter_names; "
        "numbers only",
        examples=[[EXAMPLE_MGE_POINT]],
    )
    gradient: StrictBool = Field(
        default=False, description="also return d log-evidence / d parameters"
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _one_point_as_row(cls, value: Any) -> Any:
        # Any list without lists in it, so a bad value in a flat point is named by its column.
        if isinstance(value, list) and value and not any(isinstance(v, list) for v in value):
            return [value]
        return value


class LogEvidenceResponse(BaseModel):
    """Answers row-aligned with the request. Non-finite numbers travel as null (JSON)."""

    log_evidence: list[float | None] = Field(description="(n,) log-evidence, null if not finite")
    gradient: list[list[float | None] | None] | None = Field(
        default=None, description="(n, P) gradient when asked for; a row is null if not computed"
    )
    status: list[str] = Field(
        description='per point: "ok", "invalid: <reason>" (not computed) or '
        '"non_finite: <what>" (computed, not finite)'
    )


class ModelInfo(BaseModel):
    """A served model, as `likelihood.LensModel.describe()` tells it, plus serving state."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    parameter_names: list[str]
    priors: dict[str, dict[str, Any]] = Field(
        description="the prior of each parameter in the vector (the model spec's, else the default)")
    fixed: dict[str, float] = Field(
        default_factory=dict, description="parameters held fixed at these values (not in the vector)")
    dataset: dict[str, Any]
    ready: bool = Field(description="the model answers (at least its smallest bucket is compiled)")
    state: str = Field(description="`compiling` (no bucket yet), `serving` (some buckets), "
                       "`ready` (every bucket) or `failed: <reason>`")
    gradient: bool = Field(description="value-and-gradient requests are accepted")
    buckets: list[int] = Field(description="this model's batch sizes")
    compiled_buckets: list[int] = Field(description="the batch sizes compiled so far")


class Limits(BaseModel):
    """Sizes a client must respect (larger requests get 413)."""

    max_request_points: int
    max_body_bytes: int
    max_batch_size: int
    buckets: list[int]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: Limits


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong, in words")
