"""HEAD on every GET route answers what the GET answers, status and headers, without the
body; the live stream answers its headers and holds nothing open."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest

from tests.service.conftest import Api, concrete, operations, record_ids

GETS = [template for method, template in operations() if method == "GET"]
STREAM = "/events/stream"
# Headers that may differ between two requests made one after the other.
MOVING = {"date", "content-length"}


def same_but_body(get: httpx.Response, head: httpx.Response) -> None:
    assert head.status_code == get.status_code, head.text
    assert head.content == b""
    got = {k: v for k, v in get.headers.items() if k not in MOVING}
    assert {k: v for k, v in head.headers.items() if k not in MOVING} == got
    assert ("content-length" in head.headers) == ("content-length" in get.headers)


@pytest.mark.parametrize("template", [t for t in GETS if t != STREAM])
def test_head_answers_as_get_without_the_body(api: Api, template: str) -> None:
    ids = record_ids(api)
    paths = [concrete(template, ids)]
    if "{id:" in template:  # and for something that is not there: the 404's headers
        paths.append(concrete(template, dict.fromkeys(ids, str(UUID(int=0))), "no-such-one"))
    for path in paths:
        # Read at the same position, so that both answers reflect the same writes.
        params = {"min_position": api.position}
        get = api.client.get(path, params=params)
        head = api.client.head(path, params=params)
        same_but_body(get, head)
        if get.status_code == 200 and "content-length" in get.headers and template != "/metrics":
            assert head.headers["content-length"] == get.headers["content-length"]


def test_head_of_the_stream_answers_its_headers_and_returns_at_once(api: Api) -> None:
    head = api.client.head(STREAM)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.headers["cache-control"] == "no-store"
    assert head.content == b""
    # A bad Last-Event-ID is the same 400 as for GET, without the problem's body.
    bad = api.client.head(STREAM, headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.content == b""
