"""Read endpoints: the read models, current or `as_of`, with the position they reflect.

Every read answers `X-Timeline-Position`; `min_position` waits (bounded) until the read
model has it, so a client can read its own writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes
from uuid import UUID

import anyio
import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from domain import rules
from domain.errors import TimelineError
from domain.ids import record_id
from domain.records import KINDS
from domain.usecases import recorded_at
from projections.answers import said_page
from projections.rows import utc_text
from projections.view import Entity, TimelineQuery, TimelineView
from service.http import params, schemas
from service.http.caching import mark_fixed, tag
from service.http.context import Services, Side, services
from service.http.problems import HttpProblem
from service.http.routing import PLURAL, Routes
from service.http.waiting import Busy

READ_ERRORS = (400, 401, 403, 404, 422, 503)
JSON = "application/json"
T = TypeVar("T")


routes = Routes()


def read_route(
    routes: Routes, path: str, returns: type[Any], errors: tuple[int, ...] = READ_ERRORS
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A GET route of read scope (its query is checked by `params.check_query`, as every
    route's)."""
    return routes.add(
        get,
        path,
        sync_to_thread=True,
        media_type=JSON,
        opt={"scope": "read", "returns": returns, "errors": errors},
    )


def _route(
    path: str, returns: type[Any], errors: tuple[int, ...] = READ_ERRORS
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return read_route(routes, path, returns, errors)


@dataclass(frozen=True, slots=True)
class Reading:
    """Where every read of the read models starts (the `at` dependency): what the
    handlers share, the request, the side that answers (a replica or the primary), and
    the position the answer is as of; None: as that side's read models stand now.
    `fixed`: no write can move it (a position asked for, or an instant a later event
    has passed)."""

    s: Services
    request: Request[Any, Any, Any]
    side: Side
    at: int | None
    fixed: bool = False

    @property
    def view(self) -> TimelineView:
        """The view that readers use now, on the side that answers."""
        return self.side.view()

    def position(self) -> int:
        """What the answer reflects (`X-Timeline-Position`): the position asked for, or
        the read models' now (taken before the answer, which reflects at least that)."""
        return self.side.reached.now() if self.at is None else self.at

    def listed(self, cursor: str | None, read: Callable[[Any], T]) -> tuple[int, T | None]:
        """`pinned`, for a list of the read models: now is the position they have
        reached. A page after the first is as of a position, so its answer is fixed."""
        position, start = pinned(self.at, self.fixed, cursor, self.side.reached.now, read)
        if start is not None:
            behind(self.s, position, self.view.position())
            mark_fixed(self.request)
        return position, start


async def reading(
    request: Request[Any, Any, Any],
    state: State,
    as_of: FromQuery[str | None] = None,
    as_of_position: FromQuery[int | None] = None,
    min_position: FromQuery[int | None] = None,
) -> Reading:
    """The `as_of` family every read model takes: the position the answer is as of, once
    the read models have reached it (and `min_position`). The wait holds no thread. An
    answer as of a position, or of an instant that a later event has passed, is fixed.
    The positions are those of the side that answers (a replica's own)."""
    s = services(state)
    side = s.reader()
    if as_of is not None and as_of_position is not None:
        raise HttpProblem(400, "give as_of or as_of_position, not both", field="as_of")
    for name, value in (("as_of_position", as_of_position), ("min_position", min_position)):
        params.position(value, name)
        if value:
            await reach(s, side, value, name)
    if as_of is not None:
        at, final = await position_as_of(s, side, params.instant(as_of, "as_of"), "as_of")
        if final:
            mark_fixed(request)
        return Reading(s, request, side, at, final)
    if as_of_position is not None:
        mark_fixed(request)
        return Reading(s, request, side, as_of_position, True)
    return Reading(s, request, side, None)


async def position_as_of(
    s: Services, side: Side, instant: datetime, field: str
) -> tuple[int, bool]:
    """The last position recorded by the instant, once the read models have read every
    event that may have been recorded by then (`as_of`, and the ends of `/changes`); and
    whether it is final: whether an event recorded after the instant is in the log, so
    that no write to come can be recorded by it."""
    view = side.view()
    at, final, head = await anyio.to_thread.run_sync(_position_at, s, view, instant)
    if head is not None:  # the log holds events the read models have not read yet
        await reach(s, side, head, field)
        at, final = await anyio.to_thread.run_sync(view.position_at, instant)
    return at, final


def _position_at(
    s: Services, view: TimelineView, instant: datetime
) -> tuple[int, bool, int | None]:
    """The last position recorded by the instant, as the read models know it, and
    whether it is final; and, if the log may hold one recorded by then that they have
    not read, the head to wait for before asking again. (High waters never go back: once
    a position past the instant is read, or is the next in the log, no later one can be
    in.)"""
    reached = view.position()
    at, final = view.position_at(instant)
    if final:
        return at, True, None
    following = s.timeline.recorder.select_notifications(
        start=reached, limit=1, inclusive_of_start=False
    )
    if not following:
        return at, False, None
    if recorded_at(s.timeline.mapper.to_domain_event(following[0])) > instant:
        return at, True, None
    return at, False, s.timeline.head_position()


async def reach(s: Services, side: Side, position: int, field: str) -> None:
    """Wait, bounded, for one side's read models to reach a position that the log
    holds."""
    if position <= side.reached.known:
        return
    head = await anyio.to_thread.run_sync(s.timeline.head_position)
    if position > head:
        raise HttpProblem(
            422,
            f"the log's last position is {head}: there is no position {position} yet",
            field=field,
        )
    try:
        reached = await side.reached.reached(position, s.settings.wait_timeout)
    except Busy as e:
        raise HttpProblem(
            503, f"{e}; retry shortly", field=field, headers={"Retry-After": "1"}
        ) from None
    if not reached:
        raise HttpProblem(
            503,
            f"the read models have not reached position {position} yet; retry shortly",
            field=field,
            headers={"Retry-After": "1"},
        )


def pinned(
    at: int | None,
    fixed: bool,
    cursor: str | None,
    now: Callable[[], int],
    read: Callable[[Any], T],
) -> tuple[int, T | None]:
    """The position a page of a list answers as of, and where in the list it starts (None:
    the first page), as `read` takes it from the cursor. A walk's first page is as of the
    point asked, or now (`now()`); its cursors carry that position, so that every later
    page answers as of the same point, whatever was written meanwhile. A cursor given with
    another fixed point is a 422: a walk has one point. (An instant that no later event
    has passed yet maps to later positions as the log grows: the cursor's holds.)"""
    value = params.decode_cursor(cursor)
    if value is None:
        return (now() if at is None else at), None
    try:
        position, after = value
        if type(position) is not int or not 0 <= position < params.MAX_POSITION or after is None:
            raise ValueError
        start = read(after)
    except (ValueError, TypeError, TimelineError):
        raise params.not_a_cursor() from None
    if fixed and at != position:
        raise HttpProblem(
            422,
            f"continues a walk as of position {position}: give it with that point, or alone",
            field="cursor",
        )
    return position, start


def behind(s: Services, position: int, reached: int) -> None:
    """A cursor's position must be one the read models hold: after a rebuild they may
    not have reached it again (503); past the log's head, no walk was ever as of it."""
    if position <= reached:
        return
    if position > s.timeline.head_position():
        raise params.not_a_cursor()
    raise HttpProblem(
        503,
        f"the read models have not reached position {position} yet; retry shortly",
        field="cursor",
        headers={"Retry-After": "1"},
    )


def next_cursor(position: int, after: Any) -> str | None:
    """The cursor of the page after this one, if one follows (`after` not None)."""
    return None if after is None else params.encode_cursor([position, after])


def offset(value: Any) -> int:
    """A cursor's place in a list read whole and cut into pages (never 0: that is the
    first page, which has no cursor)."""
    if type(value) is not int or not 0 < value < params.MAX_POSITION:
        raise ValueError
    return value


def json_answer(body: bytes, position: int, extra: dict[str, str] | None = None) -> Response[Any]:
    """A read's answer: the position it reflects and its tag (`extra` may give its own);
    `service/http/caching.py` adds its freshness and answers If-None-Match."""
    headers = {"X-Timeline-Position": str(position), "ETag": tag(body), **(extra or {})}
    return Response(body, media_type=JSON, headers=headers)


@_route("/timeline", schemas.Page)
def get_timeline(
    at: NamedDependency[Reading],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    topic: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> Response[bytes]:
    """Every current record in occurred order; `topic` includes its descendants; `q`
    keeps the records whose title, quote or summary holds its words."""
    start, end = params.window(since, until)
    view = at.view
    position, after = at.listed(cursor, _timeline_after)
    query = TimelineQuery(
        topic=known(view, "topic", topic, position),
        actor=known(view, "actor", actor, position),
        kind=params.choice(kind, "kind", KINDS),
        since=start,
        until=end,
        limit=params.limit(limit),
        after=after,
        at=position,
        q=params.search(q),
    )
    page = view.page(query)
    following = None if page.next is None else [utc_text(page.next[0]), page.next[1]]
    body = (
        b'{"items":['
        + ",".join(page.items).encode()
        + b'],"next_cursor":'
        + msgspec.json.encode(next_cursor(position, following))
        + b"}"
    )
    return json_answer(body, position)


def known(view: TimelineView, what: Entity, value: str | None, at: int | None) -> str | None:
    """The slug of a topic or an actor that was defined then (404 naming it if not)."""
    slug = params.slug(value, what)
    if slug is not None and not view.knows(what, slug, at):
        then = "" if at is None else " at that point"
        raise HttpProblem(404, f"no {what} {slug!r}{then}", field=what)
    return slug


def _timeline_after(value: Any) -> tuple[datetime, int]:
    """The key of the last item of the page before: its occurred start and first position."""
    start, first = value
    if not isinstance(start, str) or type(first) is not int or not 0 <= first < params.MAX_POSITION:
        raise ValueError
    return rules.occurred(start, "cursor").start, first


@_route("/topics/{id:str}/who-said-what", schemas.WhoSaidWhat)
def get_who_said_what(
    at: NamedDependency[Reading],
    id: FromPath[str],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    """For a topic and its descendants: who said what, each speaker's records in order.
    A page holds `limit` records, counted through the speakers in their order; a speaker
    whose records run on is listed again at the top of the next page, with the rest."""
    slug = params.slug(id, "id")
    assert slug is not None
    start, end = params.window(since, until)
    size = params.limit(limit)
    position, after = at.listed(cursor, offset)
    answer = at.view.who_said_what(slug, (start, end), position, raw=True)
    if answer is None:
        raise HttpProblem(
            404, f"no topic {slug!r}" + ("" if at.at is None else " at that point"), field="id"
        )
    found, following = said_page(answer, after or 0, size)
    body = {**found, "next_cursor": next_cursor(position, following)}
    return json_answer(msgspec.json.encode(body), position)


def _record_routes(kind: str) -> None:
    base = f"/{PLURAL[kind]}/{{id:uuid}}"

    def get_record(at: NamedDependency[Reading], id: FromPath[UUID]) -> Response[bytes]:
        return _record(kind, id, at, "id", str(id))

    def get_record_by_key(at: NamedDependency[Reading], key: FromPath[str]) -> Response[bytes]:
        """The record by its key: as `GET /{kind}s/{id}` answers for the id the key gives."""
        key = _exact_key(at.request, key)
        id = record_id(kind, key)
        return _record(kind, id, at, "key", f"with key {key!r}")

    def get_history(
        at: NamedDependency[Reading],
        id: FromPath[UUID],
        limit: FromQuery[int] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """Every event of the record in version order, with the position of each. Now
        is the log's head: the events the read models have not read yet show position 0."""
        s = at.s
        known = at.view.history(str(id))
        position, after = pinned(at.at, at.fixed, cursor, s.timeline.head_position, _versions)
        if after is not None and position > s.timeline.head_position():
            raise params.not_a_cursor()
        events = list(s.timeline.history(id))
        if events and not _is_kind(s, kind, id):
            events = []
        size = params.limit(limit)
        if after is None:  # a walk lists the versions there were at its first page
            seen = [
                e
                for e in events
                if at.at is None or 0 < known.get(e.originator_version, 0) <= at.at
            ]
            after = (0, seen[-1].originator_version if seen else 0)
        first, last = after
        shown = [e for e in events if first < e.originator_version <= last][: size + 1]
        if not shown:
            then = "" if at.at is None else " at that point"
            raise HttpProblem(404, f"no {kind} {id}{then}", field="id")
        more = len(shown) > size
        shown = shown[:size]
        following = [shown[-1].originator_version, last] if more else None
        page = {
            "items": [event_out(e, known.get(e.originator_version)) for e in shown],
            "next_cursor": next_cursor(position, following),
        }
        return json_answer(msgspec.json.encode(page), position)

    _route(base, schemas.Item, (*READ_ERRORS, 410))(get_record)
    _route(f"/{PLURAL[kind]}/by-key/{{key:path}}", schemas.Item, (*READ_ERRORS, 410))(
        get_record_by_key
    )
    _route(f"{base}/history", schemas.HistoryPage)(get_history)


def _versions(value: Any) -> tuple[int, int]:
    """The last version of the page before, and the last of the walk."""
    first, last = value
    if (
        type(first) is not int
        or type(last) is not int
        or not 0 < first < last < params.MAX_POSITION
    ):
        raise ValueError
    return first, last


def _exact_key(request: Request[Any, Any, Any], parsed: str) -> str:
    """The key as the client percent-encoded it. Litestar's path parameter has lost what
    routing normalises (a leading, trailing or doubled "/"), so it is read again from the
    raw path, decoded once."""
    raw = request.scope.get("raw_path")
    if not raw or b"/by-key/" not in raw:
        return parsed[1:]  # the parameter begins with its "/"
    try:
        # (Some servers leave the query on the raw path: a "?" in a key is %3F.)
        encoded = raw.split(b"/by-key/", 1)[1].split(b"?", 1)[0]
        return unquote_to_bytes(encoded).decode()
    except UnicodeDecodeError:  # no key is such text: none has this record
        raise HttpProblem(404, "no record has a key that is not UTF-8", field="key") from None


def _record(kind: str, id: UUID, at: Reading, field: str, called: str) -> Response[bytes]:
    """A record's item; `field` and `called` name the record as the path did, when there
    is none."""
    position = at.position()
    found = at.view.record(kind, str(id), at.at)
    if found is None:
        _missing(at.s, kind, id, at, field, called)
    assert found is not None
    # Its tag is strong, as writes compare If-Match: its version, and a digest of the
    # rest it shows that other aggregates keep (its topics' labels) (decision 019).
    body = found.encode()
    version = json.loads(found)["version"]
    digest = hashlib.blake2b(body, digest_size=8).hexdigest()
    return json_answer(body, position, {"ETag": f'"{version}.{digest}"'})


def _is_kind(s: Services, kind: str, id: UUID) -> bool:
    try:
        s.timeline.get_record(kind, id)
    except TimelineError:  # not found, or another kind; a store error is a 503
        return False
    return True


def _missing(s: Services, kind: str, id: UUID, at: Reading, field: str, called: str) -> None:
    try:
        rec = s.timeline.get_record(kind, id)
    except TimelineError:
        raise HttpProblem(404, f"no {kind} {called}", field=field) from None
    if rec.retracted is not None and at.at is None:
        raise HttpProblem(410, f"this {kind} was retracted: {rec.retracted}", field=field)
    raise HttpProblem(
        404,
        f"no {kind} {called} "
        + ("at that point" if at.at is not None else "in the read model yet"),
        field=field,
    )


def event_out(event: Any, position: int | None) -> schemas.Event:
    """A domain event for the feed; position 0 when not yet known to the read models."""
    data = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    data = msgspec.to_builtins(data)
    return schemas.Event(
        position=position or 0,
        type=type(event).__qualname__,
        aggregate_id=str(event.originator_id),
        aggregate_version=event.originator_version,
        recorded_at=utc_text(event.timestamp),
        data=data,
    )


@_route("/actors", schemas.ActorPage)
def list_actors(
    at: NamedDependency[Reading],
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    """Every actor, in id order."""
    position, after = at.listed(cursor, _actor_after)
    size = params.limit(limit)
    found = at.view.actors(position, size, after)
    following = found[size - 1]["id"] if len(found) > size else None
    page = {"items": found[:size], "next_cursor": next_cursor(position, following)}
    return json_answer(msgspec.json.encode(page), position)


def _actor_after(value: Any) -> str:
    """The id of the last actor of the page before."""
    if not isinstance(value, str):
        raise ValueError
    return rules.slug(value, "cursor")


@_route("/actors/{id:str}", schemas.ActorProfile)
def get_actor(at: NamedDependency[Reading], id: FromPath[str]) -> Response[bytes]:
    """An actor's profile: roles, aliases, counts by topic, latest records."""
    slug = params.slug(id, "id")
    assert slug is not None
    position = at.position()
    found = at.view.actor(slug, at.at)
    if found is None:
        raise HttpProblem(404, f"no actor {slug!r}", field="id")
    return json_answer(msgspec.json.encode(found), position)


@_route("/topics", schemas.TopicPage)
def list_topics(
    at: NamedDependency[Reading],
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    """The topic tree, depth first, with counts (direct, and with descendants)."""
    position, after = at.listed(cursor, offset)
    start, size = after or 0, params.limit(limit)
    tree = at.view.topic_tree(position)
    following = start + size if len(tree) > start + size else None
    page = {"items": tree[start : start + size], "next_cursor": next_cursor(position, following)}
    return json_answer(msgspec.json.encode(page), position)


@_route("/topics/{id:str}", schemas.TopicOut)
def get_topic(at: NamedDependency[Reading], id: FromPath[str]) -> Response[bytes]:
    slug = params.slug(id, "id")
    position = at.position()
    found = next((t for t in at.view.topic_tree(at.at) if t["id"] == slug), None)
    if found is None:
        raise HttpProblem(404, f"no topic {slug!r}", field="id")
    return json_answer(msgspec.json.encode(found), position)


for _kind in KINDS:
    _record_routes(_kind)
