"""Field rules shared by every aggregate: text, slugs, lists, sources and record content.

Each rule returns the clean value or raises `InvalidInput` naming the field, so that the
HTTP edge and the backfill report say exactly what is wrong.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeGuard, get_args

from domain.errors import InvalidInput, InvalidTime
from domain.when import When, parse_when

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
SLUG_MAX = 64
# C0 controls other than tab, line feed and carriage return, DEL, and the C1 block.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Characters that show nothing: Unicode's format characters (category Cf) and the other
# default-ignorable code points (variation selectors, Hangul fillers, tags, ...).
_INVISIBLE = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_BLANK = re.compile(f"[\\s{_INVISIBLE}]*")
# The controls of bidirectional text: embeddings, overrides, isolates and marks.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_URI = re.compile(r"(?:https?://[^\s/?#]+[^\s]*|urn:[a-z0-9][a-z0-9-]{0,31}:\S+)", re.IGNORECASE)

# Each limit and closed set of the content, written once: the rules below check them,
# and the API's schemas (service/http/schemas.py) are built from these same names.
SLUG_MAX = 64
NAME_MAX = 200  # a name, alias, role title or topic label; a source's publisher
KEY_MAX = 200  # a record's client key
TITLE_MAX = 300  # an occurrence's title, a place
TEXT_MAX = 5000  # a quote, a summary
REASON_MAX = 2000  # why a record was corrected or retracted
DESCRIPTION_MAX = 2000  # a topic's
SOURCE_TITLE_MAX = 500
EXCERPT_MAX = 2000
URL_MAX = 2048
LIST_MAX = 50  # items of a list of slugs (topics, mentions, authors...) or aliases
SOURCES_MAX = 20  # a record's sources
ROLES_MAX = 100  # an actor's roles

Channel = Literal[
    "press-conference",
    "social-media",
    "interview",
    "speech",
    "written-statement",
    "phone-call",
    "meeting",
    "other",
]
OccurrenceKind = Literal[
    "annexation", "invasion", "call", "meeting", "agreement", "sanction", "election", "other"
]
ActorKind = Literal["person", "state", "organization", "group"]
CHANNELS = frozenset(get_args(Channel))
OCCURRENCE_KINDS = frozenset(get_args(OccurrenceKind))
ACTOR_KINDS = frozenset(get_args(ActorKind))


def text(
    value: object,
    field: str,
    *,
    max_length: int,
    verbatim: bool = False,
    name: bool = False,
) -> str:
    """A string with something to see, without control characters or lone surrogates, in
    Unicode normal form C: "Zelenskyy" typed with a composed or a decomposed accent is
    one name. `verbatim` text (quotes, excerpts) is kept byte for byte as given.

    Text made only of spaces and invisible characters (format characters such as U+200B
    or U+FEFF, and the other default-ignorable ones) is refused as empty, everywhere.
    Within text they stay: a zero-width non-joiner belongs in Persian names, a joiner in
    emoji. A `name` — of an actor, an alias, a role, a topic's label, an occurrence's
    title, a place, a source's publisher and title — also refuses the controls of
    bidirectional text (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C): a short
    label shown among others needs none, and one can make a name read as another. Prose
    (summaries, descriptions, reasons) and verbatim quotes and excerpts keep them, since
    Arabic and Hebrew words quoted beside Latin ones may need their marks."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, not {type(value).__name__}", field=field)
    is_ascii = value.isascii()  # known at once; most text is, and holds no invisible ones
    if (not value.strip()) if is_ascii else _BLANK.fullmatch(value):
        raise InvalidInput(
            "must not be empty (nor only spaces and invisible characters)", field=field
        )
    if len(value) > 3 * max_length:  # too long even before normalising (at most 3x)
        raise InvalidInput(f"must be at most {max_length} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInput("must not contain control characters (such as NUL)", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("must be valid Unicode (no lone surrogates)", field=field) from None
    if name and not is_ascii and _BIDI.search(value):
        raise InvalidInput(
            "must not hold bidirectional text controls (such as U+202E or U+200F)", field=field
        )
    if not verbatim:
        value = unicodedata.normalize("NFC", value)
    if len(value) > max_length:
        raise InvalidInput(f"must be at most {max_length} characters", field=field)
    return value


def name(value: object, field: str, *, max_length: int = NAME_MAX) -> str:
    """A name, label or title: checked as `text`, and without bidirectional controls."""
    return text(value, field, max_length=max_length, name=True)


def verbatim(value: object, field: str, *, max_length: int = TEXT_MAX) -> str:
    """Text kept exactly as given (a quote): checked as `text`, never normalised."""
    return text(value, field, max_length=max_length, verbatim=True)


def key(value: object, field: str) -> str:
    """A client's key for a record, compared exactly: `"k "` and `"k"` would be two records,
    so white space around it is refused (never trimmed: that would change the id of a
    record stored under it)."""
    value = text(value, field, max_length=KEY_MAX)
    if value != value.strip():
        raise InvalidInput("must not begin or end with white space", field=field)
    return value


def slug(value: object, field: str) -> str:
    """A lower-case slug such as `donald-trump`."""
    if not _is_slug(value):
        raise InvalidInput(
            f"must be a slug of lower-case letters, digits and single hyphens, "
            f"at most {SLUG_MAX} characters",
            field=field,
        )
    return value


def _is_slug(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= SLUG_MAX and SLUG.fullmatch(value) is not None


def choice(value: object, field: str, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"must be one of {', '.join(sorted(allowed))}", field=field)
    return value


def items(
    value: object,
    field: str,
    rule: Callable[[object, str], Any],
    *,
    min_items: int = 0,
    max_items: int = LIST_MAX,
) -> list[Any]:
    """A list whose items each pass `rule`; duplicates are refused."""
    if not isinstance(value, list):
        raise InvalidInput(f"must be a list, not {type(value).__name__}", field=field)
    if not min_items <= len(value) <= max_items:
        raise InvalidInput(f"must have {min_items} to {max_items} items", field=field)
    if rule is slug and all(_is_slug(item) for item in value):
        # Lists of slugs are most of a record's lists: checked at once, and an error
        # found by the item rule below, which names the item.
        if len(set(value)) != len(value):
            raise InvalidInput("must not repeat an item", field=field)
        return list(value)
    clean = [rule(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if len(clean) > 1 and len({repr(c) for c in clean}) != len(clean):
        raise InvalidInput("must not repeat an item", field=field)
    return clean


def when(value: object, field: str) -> str:
    return occurred(value, field).text


def occurred(value: object, field: str) -> When:
    """An occurred time or instant (see `domain.when`), written in ASCII: ISO 8601 has
    no full-width or Arabic-Indic digits, though Python's `\\d` and `int` accept them."""
    if isinstance(value, str) and not value.isascii():
        raise InvalidTime(
            "must be written in ASCII digits, like 2014-03-18 or 2025-02-12T15:30:00Z",
            field=field,
        )
    return parse_when(value, field)


def uri(value: object, field: str) -> str:
    value = text(value, field, max_length=URL_MAX)
    if not _URI.fullmatch(value):
        raise InvalidInput("must be an absolute http(s) URL or a URN", field=field)
    return value


def known_keys(value: object, field: str, allowed: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"must be an object, not {type(value).__name__}", field=field)
    prefix = f"{field}." if field else ""
    for key in value:
        if key not in allowed:
            raise InvalidInput("is not a known field", field=f"{prefix}{key}")
    return value


_SOURCE_FIELDS: dict[str, Callable[[object, str], Any]] = {
    "publisher": name,
    "url": uri,
    "title": lambda v, f: name(v, f, max_length=SOURCE_TITLE_MAX),
    "published_at": when,
    "excerpt": lambda v, f: verbatim(v, f, max_length=EXCERPT_MAX),  # the source's words
}


def source(value: object, field: str) -> dict[str, str]:
    """A source: `{publisher, url, title?, published_at?, excerpt?}`."""
    raw = known_keys(value, field, _SOURCE_FIELDS)
    for required in ("publisher", "url"):
        if required not in raw:
            raise InvalidInput("is required", field=f"{field}.{required}")
    return {
        name: rule(raw[name], f"{field}.{name}")
        for name, rule in _SOURCE_FIELDS.items()
        if name in raw and raw[name] is not None
    }
