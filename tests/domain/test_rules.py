"""The one rule for texts: what counts as nothing to see, and what a name may not hold."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from domain import rules
from domain.errors import InvalidInput


def test_every_format_character_alone_is_nothing_to_see() -> None:
    # Each code point of category Cf (as this Python's Unicode database has them)...
    format_characters = [
        chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
    ]
    assert len(format_characters) > 150
    missed = []
    for char in format_characters:
        # ...between spaces, is refused as empty, in a name as in a quote.
        for check in (rules.name, rules.verbatim):
            try:
                check(f" {char} ", "field")
            except InvalidInput as e:
                refused = e.field == "field"
            else:
                refused = False
            if not refused:
                missed.append(f"U+{ord(char):04X}")
    assert missed == []


@pytest.mark.parametrize(
    "text",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: a non-joiner
        "\U0001f469\u200d\U0001f52c",  # an emoji sequence: a joiner
        "Donau\u00addampf\u00adschiff",  # soft hyphens
    ],
)
def test_invisible_characters_within_a_name_are_kept(text: str) -> None:
    assert rules.name(text, "name") == text
