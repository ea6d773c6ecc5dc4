"""`q` on GET /timeline and /timeline/counts, on every store: the records whose title,
quote or summary holds every word, in timeline order, as they stood at the point asked,
with the other filters and the cursor; and text that is no search is a 422 naming q."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.service.conftest import Api, announcement, occurrence, statement
from tests.service.test_http_api import assert_problem


def word() -> str:
    """A word no other record holds."""
    return f"w{uuid.uuid4().hex[:12]}"


def created(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def found(api: Api, params: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.read("/timeline", {"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(api: Api, params: dict[str, Any]) -> list[str]:
    return [item["id"] for item in found(api, params)]


def total(api: Api, params: dict[str, Any]) -> int:
    response = api.read("/timeline/counts", params)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_a_search_finds_quotes_summaries_and_titles_in_timeline_order(api: Api) -> None:
    w = word()
    # A title, a summary and a quote hold the word; records are posted out of order.
    said = created(
        api, "/statements", statement(quote=f"we said {w} today", occurred_at="2025-02-14")
    )
    made = created(api, "/announcements", announcement(summary=f"{w.upper()} announced"))
    happened = created(
        api, "/occurrences", occurrence(title=f"Talks on {w}", occurred_at="2025-02-12")
    )
    created(api, "/statements", statement(quote="no such word here", occurred_at="2025-02-13"))
    # Found in occurred order, whatever the case; counted alike.
    assert ids(api, {"q": w}) == [happened["id"], made["id"], said["id"]]
    assert ids(api, {"q": w.upper()}) == ids(api, {"q": w})
    assert total(api, {"q": w}) == 3


def test_every_word_must_be_there_in_any_order(api: Api) -> None:
    a, b = word(), word()
    both = created(api, "/statements", statement(quote=f"{a}, and then {b}."))
    created(api, "/statements", statement(quote=f"only {a}"))
    assert ids(api, {"q": f"{b} {a}"}) == [both["id"]]
    # Punctuation separates words as spaces do; FTS5's and tsquery's syntax is text
    # (`AND` is the word "and").
    assert ids(api, {"q": f'"{b}" AND ({a}*)'}) == [both["id"]]
    assert ids(api, {"q": f"{a} NEAR {b}"}) == []  # `near` is a word, and no record holds it


def test_a_corrected_quote_is_found_by_its_old_words_before_and_its_new_words_now(
    api: Api,
) -> None:
    old, new = word(), word()
    said = created(api, "/statements", statement(quote=f"first {old}"))
    before = said["position"]
    correction = {"changes": {"quote": f"then {new}"}, "reason": "misquoted"}
    assert api.post(f"/statements/{said['id']}/corrections", correction).status_code == 200
    # Now: by the new words only.
    assert ids(api, {"q": new}) == [said["id"]]
    assert ids(api, {"q": old}) == []
    assert total(api, {"q": old}) == 0
    # As of before the correction: by the old words only, with the old quote.
    then = found(api, {"q": old, "as_of_position": before})
    assert [(i["id"], i["quote"]) for i in then] == [(said["id"], f"first {old}")]
    assert ids(api, {"q": new, "as_of_position": before}) == []
    assert total(api, {"q": old, "as_of_position": before}) == 1


def test_a_retracted_record_is_found_only_as_of_before_its_retraction(api: Api) -> None:
    w = word()
    made = created(api, "/announcements", announcement(summary=f"soon {w}"))
    retraction = api.post(f"/announcements/{made['id']}/retraction", {"reason": "wrong"})
    assert retraction.status_code == 200, retraction.text
    assert ids(api, {"q": w}) == []
    assert total(api, {"q": w}) == 0
    assert ids(api, {"q": w, "as_of_position": made["position"]}) == [made["id"]]
    # An instant reads as its position does.
    assert ids(api, {"q": w, "as_of": made["recorded_at"]}) == [made["id"]]


def test_a_search_combines_with_every_filter_and_counts_agree(api: Api) -> None:
    w = word()
    records = {
        "rutte": created(
            api,
            "/statements",
            statement(quote=f"{w} one", occurred_at="2025-02-13", topics=["sanctions"]),
        ),
        "trump": created(
            api,
            "/statements",
            statement(
                speaker="donald-trump",
                quote=f"{w} two",
                occurred_at="2025-02-14",
                topics=["ceasefire"],
            ),
        ),
        "call": created(
            api,
            "/occurrences",
            occurrence(title=f"{w} three", occurred_at="2024-06", topics=["negotiations"]),
        ),
    }
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"kind": "statement"}, ["rutte", "trump"]),
        ({"actor": "donald-trump"}, ["call", "trump"]),
        ({"topic": "negotiations"}, ["call", "trump"]),  # with the topics below it
        ({"topic": "ceasefire"}, ["trump"]),
        ({"topic": "negotiations", "actor": "donald-trump", "kind": "statement"}, ["trump"]),
        ({"since": "2025-02-14"}, ["trump"]),
        ({"until": "2025-02-13"}, ["call", "rutte"]),
        ({"since": "2024", "until": "2024"}, ["call"]),
        ({"since": "2025-02-13", "actor": "mark-rutte"}, ["rutte"]),
    ]
    for params, names in cases:
        expected = [records[n]["id"] for n in names]
        assert ids(api, {"q": w, **params}) == expected, params
        assert total(api, {"q": w, **params}) == len(expected), params
        for bucket in ("day", "year"):
            buckets = api.read("/timeline/counts", {"q": w, "bucket": bucket, **params}).json()
            assert sum(b["count"] for b in buckets["items"]) == len(expected)


def test_a_search_pages_by_the_timelines_cursor(api: Api) -> None:
    w = word()
    days = ["2025-02-15", "2025-02-11", "2025-02-13", "2025-02-13", "2025-02-12"]
    made = [
        created(api, "/statements", statement(quote=f"{w} {n}", occurred_at=d))
        for n, d in enumerate(days)
    ]
    expected = ids(api, {"q": w})
    assert sorted(expected) == sorted(m["id"] for m in made)
    # Two at a time, each page after the last: every record once, in the same order.
    seen: list[str] = []
    params: dict[str, Any] = {"q": w, "limit": 2}
    while True:
        page = api.read("/timeline", params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {**params, "cursor": page["next_cursor"]}
    assert seen == expected
    # A page as of a point pages alike (before the last record: four of them).
    at = {"q": w, "limit": 3, "as_of_position": made[-2]["position"]}
    first = api.read("/timeline", at).json()
    rest = api.read("/timeline", {**at, "cursor": first["next_cursor"]}).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [
        i for i in expected if i != made[-1]["id"]
    ]


HOSTILE = [
    '"',
    "*",
    "NEAR(",
    "NEAR(a b",
    "AND",
    "OR NOT",
    "-",
    "- putin",
    "putin -",
    "putin*",
    "^putin",
    "putin:",
    "text: putin",
    "(putin",
    "'",
    "\\",
    "%",
    "_",
    "!putin",
    "putin & trump | !x",
    "putin <-> trump",
    "🙂",
    "putin🙂",
    "🇺🇦 putin",
    "\u200b",
    "\u202eputin",
    "ë" * 500,
    "a" * 500,
    "Putin\u2019s «talks» \u2014 \u201cpeace\u201d",
    "نتنياهو",
    "普京",
    "e\u0301",
    "x" * 1000,
    "putin\x00",
    "\t",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_any_text_searches_or_is_a_422_naming_q_never_an_error(api: Api, q: str) -> None:
    for path in ("/timeline", "/timeline/counts"):
        response = api.read(path, {"q": q})
        if response.status_code != 200:
            assert_problem(response, 422, "q")


@pytest.mark.parametrize(
    "q", ["", " ", "   \t ", "\u200b\u200b", "*", '"', "-", "🙂", "x" * 501, "a\x00b"]
)
def test_text_with_no_word_or_too_long_is_a_422_naming_q(api: Api, q: str) -> None:
    for path in ("/timeline", "/timeline/counts"):
        assert_problem(api.read(path, {"q": q}), 422, "q")


def test_a_search_of_500_characters_is_taken(api: Api) -> None:
    w = word()
    said = created(api, "/statements", statement(quote=w))
    assert ids(api, {"q": f"{w} " + "x" * (499 - len(w))}) == []
    assert ids(api, {"q": (w + " ") * (500 // (len(w) + 1))}) == [said["id"]]
