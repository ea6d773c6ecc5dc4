"""Write endpoints: thin handlers that decode strictly, call one use case, answer `Written`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, RawBody

from domain.application import Author, Timeline, Written
from domain.records import KINDS
from projections.rows import utc_text
from service import schemas
from service.context import services
from service.problems import HttpProblem, convert, decode
from service.routing import Routes

PLURAL = {kind: f"{kind}s" for kind in KINDS}
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)


def _author(request: Request[Any, Any, Any]) -> Author:
    return Author(writer=str(request.state.writer))


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "<version>"` makes a write conditional."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        raise HttpProblem(400, 'If-Match takes a version in quotes, like "3"', field="if-match")
    return int(value)


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
    written = services(state).timeline.register_actor(schemas.to_builtins(data), _author(request))
    return answer(request, written, "actor", created=True)


@_route("/actors/{id:str}/aliases", "write", schemas.AliasIn)
def add_alias(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.AliasIn)
    written = services(state).timeline.add_alias(
        id, data.alias, _author(request), expected_version(request)
    )
    return answer(request, written, "actor", created=False)


@_route("/actors/{id:str}/roles", "write", schemas.Role)
def assume_role(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.Role)
    written = services(state).timeline.assume_role(
        id, schemas.to_builtins(data), _author(request), expected_version(request)
    )
    return answer(request, written, "actor", created=False)


@_route("/actors/{id:str}/roles/end", "write", schemas.RoleEndIn)
def end_role(
    request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[str]
) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.RoleEndIn)
    written = services(state).timeline.end_role(
        id, data.title, data.until, _author(request), expected_version(request)
    )
    return answer(request, written, "actor", created=False)


@_route("/topics", "write", schemas.TopicIn, 201)
def define_topic(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.TopicIn)
    written = services(state).timeline.define_topic(schemas.to_builtins(data), _author(request))
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
    timeline, author, version = (
        services(state).timeline,
        _author(request),
        expected_version(request),
    )
    written = None
    if "label" in raw:
        written = timeline.relabel_topic(id, data.label, author, version)
        version = None if version is None else written.version
    if "parent" in raw:
        written = timeline.move_topic(id, data.parent, author, version)
    assert written is not None
    return answer(request, written, "topic", created=False)


def _record_routes(kind: str) -> None:
    base = f"/{PLURAL[kind]}"
    model = schemas.RECORD_BODIES[kind]

    def create(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
        data = decode(body, request.headers.get("content-type"), model)
        written = services(state).timeline.record(kind, schemas.to_builtins(data), _author(request))
        return answer(request, written, kind, created=True)

    def change(
        use: Callable[..., Written], model: type[Any], args: Callable[[Any], tuple[Any, ...]]
    ) -> Any:
        def handler(
            request: Request[Any, Any, Any], body: RawBody, state: State, id: FromPath[UUID]
        ) -> Response[bytes]:
            data = decode(body, request.headers.get("content-type"), model)
            written = use(
                services(state).timeline,
                kind,
                id,
                *args(data),
                _author(request),
                expected_version(request),
            )
            return answer(request, written, kind, created=False)

        return handler

    def correct(data: schemas.CorrectionIn) -> tuple[Any, ...]:
        # Check each named field's type strictly, keeping explicit nulls (removals).
        typed = convert(data.changes, schemas.Changes, "changes")
        return ({k: getattr(typed, k) for k in data.changes}, data.reason)

    def tags(
        timeline: Timeline,
        kind: str,
        id: UUID,
        data: schemas.TagsIn,
        author: Author,
        version: int | None,
    ) -> Written:
        if not data.add and not data.remove:
            raise HttpProblem(422, "give topics to add or remove", field="add")
        written = None
        if data.add:
            written = timeline.tag(kind, id, data.add, author, version)
            version = None if version is None else written.version
        if data.remove:
            written = timeline.untag(kind, id, data.remove, author, version)
        assert written is not None
        return written

    # Registered for each kind; `routes.handlers()` makes the handler objects.
    _route(base, "write", model, 201, kind=kind)(create)
    _route(f"{base}/{{id:uuid}}/corrections", "write", schemas.CorrectionIn, kind=kind)(
        change(Timeline.correct, schemas.CorrectionIn, correct)
    )
    _route(f"{base}/{{id:uuid}}/retraction", "write", schemas.RetractionIn, kind=kind)(
        change(Timeline.retract, schemas.RetractionIn, lambda d: (d.reason,))
    )
    _route(f"{base}/{{id:uuid}}/sources", "write", schemas.SourceIn, kind=kind)(
        change(Timeline.add_source, schemas.SourceIn, lambda d: (schemas.to_builtins(d.source),))
    )
    _route(f"{base}/{{id:uuid}}/tags", "write", schemas.TagsIn, kind=kind)(
        change(lambda t, k, i, d, a, v: tags(t, k, i, d, a, v), schemas.TagsIn, lambda d: (d,))
    )


for _kind in KINDS:
    _record_routes(_kind)
