"""A record by its key: `GET /{kind}s/by-key/{key}` answers as `GET /{kind}s/{id}`
does, the id being the UUID 5 of `<kind>:<key>` in the service's namespace."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from domain.ids import NAMESPACE
from service.http.routing import PLURAL
from tests.service.conftest import Api, unique
from tests.service.test_http_api import assert_problem, fresh
from tests.service.test_http_hostile import RAW_IDS

# Any character but white space at its ends: "/" (leading, trailing, doubled), "%", "?",
# "#", letters of any script.
ODD = "/Путин//переговоры 2025 — 50% ?#é/"


@pytest.mark.parametrize("kind", list(PLURAL))
def test_a_record_by_its_key_answers_as_by_its_id(api: Api, kind: str) -> None:
    key = f"{ODD}{unique()}/"
    written = api.post(f"/{PLURAL[kind]}", fresh(kind, key=key))
    assert written.status_code == 201, written.text
    id = written.json()["id"]
    # The id is what an integrator computes from the key.
    assert id == str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))
    by_id = f"/{PLURAL[kind]}/{id}"
    by_key = f"/{PLURAL[kind]}/by-key/{quote(key, safe='')}"
    # The same body and ETag; the ETag gives a 304.
    one, other = api.read(by_id), api.read(by_key)
    assert other.status_code == 200, other.text
    assert other.content == one.content and other.json()["key"] == key
    assert other.headers["etag"] == one.headers["etag"]
    cached = api.read(by_key, headers={"If-None-Match": one.headers["etag"]})
    assert cached.status_code == 304
    # As of a position before it: 404 naming the key; after it, the record.
    before = {"as_of_position": written.json()["position"] - 1}
    assert_problem(api.read(by_key, before), 404, "key")
    at = {"as_of_position": written.json()["position"]}
    assert api.read(by_key, at).content == api.read(by_id, at).content
    # Retracted: 410, as by its id.
    retracted = api.post(f"{by_id}/retraction", {"reason": "a test"})
    assert retracted.status_code == 200, retracted.text
    assert_problem(api.read(by_key), 410, "key")
    # Another kind's key, or no such key: 404 naming the key.
    other_kind = next(k for k in PLURAL if k != kind)
    assert_problem(api.read(f"/{PLURAL[other_kind]}/by-key/{quote(key, safe='')}"), 404, "key")
    assert_problem(api.read(f"/{PLURAL[kind]}/by-key/no-such-key"), 404, "key")


def test_a_hostile_key_in_the_path_is_a_404_naming_the_key(api: Api) -> None:
    # SQL, a NUL, bytes that are not UTF-8, a lone surrogate, bidi and zero-width
    # controls, 10,000 characters: keys no record has.
    for raw in RAW_IDS.values():
        assert_problem(api.read(f"/statements/by-key/{raw}"), 404, "key")
