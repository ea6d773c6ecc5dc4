"""When a statement was made: the post it is in, and the words that date it.

Live pages carry each post's time on a line after its headline (`published at 14:09
Greenwich Mean Time 14 February`); relative words ("yesterday", "on Wednesday") resolve
against that post's time, or against the page's publication when there is no post line.
The precision is the one the words give; a week, which the timeline has no precision for,
is written as its month (or its year, when it straddles two months), and `text` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]  # fmt: skip
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ZONES = {
    "greenwich mean time": 0, "gmt": 0, "utc": 0, "bst": 60, "british summer time": 60,
    "cet": 60, "cest": 120, "est": -300, "edt": -240, "pst": -480, "pdt": -420,
}  # fmt: skip
_ZONE = "|".join(sorted(ZONES, key=len, reverse=True))
_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\.?"
_CLOCK = rf"(?P<h>\d{{1,2}})[:.](?P<min>\d{{2}})\s*(?P<ampm>[ap]\.?m\.?)?\s*(?P<zone>{_ZONE})?"


def _date(n: int) -> str:
    return (
        rf"(?:{_WEEKDAY},?\s+)?(?:(?P<d{n}>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m{n}>{_MONTH})"
        rf"|(?P<n{n}>{_MONTH})\s+(?P<e{n}>\d{{1,2}})(?:st|nd|rd|th)?)(?:,?\s+(?P<y{n}>\d{{4}}))?"
    )


# A live post's time line, alone on its line, in the forms pages use: `published at 14:09
# GMT 14 February` (BBC), `Mon 2 Mar 2026 16.20 GMT` (Guardian), `Updated 3 March 2026,
# 09:12 GMT` (agencies), `2.20pm GMT`, `14:09`.
_POST = re.compile(
    rf"^[ \t]*(?:(?:last\s+)?(?:published|posted|updated)(?:\s+(?:at|on))?:?\s+)?"
    rf"(?:{_date(1)},?\s+(?:at\s+)?)?{_CLOCK}(?:,?\s*(?:on\s+)?{_date(2)})?[ \t]*$",
    re.I | re.M,
)
TIME_LINE = _POST
_TERMINAL = re.compile(r"[.!?…][”\"’'»)]*$")
_NUMBERS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_EXPRESSION = re.compile(
    rf"""\b(?:
      (?P<week>(?:earlier\ )?this\ week|last\ week)
    | (?P<same>earlier\ today|today|this\ (?:morning|afternoon|evening)|tonight|overnight|earlier)
    | (?P<yesterday>yesterday|last\ night)
    | (?P<ago>\d{{1,2}}|a|one|two|three|four|five|six)\ days?\ ago
    | (?:on\ )?(?P<last>last\ )?(?P<weekday>{"|".join(WEEKDAYS)})
    | (?P<month_rel>this\ month|last\ month)
    | (?P<year_rel>this\ year|last\ year)
    | (?:on\ )?(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\ (?P<dm>{_MONTH})(?:,?\ (?P<dy>\d{{4}}))?
    | (?:on\ )?(?P<md>{_MONTH})\ (?P<mdd>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\ (?P<mdy>\d{{4}}))?
    | (?:in\ )?(?P<mm>{_MONTH})\ (?P<my>\d{{4}})
    | in\ (?P<year>\d{{4}})
    )\b""",
    re.I | re.X,
)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What relative words are resolved against: a post's time, or the page's."""

    moment: datetime
    text: str | None  # the post's time line; None for the page's publication


@dataclass(frozen=True, slots=True)
class Dated:
    value: str  # a year, month or day, as `occurred_at` takes it
    text: str | None  # the words it came from


def posts(text: str, published: datetime) -> list[tuple[int, Anchor]]:
    """Where each post starts and its time: a post opens with its headline, on the line
    before its time line (BBC) or the line after it (Guardian), as most of the page's time
    lines show; the text before the first post is the page's."""
    found, before, after = [], 0, 0
    for m in _POST.finditer(text):
        moment = _moment(m, published)
        if moment is None:
            continue
        above, below = _line_before(text, m.start()), _line_after(text, m.end())
        before += _headline(above) and not _headline(below)
        after += _headline(below) and not _headline(above)
        found.append((m.start(), Anchor(moment, " ".join(m[0].split()))))
    if after > before:
        return found
    return [(_headline_start(text, at), anchor) for at, anchor in found]


def _moment(m: re.Match[str], published: datetime) -> datetime | None:
    hour = int(m["h"])
    if m["ampm"]:
        hour = hour % 12 + (12 if m["ampm"].lower().startswith("p") else 0)
    zone = published.tzinfo
    if m["zone"]:
        zone = timezone(timedelta(minutes=ZONES[m["zone"].lower()]))
    day = published.astimezone(zone).date()  # a time line without its day: the page's
    n = 1 if m["y1"] or m["d1"] or m["e1"] else 2
    month, d, y = m[f"m{n}"] or m[f"n{n}"], m[f"d{n}"] or m[f"e{n}"], m[f"y{n}"]
    try:
        return datetime(
            int(y or published.year),
            _month(month) if month else day.month,
            int(d or day.day),
            hour,
            int(m["min"]),
            tzinfo=zone,
        )
    except ValueError:
        return None


def _headline_start(text: str, at: int) -> int:
    before = text[:at].rstrip()
    return before.rfind("\n") + 1 if before else at


def _line_before(text: str, at: int) -> str:
    before = text[:at].rstrip()
    return before[before.rfind("\n") + 1 :]


def _line_after(text: str, at: int) -> str:
    after = text[at:].lstrip()
    end = after.find("\n")
    return after if end < 0 else after[:end]


def _headline(line: str) -> bool:
    """A line that reads as a headline: short, and no sentence's end."""
    line = line.strip()
    return 0 < len(line) <= 200 and not _TERMINAL.search(line) and not _POST.match(line)


def anchor_at(anchors: list[tuple[int, Anchor]], offset: int, page: Anchor) -> Anchor:
    found = page
    for start, anchor in anchors:
        if start > offset:
            break
        found = anchor
    return found


def day_of(anchor: Anchor) -> Dated:
    """The day of a post (or of the page), when no words date the statement."""
    return Dated(anchor.moment.date().isoformat(), anchor.text)


def date_in(words: str, anchor: Anchor, *, leading: bool = False) -> Dated | None:
    """The date of the first expression in `words` (with `leading`, only one that opens
    them), resolved against the anchor."""
    m = _EXPRESSION.match(words, len(words) - len(words.lstrip())) if leading else (
        _EXPRESSION.search(words))  # fmt: skip
    if m is None:
        return None
    value, note = _resolve(m, anchor.moment.date())
    if value is None:
        return None
    said = " ".join(m[0].split())
    return Dated(value, f"{said} ({note})" if note else said)


def _resolve(m: re.Match[str], day: date) -> tuple[str | None, str]:
    if m["same"]:
        return day.isoformat(), ""
    if m["yesterday"]:
        return (day - timedelta(days=1)).isoformat(), ""
    if m["ago"]:
        n = _NUMBERS.get(m["ago"].lower()) or int(m["ago"])
        return (day - timedelta(days=n)).isoformat(), ""
    if m["weekday"]:
        back = (day.weekday() - WEEKDAYS.index(m["weekday"].lower())) % 7
        if m["last"] and back == 0:
            back = 7
        return (day - timedelta(days=back)).isoformat(), ""
    if m["week"]:
        monday = day - timedelta(days=day.weekday())
        first, last = (monday, day) if "this" in m["week"].lower() else (
            monday - timedelta(days=7), monday - timedelta(days=1))  # fmt: skip
        if (first.year, first.month) == (last.year, last.month):
            return f"{first:%Y-%m}", "no week precision: its month"
        return (f"{first:%Y}", "no week precision: its year") if first.year == last.year else (
            None, "")  # fmt: skip
    if m["month_rel"]:
        month = day.replace(day=1)
        if "last" in m["month_rel"].lower():
            month = (month - timedelta(days=1)).replace(day=1)
        return f"{month:%Y-%m}", ""
    if m["year_rel"]:
        return str(day.year - ("last" in m["year_rel"].lower())), ""
    if m["dd"] or m["mdd"]:
        name, d, y = (m["dm"], m["dd"], m["dy"]) if m["dd"] else (m["md"], m["mdd"], m["mdy"])
        return _day(int(y) if y else None, _month(name), int(d), day), ""
    if m["mm"]:
        return f"{int(m['my']):04d}-{_month(m['mm']):02d}", ""
    return f"{int(m['year']):04d}", ""


def _day(year: int | None, month: int, d: int, today: date) -> str | None:
    """A day of the month; without a year, the latest one not after the anchor."""
    try:
        found = date(year or today.year, month, d)
        if year is None and found > today:
            found = date(today.year - 1, month, d)
    except ValueError:
        return None
    return found.isoformat()


def _month(name: str) -> int:
    low = name.lower().rstrip(".")
    return next(i for i, full in enumerate(MONTHS, 1) if full.startswith(low[:3]))
