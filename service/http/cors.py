"""Cross-origin reads and writes from the origins of TIMELINE_CORS_ORIGINS (docs/http.md).

Installed only when origins are configured: with none, no answer carries a CORS header.
An allowed origin's preflight is answered here (204); any other request from it gets
`Access-Control-Allow-Origin` and the headers a script may read. A request from another
origin is served as if CORS did not exist, so the browser withholds the answer. Every
answer says `Vary: Origin`. (Litestar's own CORS middleware replaces `Vary`, dropping
the `Accept-Encoding` that compression set: decision 019.)
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("GET", "HEAD", "POST")
# Request headers the API reads (Last-Event-ID: a live stream resuming; Content-Encoding:
# a gzipped backfill), and the response headers a script needs.
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "If-Match",
    "If-None-Match",
    "Last-Event-ID",
)
EXPOSE_HEADERS = ("ETag", "Retry-After", "X-Timeline-Position")
MAX_AGE = 600  # seconds a browser may keep a preflight's answer


def _allowed(origin: str, origins: tuple[str, ...]) -> str | None:
    """The value of Access-Control-Allow-Origin for this origin, if it is allowed."""
    if "*" in origins:
        return "*"
    return origin if origin.lower() in origins else None


def _preflight(allow: str) -> list[tuple[bytes, bytes]]:
    headers = {
        "access-control-allow-origin": allow,
        "access-control-allow-methods": ", ".join(METHODS),
        "access-control-allow-headers": ", ".join(ALLOW_HEADERS),
        "access-control-max-age": str(MAX_AGE),
        "vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }
    return [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]


def cors(origins: tuple[str, ...]) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware for these origins."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if str(scope["type"]) != "http":
                await app(scope, receive, send)
                return
            request = Headers.from_scope(scope)
            origin = request.get("origin")
            allow = None if origin is None else _allowed(origin, origins)
            if allow is not None and _is_preflight(scope, request):
                await send(
                    {"type": "http.response.start", "status": 204, "headers": _preflight(allow)}
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    headers.extend_header_value("vary", "Origin")
                    if allow is not None:
                        headers["Access-Control-Allow-Origin"] = allow
                        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)
                await send(message)

            await app(scope, receive, send_wrapper)

        return middleware

    return wrap


def _is_preflight(scope: Scope, request: Headers) -> bool:
    return scope.get("method") == "OPTIONS" and "access-control-request-method" in request
