"""Every error as `application/problem+json` (RFC 9457), mapped in one table.

Domain errors carry the field they are about; body decoding errors name the JSON path;
a database that is away, locked, out of free connections or too slow is a 503 with
`Retry-After`; an unexpected error is a 500 whose body says nothing of the code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from litestar import Request, Response
from litestar.exceptions import HTTPException
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from domain import errors
from service.files.jsonkeys import repeated_key
from service.http.schemas import FieldError, Problem
from service.store.database import StoreUnavailable

log = logging.getLogger("timeline.http")
PROBLEM_JSON = "application/problem+json"
T = TypeVar("T")

STATUS: list[tuple[type[errors.TimelineError], int, str]] = [
    (errors.InvalidInput, 422, "Invalid input"),
    (errors.UnknownReference, 422, "Unknown reference"),
    (errors.RuleViolation, 422, "Rule violated"),
    (errors.NotFound, 404, "Not found"),
    (errors.Conflict, 409, "Conflict"),
    (errors.StaleVersion, 412, "Precondition failed"),
]
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}


class HttpProblem(Exception):
    """An answer other than success, raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})


def problem(
    status: int,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Response[Any]:
    body = Problem(
        title=title or TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        errors=[FieldError(field=field, message=detail)] if field else [],
    )
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def on_domain_error(_: Request[Any, Any, Any], exc: errors.TimelineError) -> Response[Any]:
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            if isinstance(exc, errors.StaleVersion):  # the version If-Match named
                return problem(status, exc.message, "if-match", {"ETag": f'"{exc.current}"'}, title)
            return problem(status, exc.message, exc.field, {}, title)
    return problem(422, exc.message, exc.field)


def on_http_problem(_: Request[Any, Any, Any], exc: HttpProblem) -> Response[Any]:
    return problem(exc.status, exc.detail, exc.field, exc.headers)


def on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else TITLES.get(status, "")
    headers = dict(exc.headers or {})
    extra = exc.extra if isinstance(exc.extra, list) else []
    named = [
        FieldError(field=str(e.get("key", "")), message=str(e.get("message", "")))
        for e in extra
        if isinstance(e, dict)
    ]
    if status == 413:  # Litestar's limit on the body's size
        detail = "the body is larger than this route takes"
        named = [FieldError(field="body", message=detail)]
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail, errors=named)
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


# The database is away, locked, out of free connections or too slow: the library's
# wrappers, psycopg's own errors (the read models' pool), and ours.
UNAVAILABLE: tuple[type[Exception], ...] = (
    StoreUnavailable,
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,  # PoolTimeout, QueryCanceled, LockNotAvailable among them
    psycopg.InterfaceError,
)
_WHY: list[tuple[type[BaseException], str]] = [
    (pg_errors.QueryCanceled, "a query ran longer than the statement timeout"),
    (pg_errors.LockNotAvailable, "another session held a lock it needed too long"),
    (PoolTimeout, "no database connection was free in time"),
]


def unavailable_reason(exc: BaseException) -> str:
    """What kept the store from answering, from the chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        for cls, why in _WHY:
            if isinstance(seen, cls):
                return why
        seen = seen.__cause__ or seen.__context__
    return "the database is unreachable"


def on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    why = unavailable_reason(exc)
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, why)
    return problem(
        503,
        f"the store cannot answer now ({why}); try again shortly",
        headers={"Retry-After": "1"},
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, UNAVAILABLE):
        return on_unavailable(request, exc)
    if isinstance(exc, PersistenceError) and "timeout" in str(exc).lower():
        return on_unavailable(request, exc)
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "an unexpected error; it has been logged")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    errors.TimelineError: on_domain_error,
    HttpProblem: on_http_problem,
    HTTPException: on_http_exception,
    **dict.fromkeys(UNAVAILABLE, on_unavailable),
    Exception: on_unexpected,
}

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def decode(body: bytes, content_type: str | None, cls: type[T]) -> T:
    """Decode a JSON body strictly into `cls`, or raise the right problem."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise HttpProblem(415, "send the body as application/json", field="content-type")
    try:
        decoded = msgspec.json.decode(body, type=cls, strict=True)
    except msgspec.ValidationError as e:
        message = str(e)
        m = _PATH.search(message)
        path = m["path"].lstrip(".") if m else ""
        unknown = _unknown_field(message)
        if unknown is not None:
            path = f"{path}.{unknown}" if path else unknown
        raise HttpProblem(422, _PATH.sub("", message), field=path or "body") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise HttpProblem(400, f"the body is not valid JSON: {e}", field="body") from None
    except RecursionError:
        raise HttpProblem(400, "the body is nested too deeply", field="body") from None
    if (at := repeated_key(body, msgspec.json.decode(body))) is not None:
        raise HttpProblem(
            400, "is given twice in one object: give each key once", field=at or "body"
        )
    return decoded


def convert(obj: Any, cls: type[T], field: str) -> T:
    """Check an already decoded value strictly against `cls`, naming the field."""
    try:
        return msgspec.convert(obj, cls, strict=True)
    except msgspec.ValidationError as e:
        message = str(e)
        m = _PATH.search(message)
        path = m["path"].lstrip(".") if m else ""
        unknown = _unknown_field(message)
        if unknown is not None:
            path = f"{path}.{unknown}" if path else unknown
        full = f"{field}.{path}" if field and path else (path or field or "body")
        raise HttpProblem(422, _PATH.sub("", message), field=full) from None


def _unknown_field(message: str) -> str | None:
    """The field an "unknown field" or "missing required field" message is about."""
    m = re.search(r"(?:unknown|missing required) field `([^`]*)`", message)
    return m[1] if m else None
