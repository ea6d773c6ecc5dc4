"""The domain's errors, one small tree that the edges map to answers once.

TimelineError
├── InvalidInput            a value breaks a rule of its field (422)
│   └── InvalidTime         an occurred time that cannot be read
├── UnknownReference        names an actor or topic that is not defined (422)
├── RuleViolation           a valid request the record's state forbids (422)
├── NotFound                no such actor, topic or record (404)
├── Conflict                (409)
│   ├── KeyConflict         the same key was used for other content
│   ├── ConcurrentWrite     another writer saved this aggregate first
│   └── TopicCycle          a move would put a topic below itself
└── StaleVersion            the caller's expected version is not current (412)
"""

from __future__ import annotations


class TimelineError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(TimelineError):
    """A value breaks a rule of its field."""


class InvalidTime(InvalidInput):
    """An occurred time that cannot be read. `impossible`: it is written in one of the
    forms a time takes, but names no real time (`2014-13-01`, an offset beyond 14
    hours, a time outside the calendar kept); otherwise it is not in those forms at all
    (not a string, no offset, `yesterday`)."""

    def __init__(self, message: str, *, field: str | None = None, impossible: bool = False) -> None:
        super().__init__(message, field=field)
        self.impossible = impossible


class UnknownReference(TimelineError):
    """A record names an actor or topic that is not defined."""


class RuleViolation(TimelineError):
    """A valid request that the aggregate's current state forbids."""


class NotFound(TimelineError):
    """No such actor, topic or record."""


class Conflict(TimelineError):
    """The write cannot be applied because of another write."""


class KeyConflict(Conflict):
    """The same key was used before for other content."""


class ConcurrentWrite(Conflict):
    """Another writer saved this aggregate first; reload and retry."""


class TopicCycle(Conflict):
    """A move would put a topic below itself, in the tree as it stands now (which a move
    saved meanwhile may have changed)."""


class StaleVersion(TimelineError):
    """The caller expected another version than the current one."""

    def __init__(self, message: str, *, current: int) -> None:
        super().__init__(message)
        self.current = current
