"""`Client` and `AsyncClient` against a real server: same numbers as in-process, clear errors."""

import asyncio
import math

import httpx
import numpy as np
import pytest

from client import AsyncClient, Client, FixedParameters, ServiceError
from tests.client.conftest import MAX_REQUEST_POINTS, TOKEN, points_near


@pytest.fixture(scope="module")
def points(served) -> np.ndarray:
    return points_near(served.truth, served.model, 5, seed=3)


@pytest.fixture(scope="module")
def reference(served, points) -> np.ndarray:
    return served.reference(points)


@pytest.mark.parametrize("transport", ["msgpack", "json"])
def test_log_evidence_equals_in_process(served, points, reference, transport):
    with Client(served.url, "mge", token=TOKEN, transport=transport) as client:
        np.testing.assert_allclose(client.log_evidence(points), reference, rtol=1e-10)
        one = client.log_evidence(points[0])
        assert one.shape == (1,)
        np.testing.assert_allclose(one, reference[:1], rtol=1e-10)


@pytest.mark.parametrize("transport", ["msgpack", "json"])
def test_value_and_grad_equals_in_process(served, points, transport):
    values, grads = served.reference_value_and_grad(points[:2])
    with Client(served.url, "mge", token=TOKEN, transport=transport) as client:
        got_values, got_grads = client.value_and_grad(points[:2])
    np.testing.assert_allclose(got_values, values, rtol=1e-10)
    np.testing.assert_allclose(got_grads, grads, rtol=1e-8, atol=1e-8 * np.abs(grads).max())


def test_batches_larger_than_the_service_accepts_are_chunked(served):
    many = np.repeat(served.truth[None], 2 * MAX_REQUEST_POINTS + 3, axis=0)
    many[:, served.model.parameter_names.index("lens.mass.einstein_radius")] = np.linspace(
        1.4, 1.8, len(many))
    with Client(served.url, "mge", token=TOKEN) as client:
        assert client.limits.max_request_points == MAX_REQUEST_POINTS
        values = client.log_evidence(many)
        assert client.stats.requests == 1 + 3  # the model list, then three chunks
        assert client.stats.calls == 1 and client.stats.points == len(many)
    np.testing.assert_allclose(values[[0, 20, -1]], served.reference(many[[0, 20, -1]]), rtol=1e-10)


def test_a_client_chunk_limit_is_respected(served, points, reference):
    with Client(served.url, "mge", token=TOKEN, max_request_points=2) as client:
        np.testing.assert_allclose(client.log_evidence(points), reference, rtol=1e-10)
        assert client.stats.requests == 1 + 3


@pytest.mark.parametrize("transport", ["msgpack", "json"])
def test_unphysical_points_are_minus_inf_with_a_status(served, points, transport):
    bad = points[:2].copy()
    bad[1, served.model.parameter_names.index("lens.mass.einstein_radius")] = -1.0
    with Client(served.url, "mge", token=TOKEN, transport=transport) as client:
        evaluation = client.evaluate(bad)
    assert evaluation.status[0] == "ok"
    assert evaluation.status[1].startswith("invalid:") and "einstein_radius" in evaluation.status[1]
    assert evaluation.log_evidence[1] == -math.inf and np.isfinite(evaluation.log_evidence[0])
    assert evaluation.ok.tolist() == [True, False]


def test_model_description(served):
    with Client(served.url, "mge", token=TOKEN) as client:
        model = client.model
    assert model.name == "mge" and model.kind == "mge" and model.gradient
    assert model.n_params == 15 and model.index("lens.mass.einstein_radius") == 8
    assert model.dataset["masked_pixels"] == int(served.model.grids.mask.sum())


def test_bad_input_gives_clear_errors(served):
    with Client(served.url, "mge", token=TOKEN) as client:
        with pytest.raises(ValueError, match=r"shape \(15,\) or \(n, 15\)"):
            client.log_evidence(np.zeros(14))
        with pytest.raises(ValueError, match=r"shape \(15,\) or \(n, 15\)"):
            client.log_evidence(np.zeros((2, 3, 15)))
        with pytest.raises(ValueError, match=r"theta\[1, 8\] is nan"):
            client.log_evidence(np.vstack([served.truth, np.where(np.arange(15) == 8, np.nan, 1)]))
        with pytest.raises(ValueError, match="no points"):
            client.log_evidence(np.zeros((0, 15)))
        with pytest.raises(ValueError, match="numbers"):
            client.log_evidence([["a"] * 15])
    with pytest.raises(ValueError, match="transport"):
        Client(served.url, "mge", transport="xml")


def test_service_errors_are_clear(served):
    with Client(served.url, "nope", token=TOKEN) as client:
        with pytest.raises(ServiceError, match="no model named 'nope'; it serves mge") as error:
            client.log_evidence(served.truth)
        assert error.value.status == 404
    with Client(served.url, "mge", token="wrong") as client:
        with pytest.raises(ServiceError, match="token") as error:
            _ = client.model
        assert error.value.status == 401


def test_fixed_parameters(served, points, reference):
    with Client(served.url, "mge", token=TOKEN) as client:
        free = ["lens.mass.einstein_radius", "lens.shear.gamma_1"]
        fixed = FixedParameters(client, {n: v for n, v in zip(
            served.model.parameter_names, points[0], strict=True) if n not in free})
        assert fixed.model.parameter_names == tuple(free)
        value = fixed.log_evidence(points[0, [8, 9]])
        np.testing.assert_allclose(value, reference[:1], rtol=1e-10)
        _, grad = fixed.value_and_grad(points[0, [8, 9]])
        assert grad.shape == (1, 2)


def test_async_client_equals_in_process_and_batches_concurrent_calls(served, points, reference):
    async def main():
        async with AsyncClient(served.url, "mge", token=TOKEN) as client:
            model = await client.describe()
            assert client.model is model
            single = await asyncio.gather(*(client.log_evidence(p) for p in points))
            batch = await client.log_evidence(points)
            _, grads = await client.value_and_grad(points[:1])
            return np.concatenate(single), batch, grads

    single, batch, grads = asyncio.run(main())
    np.testing.assert_allclose(single, reference, rtol=1e-10)
    np.testing.assert_allclose(batch, reference, rtol=1e-10)
    assert grads.shape == (1, 15)


def test_async_client_needs_describe_before_model(served):
    client = AsyncClient(served.url, "mge", token=TOKEN)
    with pytest.raises(RuntimeError, match="describe"):
        _ = client.model
    asyncio.run(client.aclose())


def test_gradients_need_a_service_that_computes_them(served, tiny_queue):
    with Client(tiny_queue, "mge", token=TOKEN) as client:
        with pytest.raises(ValueError, match="gradient"):
            client.value_and_grad(served.truth)
    # The service refuses such a request too, rather than failing on the device.
    response = httpx.post(
        f"{tiny_queue}/v1/models/mge/log-evidence", headers={"Authorization": f"Bearer {TOKEN}"},
        json={"parameters": served.truth.tolist(), "gradient": True},
    )
    assert response.status_code == 422 and "gradient = true" in response.json()["detail"]
