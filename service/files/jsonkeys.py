"""A JSON object that gives a key twice (`{"quote": "a", "quote": "b"}`) is refused by the
API and the backfill: msgspec, like most parsers, would keep the last value in silence.

The check costs little where no key repeats, on a backfill's hot path too: every colon
of JSON outside its strings separates a key from its value, so the colons of the text
beyond those of its decoded value encoded again (which holds each key once, and never
escapes a colon) are repeated keys. Only when there are some, or when the text escapes a
colon (`\\u003a`, which the count would miss), is it parsed again to find where.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_ESCAPED = b"\\u003"  # of \u003a, a colon escaped (and of a few others, to be safe)


def repeated_key(raw: bytes, decoded: Any) -> str | None:
    """Where a key of `raw` (already `decoded`) is repeated, as a path like
    `sources[1].url` ("" if it cannot be told), or None when no key is."""
    try:
        repeats = raw.count(b":") - msgspec.json.encode(decoded).count(b":")
    except (TypeError, ValueError, OverflowError):
        return _find(raw, certain=False)
    if repeats > 0 or _ESCAPED in raw:
        return _find(raw, certain=repeats > 0)
    return None


class _Repeated(dict[str, Any]):
    """An object that gave `key` more than once."""

    key = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    repeated, seen = _Repeated(found), set()
    for key, _ in pairs:
        if key in seen:
            repeated.key = key
            break
        seen.add(key)
    return repeated


def _find(raw: bytes, *, certain: bool) -> str | None:
    """Parse again, noting repeats. (`certain`: the count saw one, even if this parser
    cannot place it.)"""
    try:
        return _path(json.loads(raw, object_pairs_hook=_pairs), "")
    except (ValueError, RecursionError):
        return "" if certain else None


def _path(value: Any, at: str) -> str | None:
    if isinstance(value, dict):
        if isinstance(value, _Repeated):
            return f"{at}.{value.key}" if at else value.key
        for name, item in value.items():
            if (found := _path(item, f"{at}.{name}" if at else name)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _path(item, f"{at}[{i}]")) is not None:
                return found
    return None
