"""Validators and freshness for reads (docs/http.md, decision 019).

Every JSON read carries an `ETag` (`tag`: a weak tag of its uncompressed body, unless the
route gives its own, as a record gives its version), and `conditional` answers a GET or
HEAD whose `If-None-Match` names it with `304 Not Modified`. A read as of a fixed point
of the log (`mark_fixed`, by the `as_of` family once it knows) can never change, so it
may be kept for a year; any other read must be checked again before each use.
"""

from __future__ import annotations

import re
from typing import Any

import xxhash
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.http.context import services

FIXED = "timeline_fixed_answer"
IMMUTABLE = "max-age=31536000, immutable"
_TAG = re.compile(r'(?:W/)?"([^"]*)"')
_BODY_HEADERS = ("content-type", "content-length", "content-encoding")


def tag(body: bytes) -> str:
    """A weak tag: the same for the body as sent plain or gzipped, which are equivalent
    but not byte for byte the same (RFC 9110 8.8.1). XXH3's 128 bits: a tag tells
    answers apart and guards nothing, and a page of 60 KB hashes in 6 µs, not the 150
    µs of BLAKE2b, a tenth of a page's work in the API process."""
    return f'W/"{xxhash.xxh3_128_hexdigest(body)}"'


def mark_fixed(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """This request's answer is as of a point of the log that no write can move."""
    setattr(connection.state, FIXED, True)


def matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` against a tag, by weak comparison (RFC 9110 13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    wanted = _TAG.fullmatch(etag.strip())
    return wanted is not None and wanted[1] in _TAG.findall(if_none_match)


def cache_control(scope: Scope) -> str:
    fixed = bool(scope.get("state", {}).get(FIXED))
    if services(scope["app"].state).settings.read_requires_key:
        return f"private, {IMMUTABLE}" if fixed else "private, no-cache"
    return f"public, {IMMUTABLE}" if fixed else "no-cache"


def conditional(app: ASGIApp) -> ASGIApp:
    """Reads (answers with `X-Timeline-Position`) get their `Cache-Control`; a GET or HEAD
    whose `If-None-Match` matches the answer's `ETag` gets a 304 with its headers and no
    body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) != "http" or scope.get("method") not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        if_none_match = _header(scope, b"if-none-match")
        unchanged = False

        async def send_wrapper(message: Message) -> None:
            nonlocal unchanged
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = MutableScopeHeaders.from_message(message)
                if "x-timeline-position" in headers and "cache-control" not in headers:
                    headers["Cache-Control"] = cache_control(scope)
                etag = headers.get("etag")
                if if_none_match is not None and etag is not None and matches(if_none_match, etag):
                    unchanged = True
                    for name in _BODY_HEADERS:
                        del headers[name]
                    message["status"] = 304
            elif message["type"] == "http.response.body" and unchanged:
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name]
    return ", ".join(values) if values else None
