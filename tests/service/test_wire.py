"""JSON and msgpack codecs: round trips, non-finite values, and refusals naming the problem."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest

from service.wire import (
    JSON,
    MSGPACK,
    Evaluation,
    RequestLimits,
    WireError,
    decode_request,
    encode_evaluation,
    pack_array,
    response_media_type,
    unpack_array,
)

LIMITS = RequestLimits(max_points=64, n_parameters=15)


def test_array_round_trip_is_bit_exact():
    array = np.array([[1.0, -0.0, np.nan], [np.inf, -np.inf, 1e-300]])
    packed = msgpack.unpackb(msgpack.packb(pack_array(array)))
    assert packed["data"] == array.astype("<f8").tobytes()
    back = unpack_array(packed)
    assert np.array_equal(back, array, equal_nan=True)


def test_json_and_msgpack_requests_decode_alike():
    rows = [[1.0, 2.0], [3.0, 4.5]]
    from_json = decode_request(json.dumps({"parameters": rows, "gradient": True}).encode(), JSON, LIMITS)
    body = msgpack.packb({"parameters": pack_array(np.array(rows)), "gradient": True})
    from_msgpack = decode_request(body, MSGPACK, LIMITS)
    listed = decode_request(msgpack.packb({"parameters": rows}), "application/x-msgpack", LIMITS)
    for decoded in (from_json, from_msgpack, listed):
        assert np.array_equal(decoded.points, rows)
    assert from_json.gradient and from_msgpack.gradient and not listed.gradient


def test_a_flat_list_is_one_point():
    assert decode_request(b'{"parameters": [1, 2, 3]}', JSON, LIMITS).points.shape == (1, 3)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"parameters": [[1, 2], [3]]}', JSON, 422, "row 0 has 2 values, row 1 has 1"),
        (b'{"parameters": [[1, NaN]]}', JSON, 422, r"parameters\[0\]\[1\] is nan"),
        (b'{"parameters": [[1, 1e999]]}', JSON, 422, r"parameters\[0\]\[1\] is inf"),
        (b'{"parameters": []}', JSON, 422, "empty"),
        (b'{"parameters": [[[1.0]]]}', JSON, 422, r"parameters\[0\]\[0\]"),
        (b'{"parameters": [["a"]]}', JSON, 422, "valid number"),
        (b'{"parameters": [[1]], "gradient": "maybe"}', JSON, 422, "gradient"),
        (b'{"parameters": [[1]], "extra": 1}', JSON, 422, "extra: Extra inputs"),
        (b'{"params": [[1]]}', JSON, 422, "parameters: Field required"),
        (b'{"parameters": [[1]', JSON, 422, "Invalid JSON"),
        (b"\xc1", MSGPACK, 422, "not valid msgpack"),
        (msgpack.packb([1, 2]), MSGPACK, 422, "msgpack map"),
        (msgpack.packb({"parameters": msgpack.ExtType(7, b"x")}), MSGPACK, 422, "extension"),
        (msgpack.packb({"parameters": {"shape": [1, 2], "data": b"abc"}}), MSGPACK, 422,
         "holds 3 bytes"),
        (msgpack.packb({"parameters": {"shape": [1, 2], "dtype": ">f4", "data": b""}}), MSGPACK,
         422, "little-endian float64"),
        (msgpack.packb({"parameters": pack_array(np.zeros((2, 2, 2)))}), MSGPACK, 422,
         "one or two non-negative integers"),
        (b"parameters=1", "application/x-www-form-urlencoded", 415, "unsupported Content-Type"),
        (b'{"parameters": [[1, "0.05"]]}', JSON, 422,
         r"^parameters\[0\]\[1\]: Input should be a valid number \(got '0.05'\)$"),
        (msgpack.packb({"parameters": [2.0, True]}), MSGPACK, 422,
         r"^parameters\[0\]\[1\]: Input should be a valid number \(got True\)$"),
        (msgpack.packb({"parameters": {"shape": [2**33, 2**31], "data": b""}}), MSGPACK, 422,
         "holds 0 bytes; shape"),
        (b'{"parameters": [' + b"[1]," * 65 + b"[1]]}", JSON, 413,
         r"66 points \(the body's 67 JSON arrays\) in one request; the limit is 64"),
        (msgpack.packb({"parameters": [[1.0]] * 65}), MSGPACK, 413, "an array of 65 items"),
        (msgpack.packb({"parameters": [[1.0]], "x" * 300: 1}), MSGPACK, 413,
         "a string of 300 bytes; at most 256 are accepted: no request needs more"),
        (msgpack.packb({str(i): i for i in range(20)}), MSGPACK, 413, "a map of 20 entries"),
        (msgpack.packb({"parameters": 1})[:-1] + b"\x91" * 2000 + b"\x00", MSGPACK, 422,
         "nest deeper than the decoder allows"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(body, content_type, status, message):
    with pytest.raises(WireError, match=message) as error:
        decode_request(body, content_type, LIMITS)
    assert error.value.status == status


def test_non_finite_answers_are_null_in_json_and_floats_in_msgpack():
    evaluation = Evaluation(
        np.array([-12.5, np.nan, -np.inf]),
        np.array([[1.0, 2.0], [np.nan, np.nan], [np.inf, 0.0]]),
        ["ok", "invalid: einstein_radius < 0", "non_finite: log-evidence is -inf"],
    )
    as_json = json.loads(encode_evaluation(evaluation, JSON))
    assert as_json == {
        "log_evidence": [-12.5, None, None],
        "gradient": [[1.0, 2.0], None, [None, 0.0]],
        "status": evaluation.status,
    }
    as_msgpack = msgpack.unpackb(encode_evaluation(evaluation, MSGPACK))
    assert np.array_equal(unpack_array(as_msgpack["log_evidence"]), evaluation.log_evidence,
                          equal_nan=True)
    assert np.array_equal(unpack_array(as_msgpack["gradient"]), evaluation.gradient,
                          equal_nan=True)


@pytest.mark.parametrize(
    ("accept", "sent", "answer"),
    [
        (None, MSGPACK, MSGPACK),
        ("*/*", JSON, JSON),
        (MSGPACK, JSON, MSGPACK),
        ("application/json, application/msgpack", MSGPACK, MSGPACK),
        ("application/json", MSGPACK, JSON),
    ],
)
def test_the_answer_type_follows_accept(accept, sent, answer):
    assert response_media_type(accept, sent) == answer
