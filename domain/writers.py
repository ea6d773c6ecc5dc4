"""Who writes, and in which batch: metadata every event carries, named once per write.

The service names the writer of each write it makes (an API key's name, the command
line's writer, a backfill's batch) with `writing_as`; the verbs never take it, and the
events fill it in when they are made. An event made while no writer is named fails at
once (`NoWriter`): nothing is stored under a default name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from eventsourcing.domain import Aggregate


@dataclass(frozen=True, slots=True)
class Author:
    """Who writes: the API key's name, and the import batch when there is one."""

    writer: str
    batch_id: str | None = None


class NoWriter(RuntimeError):
    """A change was made with no writer named: a bug of the caller, never a default."""


_author: ContextVar[Author | None] = ContextVar("author", default=None)


@contextmanager
def writing_as(author: Author) -> Iterator[Author]:
    """The events made inside carry this writer and batch."""
    token = _author.set(author)
    try:
        yield author
    finally:
        _author.reset(token)


def current_author() -> Author:
    author = _author.get()
    if author is None:
        raise NoWriter("no writer is named for this change: make it inside writing_as(Author(…))")
    return author


def _writer() -> str:
    return current_author().writer


def _batch_id() -> str | None:
    return current_author().batch_id


class Authored(Aggregate.Event):
    """An event that says who wrote it and in which import batch (None: not an import).
    Both are stored in the event's state, where they have always been."""

    writer: str = field(default_factory=_writer, init=False)
    batch_id: str | None = field(default_factory=_batch_id, init=False)
