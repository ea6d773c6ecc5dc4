"""An article to draft lines: each quotation or reported clause with its speaker, its date,
its topics and its source, in the backfill format, plus what the draft was found by."""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.rules import EXCERPT_MAX, LIST_MAX, TEXT_MAX
from drafting.actors import Actor, Directory, Mention
from drafting.dates import Anchor, Dated, anchor_at, date_in, day_of, posts
from drafting.speakers import (
    ACCORDING,
    ANNOUNCING,
    MASK,
    REPORTING,
    THAT_CLAUSE,
    VERB,
    Context,
    Said,
    speakers,
    subject_of,
)
from drafting.text import Span, plain_text, quotes, sentences, squeezed

_CHANNELS = [
    (name, re.compile(cue, re.I))
    for name, cue in (
        (
            "social-media",
            r"\b(?:post(?:ed)? on (?:X|Twitter|Facebook|Telegram|social media)|tweet(?:ed)?"
            r"|Telegram channel|social media)\b",
        ),
        ("press-conference", r"\b(?:told reporters|(?:news|press) conference|briefing)\b"),
        ("interview", r"\b(?:interview|told the\b|talking to|speaking to (?:the )?[A-Z])"),
        ("speech", r"\b(?:speech|address(?:ing)? (?:the|a))\b"),
        ("written-statement", r"\b(?:(?:written |a )statement|communiqu[eé]|letter)\b"),
    )
]


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    publisher: str
    title: str | None
    published_at: datetime  # with its UTC offset


@dataclass(frozen=True, slots=True)
class Drafts:
    text: str  # what the rules read (HTML reduced to text); offsets point into it
    lines: list[dict[str, Any]]


def extract(
    raw: str,
    source: Source,
    actors: Iterable[Actor],
    topics: Iterable[tuple[str, str]] = (),
    existing: Callable[[str, str], str | None] | None = None,
    *,
    html: bool | None = None,
) -> Drafts:
    """The drafts of an article. `topics` are (id, label); `existing(speaker, quote)` is
    the id of a stored record with that speaker and quotation, if any; `html` says whether
    the article is HTML (None: as it looks)."""
    text = plain_text(raw, html)
    run = _Run(text, source, Directory(actors), _labels(topics), existing or _nothing)
    for number, sentence in enumerate(sentences(text)):
        run.sentence(number, sentence)
    return Drafts(text, run.lines)


def _nothing(speaker: str, quote: str) -> None:
    return None


class _Run:
    def __init__(
        self,
        text: str,
        source: Source,
        directory: Directory,
        labels: tuple[re.Pattern[str] | None, dict[str, str]],
        existing: Callable[[str, str], str | None],
    ) -> None:
        self.text, self.source, self.directory = text, source, directory
        self.labels, self.existing = labels, existing
        self.page = Anchor(source.published_at, None)
        self.posts = posts(text, source.published_at)
        self.context = Context([])
        self.anchor = self.page
        self.lines: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self.last: tuple[int, Said, Dated] | None = None
        self.mentions = directory.mentions(text)  # once: sentences take theirs by offset
        self.starts = [m.start for m in self.mentions]

    def sentence(self, number: int, span: Span) -> None:
        self.context.sentence = number
        anchor = anchor_at(self.posts, span.start, self.page)
        if anchor is not self.anchor:  # a new post: pronouns look back no further
            self.anchor, self.context.post = anchor, number
        found = quotes(self.text, span)
        masked = _masked(self.text, span, found)
        named = [
            replace(m, start=m.start - span.start, end=m.end - span.start)
            for m in self.mentions[
                bisect_left(self.starts, span.start) : bisect_left(self.starts, span.end)
            ]
            if m.end <= span.end
        ]
        self._people(number, masked, named, day_of(anchor).value)
        if not found and VERB.search(masked) is None:
            return  # nothing quoted, nothing reported
        start = 0
        for clause in masked.split(";"):
            end = start + len(clause)
            self._clause(number, span, masked, Span(start, end), named, found, anchor)
            start = end + 1

    def _people(self, number: int, masked: str, named: list[Mention], day: str) -> None:
        """The person a sentence is about (its first mention, as its subject): whom a later
        `he` or `she` or a bare title may mean."""
        person = subject_of(masked, named, self.directory, day)
        if person is not None:
            self.context.named.append((number, person))

    def _clause(
        self,
        number: int,
        span: Span,
        masked: str,
        clause: Span,
        named: list[Mention],
        found: list[Span],
        anchor: Anchor,
    ) -> None:
        start, end = clause.start, clause.end
        day = day_of(anchor).value
        saids = speakers(masked, start, end, named, self.directory, day, self.context)
        inside = [q for q in found if start <= q.start - span.start < end]
        if not inside:
            said = next((s for s in saids if _reports(s, masked, start, end)), None)
            if said is not None:
                dated = _dated(masked, start, end, said, anchor)
                self._emit(number, span, said, None, clause, named, dated, said.rule)
            return
        used = set()
        for quote in inside:
            q = Span(quote.start - span.start, quote.end - span.start)
            said = min(saids, key=lambda s: _distance(s, q), default=None)
            used.add(id(said))
            rule = said.rule if said is not None else ""
            if said is not None and masked[: q.start].rstrip(" “\"«„‘'").endswith(":"):
                rule = "colon"
            if said is None and self.last is not None and _only_quoted(masked):
                before, said, dated = self.last
                if number - before > 2:
                    continue
                rule = "continuation"
            elif said is None:
                continue  # a quotation no one is said to have said: a title, a term
            else:
                dated = _dated(masked, start, end, said, anchor)
            self._emit(number, span, said, quote, clause, named, dated, rule)
        # A speaker of the clause whom no quotation went to reports something of their own
        # ("X said talks will be hard, while Y said “…”").
        quoted = {s.actor for s in saids if id(s) in used}
        for said in saids:
            if (
                id(said) not in used
                and said.actor not in quoted
                and _reports(said, masked, start, end)
            ):
                dated = _dated(masked, start, end, said, anchor)
                self._emit(number, span, said, None, clause, named, dated, said.rule)
                break

    def _emit(
        self,
        number: int,
        span: Span,
        said: Said,
        quote: Span | None,
        clause: Span,
        named: list[Mention],
        dated: Dated,
        rule: str,
    ) -> None:
        excerpt = squeezed(self.text[span.start : span.end])
        words = squeezed(self.text[quote.start : quote.end]) if quote else None
        key = _key(self.source.url, excerpt, words)
        if key in self.keys:
            return
        self.keys.add(key)
        sentence_text = self.text[span.start : span.end]
        mentioned = [a for m in named for a in self.directory.holders(m, dated.value[:10])[:1]]
        line: dict[str, Any] = {"type": "statement", "key": key}
        person = said.actor is None or self.directory.actors[said.actor].kind == "person"
        if said.actor is not None and (not person or said.verb in ANNOUNCING):
            line = {"type": "announcement", "key": key, "by": [said.actor]}
        else:
            line["speaker"] = said.actor
        summary = squeezed(self.text[span.start + clause.start : span.start + clause.end])
        if words is not None and len(words) <= TEXT_MAX:
            line["quote"] = words
        line.update(
            summary=summary[: TEXT_MAX - 1] + "…" if len(summary) > TEXT_MAX else summary,
            channel=_channel(sentence_text),
            occurred_at=dated.value,
            topics=_topics(self.labels, sentence_text),
            mentions=list(dict.fromkeys(a for a in mentioned if a != said.actor))[:LIST_MAX],
            sources=[self._source(excerpt)],
            draft={
                "speaker_text": said.text,
                "confidence": said.confidence,
                "rule": rule,
                "sentence": {"start": span.start, "end": span.end},
                "date_text": dated.text,
                "existing": self.existing(said.actor, words) if said.actor and words else None,
            },
        )
        self.lines.append(line)
        if said.actor is not None:
            self.context.recent.append((number, said.actor))
            if said.text.lower() in ("he", "she"):
                self.context.pronouns[said.actor] = said.text.lower()
        self.last = (number, said, dated)

    def _source(self, excerpt: str) -> dict[str, Any]:
        s = self.source
        out: dict[str, Any] = {"publisher": s.publisher, "url": s.url}
        if s.title:
            out["title"] = s.title
        out["published_at"] = s.published_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        out["excerpt"] = (
            excerpt if len(excerpt) <= EXCERPT_MAX else excerpt[: EXCERPT_MAX - 1] + "…"
        )
        return out


def _masked(text: str, span: Span, found: list[Span]) -> str:
    parts, at = [], span.start
    for q in found:
        parts += [text[at : q.start], MASK * (q.end - q.start)]
        at = q.end
    parts.append(text[at : span.end])
    return "".join(parts)


def _reports(said: Said, masked: str, start: int, end: int) -> bool:
    """Reported speech: a verb that takes a clause, and a clause after it (before it, for
    "according to")."""
    if said.rule == "unresolved":  # only a quotation is kept for a person to name
        return False
    if said.verb == ACCORDING:
        return len(masked[start : said.verb_start].split()) >= 3
    after = masked[said.verb_end : end].split()
    if said.verb in THAT_CLAUSE and after[:1] != ["that"]:
        return False
    return said.verb in REPORTING and len(after) >= 3


def _distance(said: Said, quote: Span) -> int:
    if said.verb_start >= quote.end:
        return said.verb_start - quote.end
    return max(0, quote.start - said.verb_end)


def _only_quoted(masked: str) -> bool:
    """A sentence that is a quotation (and at most a few words more): the last speaker's."""
    outside = masked.replace(MASK, "").strip(" “”\"«»„‘’'.,;:!?…\n")
    opens = ("“", '"', "«", "„", "‘", "'")
    return masked.lstrip().startswith(opens) and len(outside.split()) <= 3


# What is said of someone in passing ("X, who took office last year, said"; "X – a former
# envoy – said"): its dates are not the statement's.
_ASIDE = re.compile(
    r"(?:,\s*(?:who|whom|whose|which)\b[^,;–—()]*(?:,|$)|[–—]\s*(?:who|whom|whose|which|a|an|the)\b"
    r"[^–—;]*[–—]|\((?:who|whom|whose|which|a|an|the)\b[^()]*\)"
    r"|,\s*(?:a|an|the|his|her|its|their)\s[^,;]*,(?=\s*(?:\w+ly\s+|has\s+|have\s+|had\s+)*$))"
)
# Verbs that name whom they were said to before when: "told reporters on Wednesday".
_TOLD = re.compile(r"\s+(?:the\s+)?\w+(?:\s+\w+)?(?=\s+(?:on|this|last|earlier|yesterday|today))")
_TO_WHOM = frozenset(
    ["told", "tells", "tell", "asked", "asks", "urged", "urges", "warned", "warns"]
)


def _dated(masked: str, start: int, end: int, said: Said, anchor: Anchor) -> Dated:
    """The words before the verb date it, or those that follow it at once (after whom it
    was said to)."""
    before = _ASIDE.sub(" ", masked[start : said.verb_start].replace(MASK, " "))
    after = masked[said.verb_end : end].replace(MASK, " ")
    if said.verb in _TO_WHOM and (whom := _TOLD.match(after)):
        after = after[whom.end() :]
    return date_in(before, anchor) or date_in(after, anchor, leading=True) or day_of(anchor)


def _channel(sentence: str) -> str:
    return next((name for name, cue in _CHANNELS if cue.search(sentence)), "other")


def _labels(topics: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    by_label = {label.casefold(): id for id, label in topics if label.strip()}
    if not by_label:
        return None, {}
    body = "|".join(re.escape(x) for x in sorted(by_label, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.I), by_label


def _topics(labels: tuple[re.Pattern[str] | None, dict[str, str]], sentence: str) -> list[str]:
    pattern, by_label = labels
    if pattern is None:
        return []
    return list(dict.fromkeys(by_label[m.group().casefold()] for m in pattern.finditer(sentence)))


def _key(url: str, excerpt: str, quote: str | None) -> str:
    """The same source, sentence and quotation always give the same key: accepting a draft
    twice records it once."""
    digest = hashlib.sha256(f"{url}\n{excerpt}\n{quote or ''}".encode()).hexdigest()
    return f"draft-{digest[:32]}"
