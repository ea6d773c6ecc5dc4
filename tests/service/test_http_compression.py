"""Answers are gzipped when the client accepts gzip and the body is worth it; every
answer that could have been says `Vary: Accept-Encoding`. (The live stream, never
compressed, is tried through a real server: test_http_served.py.)"""

from __future__ import annotations

import gzip

import httpx
import pytest

from service.http.compression import MINIMUM_SIZE, accepts_gzip
from tests.service.conftest import Api

GZIP = {"Accept-Encoding": "gzip"}


def _raw(api: Api, method: str, path: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The answer, once it reflects the writes made, and its body as sent (not decoded)."""
    params = {"limit": 500, "min_position": api.position} if path == "/timeline" else {}
    request = api.client.build_request(method, path, params=params, headers=headers)
    response = api.client.send(request, stream=True)
    try:
        return response, b"".join(response.iter_raw())
    finally:
        response.close()


def varies_on(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("vary", "").split(",")}


def test_a_large_answer_is_gzipped_when_accepted_and_is_the_same_answer(api: Api) -> None:
    plain, plain_body = _raw(api, "GET", "/timeline", {"Accept-Encoding": "identity"})
    assert len(plain_body) > MINIMUM_SIZE
    assert "content-encoding" not in plain.headers
    zipped, zipped_body = _raw(api, "GET", "/timeline", GZIP)
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) == len(zipped_body) < len(plain_body) / 3
    assert gzip.decompress(zipped_body) == plain_body
    # The same answer either way: the same tag; and both say they vary on the encoding.
    assert zipped.headers["etag"] == plain.headers["etag"]
    assert "accept-encoding" in varies_on(zipped) and "accept-encoding" in varies_on(plain)
    # HEAD tells what GET sends: the compressed length, with no body.
    head, head_body = _raw(api, "HEAD", "/timeline", GZIP)
    assert (head_body, head.headers["content-length"]) == (b"", zipped.headers["content-length"])
    assert head.headers["content-encoding"] == "gzip"


def test_a_small_answer_or_a_client_without_gzip_gets_it_plain(api: Api) -> None:
    small, small_body = _raw(api, "GET", "/health", GZIP)
    assert len(small_body) < MINIMUM_SIZE
    assert "content-encoding" not in small.headers
    assert "accept-encoding" in varies_on(small)
    for refused in ("gzip;q=0", "br", "identity", "*;q=0", "gzip;q=0, *"):
        answer, _ = _raw(api, "GET", "/timeline", {"Accept-Encoding": refused})
        assert "content-encoding" not in answer.headers, refused


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("GZIP;q=0.5", True),
        ("*", True),
        ("br;q=1, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=zero", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("deflate", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_with_its_weights(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok
