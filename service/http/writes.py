"""Write endpoints: thin handlers that decode strictly, call one use case, answer `Written`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, RawBody

from domain.application import Timeline
from domain.errors import StaleVersion
from domain.records import KINDS
from domain.usecases import UseCases, Written, reapplied, recorded_at
from domain.writers import Author, writing_as
from projections.rows import utc_text
from service.http import schemas
from service.http.context import services
from service.http.problems import HttpProblem, convert, decode
from service.http.routing import PLURAL, Routes

WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)


def _writing(request: Request[Any, Any, Any]) -> AbstractContextManager[Author]:
    """The events of this request's write carry its API key's name as their writer."""
    return writing_as(Author(writer=str(request.state.writer)))


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "<version>"` makes a write conditional, on one version (a record read's
    `ETag`, `"<version>.<digest>"`, names its version the same way): a list of them
    (which RFC 9110 allows, to match any) is a 400, since a change is made to the version
    its client read. If-Match compares strongly, so a weak tag (`W/"3"`) never matches:
    a 412, whatever the version."""
    headers = request.headers.getall("if-match", [])
    if not headers or (len(headers) == 1 and headers[0].strip() == "*"):
        return None
    if len(headers) > 1 or "," in headers[0]:
        raise HttpProblem(400, 'If-Match takes one version, like "3", not a list', field="if-match")
    value = headers[0].strip()
    if value.startswith("W/"):
        raise HttpProblem(
            412,
            'If-Match compares strongly: a weak tag (W/) never matches; send the ETag, like "3"',
            field="if-match",
        )
    value = value.strip('"').split(".", 1)[0]
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # not a superscript two
        raise HttpProblem(400, 'If-Match takes a version in quotes, like "3"', field="if-match")
    return int(value)


def change(
    expected: int | None, use: Callable[[int | None], Written], current: Callable[[], int]
) -> Written:
    """Run one change of an existing actor, topic or record.

    Unconditional (no `If-Match`): a change that loses a race to another writer reloads
    and is applied again, since its caller asked for no particular version. Conditional:
    exactly one of the writers that expected version N wins; every other one — whether it
    collided with the winner in the store or arrived after it — is a `409` with the
    current version as `ETag` (a lost race is a conflict). `If-Match` naming a
    version the aggregate has not reached yet is a `412`.
    """

    def lost() -> None:
        # Lost to a writer of this aggregate: a conditional write is a 409. (A move of a
        # topic may lose to a move of another topic, on the tree: then again.)
        if expected is not None and (now := current()) != expected:
            raise _lost(expected, now)

    try:
        return reapplied(lambda: use(expected), lost)
    except StaleVersion as e:
        if expected is not None and e.current > expected:
            raise _lost(expected, e.current) from None
        raise


def all_or_nothing(timeline: Timeline, steps: Callable[[UseCases], Written]) -> Written:
    """A change made of several use cases (relabel and move a topic; tag and untag a
    record), run in one unit of work and stored in one transaction: if a later step is
    refused, nothing is stored."""
    unit = timeline.unit()
    written = steps(unit)
    if not unit.commit():  # every step found it already so
        return replace(written, position=timeline.head_position(), duplicate=True)
    last = unit.recordings[-1]
    return replace(
        written,
        position=last.notification.id,
        recorded_at=recorded_at(last.domain_event),
        duplicate=False,
    )


def _lost(expected: int, now: int) -> HttpProblem:
    return HttpProblem(
        409,
        f"another writer changed this first: you expected version {expected}, it is at "
        f"{now}; read it again and retry",
        field="if-match",
        headers={"ETag": f'"{now}"'},
    )


def answer(
    request: Request[Any, Any, Any], written: Written, kind: str, created: bool
) -> Response[Any]:
    metrics = services(request.app.state).metrics
    (metrics.duplicates if written.duplicate else metrics.appends).labels(kind).inc()
    body = schemas.Written(
        id=written.ref,
        version=written.version,
        position=written.position,
        recorded_at=utc_text(written.recorded_at),
        duplicate=written.duplicate,
    )
    status = 201 if created and not written.duplicate else 200
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers={"ETag": f'"{written.version}"', "X-Timeline-Position": str(written.position)},
    )


routes = Routes()


def _route(
    path: str, scope: str, body: type[Any], status: int = 200, **opt: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return routes.add(
        post,
        path,
        sync_to_thread=True,
        status_code=status,
        media_type="application/json",
        opt={
            "scope": scope,
            "body": body,
            "returns": schemas.Written,
            "errors": WRITE_ERRORS,
            **opt,
        },
    )


@_route("/actors", "write", schemas.ActorIn, 201)
def register_actor(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.ActorIn)
    with _writing(request):
        written = services(state).timeline.register_actor(schemas.to_builtins(data))
    return answer(request, written, "actor", created=True)


@_route("/actors/{id:str}/aliases", "write", schemas.AliasIn)
def add_alias(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.AliasIn)
    timeline = services(state).timeline
    with _writing(request):
        written = change(
            expected_version(request),
            lambda v: timeline.add_alias(id, data.alias, v),
            lambda: timeline.get_actor(id).version,
        )
    return answer(request, written, "actor", created=False)


@_route("/actors/{id:str}/roles", "write", schemas.Role)
def assume_role(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.Role)
    timeline = services(state).timeline
    with _writing(request):
        written = change(
            expected_version(request),
            lambda v: timeline.assume_role(id, schemas.to_builtins(data), v),
            lambda: timeline.get_actor(id).version,
        )
    return answer(request, written, "actor", created=False)


@_route("/actors/{id:str}/roles/end", "write", schemas.RoleEndIn)
def end_role(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.RoleEndIn)
    timeline = services(state).timeline
    with _writing(request):
        written = change(
            expected_version(request),
            lambda v: timeline.end_role(id, data.title, data.until, v),
            lambda: timeline.get_actor(id).version,
        )
    return answer(request, written, "actor", created=False)


@_route("/topics", "write", schemas.TopicIn, 201)
def define_topic(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.TopicIn)
    with _writing(request):
        written = services(state).timeline.define_topic(schemas.to_builtins(data))
    return answer(request, written, "topic", created=True)


@_route("/topics/{id:str}/changes", "write", schemas.TopicChangeIn)
def change_topic(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    """Relabel a topic, or move it under another parent (never below itself)."""
    raw = decode(body, request.headers.get("content-type"), dict[str, Any])
    data = convert(raw, schemas.TopicChangeIn, "")
    if not raw:
        raise HttpProblem(422, "give a label, a parent, or both", field="label")
    timeline, version = services(state).timeline, expected_version(request)

    def steps(unit: UseCases, version: int | None) -> Written:
        written = None
        if "label" in raw:
            written = unit.relabel_topic(id, data.label, version)
            version = None if version is None else written.version
        if "parent" in raw:
            written = unit.move_topic(id, data.parent, version)
        assert written is not None
        return written

    with _writing(request):
        written = change(
            version,
            lambda v: all_or_nothing(timeline, lambda unit: steps(unit, v)),
            lambda: timeline.get_topic(id).version,
        )
    return answer(request, written, "topic", created=False)


def _record_routes(kind: str) -> None:
    base = f"/{PLURAL[kind]}"
    model = schemas.RECORD_BODIES[kind]

    def create(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
        data = decode(body, request.headers.get("content-type"), model)
        with _writing(request):
            written = services(state).timeline.record(kind, schemas.to_builtins(data))
        return answer(request, written, kind, created=True)

    def changes(
        use: Callable[..., Written], model: type[Any], args: Callable[[Any], tuple[Any, ...]]
    ) -> Any:
        def handler(
            request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[UUID]
        ) -> Response[bytes]:
            data = decode(body, request.headers.get("content-type"), model)
            timeline, given = services(state).timeline, args(data)
            with _writing(request):
                written = change(
                    expected_version(request),
                    lambda v: use(timeline, kind, id, *given, v),
                    lambda: timeline.get_record(kind, id).version,
                )
            return answer(request, written, kind, created=False)

        return handler

    def correct(data: schemas.CorrectionIn) -> tuple[Any, ...]:
        # Check each named field's type strictly, keeping explicit nulls (removals); the
        # domain takes plain values (sources as dicts, not Structs).
        typed = convert(data.changes, schemas.Changes, "changes")
        return ({k: msgspec.to_builtins(getattr(typed, k)) for k in data.changes}, data.reason)

    def tags(
        timeline: Timeline, kind: str, id: UUID, data: schemas.TagsIn, version: int | None
    ) -> Written:
        if not data.add and not data.remove:
            raise HttpProblem(422, "give topics to add or remove", field="add")

        def steps(unit: UseCases, version: int | None) -> Written:
            written = None
            if data.add:
                written = unit.tag(kind, id, data.add, version)
                version = None if version is None else written.version
            if data.remove:
                written = unit.untag(kind, id, data.remove, version)
            assert written is not None
            return written

        return all_or_nothing(timeline, lambda unit: steps(unit, version))

    # Registered for each kind; `routes.handlers()` makes the handler objects.
    _route(base, "write", model, 201, kind=kind)(create)
    _route(f"{base}/{{id:uuid}}/corrections", "write", schemas.CorrectionIn, kind=kind)(
        changes(Timeline.correct, schemas.CorrectionIn, correct)
    )
    _route(f"{base}/{{id:uuid}}/retraction", "write", schemas.RetractionIn, kind=kind)(
        changes(Timeline.retract, schemas.RetractionIn, lambda d: (d.reason,))
    )
    _route(f"{base}/{{id:uuid}}/sources", "write", schemas.SourceIn, kind=kind)(
        changes(Timeline.add_source, schemas.SourceIn, lambda d: (schemas.to_builtins(d.source),))
    )
    _route(f"{base}/{{id:uuid}}/tags", "write", schemas.TagsIn, kind=kind)(
        changes(lambda t, k, i, d, v: tags(t, k, i, d, v), schemas.TagsIn, lambda d: (d,))
    )


for _kind in KINDS:
    _record_routes(_kind)
