"""Route handlers made anew for each app, their synchronous work run off the event loop.

Litestar changes a handler object when an app registers it, so one handler object shared
by two apps (as in tests) misbehaves in the second. Modules therefore record their
handler functions here, and `create_app` asks for fresh handler objects.

Synchronous handlers run in a worker thread, as `sync_to_thread=True` would do; we do it
ourselves because Litestar 2.25 registers the first handler of a path that has several
(POST and GET /actors) twice and wraps it twice, so it answers a coroutine: a 500
(docs/decisions/006-handlers-off-the-event-loop.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from litestar import get, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.records import KINDS

F = TypeVar("F", bound=Callable[..., Any])

PLURAL = {kind: f"{kind}s" for kind in KINDS}  # a record kind's path segment


class Routes:
    def __init__(self) -> None:
        self._specs: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Any]] = []

    def add(self, decorator: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Record `decorator(*args, **kwargs)(fn)` to be made by `handlers()`."""

        def register(fn: F) -> F:
            self._specs.append((decorator, args, kwargs, fn))
            return fn

        return register

    def handlers(self) -> list[HTTPRouteHandler]:
        """Fresh handler objects; each GET also answers HEAD (see `head_without_body`)."""
        return [
            (_get_and_head if decorator is get else decorator)(
                *args, **{k: v for k, v in kwargs.items() if k != "sync_to_thread"}
            )(off_the_loop(fn) if kwargs.get("sync_to_thread") else fn)
            for decorator, args, kwargs, fn in self._specs
        ]


def _get_and_head(*args: Any, **kwargs: Any) -> HTTPRouteHandler:
    return route(*args, http_method=[HttpMethod.GET, HttpMethod.HEAD], **kwargs)


def head_without_body(app: ASGIApp) -> ASGIApp:
    """A HEAD is answered as its GET would be (status and headers, Content-Length
    included, as RFC 9110 allows), without the body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) != "http" or scope.get("method") != "HEAD":
            await app(scope, receive, send)
            return
        ended = False

        async def bodiless(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, bodiless)

    return middleware


def off_the_loop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An async handler with `fn`'s signature that runs `fn` in a worker thread."""

    @functools.wraps(fn)
    async def handler(**kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))

    return handler
