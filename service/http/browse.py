"""The analyst's reads: what changed in what we know between two points of the log
(`/changes`), and how many records the timeline holds in each day, week, month or year
(`/timeline/counts`). Both read the timeline's row versions, with the checks, waits and
errors of every read (`service/http/reads.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from projections.view import ChangesQuery, TimelineQuery
from service.http import params, schemas
from service.http.caching import mark_fixed
from service.http.context import Side, services
from service.http.problems import HttpProblem
from service.http.reads import (
    Reading,
    behind,
    json_answer,
    known,
    next_cursor,
    offset,
    pinned,
    position_as_of,
    reach,
    read_route,
)
from service.http.routing import Routes

routes = Routes()

# `from` is a Python keyword: the parameter is `from_` in code.
From = Annotated[str | None, QueryParameter(name="from")]


@dataclass(frozen=True, slots=True)
class Span:
    """The changes after position `start`, up to `end` included; `fixed`: no write can
    move the end; `asked`: the end was asked for (`to` or `to_position`), not where the
    read models stand."""

    start: int
    end: int
    fixed: bool
    asked: bool
    side: Side  # where the span's ends were read, and its changes are


async def spanning(
    request: Request[Any, Any, Any],
    state: State,
    from_: From = None,
    to: FromQuery[str | None] = None,
    from_position: FromQuery[int | None] = None,
    to_position: FromQuery[int | None] = None,
) -> Span:
    """The span of `/changes`, once the read models have reached its end. Each end is an
    instant, mapped to a position as `as_of` maps it, or a position; the wait holds no
    thread. A span whose ends are positions, or instants that a later event has passed,
    is fixed."""
    s = services(state)
    if from_ is not None and from_position is not None:
        raise HttpProblem(400, "give from or from_position, not both", field="from")
    if to is not None and to_position is not None:
        raise HttpProblem(400, "give to or to_position, not both", field="to")
    params.position(from_position, "from_position")
    params.position(to_position, "to_position")
    since = None if from_ is None else params.instant(from_, "from")
    until = None if to is None else params.instant(to, "to")
    if since is not None and until is not None and since > until:
        raise HttpProblem(422, "must not be after to", field="from")
    side = s.reader()
    view = side.view()
    start, fixed_start = from_position or 0, True
    if since is not None:
        start, fixed_start = await position_as_of(s, side, since, "from")
    if to_position is not None:
        if to_position:
            await reach(s, side, to_position, "to_position")
        end, fixed_end = to_position, True
    elif until is not None:
        end, fixed_end = await position_as_of(s, side, until, "to")
    else:
        end, fixed_end = await anyio.to_thread.run_sync(view.position), False
    if fixed_start and fixed_end:
        mark_fixed(request)
    _ordered(start, end, "from" if from_ is not None else "from_position")
    asked = to is not None or to_position is not None
    return Span(start, end, asked and fixed_end, asked, side)


def _ordered(start: int, end: int, field: str) -> None:
    if start > end:
        raise HttpProblem(422, f"is after the span's end, position {end}", field=field)


@read_route(routes, "/changes", schemas.ChangePage)
def get_changes(
    state: State,
    span: NamedDependency[Span],
    topic: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    kind: FromQuery[schemas.RecordKind | None] = None,
    change: FromQuery[schemas.ChangeKind | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    """What changed in what we know between two points, in the order it was recorded:
    each record added, corrected, sourced, tagged or retracted, with its item after the
    change."""
    s = services(state)
    # A walk's cursor carries the end of its first page's span, which every later page
    # keeps (its start is asked again, as every other parameter).
    end, after = pinned(
        span.end if span.asked else None, span.fixed, cursor, lambda: span.end, offset
    )
    behind(s, end, span.end)
    _ordered(span.start, end, "cursor")
    size = params.limit(limit)
    view = span.side.view()
    query = ChangesQuery(
        start=span.start,
        end=end,
        topic=known(view, "topic", topic, end),
        actor=known(view, "actor", actor, end),
        kind=kind,
        change=change,
        after=after,
        limit=size,
    )
    page = view.changes(query)
    answer: dict[str, Any] = {
        "from_position": span.start,
        "to_position": end,
        "items": [
            {
                "position": c.position,
                "recorded_at": c.recorded_at,
                "change": c.change,
                "kind": c.kind,
                "id": c.id,
                "fields": c.fields,
                "item": msgspec.Raw(c.item.encode()),
            }
            for c in page.items
        ],
        "next_cursor": next_cursor(end, page.next),
    }
    return json_answer(msgspec.json.encode(answer), end)


@read_route(routes, "/timeline/counts", schemas.Counts)
def get_counts(
    at: NamedDependency[Reading],
    bucket: FromQuery[schemas.Bucket] = "month",
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    topic: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    kind: FromQuery[schemas.RecordKind | None] = None,
    q: FromQuery[str | None] = None,
) -> Response[bytes]:
    """How many records of the timeline (filtered as /timeline, `q` too) each day, week,
    month or year holds: the buckets that hold any, in order, and their total."""
    start, end = params.window(since, until)
    view = at.view
    position = at.position()
    query = TimelineQuery(
        topic=known(view, "topic", topic, at.at),
        actor=known(view, "actor", actor, at.at),
        kind=kind,
        since=start,
        until=end,
        at=at.at,
        q=params.search(q),
    )
    found = view.counts(bucket, query)
    answer = {
        "bucket": bucket,
        "items": [{"start": day, "count": n} for day, n in found],
        "total": sum(n for _, n in found),
    }
    return json_answer(msgspec.json.encode(answer), position)
