"""The rules on sentences written for these tests: who said it, when, and what is refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drafting.actors import actors_from
from drafting.drafts import Source, extract
from drafting.scoring import score
from drafting.text import MAX_CHARS, TextRefused, sentences

ACTORS = actors_from(
    [
        {"id": "ana-lopez", "name": "Ana Lopez", "kind": "person", "aliases": [],
         "roles": [{"title": "Foreign Minister", "organization": "spain", "since": "2023-01-01"}]},
        {"id": "spain", "name": "Spain", "kind": "state", "aliases": ["Madrid"]},
        {"id": "olaf-berg", "name": "Olaf Berg", "kind": "person", "aliases": ["Berg"],
         "roles": [{"title": "Prime Minister", "organization": "norway", "since": "2020-01-01",
                    "until": "2024-12-31"}]},
        {"id": "ida-moe", "name": "Ida Moe", "kind": "person",
         "roles": [{"title": "Prime Minister", "organization": "norway", "since": "2025-01-01"}]},
        {"id": "norway", "name": "Norway", "kind": "state", "aliases": ["Oslo"]},
        {"id": "harbour-council", "name": "Harbour Council", "kind": "organization",
         "aliases": ["the council"]},
    ]
)  # fmt: skip
POSTED = datetime.fromisoformat("2025-03-06T16:00+00:00")  # a Thursday
SOURCE = Source("https://news.example/live/1", "Example News", "Live", POSTED)


def drafts(text: str, **extra: Any) -> list[dict[str, Any]]:
    return extract(text, SOURCE, ACTORS, **extra).lines


def who(text: str) -> list[tuple[str | None, str | None, str]]:
    return [
        (d.get("speaker") or (d.get("by") or [None])[0], d.get("quote"), d["draft"]["rule"])
        for d in drafts(text)
    ]


def test_a_quotation_goes_to_the_subject_of_its_reporting_verb() -> None:
    text = "Ana Lopez said the fishing deal was “a fair bargain for both coasts”."
    assert who(text) == [("ana-lopez", "a fair bargain for both coasts", "subject")]


def test_the_inverted_form_names_the_speaker_after_the_verb() -> None:
    text = "Fishermen are “tired of waiting”, says Berg, who met them on the pier."
    assert who(text) == [("olaf-berg", "tired of waiting", "inverted")]


def test_a_surname_alone_names_the_one_person_who_bears_it() -> None:
    assert who("“We will sign,” Moe said.")[0][:2] == ("ida-moe", "We will sign,")


def test_reported_speech_is_a_summary_with_no_quote() -> None:
    (line,) = drafts("Olaf Berg told reporters that the port would reopen next spring.")
    assert line["speaker"] == "olaf-berg" and "quote" not in line
    assert line["summary"].startswith("Olaf Berg told reporters")
    assert line["channel"] == "press-conference"


def test_a_colon_hands_the_quotation_to_the_clause_before_it() -> None:
    text = "The harbour is calm, Berg says, adding: “Nobody wants a blockade”."
    assert ("olaf-berg", "Nobody wants a blockade", "colon") in who(text)


def test_a_pronoun_is_the_most_recent_fitting_speaker() -> None:
    text = "Ana Lopez said talks would resume soon. She also warned that “time is short”."
    assert who(text)[1] == ("ana-lopez", "time is short", "pronoun")


def test_a_pronoun_with_no_speaker_before_it_stays_unresolved() -> None:
    (line,) = drafts("He insisted the nets were “never touched”.")
    assert line["speaker"] is None and line["draft"]["speaker_text"] == "He"


def test_a_role_is_the_person_who_held_it_on_that_day() -> None:
    text = "The Norwegian prime minister said the quota was “final”."
    assert who(text) == [("ida-moe", "final", "role")]
    earlier = extract(
        text, Source(SOURCE.url, "p", None, datetime.fromisoformat("2023-05-01T10:00Z")), ACTORS
    )
    assert earlier.lines[0]["speaker"] == "olaf-berg"


def test_a_name_the_store_does_not_know_is_kept_but_never_guessed() -> None:
    (line,) = drafts("Marta Kowalczyk said the boats were “unsafe”.")
    assert line["speaker"] is None and line["draft"]["speaker_text"] == "Marta Kowalczyk"


def test_a_name_inside_a_quotation_is_never_its_speaker() -> None:
    assert who("“Ana Lopez is wrong,” Berg said.")[0][0] == "olaf-berg"


def test_a_quotation_that_follows_one_goes_to_the_same_speaker() -> None:
    text = "“The water is rising,” Moe said on Monday. “We cannot wait for the next storm.”"
    (first, second) = drafts(text)
    assert second["speaker"] == "ida-moe" and second["draft"]["rule"] == "continuation"
    assert second["occurred_at"] == first["occurred_at"] == "2025-03-03"


def test_according_to_names_the_speaker_after_it() -> None:
    text = "The port will reopen in spring, according to the council."
    (line,) = drafts(text)
    assert line["by"] == ["harbour-council"] and line["draft"]["rule"] == "inverted"
    assert who("Talks are “stalled”, according to Jan Novak.") == [
        (None, "stalled", "unknown-name")
    ]


def test_single_curly_quotation_marks_quote_but_an_apostrophe_does_not_close_them() -> None:
    text = "Port ‘won’t close’, says Berg"
    assert who(text) == [("olaf-berg", "won’t close", "inverted")]


def test_a_name_after_an_inverted_verb_is_kept_though_unknown() -> None:
    (line,) = drafts("“We are ready,” said Mr Tanaka.")
    assert line["speaker"] is None and line["draft"]["speaker_text"] == "Mr Tanaka"


def test_a_state_or_an_organisation_announces() -> None:
    (line,) = drafts("The council announced that the harbour would close on Friday.")
    assert line["type"] == "announcement" and line["by"] == ["harbour-council"]


def test_a_page_wrapped_mid_sentence_is_read_as_one_sentence() -> None:
    text = "Ana Lopez said the\n\nagreement was “close”.\n\nNext headline"
    first = sentences(text)[0]
    assert text[first.start : first.end] == "Ana Lopez said the\n\nagreement was “close”."
    assert who(text) == [("ana-lopez", "close", "subject")]


@pytest.mark.parametrize(
    ("words", "day", "note"),
    [
        ("Berg said yesterday that", "2025-03-05", None),
        ("On Thursday, Berg said that", "2025-03-06", None),
        ("Berg said on Tuesday that", "2025-03-04", None),
        ("Berg told reporters on Tuesday that", "2025-03-04", None),
        ("Berg told the local press yesterday that", "2025-03-05", None),
        ("Last year, Berg said that", "2024", None),
        ("In 2019 Berg said that", "2019", None),
        ("Berg said earlier this week that", "2025-03", "no week precision: its month"),
        ("Berg said last week that", "2025", "no week precision: its year"),
        ("On 14 February, Berg said that", "2025-02-14", None),
        ("Berg said that", "2025-03-06", None),
    ],
)
def test_dates_resolve_against_the_post_and_keep_their_precision(
    words: str, day: str, note: str | None
) -> None:
    (line,) = drafts(f"{words} the harbour fees would rise by a tenth.")
    assert line["occurred_at"] == day
    assert note is None or note in line["draft"]["date_text"]


def test_a_date_inside_what_was_said_is_not_when_it_was_said() -> None:
    (line,) = drafts("Berg said the border had not moved since its treaty in 1905.")
    assert line["occurred_at"] == "2025-03-06"


def test_a_live_post_dates_what_follows_its_time_line() -> None:
    text = (
        "Harbour closes\n\npublished at 09:30 Greenwich Mean Time 2 March\n\n"
        "Berg said yesterday that the storm had passed.\n\n"
        "Council meets\n\npublished at 18:05 GMT 4 March\n\nMoe said the fees were “too high”."
    )
    first, second = drafts(text)
    assert first["occurred_at"] == "2025-03-01" and first["draft"]["date_text"] == "yesterday"
    assert second["occurred_at"] == "2025-03-04"
    assert second["draft"]["date_text"] == "published at 18:05 GMT 4 March"


def test_a_post_time_line_without_its_day_is_on_the_pages_day() -> None:
    text = "Quay update\n\nposted at 7:15 pm BST\n\nBerg said the ferry was “late”."
    (line,) = drafts(text)
    assert line["occurred_at"] == "2025-03-06"
    assert line["draft"]["date_text"] == "posted at 7:15 pm BST"


def test_html_is_reduced_to_its_text() -> None:
    page = (
        "<html><head><style>p{}</style><script>var said = 1;</script></head><body>"
        "<h1>Port news</h1><p>Ana Lopez said the deal was &ldquo;done&rdquo;.</p></body></html>"
    )
    result = extract(page, SOURCE, ACTORS)
    assert "<p>" not in result.text and "var said" not in result.text
    assert [(d["speaker"], d["quote"]) for d in result.lines] == [("ana-lopez", "done")]


def test_a_draft_is_a_backfill_line_with_its_source_and_a_stable_key() -> None:
    text = "Ana Lopez said the deal was “done”."
    (line,) = drafts(text, topics=[("fisheries", "Deal")])
    assert line["sources"] == [
        {"publisher": "Example News", "url": SOURCE.url, "title": "Live",
         "published_at": "2025-03-06T16:00:00Z", "excerpt": text}
    ]  # fmt: skip
    assert line["topics"] == ["fisheries"]
    assert line["key"] == drafts(text)[0]["key"] and line["key"].startswith("draft-")
    assert line["draft"]["sentence"] == {"start": 0, "end": len(text)}


def test_a_stored_record_with_the_same_speaker_and_quote_is_named() -> None:
    stored = {("ana-lopez", "done"): "id-1"}
    (line,) = drafts("Ana Lopez said it was “done”.", existing=lambda *said: stored.get(said))
    assert line["draft"]["existing"] == "id-1"


@pytest.mark.parametrize(
    "text",
    [
        "Nobody here speaks.\n\nThe port is quiet and the boats are in.",
        "Berg said “we will see. And then he left the room without another word",
        "““”” ” “ said said , says",
    ],
)
def test_texts_with_nothing_said_or_odd_quotation_marks_give_no_traceback(text: str) -> None:
    for line in drafts(text):
        assert line["draft"]["speaker_text"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n\n ", "empty"),
        ("ab\x00cd", "binary"),
        ("x" * (MAX_CHARS + 1), "longer"),
    ],
)
def test_what_is_not_text_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(TextRefused, match=reason):
        drafts(text)


def test_scores_count_right_speakers_found_statements_and_days() -> None:
    text = "Ana Lopez said the deal was “done”. Berg said the port would reopen on Monday."
    gold: list[dict[str, Any]] = [
        {"type": "statement", "speaker": "ana-lopez", "quote": "done", "occurred_at": "2025-03-06",
         "sources": [{"excerpt": "Ana Lopez said the deal was “done”."}]},
        {"type": "statement", "speaker": "ida-moe", "occurred_at": "2025-03-06",
         "sources": [{"excerpt": "Berg said the port would reopen"}]},
        {"type": "occurrence", "title": "not a statement"},
    ]  # fmt: skip
    result = score(text, drafts(text), gold)
    assert (result.gold, result.matched) == (2, 2)
    assert (result.precision, result.recall, result.quote_recall) == (0.5, 0.5, 1.0)
    assert result.date_accuracy == 1.0


def test_windows_line_ends_and_stray_control_characters_read_as_plain_text() -> None:
    (line,) = drafts("Headline\r\n\r\nAna Lopez said the deal\x07 was “done”.\r\n")
    assert (line["speaker"], line["quote"]) == ("ana-lopez", "done")
    assert "\x07" not in line["summary"] and "\r" not in line["sources"][0]["excerpt"]


# Pieces that make sentences, quotations (closed or not), names, pronouns and verbs.
PIECES = [*"AaBbHhe “”\"«»:;,.–-\n’'", "said", "says", " Berg ", " She ", "\n\n", " on Monday"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=80).map("".join))
def test_any_text_gives_drafts_or_a_reason_never_another_error(text: str) -> None:
    try:
        lines = drafts(text)
    except TextRefused:
        return
    for line in lines:
        span = line["draft"]["sentence"]
        assert 0 <= span["start"] < span["end"]
        assert line["summary"] and line["sources"][0]["excerpt"]
