"""An OpenAPI 3.1 document that tells the truth, and a docs page that needs no internet.

Litestar gives the paths and parameters; the request and response schemas come from the
msgspec Structs themselves (so `forbid_unknown_fields` shows as
`additionalProperties: false` and limits are kept), every error is documented as
`application/problem+json`, and security follows each route's scope.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar, MediaType, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler

from service import schemas
from service.problems import PROBLEM_JSON, TITLES
from service.routing import Routes

routes = Routes()

_PARAM = re.compile(r"\{(\w+):\w+\}")


def _structs() -> list[type[Any]]:
    return [
        v
        for v in vars(schemas).values()
        if isinstance(v, type) and issubclass(v, msgspec.Struct) and v is not schemas.Body
    ]


def build(app: Litestar) -> dict[str, Any]:
    doc = app.openapi_schema.to_schema()
    _, components = msgspec.json.schema_components(
        _structs(), ref_template="#/components/schemas/{name}"
    )
    doc["components"] = {
        "schemas": components,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "an API key: read < write < admin",
            }
        },
    }
    paths: dict[str, Any] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            path = _PARAM.sub(r"{\1}", route.path)
            item = doc["paths"].get(path)
            if item is None:
                continue
            # Every GET also answers HEAD, without a body (RFC 9110 says a GET implies
            # it): the document lists the GET only.
            item.pop("head", None)
            for method in handler.http_methods - {"HEAD"}:
                op = item.get(method.lower())
                if op is not None:
                    _operation(op, handler)
            paths[path] = item
    doc["paths"] = paths
    return doc


def _ref(cls: type[Any]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def _operation(op: dict[str, Any], handler: HTTPRouteHandler) -> None:
    opt = handler.opt
    body = opt.get("body")
    if body == "ndjson":
        op["requestBody"] = {
            "required": True,
            "description": "NDJSON as it is, or gzipped with `Content-Encoding: gzip`",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one JSON object a line"}
                }
            },
        }
    elif body is not None:
        op["requestBody"] = {
            "required": True,
            "description": "NDJSON as it is, or gzipped with `Content-Encoding: gzip`",
            "content": {"application/json": {"schema": _ref(body)}},
        }
    success = str(handler.status_code)
    returns = opt.get("returns")
    responses: dict[str, Any] = {}
    if opt.get("sse"):
        responses["200"] = {
            "description": "Server-Sent Events, one domain event each: `id` its position, "
            "`event` its type, `data` the Event as JSON",
            "content": {"text/event-stream": {"schema": SSE_EVENT, "itemSchema": SSE_EVENT}},
        }
    elif handler.media_type.startswith("text/plain"):
        responses["200"] = {
            "description": "Prometheus text format",
            "content": {handler.media_type: {"schema": {"type": "string"}}},
        }
    elif returns is not None:
        content = {"application/json": {"schema": _ref(returns)}}
        responses[success] = {"description": "OK", "content": content}
        if opt.get("position", True):
            responses[success]["headers"] = _position_header()
        if success == "201":
            responses["200"] = {"description": "a duplicate: already stored", "content": content}
        if "GET" in handler.http_methods and opt.get("scope") == "read":
            responses[success]["headers"] = {**_position_header(), **_cache_headers()}
            responses["304"] = {
                "description": "not modified: If-None-Match names this answer's ETag",
                "headers": {**_position_header(), **_cache_headers()},
            }
    scope = opt.get("scope")
    errors = set(opt.get("errors", ()))
    if scope in ("write", "admin") or scope == "read":
        errors |= {401, 403}
    errors |= {500}
    if handler.http_methods & {"POST"}:
        errors |= {405}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": _ref(schemas.Problem)}},
        }
    op["responses"] = responses
    if scope is not None:
        op["security"] = [{"bearer": []}] if scope != "read" else [{"bearer": []}, {}]


SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/Event"},
        },
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


def _position_header() -> dict[str, Any]:
    return {
        "X-Timeline-Position": {
            "description": "the position the answer reflects",
            "schema": {"type": "integer"},
        }
    }


def _cache_headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": "a weak tag of the answer's body; a record's: its version",
            "schema": {"type": "string"},
        },
        "Cache-Control": {
            "description": "immutable for a year when the answer is as of a fixed point "
            "of the log, otherwise no-cache (docs/http.md)",
            "schema": {"type": "string"},
        },
    }


@routes.add(get, "/schema/openapi.json", include_in_schema=False, media_type=MediaType.JSON)
async def openapi_json(state: State) -> dict[str, Any]:
    return state.openapi  # type: ignore[no-any-return]


@routes.add(get, "/schema", include_in_schema=False, media_type=MediaType.HTML)
async def docs() -> str:
    return DOCS_PAGE


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Geopolitical Timeline API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600}.get{color:#05a}.post{color:#080}
code,pre{font:13px ui-monospace,monospace;background:#f6f6f6}pre{padding:.5rem;overflow:auto}
summary{cursor:pointer}small{color:#666}
</style></head><body>
<h1>Geopolitical Timeline API</h1>
<p>Machine-readable: <a href="/schema/openapi.json">/schema/openapi.json</a> (OpenAPI 3.1).
Errors are <code>application/problem+json</code>. This page loads nothing from the internet.</p>
<div id="ops">Loading…</div>
<script>
fetch('/schema/openapi.json').then(r => r.json()).then(doc => {
  const out = document.getElementById('ops'); out.textContent = '';
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const d = document.createElement('details'); d.className = 'op';
      const s = document.createElement('summary');
      s.innerHTML = `<span class="m ${method}">${method.toUpperCase()}</span>` +
        '<code></code> <small></small>';
      s.querySelector('code').textContent = path;
      s.querySelector('small').textContent = op.summary || '';
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
        responses: Object.keys(op.responses || {}), security: op.security}, null, 2);
      d.append(s, pre); out.append(d);
    }
  }
});
</script></body></html>
"""
