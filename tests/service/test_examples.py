"""The OpenAPI request examples are points the served models answer ("Try it out" in /docs)."""

from __future__ import annotations

import httpx
import pytest

from likelihood import KINDS, build_model, default_dataset, default_truth
from service.schemas import EXAMPLE_MGE_POINT, EXAMPLE_PIXELIZED_POINT
from tests.service.conftest import AUTH


@pytest.mark.parametrize("kind", KINDS)
def test_the_example_point_is_the_embedded_truth_of_each_kind(kind):
    model = build_model(default_dataset(), kind)
    example = EXAMPLE_MGE_POINT if kind == "mge" else EXAMPLE_PIXELIZED_POINT
    truth = default_truth()
    expected = [truth.get(name, float(model.reference_parameters[i]))
                for i, name in enumerate(model.parameter_names)]
    assert example == expected
    assert model.invalid_reason(example) is None


@pytest.mark.timeout(600)  # the session's server may compile every bucket first
def test_every_documented_example_is_answered_as_its_summary_says(served):
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=60) as http:
        body = http.get("/openapi.json").json()["paths"]["/v1/models/{name}/log-evidence"]["post"]
        examples = body["requestBody"]["content"]["application/json"]["examples"]
        answers = {name: http.post("/v1/models/mge/log-evidence", json=example["value"])
                   for name, example in examples.items()}
    statuses = {name: answer.json().get("status") for name, answer in answers.items()}
    assert statuses.pop("one point") == ["ok"]
    assert statuses.pop("gradient") == ["ok", "ok"]  # the test server computes gradients
    assert statuses.pop("invalid point")[0].startswith("invalid: ")
    # The served model is an mge: the pixelized kinds' example has their 12 parameters.
    assert answers["pixelized"].status_code == 422
    assert "got 12 per point" in answers["pixelized"].json()["detail"]
    assert list(statuses) == ["pixelized"]
