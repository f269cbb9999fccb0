"""Hostile clients and hostile bodies, against a real uvicorn server over loopback (issue 23).

Every test here starts or uses a server, so each has a hard timeout (pytest-timeout): a server
that stops answering must fail the test, not hang the run.
"""

from __future__ import annotations

import threading
import time

import httpx
import msgpack
import numpy as np
import pytest

from service import docs
from service.app import create_app
from service.wire import MSGPACK, pack_array, unpack_array
from tests.service.conftest import AUTH, TOKEN, random_points, running_server, small_settings

pytestmark = pytest.mark.timeout(600)  # the first server of a run may compile every bucket

LOG_EVIDENCE = "/v1/models/mge/log-evidence"
DOCS = (docs.OPENAPI_PATH, docs.SWAGGER_UI_PATH, docs.REDOC_PATH,
        docs.SWAGGER_UI_OAUTH2_REDIRECT_PATH)


@pytest.fixture(scope="module")
def roomy_url(served):
    """A second server of the same model whose body limit (20 MB) lets a 16 MB body through to
    the decoder; one bucket, no gradients, so it is ready at once from the compilation cache."""
    settings = small_settings(max_body_bytes=20_000_000, buckets=(1,), gradient=False)
    with running_server(create_app(settings, {"mge": served.model})) as url:
        yield url


def _rows_body(rows, fmt: str) -> dict:
    if fmt == "json":
        return {"json": {"parameters": rows}}
    return {"content": msgpack.packb({"parameters": rows}), "headers": {"content-type": MSGPACK}}


def _packed_body(parameters: dict) -> dict:
    return {"content": msgpack.packb({"parameters": parameters}),
            "headers": {"content-type": MSGPACK}}


def _still_serving(served, client) -> None:
    point = random_points(served.model, 1, seed=3)
    response = client.post(LOG_EVIDENCE, **_packed_body(pack_array(point)))
    assert response.status_code == 200, response.text
    values = unpack_array(msgpack.unpackb(response.content)["log_evidence"])
    np.testing.assert_allclose(values, served.reference(point), rtol=1e-10)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize("value", ["0.05", True, False, None], ids=repr)
def test_a_parameter_that_is_not_a_number_is_refused_by_its_position(served, client, fmt, value):
    rows = random_points(served.model, 3, seed=21).tolist()
    rows[1][2] = value
    response = client.post(LOG_EVIDENCE, **_rows_body(rows, fmt))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("parameters[1][2]: Input should be a valid number")
    _still_serving(served, client)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_a_flat_point_names_the_column_of_its_bad_value(served, client, fmt):
    point = random_points(served.model, 1, seed=22)[0].tolist()
    point[4] = "1.6"
    response = client.post(LOG_EVIDENCE, **_rows_body(point, fmt))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "parameters[0][4]: Input should be a valid number (got '1.6')"
    )


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([2**33, 2**31], b"", "holds 0 bytes; shape [8589934592, 2147483648] of float64 needs "
         f"{2**33 * 2**31 * 8}"),
        ([2**62, 2], b"\0" * 120, "needs 73786976294838206464"),
        ([0, 2**63], b"", "parameters is empty (shape [0, 9223372036854775808])"),
        ([-1, 15], b"", "one or two non-negative integers, got [-1, 15]"),
        ([1.0, 15], b"\0" * 120, "one or two non-negative integers"),
        ([True, 15], b"\0" * 120, "one or two non-negative integers"),
        ([1, 1, 15], b"\0" * 120, "one or two non-negative integers"),
        ([], b"", "one or two non-negative integers"),
        ("15", b"\0" * 120, "one or two non-negative integers"),
    ],
)
def test_a_packed_array_whose_shape_and_data_disagree_is_a_422(served, client, shape, data,
                                                               message):
    response = client.post(LOG_EVIDENCE, **_packed_body({"shape": shape, "dtype": "<f8",
                                                         "data": data}))
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    _still_serving(served, client)


def test_msgpack_nested_past_the_decoder_limit_is_a_422_that_says_so(served, client):
    too_deep = msgpack.packb({"parameters": 1})[:-1] + b"\x91" * 2000 + b"\x00"
    response = client.post(LOG_EVIDENCE, content=too_deep, headers={"content-type": MSGPACK})
    assert response.status_code == 422
    assert "nest deeper than the decoder allows" in response.json()["detail"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([[0.5] * 15] * 65, "an array of 65 items; at most 64 are accepted: "
         "max_request_points = 64 points, or the model's 15 parameters in a point"),
        (pack_array(np.ones((65, 15))), "binary data of 7800 bytes; at most 7680 are accepted: "
         "max_request_points = 64 points of the model's 15 float64 parameters"),
    ],
)
def test_msgpack_sizes_are_refused_as_declared(served, client, parameters, message):
    response = client.post(LOG_EVIDENCE, **_packed_body(parameters))
    assert response.status_code == 413
    assert message in response.json()["detail"]


def test_a_large_valid_body_is_decoded_off_the_event_loop_and_answered(served, client):
    """Over 64 KiB (whitespace is valid JSON) goes through the worker-thread decoder."""
    points = random_points(served.model, 3, seed=23)
    body = b'{"parameters": %s}' % repr(points.tolist()).encode() + b" " * 100_000
    response = client.post(LOG_EVIDENCE, content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["log_evidence"], served.reference(points),
                               rtol=1e-10)


def _tiny_rows(fmt: str) -> tuple[str, bytes]:
    """About 16 MB of one-value rows: 8 million in msgpack (2 bytes a row), 4 million in JSON."""
    if fmt == "msgpack":
        return MSGPACK, msgpack.packb({"parameters": [[0]] * 8_000_000})
    return "application/json", b'{"parameters": [' + b"[0]," * 3_999_999 + b"[0]]}"


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_a_16_mb_body_of_tiny_rows_is_refused_while_healthz_keeps_answering(roomy_url, fmt):
    content_type, body = _tiny_rows(fmt)
    assert 15_000_000 < len(body) < 20_000_000
    latencies: list[tuple[int, float]] = []
    posted = threading.Event()

    def poll_healthz() -> None:
        with httpx.Client(base_url=roomy_url, timeout=30) as http:
            while not posted.is_set():
                started = time.perf_counter()
                status = http.get("/healthz").status_code
                latencies.append((status, time.perf_counter() - started))
                time.sleep(0.01)

    poller = threading.Thread(target=poll_healthz)
    poller.start()
    try:
        while not latencies:
            time.sleep(0.01)
        with httpx.Client(base_url=roomy_url, headers=AUTH, timeout=60) as http:
            response = http.post(LOG_EVIDENCE, content=body, headers={"content-type": content_type})
    finally:
        posted.set()
        poller.join(30)
    assert response.status_code == 413, response.text
    assert "max_request_points" in response.json()["detail"]
    assert {status for status, _ in latencies} == {200}
    worst = max(seconds for _, seconds in latencies)
    assert worst < 0.5, f"/healthz took {worst:.2f} s at worst ({len(latencies)} polls)"


def test_the_documentation_needs_the_token(served):
    with httpx.Client(base_url=served.url) as http:
        for path in DOCS:
            anonymous = http.get(path)
            assert anonymous.status_code == 401, path
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert http.get(path, headers=AUTH).status_code == 200, path
        assert http.get("/healthz").status_code == 200
        assert docs.OPENAPI_PATH in http.get(docs.SWAGGER_UI_PATH, headers=AUTH).text


def test_openapi_documents_401_on_every_route_that_needs_the_token(served):
    schema = httpx.get(served.url + docs.OPENAPI_PATH, headers=AUTH).json()
    operations = {(path, method): operation for path, item in schema["paths"].items()
                  for method, operation in item.items()}
    protected = {key for key, operation in operations.items() if operation.get("security")}
    assert protected == set(operations) - {("/healthz", "get")}
    for key in protected:
        assert "401" in operations[key]["responses"], key
    assert "401" not in operations["/healthz", "get"]["responses"]


@pytest.mark.parametrize(
    "tokens",
    [(TOKEN, TOKEN), ("nope", TOKEN), (TOKEN, "nope")],
    ids=["same", "wrong-first", "wrong-last"],
)
def test_more_than_one_authorization_header_is_a_401_on_every_path(served, tokens):
    """The fast path (log-evidence) and FastAPI's routes apply the same rule."""
    headers = [("Authorization", f"Bearer {token}") for token in tokens]
    point = random_points(served.model, 1, seed=24)
    with httpx.Client(base_url=served.url) as http:
        answers = [http.post(LOG_EVIDENCE, json={"parameters": point.tolist()}, headers=headers),
                   http.get("/v1/models", headers=headers), http.get("/metrics", headers=headers)]
        for response in answers:
            assert response.status_code == 401
            assert response.json()["detail"] == "2 Authorization headers; send exactly one"
        assert http.post(LOG_EVIDENCE, json={"parameters": point.tolist()},
                         headers=AUTH).status_code == 200
