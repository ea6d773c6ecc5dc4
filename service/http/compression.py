"""Answers compressed with gzip when the client accepts it (docs/http.md, decision 019).

Litestar's compression does the work; this subclass reads `Accept-Encoding` by its rules
(Litestar looks for the substring, so `gzip;q=0` would still get gzip) and says
`Vary: Accept-Encoding` on every answer it could have compressed, not only on those it
did, so that a cache never hands a compressed answer to a client that did not ask for
one. Live streams are left alone (a route's opt `sse`): they must go out event by event.
"""

from __future__ import annotations

from litestar.config.compression import CompressionConfig
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Message, Receive, Scope, Send

MINIMUM_SIZE = 1024  # below a packet's worth, compressing saves no time on the wire
LEVEL = 6  # 9 (Litestar's default) costs more time for well under 1% less


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` allows gzip: named, or `*`, with a weight above 0."""
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name.strip()] = weight
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def vary_on_encoding(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            named = {v.strip().lower() for v in headers.get("vary", "").split(",")}
            if "accept-encoding" not in named:
                headers.extend_header_value("vary", "Accept-Encoding")
        await send(message)

    return wrapped


class GzipWhenAccepted(CompressionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = vary_on_encoding(send)
        if accepts_gzip(Headers.from_scope(scope).get("accept-encoding", "")):
            send = self.create_compression_send_wrapper(
                send=send, compression_encoding=CompressionEncoding.GZIP, scope=scope
            )
        await self.app(scope, receive, send)


CONFIG = CompressionConfig(
    backend="gzip",
    minimum_size=MINIMUM_SIZE,
    gzip_compress_level=LEVEL,
    middleware_class=GzipWhenAccepted,
    exclude_opt_key="sse",
)
