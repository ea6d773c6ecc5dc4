"""How well drafts match a gold set of statements typed by a person from the same text.

A draft matches a gold statement when, where both quote, one quotation holds the other;
where only the draft quotes, the gold's excerpt holds its quotation; where the draft
reports, its clause holds the gold's excerpt or lies in it.
Precision: of the drafts that match a gold statement and name a speaker, the share whose
speaker is the gold's (for an announcement, one of its authors). Recall: the share of gold
statements matched by a draft with the right speaker (and of those with a quotation).
Dates: of the gold statements found, the share whose draft has the same day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drafting.text import squeezed

GOLD_TYPES = ("statement", "announcement")


@dataclass(frozen=True, slots=True)
class Scores:
    gold: int
    drafts: int
    matched: int  # drafts that match a gold statement and name a speaker
    unattributed: int  # drafts that match one with no speaker (left for a person)
    precision: float
    recall: float
    quote_recall: float
    date_accuracy: float

    def lines(self) -> list[str]:
        return [
            f"gold statements {self.gold}, drafts {self.drafts}, "
            f"matching with a speaker {self.matched}, without one {self.unattributed}",
            f"precision {self.precision:.3f}",
            f"recall {self.recall:.3f}",
            f"direct-quote recall {self.quote_recall:.3f}",
            f"date accuracy {self.date_accuracy:.3f}",
        ]


def score(
    text: str, drafts: Iterable[Mapping[str, Any]], gold: Iterable[Mapping[str, Any]]
) -> Scores:
    golds = [g for g in gold if g.get("type") in GOLD_TYPES]
    drafted = list(drafts)
    flat = _Flat(text)
    right_drafts = matched = unattributed = 0
    found: dict[int, Mapping[str, Any]] = {}
    for d in drafted:
        hits = [i for i, g in enumerate(golds) if _matches(flat, d, g)]
        if not hits:
            continue
        who = _speakers(d)
        if not who:
            unattributed += 1
            continue
        matched += 1
        good = [i for i in hits if who & _speakers(golds[i])]
        right_drafts += bool(good)
        for i in good:
            found.setdefault(i, d)
    quoted = [i for i, g in enumerate(golds) if g.get("quote")]
    dated = sum(
        str(found[i]["occurred_at"])[:10] == str(golds[i]["occurred_at"])[:10] for i in found
    )
    return Scores(
        gold=len(golds),
        drafts=len(drafted),
        matched=matched,
        unattributed=unattributed,
        precision=_share(right_drafts, matched),
        recall=_share(len(found), len(golds)),
        quote_recall=_share(sum(i in found for i in quoted), len(quoted)),
        date_accuracy=_share(dated, len(found)),
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _speakers(line: Mapping[str, Any]) -> set[str]:
    named = [line.get("speaker"), *(line.get("by") or ())]
    return {str(x) for x in named if x}


class _Flat:
    """The text with its white space squeezed, to find excerpts across the page's wraps."""

    def __init__(self, text: str) -> None:
        self.flat = _flat(text)

    def holds(self, excerpt: str) -> bool:
        return excerpt in self.flat


def _matches(flat: _Flat, draft: Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    """A quotation matches the gold's quotation (or lies in its excerpt); a reported
    clause holds the gold's excerpt, or lies in it."""
    excerpts = [_flat(s.get("excerpt")) for s in gold.get("sources", ())]
    excerpts = [e for e in excerpts if e and flat.holds(e)]
    quote, gold_quote = (
        _flat(x).strip(" .,;:!?…") for x in (draft.get("quote"), gold.get("quote"))
    )
    if quote and gold_quote:
        return quote in gold_quote or gold_quote in quote
    if quote:
        return any(quote in e for e in excerpts)
    summary = _flat(draft.get("summary"))
    return any(e in summary or summary in e for e in excerpts)


def _flat(value: object) -> str:
    return squeezed(str(value or "")).casefold()
