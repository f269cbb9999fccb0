"""The wire protocol without a server: chunk sizes against the body limit the service enforces."""

import numpy as np
import pytest

from client.protocol import JSON, MSGPACK, chunk_size, encode_request

# The longest a float64 is in JSON (24 characters); msgpack sends every value in 8 bytes.
LONGEST = -1.2345678901234567e-300


def body_bytes(n: int, n_params: int, media: str) -> int:
    return len(encode_request(np.full((n, n_params), LONGEST), False, media)[0])


@pytest.mark.parametrize("media", [JSON, MSGPACK])
@pytest.mark.parametrize("n_params", [1, 15, 40])
@pytest.mark.parametrize("max_body_bytes", [2_000, 200_000, 16 * 2**20])
def test_a_chunk_of_the_longest_numbers_fits_the_body_limit(media, n_params, max_body_bytes):
    size = chunk_size(10**9, max_body_bytes, n_params, media)
    assert body_bytes(size, n_params, media) <= max_body_bytes
    # and it is the most that fits, but for a few bytes of slack
    assert body_bytes(size + 1, n_params, media) > max_body_bytes - 64


def test_json_brackets_and_separators_count():
    # 26 bytes a value alone gave 512 points of 15 parameters for 200 kB, a body of 200,741
    # bytes the service refused with 413: each row adds its brackets and separator.
    size = chunk_size(10**9, 200_000, 15, JSON)
    assert size < 512 and body_bytes(size, 15, JSON) <= 200_000
    assert body_bytes(512, 15, JSON) > 200_000


def test_the_point_limit_and_at_least_one_point():
    assert chunk_size(16, 200_000, 15, MSGPACK) == 16
    assert chunk_size(16, 100, 15, JSON) == 1  # cannot fit; the service's 413 then says why
