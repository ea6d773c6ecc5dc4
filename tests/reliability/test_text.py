"""Text: quotes are kept byte for byte; names are one name in any Unicode normal form.

The decision (docs/reliability.md, "Text and Unicode normal forms"): a statement's
`quote` and a source's `excerpt` are a source's own words and are stored exactly as
given — combining accents, zero-width joiners, bidi marks, non-breaking and doubled
spaces, tabs, line separators, characters beyond the BMP. Every other text field (names,
aliases, labels, titles, summaries, reasons, places, client keys) is normalised to NFC
at the domain boundary, so that a name typed with a decomposed accent (NFD, as macOS
file names and some keyboards give it) and with a composed one (NFC) is the same actor:
registering it again is a duplicate, not a conflict or a second actor, and an alias is
not added twice. A quote in another normal form is the same content (a duplicate, same
id), though stored as first given. Slugs are ASCII (`^[a-z0-9]+(-[a-z0-9]+)*$`), which
no normal form changes."""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Literal
from uuid import UUID

import pytest

from domain import rules
from domain.errors import InvalidInput
from tests.reliability.conftest import Figures
from tests.service.conftest import HTTP_STORES, ApiFactory, statement, unique

NFC: Literal["NFC"] = "NFC"
NFD: Literal["NFD"] = "NFD"
# Quotes that any normalisation, trimming or re-encoding would change.
QUOTES = {
    "decomposed accents": "Zelens\u0301kyy sai\u0308d: \u00ab\u00a0non\u00a0\u00bb",
    "composed accents": unicodedata.normalize(NFC, "Zelens\u0301kyy sai\u0308d"),
    "doubled spaces, tab, newline": "  we  will\tnot\nretreat  ",
    "line and paragraph separators": "one\u2028two\u2029three",
    "zero-width joiner emoji": "peace \U0001f469\u200d\U0001f469\u200d\U0001f467 now",
    "bidi marks and Arabic": (
        "\u200f\u0642\u0627\u0644 \u202b\u0627\u0644\u0631\u0626\u064a\u0633\u202c: "
        "\u0646\u0639\u0645\u200e"
    ),
    "beyond the BMP": "\U0001d4af\U0001d4bd\U0001d4ca \U00020000",
    "typographic quotes": "\u201cimmediately\u201d \u2014 \u2018of course\u2019",
    "compatibility characters": "\ufb01nal \u2126 \u212b \u00bd \uff21",
    "HTML and JSON specials": '<b>"\\n"</b> & \' </script>',
}
# Names whose NFC and NFD spellings differ.
NAMES = {
    "recep-tayyip-erdogan": "Recep Tayyip Erdo\u011fan",
    "lech-walesa": "Lech Wa\u0142\u0119sa",
    "francois-hollande": "Fran\u00e7ois Hollande",
    "sebastien-lecornu": "S\u00e9bastien Lecornu",
    "nguyen-xuan-phuc": "Nguy\u1ec5n Xu\u00e2n Ph\u00fac",
}


def nfd(text: str) -> str:
    return unicodedata.normalize(NFD, text)


def nfc(text: str) -> str:
    return unicodedata.normalize(NFC, text)


def assert_same_bytes(got: Any, sent: str) -> None:
    assert isinstance(got, str)
    assert got.encode("utf-8") == sent.encode("utf-8"), (got, sent)


@pytest.mark.parametrize("store", HTTP_STORES)
def test_quotes_and_excerpts_are_stored_and_served_byte_for_byte(
    api_factory: ApiFactory, store: str, figures: Figures
) -> None:
    api = api_factory(store)
    checked = 0
    for what, quote in QUOTES.items():
        excerpt = quote[::-1]  # other words, as exact
        source = {"publisher": "BBC", "url": f"https://example.org/{unique()}", "excerpt": excerpt}
        body = statement(key=unique(what), quote=quote, sources=[source])
        # Sent with every non-ASCII character as raw UTF-8 (not \\u escapes).
        raw = json.dumps(body, ensure_ascii=False).encode()
        written = api.post("/statements", content=raw)
        assert written.status_code == 201, (what, written.text)
        id = written.json()["id"]
        # A later correction of another field leaves the quote alone.
        corrected = api.post(
            f"/statements/{id}/corrections", {"changes": {"location": "Kyiv"}, "reason": "place"}
        )
        assert corrected.status_code == 200, corrected.text
        read = api.read(f"/statements/{id}")
        page = api.read("/timeline", {"actor": "mark-rutte", "limit": 500})
        item = next(i for i in page.json()["items"] if i["id"] == id)
        history = api.read(f"/statements/{id}/history").json()["items"]
        stored = api.services.timeline.get_record("statement", UUID(id))
        for got in (
            read.json()["quote"],
            item["quote"],
            history[0]["data"]["content"]["quote"],
            stored.content["quote"],
        ):
            assert_same_bytes(got, quote)
            checked += 1
        for got in (read.json()["sources"][0]["excerpt"], stored.content["sources"][0]["excerpt"]):
            assert_same_bytes(got, excerpt)
            checked += 1
    figures(store=store, quotes=len(QUOTES), places_checked_byte_exact=checked)


@pytest.mark.parametrize("store", HTTP_STORES)
def test_nfc_and_nfd_spellings_of_a_name_are_the_same_actor(
    api_factory: ApiFactory, store: str, figures: Figures
) -> None:
    api = api_factory(store)
    stats = {"actors": 0, "duplicates": 0, "aliases_added_once": 0}
    for slug, name in NAMES.items():
        assert nfd(name) != nfc(name)  # the two spellings really differ
        alias = name.split()[-1]
        first = api.post("/actors", {"id": slug, "name": nfd(name), "kind": "person"})
        assert first.status_code == 201, first.text
        # The other spelling of the same registration: the same actor, a duplicate.
        again = api.post("/actors", {"id": slug, "name": nfc(name), "kind": "person"})
        assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
        # An alias in one spelling, then the other: added once.
        added = api.post(f"/actors/{slug}/aliases", {"alias": nfd(alias)})
        assert added.json()["duplicate"] is False, added.text
        repeat = api.post(f"/actors/{slug}/aliases", {"alias": nfc(alias)})
        assert repeat.json()["duplicate"] is True, repeat.text
        profile = api.read(f"/actors/{slug}").json()
        assert_same_bytes(profile["name"], nfc(name))
        assert [a.encode() for a in profile["aliases"]] == [nfc(alias).encode()]
        # Listed once, under its one spelling.
        listed = [a for a in api.read("/actors", {"limit": 500}).json()["items"] if a["id"] == slug]
        assert len(listed) == 1 and listed[0]["name"] == nfc(name)
        stats["actors"] += 1
        stats["duplicates"] += 2
        stats["aliases_added_once"] += 1
    # A backfill of the NFD spelling finds the NFC one stored: nothing new.
    lines = [
        {"type": "actor", "id": slug, "name": nfd(name), "kind": "person"}
        for slug, name in NAMES.items()
    ]
    report = api.backfill(lines)
    assert (report["accepted"], report["duplicates"]) == (0, len(NAMES))
    # Topic labels alike.
    label = "S\u00e9curit\u00e9 europ\u00e9enne"
    assert api.post("/topics", {"id": "securite", "label": nfd(label)}).status_code == 201
    other = api.post("/topics", {"id": "securite", "label": nfc(label)})
    assert other.status_code == 200 and other.json()["duplicate"] is True
    assert_same_bytes(api.read("/topics/securite").json()["label"], nfc(label))
    figures(store=store, **stats, backfill_duplicates=report["duplicates"])


@pytest.mark.parametrize("store", HTTP_STORES)
def test_a_quote_in_another_normal_form_is_the_same_statement_stored_as_first_given(
    api_factory: ApiFactory, store: str
) -> None:
    api = api_factory(store)
    quote = "Zelenskyy: \u00ab nous n'accepterons pas \u00bb \u2014 Erdo\u011fan agr\u00e9\u00e9"
    first = api.post("/statements", statement(quote=nfd(quote)))
    assert first.status_code == 201, first.text
    # No key: the derived key and the content's fingerprint read both forms alike.
    second = api.post("/statements", statement(quote=nfc(quote)))
    assert second.status_code == 200 and second.json()["duplicate"] is True, second.text
    assert second.json()["id"] == first.json()["id"]
    assert_same_bytes(api.read(f"/statements/{first.json()['id']}").json()["quote"], nfd(quote))
    # A client key in either form names the same record.
    key = "cl\u00e9-" + unique()
    keyed = api.post("/statements", statement(key=nfd(key), quote="keyed"))
    assert keyed.status_code == 201, keyed.text
    again = api.post("/statements", statement(key=nfc(key), quote="keyed"))
    assert again.status_code == 200 and again.json()["id"] == keyed.json()["id"]


def test_slugs_are_ascii_in_every_normal_form() -> None:
    """No normal form turns a non-slug into a slug or a slug into another one."""
    for candidate in ("ren\u00e9", nfd("ren\u00e9"), "\u212a", "\uff4d", "m\u0430rk"):
        for form in (candidate, nfc(candidate), nfd(candidate)):
            with pytest.raises(InvalidInput):
                rules.slug(form, "id")
    for slug in NAMES:
        assert nfc(slug) == nfd(slug) == rules.slug(slug, "id")
