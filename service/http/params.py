"""Query parameters, read by one rule on every route (docs/errors.md):

- 400 when the request cannot be read: a parameter this route does not take, one given
  twice, or a value not in its parameter's written form (a whole number in ASCII digits,
  a time in one of the forms the parameter takes, a slug, one of a closed set of words,
  a cursor this service gave);
- 422 when a value is in its written form but names nothing real or lies outside its
  range (`2014-13-01`, an offset beyond 14 hours, `limit=0`, a position below 0).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.typing import FieldDefinition

from domain import rules
from domain.errors import InvalidInput, InvalidTime
from domain.when import When
from projections.rows import words
from service.http.problems import HttpProblem

MAX_LIMIT = 500
MAX_SEARCH = 500  # characters of `q`
MAX_POSITION = 2**62  # beyond any position a store will give; larger ints overflow SQLite
INTEGER_PARAMETERS = (
    "limit",
    "after",
    "as_of_position",
    "min_position",
    "from_position",
    "to_position",
)
_INTEGER = re.compile(r"-?[0-9]{1,30}")
# What a handler takes that is not a query parameter: Litestar's own injections.
_INJECTED = frozenset({"state", "request", "data", "headers", "cookies", "scope", "socket"})


async def check_query(request: Request[Any, Any, Any]) -> None:
    """Before any route's parameters are read: each parameter one this route takes,
    given once (Litestar would take one of `topic=a&topic=b` in silence), and the integer
    ones written as ASCII digits (Litestar's lenient conversion reads `limit=1e2` as
    100)."""
    params = request.query_params
    handler = request.route_handler
    # The routes the API's document leaves out take any query: the page (which keeps its
    # state in its URL), its files, the docs. OPTIONS (a CORS preflight among them) names
    # the URL it asks about, query and all.
    if request.method != "OPTIONS" and handler.include_in_schema is not False:
        known = handler.opt.get("query")
        if known is None:
            known = handler.opt["query"] = query_names(handler)
        for name in params:
            if name not in known:
                raise HttpProblem(400, "this route takes no such parameter", field=name)
    for name in params:
        if len(params.getall(name)) > 1:
            raise HttpProblem(400, "give this parameter once", field=name)
    for name in INTEGER_PARAMETERS:
        value = params.get(name)
        if value is not None and not _INTEGER.fullmatch(value):
            raise HttpProblem(400, "must be a whole number written in digits", field=name)


def query_names(handler: HTTPRouteHandler) -> frozenset[str]:
    """The query parameters a route takes: its handler's, and those of its dependencies
    (`at`: the as_of family, `span`: the ends of /changes), by the names a client
    writes (`from`, not `from_`), read from the signatures as Litestar parsed them."""
    dependencies = handler.resolve_dependencies()
    fields: list[tuple[str, FieldDefinition]] = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in dependencies:
            fields += dependencies[name].parsed_fn_signature.parameters.items()
        else:
            fields.append((name, field))
    return frozenset(
        kwarg.name or name if isinstance(kwarg, ParameterKwarg) else name
        for name, field in fields
        for kwarg in [field.kwarg_definition]
        if name not in _INJECTED
        and not isinstance(kwarg, BodyKwarg)
        and (not isinstance(kwarg, ParameterKwarg) or kwarg.param_type is ParamType.QUERY)
    )


def instant(value: str, field: str) -> datetime:
    """An instant with a UTC offset (`as_of`, `from`, `to`)."""
    when = _occurred(value, field)
    if when.precision not in ("minute", "second"):
        raise HttpProblem(
            400, "must be an instant with a UTC offset, like 2025-02-20T00:00:00Z", field=field
        )
    return when.start


def window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The occurred-time window: from the start of `since` to the end of `until`, each a
    year, month, day or instant."""
    start = None if since is None else _occurred(since, "since").start
    end = None if until is None else _occurred(until, "until").end
    return start, end


def _occurred(value: str, field: str) -> When:
    try:
        return rules.occurred(value, field)
    except InvalidTime as e:
        raise HttpProblem(422 if e.impossible else 400, e.message, field=field) from None


def slug(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return rules.slug(value, field)
    except InvalidInput as e:
        raise HttpProblem(400, e.message, field=field) from None


def choice(value: str | None, field: str, allowed: tuple[str, ...]) -> str | None:
    """One of a closed set of words (a `kind`)."""
    if value is not None and value not in allowed:
        raise HttpProblem(400, f"must be one of {', '.join(allowed)}", field=field)
    return value


def position(value: int | None, field: str) -> int | None:
    """A position of the log: from 0; past the head is the caller's to check."""
    if value is not None and not 0 <= value < MAX_POSITION:
        raise HttpProblem(422, f"must be from 0 to {MAX_POSITION - 1}", field=field)
    return value


def limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise HttpProblem(422, f"must be from 1 to {MAX_LIMIT}", field="limit")
    return value


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        if len(cursor) > 200:
            raise ValueError
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise not_a_cursor() from None


def not_a_cursor() -> HttpProblem:
    return HttpProblem(400, "is not a cursor this service gave", field="cursor")


def search(q: str | None) -> str | None:
    """`q` as the read models search it (in normal form C), or a 422 naming it."""
    if q is None:
        return None
    try:
        text = rules.text(q, "q", max_length=MAX_SEARCH)
    except InvalidInput as e:
        raise HttpProblem(422, e.message, field="q") from None
    if not words(text):
        raise HttpProblem(422, "must hold a word to search for (a letter or a digit)", field="q")
    return text
