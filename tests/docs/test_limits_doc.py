"""The limits and closed sets the documents state are the domain's: the table of limits in
docs/api.md and the channels of docs/backfill.md say what domain/rules.py holds."""

from __future__ import annotations

import re
from pathlib import Path

from domain import rules

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Each row of the table about the content, by what it limits: the domain's numbers.
ROWS = {
    "slugs (actors, topics)": {rules.SLUG_MAX},
    "keys": {rules.KEY_MAX},
    "names, aliases, role titles, labels": {rules.NAME_MAX},
    "occurrence titles, places": {rules.TITLE_MAX},
    "quotes, summaries": {rules.TEXT_MAX},
    "excerpts, reasons, a topic's description": {
        rules.EXCERPT_MAX,
        rules.REASON_MAX,
        rules.DESCRIPTION_MAX,
    },
    "a source's title / URL": {rules.SOURCE_TITLE_MAX, rules.URL_MAX},
    "lists in a body (`topics`, `mentions`, `by`, `participants`, aliases)": {
        rules.LIST_MAX,
        rules.SOURCES_MAX,
        rules.ROLES_MAX,
    },
}


def _numbers(text: str) -> set[int]:
    """The numbers a cell states, ranges' lower ends (1) aside."""
    return {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)} - {1}


def test_the_table_of_limits_states_the_domain_s_numbers() -> None:
    table = (DOCS / "api.md").read_text().split("## Limits", 1)[1]
    cells = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", table, re.M))
    assert {what: _numbers(cells[what]) for what in ROWS} == ROWS


def test_the_backfill_document_lists_the_domain_s_channels() -> None:
    line = re.search(
        r"\*\*`channel`\*\* is one of (.+?)\.\n", (DOCS / "backfill.md").read_text(), re.S
    )
    assert line is not None
    assert set(re.findall(r"`([a-z-]+)`", line[1])) == rules.CHANNELS
