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
from litestar.handlers import HTTPRouteHandler

F = TypeVar("F", bound=Callable[..., Any])


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
        return [
            decorator(*args, **{k: v for k, v in kwargs.items() if k != "sync_to_thread"})(
                off_the_loop(fn) if kwargs.get("sync_to_thread") else fn
            )
            for decorator, args, kwargs, fn in self._specs
        ]


def off_the_loop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An async handler with `fn`'s signature that runs `fn` in a worker thread."""

    @functools.wraps(fn)
    async def handler(**kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))

    return handler
