"""The analyst's page: one HTML document and its assets, served by the API's own app.

Everything the page loads comes from `service/http/web/` (its libraries vendored there, see
`tools/vendor_assets.py`), so it works with no internet. The page's responses carry a
Content-Security-Policy that allows only the service's own scripts, styles, images and
API: no inline script or style, no other origin, no frames.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from service.http.problems import HttpProblem
from service.http.routing import Routes

WEB = Path(__file__).resolve().parent / "web"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".md": "text/plain"}

routes = Routes()


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _assets() -> dict[str, Asset]:
    """Every file of the page, by its path under /static/, read once."""
    found = {}
    for path in sorted(WEB.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
            tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            found[path.relative_to(WEB).as_posix()] = Asset(body, kind, tag)
    return found


ASSETS = _assets()


def send_asset(request: Request[Any, Any, Any], asset: Asset) -> Response[bytes]:
    headers = {**HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match", "").strip() == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@routes.add(get, "/", include_in_schema=False)
async def page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The page; its state (view, filters, as known on, window) is in its query."""
    return send_asset(request, ASSETS["index.html"])


@routes.add(get, "/static/{path:path}", include_in_schema=False)
async def asset(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
    found = ASSETS.get(path.lstrip("/"))
    if found is None:
        raise HttpProblem(404, "no such file of the page", field="path")
    return send_asset(request, found)
