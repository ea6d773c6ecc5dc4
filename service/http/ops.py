"""The event feed and its live stream, projection status, health, readiness, metrics,
and the admin backfill."""

from __future__ import annotations

import functools
import re
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import ServerSentEventMessage, Stream

from domain.application import Timeline
from domain.writers import Author
from service.files.backfill import load, new_batch_id
from service.http import params, schemas
from service.http.context import Services, services
from service.http.metrics import CONTENT_TYPE
from service.http.problems import HttpProblem
from service.http.reads import event_out, json_answer, read_route
from service.http.routing import Routes
from service.http.waiting import Busy, Message

routes = Routes()
READY_LAG = 10_000  # events the projection may trail by and still be ready
# The API's answers read from the projection's view, as `/projections` lists them.
ANSWERS = ("timeline", "who-said-what", "actors", "topics")
KEEP_ALIVE = 15.0  # seconds of quiet before a stream sends a comment
KEEP_ALIVE_FRAME = ServerSentEventMessage(comment="keep-alive").encode()
STREAM_HEADERS = {"Cache-Control": "no-store"}
BACKFILL_MAX_BYTES = 256 * 1024 * 1024
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def _route(
    path: str, returns: type[Any], errors: tuple[int, ...]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return read_route(routes, path, returns, errors)


@_route("/events", schemas.EventPage, (400, 401, 403, 422, 503))
def get_events(
    state: State,
    after: FromQuery[int] = 0,
    limit: FromQuery[int] = 100,
) -> Response[bytes]:
    """Every domain event after a position, in position order; from a replica, as far as
    it has the log (its head is the position the answer tells)."""
    s = services(state)
    params.position(after, "after")
    notes, head = s.reader().log(after, params.limit(limit))
    events = [event_out(s.timeline.mapper.to_domain_event(n), n.id) for n in notes]
    page = schemas.EventPage(events=events, next_after=events[-1].position if events else after)
    return json_answer(msgspec.json.encode(page), head)


@routes.add(
    get,
    "/events/stream",
    opt={"scope": "read", "errors": (400, 401, 403, 422, 503), "sse": True},
)
async def stream_events(
    request: Request[Any, Any, Any],
    state: State,
    after: FromQuery[int | None] = None,
) -> Stream:
    """The event feed as Server-Sent Events, live; resumes from `Last-Event-ID`. Past
    TIMELINE_MAX_STREAMS open streams, 503 with Retry-After at once."""
    s = services(state)
    last = request.headers.get("last-event-id")
    start = after or 0
    if last is not None:
        if not re.fullmatch(r"[0-9]{1,18}", last.strip()):
            raise HttpProblem(400, "Last-Event-ID must be a position", field="last-event-id")
        start = int(last)
    params.position(start, "after")
    if request.method == "HEAD":  # the stream's headers, and no stream to hold open
        return Stream(iter(()), media_type="text/event-stream", headers=STREAM_HEADERS)
    try:
        s.feed.admit()
    except Busy as e:
        raise HttpProblem(
            503, f"{e}; retry shortly", field="after", headers={"Retry-After": "5"}
        ) from None
    return Stream(_stream(s, start), media_type="text/event-stream", headers=STREAM_HEADERS)


def feed_messages(timeline: Timeline, after: int, limit: int) -> list[Message]:
    """The events after a position, encoded for the live streams."""
    notes = timeline.recorder.select_notifications(
        start=after, limit=limit, inclusive_of_start=False
    )
    return [
        Message(n.id, ServerSentEventMessage(data=data, event=event.type, id=n.id).encode())
        for n in notes
        for event in [event_out(timeline.mapper.to_domain_event(n), n.id)]
        for data in [msgspec.json.encode(event).decode()]
    ]


async def _stream(s: Services, after: int) -> AsyncIterator[bytes]:
    """Each batch of events in one write (their frames made once for every stream)."""
    async for batch in s.feed.follow(after, idle=KEEP_ALIVE):
        yield b"".join(m.frame for m in batch) if batch else KEEP_ALIVE_FRAME


@_route("/projections", schemas.ProjectionList, (401, 403, 503))
def get_projections(state: State) -> Response[bytes]:
    """The projection's position, the store's head, the lag, its state, and the answers
    read from its view."""
    s = services(state)
    warnings = [
        f"the topics {' -> '.join([*cycle, cycle[0]])} form a cycle; /topics lists them "
        f"from {cycle[0]!r}"
        for cycle in s.models.view().topic_cycles()
    ]
    st = s.models.status()
    item = schemas.ProjectionOut(
        name=st.name,
        state=st.state,
        position=st.position,
        head=st.head,
        lag=st.lag,
        error=st.error,
        error_position=st.error_position,
        read_models=list(ANSWERS),
        warnings=warnings,
    )
    return json_answer(msgspec.json.encode(schemas.ProjectionList(items=[item])), st.head)


@routes.add(
    get,
    "/health",
    media_type="application/json",
    opt={"returns": schemas.Health, "errors": (), "position": False},
)
async def health() -> schemas.Health:
    """The process is up (never touches the store, so it reflects no position)."""
    return schemas.Health(status="ok")


@routes.add(
    get,
    "/ready",
    sync_to_thread=True,
    media_type="application/json",
    opt={"returns": schemas.Health, "errors": (503,)},
)
def ready(state: State) -> Response[bytes]:
    """The store answers and the projection runs within a bound of the head."""
    s = services(state)
    checks: dict[str, str] = {}
    reached: int | None = None
    try:
        st = s.models.status()
        reached = st.position
        if st.state == "failed":
            checks[st.name] = f"failed at event {st.error_position}: {st.error}"
        elif st.lag > READY_LAG:
            checks[st.name] = f"{st.lag} events behind"
        else:
            checks[st.name] = "ok"
        checks["store"] = "ok"
    except Exception as e:
        checks["store"] = f"unreachable: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = schemas.Health(status="ok" if ok else "unavailable", checks=checks)
    headers = {} if ok else {"Retry-After": "5"}
    if reached is not None:  # the position the view has reached
        headers["X-Timeline-Position"] = str(reached)
    return Response(
        msgspec.json.encode(body),
        status_code=200 if ok else 503,
        media_type="application/json",
        headers=headers,
    )


@routes.add(get, "/metrics", sync_to_thread=True, media_type=CONTENT_TYPE, opt={"errors": ()})
def metrics(state: State) -> Response[bytes]:
    """Prometheus text: requests, latencies, appends, projection positions and lag."""
    return Response(services(state).metrics.render(), media_type=CONTENT_TYPE)


@routes.add(
    post,
    "/admin/backfill",
    media_type="application/json",
    request_max_body_size=BACKFILL_MAX_BYTES,
    status_code=200,
    opt={
        "scope": "admin",
        "body": "ndjson",
        "returns": schemas.BackfillReport,
        "errors": (400, 401, 403, 413, 415, 422, 503),
    },
)
async def backfill(
    request: Request[Any, Any, Any],
    state: State,
    dry_run: FromQuery[bool] = False,
    atomic: FromQuery[bool] = False,
) -> Response[bytes]:
    """Import NDJSON lines, streamed, as sent or gzipped (`Content-Encoding: gzip`); each
    bad line is reported, the rest go on (`atomic`: all or nothing; `dry_run`: check
    only)."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in NDJSON_TYPES:
        raise HttpProblem(415, "send NDJSON as application/x-ndjson", field="content-type")
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise HttpProblem(
            415, "send the NDJSON as it is or gzipped (gzip)", field="content-encoding"
        )
    s = services(state)
    author = Author(writer=str(request.state.writer), batch_id=new_batch_id())
    limit = min(s.settings.backfill_max_bytes, BACKFILL_MAX_BYTES)
    inflate = Gunzip() if encoding != "identity" else None
    # Spooled to disk past a few MB, so a large import does not sit in memory twice.
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        async for chunk in request.stream():
            for piece in [chunk] if inflate is None else inflate.feed(chunk):
                spool.write(piece)
                if spool.tell() > limit:
                    raise HttpProblem(
                        413,
                        f"the NDJSON is larger than {limit} bytes"
                        + ("" if inflate is None else " once decompressed"),
                        field="body",
                    )
        if inflate is not None:
            inflate.close()
        spool.seek(0)
        lines = ((n, raw) for n, raw in enumerate(spool, start=1) if raw.strip())
        report = await anyio.to_thread.run_sync(
            functools.partial(load, s.timeline, lines, author, atomic=atomic, dry_run=dry_run)
        )
    out = schemas.BackfillReport(
        accepted=report.accepted,
        duplicates=report.duplicates,
        rejected=[
            schemas.BackfillRejected(line=r.line, key=r.key, error=r.error) for r in report.rejected
        ],
        first_position=report.first_position,
        last_position=report.last_position,
        elapsed=round(report.elapsed, 3),
        rate=round(report.rate, 1),
        batch_id=report.batch_id,
        rejected_omitted=report.omitted,
    )
    return Response(
        msgspec.json.encode(out),
        media_type="application/json",
        headers={"X-Timeline-Position": str(report.last_position or 0)},
    )


class Gunzip:
    """A gzip body inflated a piece at a time, so that a small body that inflates to a
    great deal (a gzip bomb) is stopped at the limit, not held in memory; one gzip member
    or several (as `cat a.gz b.gz` makes)."""

    PIECE = 1 << 16

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)
        self._inside = False  # a member has begun and not ended

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                self._inside = self._inside or bool(data)
                piece = self._inflate.decompress(data, self.PIECE)
                if piece:
                    yield piece
                if self._inflate.eof:  # a member ends; another may follow
                    self._inside = False
                    data = self._inflate.unused_data
                    self._inflate = zlib.decompressobj(wbits=31)
                    if not data:
                        return
                    continue
                data = self._inflate.unconsumed_tail
                if not data and len(piece) < self.PIECE:  # else more may be pending
                    return
        except zlib.error as e:
            raise HttpProblem(400, f"the body is not valid gzip: {e}", field="body") from None

    def close(self) -> None:
        """The body has ended: it must not end inside a member."""
        if self._inside:
            raise HttpProblem(400, "the gzip body ends before its member does", field="body")
