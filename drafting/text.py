"""From what was pasted to sentences: checks, HTML reduced to text, sentences and quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from drafting.dates import TIME_LINE

MAX_CHARS = 5_000_000  # 5 MB of text: a long live page is under 1 MB


class TextRefused(ValueError):
    """The input is not text the drafter can read (empty, binary, too large)."""


def check_text(raw: str) -> str:
    """The text itself, or `TextRefused` saying why it is none."""
    if len(raw) > MAX_CHARS:
        raise TextRefused(f"the text is longer than {MAX_CHARS:,} characters")
    if "\x00" in raw or _mostly_controls(raw):
        raise TextRefused("this is binary data, not text")
    if not raw.strip():
        raise TextRefused("the text is empty")
    return raw


def _mostly_controls(raw: str) -> bool:
    """More than one in a hundred of its first characters (and more than three) are
    control characters: a stray one is read as a space."""
    sample = raw[:65536]
    controls = sum(1 for c in sample if c < " " and c not in "\t\n\r\f")
    return controls > max(3, len(sample) // 100)


_HTML = re.compile(r"<(?:!doctype|html|body|head|p|div|br|article|span|a|h[1-6])\b", re.I)
_BLOCKS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "article",
        "section",
        "header",
        "footer",
        "blockquote",
        "tr",
        "table",
        "figure",
        "figcaption",
        "time",
        "title",
        "main",
        "aside",
        "nav",
    ]
)
_SKIPPED = frozenset(("script", "style", "noscript", "template", "svg"))


def looks_like_html(raw: str) -> bool:
    return bool(_HTML.search(raw[:4096]))


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(raw: str) -> str:
    """The text of an HTML page: blocks become paragraphs; scripts and styles are dropped."""
    parser = _TextOf()
    parser.feed(raw)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r" ?\n[ \n]*\n ?", "\n\n", text).strip()


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def plain_text(raw: str, html: bool | None = None) -> str:
    """What the rules read: the checked text, reduced to text first when it is HTML
    (`html`: it is, or is not; None: as it looks), its line ends as `\n` and a stray
    control character as a space (no record may hold one)."""
    text = check_text(raw)
    if html is None:
        html = looks_like_html(text)
    if html:
        text = check_text(html_text(text))
    return _CONTROLS.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


# Double quotation marks, guillemets, and single curly ones (‘…’, as headlines use them)
# whose closing mark is no apostrophe (one followed by a letter: "don’t").
# Straight single ones ('…', as headlines use them) open after no letter and before one,
# and close after one and before none: "Dalmor's" and "farmers' union" hold none.
_QUOTE = re.compile(
    r"“[^“”]*”|\"[^\"]*\"|«[^«»]*»|„[^„“]*“|‘(?:[^‘’]|’(?=\w))*’(?!\w)"
    r"|(?<![\w'’])'(?=[^\s\d'])(?:[^'\n]|'(?=\w))*?(?<=[^\s'])'(?!\w)"
)
_TERMINAL = re.compile(r"[.!?…][”\"’'»)]*$")
_BREAK = re.compile(r"\n[ \t]*\n\s*")
_END = re.compile(r"[.!?…]+[”\"’'»)]*(?=\s+[“\"«„(‘']?[A-Z0-9])")


def quotes(text: str, span: Span) -> list[Span]:
    """The balanced quotations inside a span, their marks excluded; an unclosed mark
    opens none."""
    found = []
    for m in _QUOTE.finditer(text, span.start, span.end):
        if m.end() - m.start() > 2:
            found.append(Span(m.start() + 1, m.end() - 1))
    return found


def _unclosed(block: str) -> bool:
    return block.count("“") > block.count("”") or block.count('"') % 2 == 1


def paragraphs(text: str) -> list[Span]:
    """Blocks between blank lines, joined where the page wrapped a sentence: the next
    block starts in lower case, or a quotation is still open."""
    spans: list[Span] = []
    start = 0
    for m in _BREAK.finditer(text):
        spans.append(Span(start, m.start()))
        start = m.end()
    spans.append(Span(start, len(text)))
    joined: list[Span] = []
    for span in spans:
        if span.start == span.end:
            continue
        if joined and _continues(text, joined[-1], span):
            joined[-1] = Span(joined[-1].start, span.end)
        else:
            joined.append(span)
    return joined


def _continues(text: str, before: Span, after: Span) -> bool:
    head = text[before.start : before.end]
    if _TERMINAL.search(head[-8:]) and not _unclosed(head):
        return False
    first = text[after.start]
    if TIME_LINE.match(text, after.start):
        return False  # a live post's time line stands alone
    if _OPEN_END.search(head[-24:]):
        return True
    return first.islower() or first in "–—,;:" or (_unclosed(head) and len(head) < 5000)


# A line that ends on one of these words was cut by the page's wrapping: no headline or
# sentence ends there.
_OPEN_END = re.compile(
    r"(?:\b(?:the|a|an|of|to|in|at|on|for|and|or|but|with|by|from|that|his|her|their|its|"
    r"our|who|which|is|was|are|were|will|would|has|have|had|says|said|told|adding|as)|"
    r"[’']s|[:,–—])\s*$"
)


def sentences(text: str) -> list[Span]:
    """Sentences of each paragraph; a quotation is never cut, however many it holds."""
    out = []
    for para in paragraphs(text):
        inside = [(q.start, q.end) for q in quotes(text, para)]
        start = para.start
        for m in _END.finditer(text, para.start, para.end):
            if any(a <= m.start() < b for a, b in inside) or _abbreviated(text, m.start()):
                continue
            out.append(Span(start, m.end()))
            start = m.end()
            while start < para.end and text[start].isspace():
                start += 1
        if start < para.end:
            out.append(Span(start, para.end))
    return out


_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "gen",
        "sen",
        "rep",
        "gov",
        "lt",
        "col",
        "prof",
        "no",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "jr",
        "sr",
        "mt",
        "ft",
    ]
)


def _abbreviated(text: str, dot: int) -> bool:
    """A full stop that ends a title, an initial or an abbreviation, not a sentence."""
    if text[dot] != ".":
        return False
    word = re.search(r"([A-Za-z.]+)$", text[max(0, dot - 12) : dot])
    if word is None:
        return False
    last = word.group(1).rsplit(".", 1)[-1]
    return (len(last) == 1 and last.isupper()) or last.lower() in _ABBREVIATIONS


def squeezed(text: str) -> str:
    """Runs of white space (the page's line wraps too) as one space."""
    return " ".join(text.split())
