"""End to end: a real uvicorn server, the real likelihood, a real HTTP client over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import httpx
import jax
import msgpack
import numpy as np
import pytest
from fastapi import FastAPI

from service.routes import log_evidence
from service.wire import MSGPACK, pack_array, unpack_array
from tests.service.conftest import AUTH, random_points

RADIUS = "lens.mass.einstein_radius"


def post(client: httpx.Client, points, *, gradient=False, fmt="json", model="mge"):
    return client.post(f"/v1/models/{model}/log-evidence", **_body(points, gradient, fmt))


def _body(points, gradient, fmt):
    if fmt == "json":
        return {"json": {"parameters": np.asarray(points).tolist(), "gradient": gradient}}
    content = msgpack.packb({"parameters": pack_array(np.asarray(points)), "gradient": gradient})
    return {"content": content, "headers": {"content-type": MSGPACK, "accept": MSGPACK}}


def answers(response: httpx.Response) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith(MSGPACK):
        body = msgpack.unpackb(response.content)
        gradient = None if body["gradient"] is None else unpack_array(body["gradient"])
        return unpack_array(body["log_evidence"]), gradient, body["status"]
    body = response.json()
    values = np.array([np.nan if v is None else v for v in body["log_evidence"]])
    gradient = body["gradient"]
    if gradient is not None:
        gradient = np.array([[np.nan] * 0 if row is None else row for row in gradient],
                            dtype=object)
    return values, gradient, body["status"]


def metric(client: httpx.Client, name: str, labels: str = "") -> float:
    text = client.get("/metrics").text
    pattern = rf"^{re.escape(name)}(\{{[^}}]*{re.escape(labels)}[^}}]*\}})? (\S+)$"
    return sum(float(m.group(2)) for m in re.finditer(pattern, text, flags=re.MULTILINE))


def test_models_are_described(served, client):
    body = client.get("/v1/models").json()
    (model,) = body["models"]
    assert model["name"] == "mge" and model["kind"] == "mge" and model["ready"]
    assert model["parameter_names"] == list(served.model.parameter_names)
    assert set(model["priors"]) == set(model["parameter_names"])
    assert model["dataset"]["mask_radius"] == 1.0
    assert body["limits"]["max_request_points"] == 64 and body["limits"]["buckets"] == [1, 2, 4, 8]
    assert model["buckets"] == [1, 2, 4, 8]
    assert model["execution"] == served.model.execution.describe()
    assert model["execution"]["lanes"] == "sequential"  # the CPU's default
    assert client.get("/v1/models/mge").json()["name"] == "mge"
    assert client.get("/v1/models/nope").status_code == 404
    assert "/v1/models/{name}/log-evidence" in client.get("/openapi.json").json()["paths"]


def test_the_fastapi_route_answers_as_the_fast_path(served, client):
    """`LogEvidenceFastPath` answers the route before FastAPI's router; the documented route alone,
    in an app without the middleware but with the server's state, gives the same answers."""
    routed_only = FastAPI()
    routed_only.include_router(log_evidence.router)
    routed_only.state = served.app.state

    async def through_router(requests):
        transport = httpx.ASGITransport(app=routed_only)
        async with httpx.AsyncClient(transport=transport, base_url="http://x", headers=AUTH) as http:
            return [await http.post(f"/v1/models/{model}/log-evidence", **body)
                    for model, body in requests]

    point = random_points(served.model, 2, seed=11)
    requests = [("mge", _body(point, False, "msgpack")), ("mge", _body(point, True, "json")),
                ("nope", _body(point, False, "json")), ("mge", {"json": {"parameters": "x"}})]
    for fast, routed in zip((client.post(f"/v1/models/{model}/log-evidence", **body)
                             for model, body in requests), asyncio.run(through_router(requests)),
                            strict=True):
        assert (routed.status_code, routed.headers["content-type"]) == (
            fast.status_code, fast.headers["content-type"])
        assert routed.content == fast.content


def test_many_concurrent_clients_each_get_their_own_answers(served, client):
    """64 clients x 20 requests, 1 to 5 points, JSON and msgpack: nothing lost or swapped."""
    rng = np.random.default_rng(1)
    plans = [
        [(random_points(served.model, int(rng.choice([1, 1, 1, 2, 3, 5])), 1000 * c + r),
          "json" if (c + r) % 2 else "msgpack") for r in range(20)]
        for c in range(64)
    ]
    batches_before = metric(client, "lensserve_batch_size_points_count")
    points_before = metric(client, "lensserve_batch_size_points_sum")

    async def one_client(plan):
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=120) as http:
            results = []
            for points, fmt in plan:
                response = await http.post("/v1/models/mge/log-evidence", **_body(points, False, fmt))
                results.append(answers(response))
            return results

    async def all_clients():
        return await asyncio.gather(*(one_client(plan) for plan in plans))

    results = asyncio.run(all_clients())
    for plan, client_results in zip(plans, results, strict=True):
        for (points, _), (values, gradient, status) in zip(plan, client_results, strict=True):
            assert status == ["ok"] * len(points) and gradient is None
            np.testing.assert_allclose(values, served.reference(points), rtol=1e-10, atol=0)
    batches = metric(client, "lensserve_batch_size_points_count") - batches_before
    points = metric(client, "lensserve_batch_size_points_sum") - points_before
    assert points == sum(len(p) for plan in plans for p, _ in plan)
    assert points / batches > 1.0, f"mean batch size {points / batches}"


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_an_unphysical_point_does_not_change_its_neighbours(served, client, fmt):
    good = random_points(served.model, 3, seed=7)
    bad = good[1].copy()
    bad[served.model.parameter_names.index(RADIUS)] = -1.0
    values, _, status = answers(post(client, [good[0], bad, good[1], good[2]], fmt=fmt))
    assert status[0] == status[2] == status[3] == "ok"
    assert status[1].startswith("invalid: ") and RADIUS in status[1]
    assert np.isnan(values[1])
    alone = np.array([answers(post(client, [p], fmt=fmt))[0][0] for p in good])
    np.testing.assert_allclose(values[[0, 2, 3]], alone, rtol=1e-12, atol=0)


def test_a_computed_nan_lane_leaves_the_other_lanes_bit_identical(served):
    """Straight at the engine (the service never sends such a point): lanes are independent."""
    engine = served.app.state.evaluator.engine
    points = random_points(served.model, 4, seed=11)
    clean, _ = engine.evaluate("mge", points, gradient=False)
    poisoned = points.copy()
    poisoned[1, :] = np.nan
    dirty, _ = engine.evaluate("mge", poisoned, gradient=False)
    assert not np.isfinite(dirty[1])
    assert np.array_equal(dirty[[0, 2, 3]], clean[[0, 2, 3]])


def test_gradients_match_in_process_autodiff(served, client):
    points = random_points(served.model, 3, seed=5)
    grad = jax.jit(jax.grad(served.model.log_evidence))
    for fmt in ("json", "msgpack"):
        values, gradient, status = answers(post(client, points, gradient=True, fmt=fmt))
        assert status == ["ok"] * 3
        expected = np.array([grad(p) for p in points])
        scale = np.abs(expected).max(axis=1, keepdims=True)  # entries ~1e-124 are round-off
        np.testing.assert_allclose(np.asarray(gradient, dtype=float), expected, rtol=1e-8,
                                   atol=1e-10 * scale.max())
        np.testing.assert_allclose(values, served.reference(points), rtol=1e-10)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"json": {"parameters": [[1.0] * 14]}}, 422, "takes 15 parameters"),
        ({"json": {"parameters": [[1.0] * 15, [1.0] * 14]}}, 422, "rectangular"),
        ({"content": b'{"parameters": [[NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]}',
          "headers": {"content-type": "application/json"}}, 422, "parameters[0][0] is nan"),
        ({"content": b'{"parameters": [[1, 2', "headers": {"content-type": "application/json"}},
         422, "Invalid JSON"),
        ({"content": msgpack.packb([1, 2]), "headers": {"content-type": MSGPACK}}, 422,
         "msgpack map"),
        ({"json": {"parameters": [[1.5] * 15] * 65}}, 413, "limit is 64"),
        ({"content": b"[" + b"1.0," * 100_000, "headers": {"content-type": "application/json"}},
         413, "exceeds the limit"),
        ({"json": {"parameters": [[1.5] * 15], "gradient": "yes"}}, 422,
         "gradient: Input should be a valid boolean"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_service_keeps_serving(
    served, client, request_kwargs, status, message
):
    response = client.post("/v1/models/mge/log-evidence", **request_kwargs)
    assert response.status_code == status
    assert message in response.json()["detail"]
    point = random_points(served.model, 1, seed=3)
    np.testing.assert_allclose(answers(post(client, point))[0], served.reference(point), rtol=1e-10)


def test_unknown_model_is_404(client):
    response = post(client, [[1.0] * 15], model="nope")
    assert response.status_code == 404 and "served: mge" in response.json()["detail"]


def test_a_nan_in_msgpack_input_is_refused(client):
    points = np.ones((2, 15))
    points[1, 3] = np.nan
    response = post(client, points, fmt="msgpack")
    assert response.status_code == 422
    assert "parameters[1][3] is nan" in response.json()["detail"]


def test_token_is_required_everywhere_but_healthz(served):
    with httpx.Client(base_url=served.url) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        for path in ("/readyz", "/metrics", "/v1/models"):
            response = anonymous.get(path)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert anonymous.post("/v1/models/mge/log-evidence", json={}).status_code == 401


def test_a_full_queue_answers_503_with_retry_after(served, client):
    """12 concurrent requests of 64 points against a 512-point queue: some must be refused."""

    async def flood():
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=120) as http:
            bodies = [random_points(served.model, 64, seed=100 + i) for i in range(12)]
            responses = await asyncio.gather(*(
                http.post("/v1/models/mge/log-evidence", json={"parameters": b.tolist()})
                for b in bodies
            ))
            return bodies, responses

    bodies, responses = asyncio.run(flood())
    codes = [r.status_code for r in responses]
    assert 503 in codes and 200 in codes, codes
    for points, response in zip(bodies, responses, strict=True):
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert "queued" in response.json()["detail"]
        else:
            np.testing.assert_allclose(answers(response)[0][:4], served.reference(points[:4]),
                                       rtol=1e-10)
    assert metric(client, "lensserve_rejections_total", 'reason="queue_full"') >= 1


def test_a_client_that_gives_up_is_dropped_before_dispatch(served, client, monkeypatch):
    cancelled_before = metric(client, "lensserve_requests_total", 'outcome="cancelled"')
    # Hold every dispatcher inside a batch so the impatient request is surely still queued when
    # its client gives up (a fast model would otherwise answer it in time).
    batcher = served.app.state.evaluator.batcher
    evaluate, gate, inside = batcher._evaluate, threading.Event(), threading.Semaphore(0)

    def held(*arguments):
        inside.release()
        gate.wait(60)
        return evaluate(*arguments)

    async def every_dispatcher_held():
        for _ in batcher._threads:  # on a loaded machine 0.2 s was sometimes not enough
            assert await asyncio.to_thread(inside.acquire, timeout=30)

    monkeypatch.setattr(batcher, "_evaluate", held)

    async def busy_then_impatient():
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=120) as http:
            busy = [asyncio.create_task(http.post(
                "/v1/models/mge/log-evidence",
                json={"parameters": random_points(served.model, 8, seed=200 + i).tolist()},
            )) for i in range(len(batcher._threads))]
            await every_dispatcher_held()
            with pytest.raises(httpx.ReadTimeout):
                await http.post(
                    "/v1/models/mge/log-evidence",
                    json={"parameters": random_points(served.model, 1, seed=300).tolist()},
                    timeout=httpx.Timeout(120, read=0.2),
                )
            gate.set()
            return await asyncio.gather(*busy)

    assert [r.status_code for r in asyncio.run(busy_then_impatient())] == [200] * len(
        batcher._threads)
    deadline = time.monotonic() + 10
    while metric(client, "lensserve_requests_total", 'outcome="cancelled"') == cancelled_before:
        assert time.monotonic() < deadline, "the abandoned request was never withdrawn"
        time.sleep(0.1)


def test_metrics_expose_the_operations_vocabulary(client):
    post(client, [[1.0] * 15])
    text = client.get("/metrics").text
    for name in (
        "lensserve_requests_total", "lensserve_points_total", "lensserve_batch_size_points",
        "lensserve_batch_padded_size_points", "lensserve_queue_wait_seconds",
        "lensserve_compute_seconds", "lensserve_queue_depth_points", "lensserve_rejections_total",
        "lensserve_compilations_total", "lensserve_compile_seconds_total", "lensserve_ready",
        "lensserve_request_duration_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert metric(client, "lensserve_compilations_total") == 8  # 4 buckets x 2 variants
    assert json.loads(client.get("/readyz").text)["ready"] is True
