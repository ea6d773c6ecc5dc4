"""Who said it: the rules that tie a quotation or a reported clause to its speaker.

Each rule reads a clause with its quotations blanked out, so that names inside a quotation
are never taken for its speaker. A speaker found is a mention of a known actor, a role
held on the day, a pronoun resolved to the most recent fitting speaker, or a name the
store does not know (kept as written, with no actor: never a guess).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from drafting.actors import Directory, Mention

_VERBS = [
    "said",
    "says",
    "say",
    "saying",
    "told",
    "tells",
    "tell",
    "added",
    "adds",
    "adding",
    "warned",
    "warns",
    "warning",
    "declared",
    "declares",
    "declaring",
    "insisted",
    "insists",
    "insisting",
    "wrote",
    "writes",
    "posted",
    "described",
    "describes",
    "stated",
    "announced",
    "announces",
    "announcing",
    "confirmed",
    "confirms",
    "claimed",
    "argued",
    "argues",
    "noted",
    "stressed",
    "stresses",
    "urged",
    "urges",
    "vowed",
    "vows",
    "promised",
    "promises",
    "denied",
    "denies",
    "admitted",
    "admits",
    "explained",
    "explains",
    "asked",
    "asks",
    "replied",
    "replies",
    "suggested",
    "suggests",
    "acknowledged",
    "acknowledges",
    "accused",
    "accuses",
    "repeated",
    "repeats",
    "tweeted",
    "cautioned",
    "cautions",
    "cautioning",
    "pledged",
    "pledges",
    "conceded",
    "concedes",
    "maintained",
    "maintains",
    "recalled",
    "recalls",
    # These frame a quotation ("hailed the deal as “…”"); their clause is no statement.
    "hailed",
    "hails",
    "praised",
    "praises",
    "criticised",
    "criticized",
    "criticises",
    "criticizes",
    "dismissed",
    "dismisses",
    "rejected",
    "rejects",
]
# These take a clause only with `that` ("conceded that …"; not "maintained its forces").
THAT_CLAUSE = frozenset(
    ["cautioned", "cautions", "cautioning", "pledged", "pledges", "conceded", "concedes",
     "maintained", "maintains", "recalled", "recalls"]
)  # fmt: skip
# Verbs that only frame a quotation or a question: their clause is no statement.
FRAME_ONLY = frozenset(
    ["accused", "accuses", "asked", "asks", "criticised", "criticises", "criticized",
     "criticizes", "described", "describes", "dismissed", "dismisses", "hailed", "hails",
     "posted", "praised", "praises", "rejected", "rejects", "replied", "replies", "tell",
     "tweeted", "urged", "urges"]
)  # fmt: skip
# Verbs whose clause is itself the statement (reported speech), not only a frame for a quote.
REPORTING = frozenset(_VERBS) - FRAME_ONLY
ANNOUNCING = frozenset(["announced", "announces", "announcing"])
ACCORDING = "according to"  # the speaker follows: "…, according to the Kremlin"
# "called it “…”": naming something in a quotation is saying it.
_CALLED = r"called(?=\s+(?:it|this|that|them|him|her|the\s+\w+(?:\s+\w+)?)\s+[“\"‘«„'])"
VERB = re.compile(rf"\b(?:{'|'.join(_VERBS)}|{ACCORDING}|{_CALLED})\b")
# What may stand between a speaker and its verb: an aside between commas, dashes or
# brackets, then adverbs and auxiliaries ("Trump – who spoke to him – has since said").
_GAP = re.compile(
    r"\s*(?:,[^,;]{1,150},\s*|\s[–—][^–—;]{1,150}[–—]\s*|\([^()]{1,150}\)\s*)?,?\s*"
    r"(?:(?:who|which|has|have|had|also|then|later|earlier|again|now|since|once|today|"
    r"yesterday|previously|reportedly|repeatedly|would|will|did|went\s+on\s+to|"
    r"continued\s+to|this\s+morning|last\s+night|on\s+\w+day|[a-z]+ly)\s+)*"
)
MASK = "\x01"  # what a quotation's words become while the rules look for its speaker
_INVERTED = re.compile(r"[\s,]*")
_PRONOUN = re.compile(r"\b(?:[Hh]e|[Ss]he)\b")
_NAME = re.compile(r"(?:[A-Z][\w’'.-]+\s){0,3}[A-Z][\w’'-]+")
# Capitalised words that start sentences and are no one's name.
_NOT_NAMES = frozenset(
    [
        "The",
        "It",
        "This",
        "That",
        "These",
        "Those",
        "There",
        "Here",
        "They",
        "We",
        "I",
        "You",
        "Officials",
        "Reports",
        "Critics",
        "Analysts",
        "Experts",
        "Sources",
        "Some",
        "Many",
        "Others",
        "Both",
        "Each",
        "Several",
        "People",
        "Ministers",
        "Leaders",
        "And",
        "But",
        "So",
        "Yet",
        "Or",
    ]
)


@dataclass(frozen=True, slots=True)
class Said:
    """A speaker found for a clause: who (if known), how it was written, how found."""

    actor: str | None
    text: str
    rule: str
    confidence: float
    verb_start: int
    verb_end: int
    verb: str


@dataclass
class Context:
    """What earlier sentences tell later ones: the speakers most recently found, the people
    named, the pronoun each was last referred to by, and where the current post began."""

    recent: list[tuple[int, str]]  # (sentence number, actor) of the drafts so far
    sentence: int = 0
    post: int = 0  # the number of the current post's first sentence
    named: list[tuple[int, str]] = field(default_factory=list)  # people named, sentence by sentence
    pronouns: dict[str, str] = field(default_factory=dict)  # actor -> "he" or "she"

    def last_person(self, directory: Directory, pronoun: str, within: int = 6) -> str | None:
        """The latest person spoken of in this post who may be `pronoun`: a speaker before a
        person only named in the same sentence, and never one last called otherwise."""
        word = pronoun.lower()
        return self._latest(
            lambda a: directory.actors[a].kind == "person" and self.pronouns.get(a, word) == word,
            within,
            self.post,
        )

    def last_holder(self, candidates: list[str], within: int = 6) -> str | None:
        return self._latest(candidates.__contains__, within, 0)

    def _latest(self, fits: Callable[[str], bool], within: int, since: int) -> str | None:
        best: tuple[int, int, str] | None = None
        for rank, seen in ((1, self.recent), (0, self.named)):
            for number, actor in reversed(seen):
                if self.sentence - number > within or number < since:
                    break
                if (rank or number < self.sentence) and fits(actor):
                    best = max(best or (number, rank, actor), (number, rank, actor))
                    break
        return best[2] if best else None


def speakers(
    masked: str,
    start: int,
    end: int,
    named: list[Mention],
    directory: Directory,
    day: str,
    context: Context,
) -> list[Said]:
    """Every reporting verb of `masked[start:end]` with the speaker it names, in order;
    `named` are the sentence's mentions (offsets in `masked`)."""
    mentions = [
        m
        for m in named
        if start <= m.start and m.end <= end and masked[m.start] != MASK and not _object(masked, m)
    ]
    found: list[Said] = []
    for mention in mentions:  # a headline's "UN envoy: ‘…’": the quotation is the named one's
        colon = _HEADLINE.match(masked, mention.end, end)
        if colon is not None and _opens(masked, start, mention.start):
            found.append(_resolved(mention, directory, day, context, colon, "colon"))
    for verb in VERB.finditer(masked, start, end):
        said = None if verb.group() == ACCORDING else _subject(
            masked, start, verb, mentions, directory, day, context
        )  # fmt: skip
        said = said or _after(masked, verb, end, mentions, directory, day, context)
        said = said or _unresolved(masked, start, verb)
        if said is not None and said.rule == "pronoun":
            # "X says he has warned …": the pronoun is the speaker of the same clause.
            earlier = next((s for s in reversed(found) if _person(s, directory)), None)
            if earlier is not None:
                said = Said(earlier.actor, said.text, "pronoun", 0.7, *_verb(verb))
        if said is not None:
            found.append(said)
    return found


def subject_of(masked: str, named: list[Mention], directory: Directory, day: str) -> str | None:
    """The person a sentence is about: its first mention outside its quotations, when that
    is one person and neither an object ("talks with X") nor a possessive ("X's talks")."""
    first = next((m for m in named if masked[m.start] != MASK), None)
    if first is None or _object(masked, first) or masked.startswith(("’s", "'s"), first.end):
        return None
    holders = directory.holders(first, day)
    if len(holders) != 1 or directory.actors[holders[0]].kind != "person":
        return None
    return holders[0]


def _person(said: Said, directory: Directory) -> bool:
    return said.actor is not None and directory.actors[said.actor].kind == "person"


_PREPOSITION = re.compile(
    r"\b(?:in|at|from|of|to|for|by|on|into|about|against|than|like)\s+"
    r"(?:the\s+)?$",
    re.I,
)


def _object(masked: str, mention: Mention) -> bool:
    """A name after a preposition is no verb's subject ("who teaches in Kyiv, says"),
    unless a relative clause makes it one ("remarks from X, who says")."""
    if re.match(r",?\s*who\b", masked[mention.end : mention.end + 8]):
        return False
    if re.search(
        rf"{ACCORDING}\s+(?:the\s+)?$", masked[max(0, mention.start - 24) : mention.start]
    ):
        return False
    return bool(_PREPOSITION.search(masked, max(0, mention.start - 20), mention.start))


def _subject(
    masked: str,
    start: int,
    verb: re.Match[str],
    mentions: list[Mention],
    directory: Directory,
    day: str,
    context: Context,
) -> Said | None:
    """`X said`, `X, who …, has since said`, `he said`, `the president said`."""
    for mention in reversed([m for m in mentions if m.end <= verb.start()]):
        if _GAP.fullmatch(masked, mention.end, verb.start()):
            return _resolved(mention, directory, day, context, verb, "subject")
    for pronoun in reversed(list(_PRONOUN.finditer(masked, start, verb.start()))):
        if _GAP.fullmatch(masked, pronoun.end(), verb.start()):
            actor = context.last_person(directory, pronoun.group())
            return Said(actor, pronoun.group(), "pronoun", 0.6, *_verb(verb))
    for name in reversed(list(_NAME.finditer(masked, start, verb.start()))):
        if _GAP.fullmatch(masked, name.end(), verb.start()) and _a_name(masked, start, name):
            return Said(None, name.group(), "unknown-name", 0.3, *_verb(verb))
    # "X spoke to Y … before announcing", "X welcomed it but cautioned": X's clause.
    if verb.group().endswith("ing") or _COORDINATED.search(masked, start, verb.start()):
        first = next((m for m in mentions if _opens(masked, start, m.start)), None)
        if first is not None:
            return _resolved(first, directory, day, context, verb, "participle", 0.6)
        opening = _PRONOUN.match(masked, _skip_opening(masked, start))
        if opening is not None:
            actor = context.last_person(directory, opening.group())
            return Said(actor, opening.group(), "pronoun", 0.55, *_verb(verb))
    return None


def _after(
    masked: str,
    verb: re.Match[str],
    end: int,
    mentions: list[Mention],
    directory: Directory,
    day: str,
    context: Context,
) -> Said | None:
    """The inverted form: `…, says Pekar`, `said Mr Smith`, `according to the Kremlin`."""
    before = masked[max(0, verb.start() - 3) : verb.start()]
    if verb.group() != ACCORDING and "," not in before and MASK not in before:
        return None
    for mention in mentions:
        if mention.start >= verb.end() and _INVERTED.fullmatch(masked, verb.end(), mention.start):
            return _resolved(mention, directory, day, context, verb, "inverted")
    gap = _INVERTED.match(masked, verb.end(), end)
    name = _NAME.match(masked, gap.end() if gap else verb.end(), end)
    if name is not None and name.group().split()[0] not in _NOT_NAMES:
        return Said(None, name.group(), "unknown-name", 0.3, *_verb(verb))
    return None


# The words before a verb that may be its subject, back to a clause's edge, less the
# adverbs and auxiliaries between.
_PHRASE = re.compile(r"(?:^|[,;:–—(\x01“”\"‘’«»„])\s*(?P<words>[^,;:–—()\x01“”\"‘’«»„]*?)\s*$")
_PASSIVE = re.compile(r"\b(?:was|were|is|are|be|been|being)\s*$", re.I)
_TRAILING = re.compile(
    r"(?:\s+(?:who|which|has|have|had|also|then|later|again|now|would|will|did|[a-z]+ly))+$"
)

_LEADING = re.compile(rf"^\s*(?:(?:and|but|so|yet|{ACCORDING})\s+)+", re.I)


def _unresolved(masked: str, start: int, verb: re.Match[str]) -> Said | None:
    """A subject the rules cannot name (`the head of the delegation said`): kept as
    written, with no speaker, so that its quotation is not lost."""
    if verb.group() == ACCORDING:
        return None
    before = masked[start : verb.start()]
    phrase = _PHRASE.search(before)
    if phrase is None or _PASSIVE.search(before):
        return None
    words = _LEADING.sub("", _TRAILING.sub("", phrase["words"])).strip()
    if not words or len(words.split()) > 6:
        return None
    return Said(None, words, "unresolved", 0.3, *_verb(verb))


def _resolved(
    mention: Mention,
    directory: Directory,
    day: str,
    context: Context,
    verb: re.Match[str],
    rule: str,
    confidence: float = 0.9,
) -> Said:
    holders = directory.holders(mention, day)
    if mention.title is not None:  # a role: the recent speaker who held it, or its one holder
        actor = context.last_holder(holders) or (holders[0] if len(holders) == 1 else None)
        return Said(actor, mention.text, "role", 0.7 if actor else 0.3, *_verb(verb))
    actor = holders[0] if len(holders) == 1 else None
    return Said(actor, mention.text, rule, confidence if actor else 0.3, *_verb(verb))


def _verb(verb: re.Match[str]) -> tuple[int, int, str]:
    return verb.start(), verb.end(), verb.group()


_HEADLINE = re.compile(r"\s*:(?=\s*[“\"‘«„'])")
_COORDINATED = re.compile(r"\b(?:and|but)\s+(?:then\s+|also\s+)?$")
_OPENING = re.compile(r"(?:(?:And|But|So|Yet|Earlier|Later|Meanwhile|Now)\b,?\s*)?")


def _skip_opening(masked: str, start: int) -> int:
    m = _OPENING.match(masked, start)
    return m.end() if m else start


def _opens(masked: str, start: int, at: int) -> bool:
    """Whether a mention is the clause's subject: at its start, after a conjunction."""
    return at == _skip_opening(masked, start) or masked[start:at].strip() in ("the", "The")


def _a_name(masked: str, start: int, name: re.Match[str]) -> bool:
    words = name.group().split()
    return not (words[0] in _NOT_NAMES or (len(words) == 1 and name.start() == start))
