"""The clients' calls as steps, driven by hand with canned answers: no server, no sleeping.

Each call is a generator yielding `Send` or `Sleep`; the test replies with `httpx.Response`s
(or throws the transport error a client would have caught) and reads what the call does next.
"""

import json
import math

import httpx
import msgpack
import numpy as np
import pytest

from client import RetryPolicy, ServiceError, ServiceUnavailable
from client.session import FALLBACK_LIMITS, Call, Send, Session, Sleep

URL = "http://service"
MODELS_URL = f"{URL}/v1/models"
EVALUATE_URL = f"{URL}/v1/models/mge/log-evidence"
NAMES = ["lens.mass.einstein_radius", "lens.shear.gamma_1"]
LIMITS = {"max_request_points": 2, "max_body_bytes": 200_000, "max_batch_size": 4,
          "buckets": [1, 2, 4]}


class Clock:
    """A monotonic clock the test moves on; each `Sleep` a test obeys advances it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(transport: str = "msgpack", retry: RetryPolicy | None = None, **kwargs) -> Session:
    return Session(URL, "mge", "secret", transport, retry or RetryPolicy(), None, **kwargs)


def models_answer(limits: dict | None = LIMITS, gradient: bool = True) -> httpx.Response:
    info = {"name": "mge", "kind": "mge", "parameter_names": NAMES, "gradient": gradient,
            "priors": {name: {"type": "Uniform", "lower": 0.0, "upper": 2.0} for name in NAMES}}
    return httpx.Response(200, json={"models": [info], "limits": limits})


def evaluation_answer(values: list[float]) -> httpx.Response:
    array = np.asarray(values, "<f8")
    body = msgpack.packb({
        "log_evidence": {"shape": [len(array)], "dtype": "<f8", "data": array.tobytes()},
        "gradient": None, "status": ["ok" if math.isfinite(v) else "non_finite: value"
                                     for v in values],
    }, use_bin_type=True)
    return httpx.Response(200, content=body, headers={"Content-Type": "application/msgpack"})


def sent_points(step: Send) -> np.ndarray:
    if step.headers["Content-Type"] == "application/json":
        return np.array(json.loads(step.content)["parameters"])
    packed = msgpack.unpackb(step.content)["parameters"]
    return np.frombuffer(packed["data"], "<f8").reshape(packed["shape"])


def finish(steps, reply):
    """Reply to the last step and return what the call returns."""
    with pytest.raises(StopIteration) as finished:
        steps.send(reply)
    return finished.value.value


def described(**kwargs) -> Session:
    client = session(**kwargs)
    steps = client.describe()
    next(steps)
    finish(steps, models_answer())
    return client


def test_describe_sends_the_token_and_keeps_the_model_and_limits():
    client = session()
    steps = client.describe()
    assert next(steps) == Send("GET", MODELS_URL, {"Authorization": "Bearer secret"})
    model, limits = finish(steps, models_answer())
    assert model.parameter_names == tuple(NAMES) and limits.max_request_points == 2
    assert client.described == (model, limits)
    assert client.stats.snapshot().requests == 1


def test_describe_without_published_limits_falls_back():
    steps = session().describe()
    next(steps)
    assert finish(steps, models_answer(limits=None))[1] == FALLBACK_LIMITS


@pytest.mark.parametrize(("answer", "status", "words"), [
    (httpx.Response(200, json={"models": [], "limits": None}), 404, "no model named 'mge'"),
    (httpx.Response(401, json={"detail": "bad token"}), 401, "bad token (pass token=..."),
    (httpx.Response(200, content=b"<html>"), 200, "unreadable model list"),
])
def test_describe_errors_say_why(answer, status, words):
    steps = session().describe()
    next(steps)
    with pytest.raises(ServiceError, match=words.replace("(", r"\(")) as error:
        steps.send(answer)
    assert error.value.status == status


@pytest.mark.parametrize("transport", ["msgpack", "json"])
def test_a_batch_is_sent_in_chunks_and_answered_in_order(transport):
    client = described(transport=transport)
    points = np.linspace(0.1, 1.0, 10).reshape(5, 2)
    steps = client.evaluate(points, gradient=False)
    chunks = []
    step = next(steps)
    for values in ([1.0, 2.0], [3.0, 4.0]):
        assert step.method == "POST" and step.url == EVALUATE_URL
        assert step.headers["Authorization"] == "Bearer secret"
        chunks.append(sent_points(step))
        step = steps.send(evaluation_answer(values))
    chunks.append(sent_points(step))
    evaluation = finish(steps, evaluation_answer([math.nan]))
    np.testing.assert_array_equal(np.concatenate(chunks), points)
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert evaluation.log_evidence.tolist() == [1.0, 2.0, 3.0, 4.0, -math.inf]
    assert evaluation.ok.tolist() == [True, True, True, True, False]
    assert client.stats.snapshot().requests == 1 + 3
    assert (client.stats.snapshot().calls, client.stats.snapshot().points) == (1, 5)


def test_evaluate_describes_the_model_first():
    client = session()
    steps = client.evaluate([0.5, 0.5], gradient=False)
    assert next(steps).url == MODELS_URL
    assert sent_points(steps.send(models_answer())).tolist() == [[0.5, 0.5]]
    assert finish(steps, evaluation_answer([-3.0])).log_evidence.tolist() == [-3.0]


@pytest.mark.parametrize(("theta", "words"), [
    ([0.5], r"shape \(2,\) or \(n, 2\)"), ([0.5, math.nan], "finite"), (np.zeros((0, 2)), "no points"),
])
def test_bad_points_are_refused_before_anything_is_sent(theta, words):
    steps = described().evaluate(theta, gradient=False)
    with pytest.raises(ValueError, match=words):
        next(steps)


def test_gradients_are_refused_when_the_service_computes_none():
    client = session()
    steps = client.evaluate([0.5, 0.5], gradient=True)
    next(steps)
    with pytest.raises(ValueError, match="gradient"):
        steps.send(models_answer(gradient=False))


def test_an_error_answer_is_raised_with_the_services_words():
    steps = described().evaluate([0.5, 0.5], gradient=False)
    next(steps)
    with pytest.raises(ServiceError, match="body too large") as error:
        steps.send(httpx.Response(413, json={"detail": "body too large"}))
    assert error.value.status == 413


def test_overload_waits_at_least_retry_after_then_sends_the_same_request_again():
    client = session(retry=RetryPolicy(initial_delay=0.001))
    steps = client.send("GET", MODELS_URL)
    first = next(steps)
    wait = steps.send(httpx.Response(503, headers={"Retry-After": "2"}))
    assert isinstance(wait, Sleep) and wait.seconds == 2.0
    assert steps.send(None) == first
    assert finish(steps, httpx.Response(200)).status_code == 200
    stats = client.stats.snapshot()
    assert (stats.requests, stats.retries) == (2, 1)


def test_backoff_doubles_with_jitter():
    steps = session(retry=RetryPolicy(initial_delay=1.0, max_delay=3.0)).send("GET", MODELS_URL)
    next(steps)
    waits = []
    for _ in range(4):
        waits.append(steps.send(httpx.Response(502)).seconds)
        steps.send(None)
    for wait, most in zip(waits, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert most / 2 <= wait <= most


def test_dropped_connections_are_retried_until_the_attempts_run_out():
    client = session(retry=RetryPolicy(max_attempts=3, initial_delay=0.01))
    steps = client.send("GET", MODELS_URL)
    next(steps)
    for _ in range(2):
        assert isinstance(steps.throw(httpx.ConnectError("refused")), Sleep)
        next(steps)
    with pytest.raises(ServiceUnavailable, match=r"after 3 attempt\(s\).*ConnectError") as error:
        steps.throw(httpx.ConnectError("refused"))
    assert isinstance(error.value.__cause__, httpx.ConnectError)
    assert client.stats.snapshot().retries == 2


def test_total_time_bounds_the_retries():
    clock = Clock()
    steps = session(retry=RetryPolicy(max_total=5.0), clock=clock).send("GET", MODELS_URL)
    next(steps)
    clock.now += steps.send(httpx.Response(503, headers={"Retry-After": "3"})).seconds
    next(steps)
    with pytest.raises(ServiceUnavailable, match=r"after 2 attempt\(s\) in 3.0 s; last: 503"):
        steps.send(httpx.Response(503, headers={"Retry-After": "3"}))


def test_a_read_timeout_is_not_retried():
    steps = session().send("GET", MODELS_URL)
    next(steps)
    with pytest.raises(ServiceError, match="no answer from .* in time") as error:
        steps.throw(httpx.ReadTimeout("slow"))
    assert not isinstance(error.value, ServiceUnavailable)


def test_other_transport_errors_pass_through():
    steps = session().send("GET", MODELS_URL)
    next(steps)
    with pytest.raises(httpx.UnsupportedProtocol):
        steps.throw(httpx.UnsupportedProtocol("ftp"))


def test_wait_until_ready_polls_through_overload_and_refusals():
    client = session()
    steps = client.wait_until_ready(timeout=10.0, poll=0.5)
    assert next(steps) == Send("GET", f"{URL}/readyz", {"Authorization": "Bearer secret"})
    assert steps.send(httpx.Response(503, text="compiling")) == Sleep(0.5)
    next(steps)
    assert steps.throw(httpx.ConnectError("refused")) == Sleep(0.5)
    next(steps)
    assert finish(steps, httpx.Response(200)) is None
    assert client.stats.snapshot().requests == 0  # polls are not evaluation requests


def test_wait_until_ready_gives_up_at_the_deadline():
    clock = Clock()
    steps = session(clock=clock).wait_until_ready(timeout=1.0, poll=0.4)
    next(steps)
    for _ in range(2):
        clock.now += steps.send(httpx.Response(503, text="compiling")).seconds
        next(steps)
    with pytest.raises(ServiceUnavailable, match="not ready after 1.0 s: compiling"):
        steps.send(httpx.Response(503, text="compiling"))


def test_wait_until_ready_raises_other_errors():
    steps = session().wait_until_ready(timeout=1.0, poll=0.4)
    next(steps)
    with pytest.raises(ServiceError, match="token"):
        steps.send(httpx.Response(401, json={"detail": "missing token"}))


def test_call_runs_steps_to_their_result():
    call = Call(session(retry=RetryPolicy(initial_delay=0.001)).describe())
    assert call.step.url == MODELS_URL and not call.done
    call.resume(httpx.ConnectError("refused"))
    assert isinstance(call.step, Sleep)
    call.resume(None)
    call.resume(models_answer())
    assert call.done and call.step is None and call.result[0].name == "mge"


def test_call_raises_what_the_steps_raise():
    call = Call(session().describe())
    with pytest.raises(ServiceError, match="in time"):
        call.resume(httpx.ReadTimeout("slow"))


def registered(name: str, state: str, code: int = 200) -> httpx.Response:
    return httpx.Response(code, json={"name": name, "state": state, "ready": state != "compiling",
                                      "status_url": f"{MODELS_URL}/{name}"})


def test_register_posts_then_polls_its_status_until_it_serves_and_binds_the_session():
    clock = Clock()
    unbound = Session(URL, None, "secret", "msgpack", RetryPolicy(), None, clock=clock)
    call = Call(unbound.register(b"body", {"Content-Type": "application/msgpack"}, 60.0, 2.0))
    assert call.step == Send("POST", MODELS_URL, {"Authorization": "Bearer secret",
                                                  "Content-Type": "application/msgpack"}, b"body")
    call.resume(registered("lens-1", "compiling", 202))
    for state in ("compiling", "serving"):
        assert call.step == Sleep(2.0)
        clock.now += 2.0
        call.resume(None)
        assert call.step.method == "GET" and call.step.url == f"{MODELS_URL}/lens-1"
        call.resume(registered("lens-1", state))
    assert call.done and call.result["state"] == "serving"
    assert unbound.evaluate_url == f"{MODELS_URL}/lens-1/log-evidence"


def test_register_raises_the_services_words_when_refused_or_failed():
    refused = Call(session().register(b"", {}, None, 1.0))
    with pytest.raises(ServiceError, match="422: noise map contains non-finite values"):
        refused.resume(httpx.Response(422, json={"detail": "noise map contains non-finite values"}))
    failed = Call(session().register(b"", {}, 60.0, 1.0))
    failed.resume(registered("lens-2", "compiling", 202))
    failed.resume(None)
    with pytest.raises(ServiceError, match="lens-2 failed: XlaRuntimeError"):
        failed.resume(registered("lens-2", "failed: XlaRuntimeError"))


def test_a_client_of_no_model_says_so_before_sending_anything():
    call = Session(URL, None, None, "json", RetryPolicy(), None).evaluate([[1.0]], False)
    with pytest.raises(ValueError, match="no model"):
        Call(call)
