"""Rules for what live pages write besides a name before `said`: time lines in the forms
pages use, `he` and `she` for someone named before, bare titles, a state's bodies, asides,
new reporting verbs and headlines in straight quotation marks. The sentences and people
are the tests' own."""

from __future__ import annotations

from datetime import datetime

import pytest

from drafting.actors import actors_from
from drafting.dates import posts
from drafting.drafts import extract
from drafting.text import Span, quotes
from tests.drafting.test_drafts import POSTED, SOURCE, drafts, who


@pytest.mark.parametrize(
    ("line", "instant"),
    [
        ("Wed 5 Mar 2025 16.20 GMT", "2025-03-05T16:20:00+00:00"),
        ("Updated 4 March 2025, 09:12 GMT", "2025-03-04T09:12:00+00:00"),
        ("Posted March 4, 2025 at 9:15 am EST", "2025-03-04T14:15:00+00:00"),
        ("2.20pm GMT", "2025-03-06T14:20:00+00:00"),
        ("14:09", "2025-03-06T14:09:00+00:00"),
        ("published at 7:15 pm BST", "2025-03-06T18:15:00+00:00"),
    ],
)
def test_a_post_time_line_is_read_in_the_forms_live_pages_use(line: str, instant: str) -> None:
    text = f"Harbour talks\n\n{line}\n\nMoe said the fees were “too high”."
    ((start, anchor),) = posts(text, POSTED)
    assert anchor.moment == datetime.fromisoformat(instant) and start == 0


def test_a_line_that_only_mentions_a_time_is_no_time_line() -> None:
    assert posts("The ferry leaves at 14:09 GMT on Monday.\n", POSTED) == []


def test_when_the_headlines_follow_the_time_lines_each_post_starts_at_its_time_line() -> None:
    # Newest first, each headline after its time line; the opening summary is the page's.
    text = (
        "Harbour talks – as it happened\n\nThu 6 Mar 2025 15.10 GMT\n\nMoe: ‘no deal yet’\n\n"
        "Moe said the fees were “too high”.\n\nTue 4 Mar 2025 09.05 GMT\n\nOpening day\n\n"
        "Ana Lopez said yesterday that the port was “open to all”."
    )
    lines = drafts(text)
    dates = {d["quote"]: (d["occurred_at"], d["draft"]["date_text"]) for d in lines}
    assert dates["too high"] == ("2025-03-06", "Thu 6 Mar 2025 15.10 GMT")
    assert dates["open to all"] == ("2025-03-03", "yesterday")
    assert dates["no deal yet"][0] == "2025-03-06"


def test_a_person_named_without_a_reporting_verb_is_whom_he_or_she_means() -> None:
    text = "Ida Moe was more guarded. “We will not sign today,” she told reporters."
    assert who(text) == [("ida-moe", "We will not sign today,", "pronoun")]


def test_a_person_last_called_she_is_not_the_one_a_he_means() -> None:
    text = (
        "Olaf Berg opened the meeting. Ana Lopez spoke next. “We are close,” she said. "
        "“Not yet,” he said."
    )
    assert [x[0] for x in who(text)] == ["ana-lopez", "olaf-berg"]


def test_a_pronoun_looks_back_no_further_than_its_post() -> None:
    text = (
        "Talks open\n\npublished at 09:30 GMT 6 March\n\nAna Lopez said the port was "
        "“open to all”.\n\nTalks close\n\npublished at 15:30 GMT 6 March\n\n"
        "“Nothing more tonight,” she said."
    )
    last = drafts(text)[-1]
    assert last["speaker"] is None and last["draft"]["speaker_text"] == "she"


def test_an_object_or_a_possessive_is_not_whom_a_pronoun_means() -> None:
    text = (
        "Ana Lopez met Olaf Berg. “It went well,” she said. Berg’s aides left. “Fine,” she added."
    )
    assert [x[0] for x in who(text)] == ["ana-lopez", "ana-lopez"]


def test_a_bare_title_is_the_person_just_named_who_holds_it() -> None:
    text = "Ana Lopez arrived in Oslo at noon. Later the minister said the port was “open”."
    assert who(text) == [("ana-lopez", "open", "role")]


TWO_MINISTERS = actors_from(
    [
        {"id": "ana-lopez", "name": "Ana Lopez", "kind": "person",
         "roles": [{"title": "Foreign Minister", "organization": "spain"}]},
        {"id": "spain", "name": "Spain", "kind": "state"},
        {"id": "uma-sel", "name": "Uma Sel", "kind": "person",
         "roles": [{"title": "Trade Minister", "organization": "norway"}]},
        {"id": "norway", "name": "Norway", "kind": "state"},
        {"id": "norwegian-government", "name": "Norwegian Government", "kind": "organization"},
    ]
)  # fmt: skip


def test_a_bare_title_before_of_names_another_office() -> None:
    (line,) = drafts("The minister of fisheries said the port was “open”.")
    assert line["speaker"] is None


def test_a_bare_title_two_people_hold_is_left_for_a_person_to_name() -> None:
    (line,) = extract("The minister said the port was “open”.", SOURCE, TWO_MINISTERS).lines
    assert line["speaker"] is None and line["draft"]["speaker_text"] == "The minister"


def test_a_framed_quotation_whose_speaker_is_not_recognised_is_kept_without_one() -> None:
    (line,) = drafts("The head of the harbour delegation said the offer was “not serious”.")
    assert line["speaker"] is None and line["quote"] == "not serious"
    assert line["draft"]["speaker_text"] == "The head of the harbour delegation"
    assert line["draft"]["rule"] == "unresolved"
    # Reported speech from such a subject is not drafted, nor a passive.
    assert drafts("The head of the delegation said that the talks had stalled.") == []
    assert drafts("The envoy was recalled “for consultations”.") == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Ana Lopez cautioned that “nothing is agreed”.", ("ana-lopez", "nothing is agreed")),
        ("Ana Lopez called it “a fair text”.", ("ana-lopez", "a fair text")),
        ("Berg dismissed the offer as “a stunt”.", ("olaf-berg", "a stunt")),
        ("Berg hailed the vote as “historic”.", ("olaf-berg", "historic")),
        (
            "Ana Lopez welcomed the deal but cautioned that “the hard part is ahead”.",
            ("ana-lopez", "the hard part is ahead"),
        ),
        ("Ana Lopez conceded that the talks had stalled.", ("ana-lopez", None)),
    ],
)
def test_more_verbs_report_speech(text: str, said: tuple[str, str | None]) -> None:
    assert [x[:2] for x in who(text)] == [said]


@pytest.mark.parametrize(
    "text",
    [
        "Ana Lopez called for calm at the harbour.",
        "Ana Lopez maintained the blockade for a week.",
        "Berg praised the harbour staff for their work.",
    ],
)
def test_verbs_that_report_only_in_some_uses_draft_nothing_in_the_others(text: str) -> None:
    assert drafts(text) == []


def test_a_states_body_speaks_for_the_state_unless_the_store_has_it() -> None:
    said = drafts("Spain's foreign ministry said that the port would reopen on Monday.")
    assert said[0]["type"] == "announcement" and said[0]["by"] == ["spain"]
    said = drafts("The Norwegian government announced that the fees would stay.")
    assert said[0]["by"] == ["norway"]
    own = extract("The Norwegian Government said that fees would stay.", SOURCE, TWO_MINISTERS)
    assert own.lines[0]["by"] == ["norwegian-government"]


@pytest.mark.parametrize(
    "text",
    [
        "Ana Lopez, who took office last year, said the port was “open to all”.",
        "Ana Lopez – who took office in 2023 – said the port was “open to all”.",
        "Ana Lopez, a minister since last year, said the port was “open to all”.",
    ],
)
def test_a_date_in_an_aside_about_the_speaker_is_not_the_statements(text: str) -> None:
    (line,) = drafts(text)
    assert line["occurred_at"] == "2025-03-06" and line["draft"]["date_text"] is None


def test_straight_single_quotation_marks_quote_and_apostrophes_do_not() -> None:
    text = "Spain's envoy: 'the hardest part is ahead' as the farmers' union waits"
    assert [text[q.start : q.end] for q in quotes(text, Span(0, len(text)))] == [
        "the hardest part is ahead"
    ]


def test_a_headlines_speaker_before_a_colon_may_be_a_bare_title() -> None:
    assert who("Spanish minister: 'We will not sign'") == [
        ("ana-lopez", "We will not sign", "colon")
    ]


def test_the_directory_knows_no_bare_title_for_a_rank_or_a_postposed_word() -> None:
    actors = actors_from(
        [{"id": "x", "name": "Xu Lin", "kind": "person",
          "roles": [{"title": "Vice President"}, {"title": "Secretary General"}]}]
    )  # fmt: skip
    lines = extract("The president said “no”. The general said “yes”.", SOURCE, actors).lines
    assert [(x["speaker"], x["draft"]["speaker_text"]) for x in lines] == [
        (None, "The president"),
        (None, "The general"),
    ]
