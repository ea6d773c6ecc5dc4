"""The actors a text may name: their names, aliases and roles as phrases to look for."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Adjectives of the states most often named as a role's organization ("Russian President").
# A short table of the language, not of any one article.
DEMONYMS = {
    "United States": "American", "US": "US", "Russia": "Russian", "Ukraine": "Ukrainian",
    "China": "Chinese", "France": "French", "Germany": "German", "United Kingdom": "British",
    "UK": "UK", "Britain": "British", "Italy": "Italian", "Spain": "Spanish",
    "Poland": "Polish", "Japan": "Japanese", "India": "Indian", "Iran": "Iranian",
    "Israel": "Israeli", "Turkey": "Turkish", "Canada": "Canadian", "Brazil": "Brazilian",
    "Mexico": "Mexican", "Belarus": "Belarusian", "Hungary": "Hungarian",
    "Finland": "Finnish", "Sweden": "Swedish", "Norway": "Norwegian", "Denmark": "Danish",
    "Netherlands": "Dutch", "Belgium": "Belgian", "Austria": "Austrian", "Greece": "Greek",
    "Romania": "Romanian", "Moldova": "Moldovan", "Georgia": "Georgian", "Syria": "Syrian",
    "Iraq": "Iraqi", "Egypt": "Egyptian", "Saudi Arabia": "Saudi", "Qatar": "Qatari",
    "Pakistan": "Pakistani", "Australia": "Australian", "North Korea": "North Korean",
    "South Korea": "South Korean", "Taiwan": "Taiwanese", "Estonia": "Estonian",
    "Latvia": "Latvian", "Lithuania": "Lithuanian", "Slovakia": "Slovak", "Czechia": "Czech",
    "European Union": "EU", "Europe": "European",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Role:
    title: str
    organization: str | None
    since: str | None
    until: str | None

    def held_on(self, day: str) -> bool:
        """Whether the role was held on a day (`YYYY-MM-DD`); open ends hold."""
        since, until = (self.since or "")[:10], (self.until or "")[:10]
        return (not since or since <= day[: len(since)]) and (
            not until or day[: len(until)] <= until
        )


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str
    kind: str
    aliases: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()


def actors_from(profiles: Iterable[Mapping[str, Any]]) -> list[Actor]:
    """Actors from the read model's profiles (or backfill `actor` lines)."""
    return [
        Actor(
            id=str(p["id"]),
            name=str(p["name"]),
            kind=str(p.get("kind") or "person"),
            aliases=tuple(str(a) for a in p.get("aliases") or ()),
            roles=tuple(
                Role(str(r["title"]), r.get("organization"), r.get("since"), r.get("until"))
                for r in p.get("roles") or ()
            ),
        )
        for p in profiles
    ]


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int
    text: str
    actors: tuple[str, ...]  # who the words may name (more than one: resolved by date)
    title: str | None  # a role's title, when the words name a role, not a person


class Directory:
    """Finds the actors a text names: by name or alias, by surname where it is unique, and
    by role (`US Defence Secretary`, `the vice-president`)."""

    def __init__(self, actors: Iterable[Actor]) -> None:
        self.actors = {a.id: a for a in actors}
        self.names: dict[str, set[str]] = {}
        for a in self.actors.values():
            for phrase in (a.name, *a.aliases):
                self.names.setdefault(phrase, set()).add(a.id)
                if phrase.startswith("the "):  # "the Kremlin" opens a sentence as "The"
                    self.names.setdefault(f"T{phrase[1:]}", set()).add(a.id)
        surnames: dict[str, set[str]] = {}
        for a in self.actors.values():
            if a.kind == "person" and " " in a.name:
                surnames.setdefault(a.name.split()[-1], set()).add(a.id)
        for surname, ids in surnames.items():
            if len(ids) == 1 and surname not in self.names:
                self.names[surname] = ids
        self.roles: dict[str, tuple[set[str], str]] = {}  # phrase -> holders, title
        for a in self.actors.values():
            for role in a.roles:
                for phrase, title in _role_phrases(role, self.actors):
                    self.roles.setdefault(phrase, (set(), title))[0].add(a.id)
        self.places = _places(self.actors.values(), self.names)
        self._bodies = _bodies(self.places)
        self._lower = {name.lower() for name in self.names}
        self._names = _alternation(self.names, flags=0)
        # A bare head noun before `of` names another office ("the head of the navy").
        bare = {p for p, (_, title) in self.roles.items() if p.endswith(f" {title}")}
        patterns = {_pattern(p) + (r"(?!\s+of\b)" if p in bare else ""): None for p in self.roles}
        self._roles = _alternation(patterns, flags=re.I, raw=True)

    def mentions(self, text: str, start: int = 0, end: int | None = None) -> list[Mention]:
        """The mentions in `text[start:end]`, left to right, the longest at each place."""
        stop = len(text) if end is None else end
        found: list[Mention] = []
        for m in self._names.finditer(text, start, stop) if self._names else ():
            found.append(Mention(m.start(), m.end(), m.group(), tuple(self.names[m.group()]), None))
        for m in self._roles.finditer(text, start, stop) if self._roles else ():
            holders, title = self.roles[_role_key(m.group())]
            found.append(Mention(m.start(), m.end(), m.group(), tuple(sorted(holders)), title))
        for m in self._bodies.finditer(text, start, stop) if self._bodies else ():
            if " ".join(text[m.start("place") : m.end()].lower().split()) in self._lower:
                continue  # the store has the body as an actor of its own
            found.append(Mention(m.start(), m.end(), m.group(), (self.places[m["place"]],), None))
        found.sort(key=lambda x: (x.start, -x.end))
        kept: list[Mention] = []
        for mention in found:
            if kept and mention.start < kept[-1].end:
                continue
            kept.append(mention)
        return kept

    def holders(self, mention: Mention, day: str) -> list[str]:
        """Who of a mention's actors held its role on a day (everyone, for a name)."""
        if mention.title is None:
            return list(mention.actors)
        return [
            a
            for a in mention.actors
            if any(_fits(r.title, mention.title) and r.held_on(day) for r in self.actors[a].roles)
        ]


# The bodies through which a state or an organization speaks: when the store has no actor
# of their own, they name it ("Qatar's foreign ministry", "the Japanese government").
BODIES = [
    "government", "foreign ministry", "defence ministry", "defense ministry",
    "interior ministry", "ministry of foreign affairs", "ministry of defence",
    "ministry of defense", "foreign office", "state department", "presidency", "embassy",
    "delegation", "cabinet", "presidential office", "press office", "secretariat",
]  # fmt: skip


def _places(actors: Iterable[Actor], names: Mapping[str, set[str]]) -> dict[str, str]:
    """The names, aliases and adjectives of each state and organization, as written."""
    places: dict[str, str] = {}
    for a in actors:
        if a.kind in ("state", "organization"):
            for name in (a.name, *a.aliases):
                if not name.startswith("the ") and len(names.get(name, ())) == 1:
                    places.setdefault(name, a.id)
                    places.setdefault(DEMONYMS.get(name, name), a.id)
    return places


def _bodies(places: Mapping[str, str]) -> re.Pattern[str] | None:
    if not places:
        return None
    names = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    bodies = "|".join(b.replace(" ", r"\s+") for b in BODIES)
    return re.compile(
        rf"(?<![\w’'-])(?:(?i:the)\s+)?(?P<place>{names})(?:[’']s)?\s+(?i:{bodies})(?![\w-])"
    )


def _fits(title: str, said: str) -> bool:
    """A role's title is what the text said: the title, or its head noun alone."""
    return title.lower() == said.lower() or head_noun(title) == said.lower()


# Words that make a title another office ("prime minister" is no "minister") or that
# follow its noun ("secretary general"): such titles have no bare head noun.
_RANKS = frozenset(["vice", "deputy", "prime", "assistant", "under", "acting", "associate"])
_POSTPOSED = frozenset(["general", "elect", "designate"])


def head_noun(title: str) -> str | None:
    """The noun a title is referred to by ("the minister" for a trade minister, "the
    chief" for the chief of the general staff), when it has one besides itself."""
    words = _role_key(title).split(" of ")[0].split()
    if len(_role_key(title).split()) < 2 or words[0] in _RANKS or words[-1] in _POSTPOSED:
        return None
    return words[-1]


def _role_key(found: str) -> str:
    return re.sub(r"[\s\-]+", " ", found.lower()).replace("defence", "defense")


def _pattern(phrase: str) -> str:
    words = [re.escape(w).replace("defense", "defen[cs]e") for w in phrase.split()]
    return r"[\s\-]+".join(words)


def _title_forms(title: str) -> list[str]:
    low = _role_key(title)
    forms = [low]
    if m := re.fullmatch(r"(secretary|minister) of (?:the )?(\w+(?: \w+)?)", low):
        forms.append(f"{m.group(2)} {m.group(1)}")
    return forms


def _role_phrases(role: Role, actors: Mapping[str, Actor]) -> list[tuple[str, str]]:
    """`the <title>`, `<organization> <title>` and `<organization>'s <title>` in its
    forms, and the same with its head noun alone, each with the title it says."""
    org = actors.get(role.organization or "")
    places = set()
    if org is not None:
        for name in (org.name, *org.aliases):
            places.add(name)
            if name in DEMONYMS:
                places.add(DEMONYMS[name])
    elif role.organization:
        places.add(role.organization.replace("-", " "))
    out = []
    head = head_noun(role.title)
    for form in _title_forms(role.title) + ([head] if head else []):
        title = role.title if form != head else head
        out.append((f"the {form}", title))
        out += [(f"{p} {form}", title) for p in places]
        out += [
            (f"{p}{s} {form}", title) for p in places for s in ("’s", "'s") if not p.endswith("s")
        ]
    return [(_role_key(p), title) for p, title in out]


def _alternation(
    phrases: Mapping[str, object], *, flags: int, raw: bool = False
) -> re.Pattern[str] | None:
    if not phrases:
        return None
    ordered = sorted(phrases, key=len, reverse=True)
    body = "|".join(p if raw else re.escape(p) for p in ordered)
    return re.compile(rf"(?<![\w’'-])(?:{body})(?![\w-])", flags)
