"""`POST /drafts`: an article's draft statements, for a person to review; nothing is
stored (accepted drafts are recorded through the record endpoints)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import RawBody

from drafting.text import TextRefused
from service.files.drafts import draft, published, source
from service.http import schemas
from service.http.context import services
from service.http.problems import HttpProblem, decode
from service.http.routing import Routes

routes = Routes()


@routes.add(
    post,
    "/drafts",
    sync_to_thread=True,
    status_code=200,
    media_type="application/json",
    opt={
        "scope": "write",
        "body": schemas.DraftsIn,
        "returns": schemas.Drafts,
        "errors": (400, 401, 403, 413, 415, 422, 503),
    },
)
def drafts(request: Request[Any, Any, Any], body: RawBody, state: State) -> Response[bytes]:
    data = decode(body, request.headers.get("content-type"), schemas.DraftsIn)
    if (data.text is None) == (data.html is None):
        raise HttpProblem(422, "give the article as text or as html, one of the two", field="text")
    field, article = ("text", data.text) if data.text is not None else ("html", data.html)
    assert article is not None
    cite = source(article, published(data.published_at), data.url, data.publisher, data.title)
    try:
        found = draft(services(state).models.view(), article, cite, html=field == "html")
    except TextRefused as e:
        raise HttpProblem(422, str(e), field=field) from None
    answer = msgspec.convert({"text": found.text, "drafts": found.lines}, schemas.Drafts)
    return Response(msgspec.json.encode(answer), media_type="application/json")
