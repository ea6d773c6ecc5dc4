"""CORS: none at all unless TIMELINE_CORS_ORIGINS names origins; then those origins'
scripts may read and write, and nobody else's."""

from __future__ import annotations

import gc
import warnings

import pytest
from typer.testing import CliRunner

from service import cli
from service.settings import Settings, parse_origins
from tests.service.conftest import ApiFactory, statement, unique

SITE = "https://analyst.example.org"
PREFLIGHT = {
    "Origin": SITE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, if-match",
}


def _names(value: str) -> set[str]:
    return {v.strip().lower() for v in value.split(",") if v.strip()}


def test_without_configured_origins_no_answer_carries_a_cors_header(
    api_factory: ApiFactory,
) -> None:
    api = api_factory("memory", seed=False)
    answers = [
        api.client.get("/timeline", headers={"Origin": SITE}),
        api.client.options("/timeline", headers=PREFLIGHT),
        api.client.post("/statements", json={}, headers={"Origin": SITE}),
    ]
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
        assert "origin" not in _names(answer.headers.get("vary", ""))


def test_a_configured_origin_may_read_write_and_see_the_headers_it_needs(
    api_factory: ApiFactory,
) -> None:
    api = api_factory("memory", cors_origins=(SITE, "http://localhost:3000"))
    # The preflight of a conditional write: allowed, for ten minutes.
    preflight = api.client.options("/statements", headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SITE
    assert _names(preflight.headers["access-control-allow-methods"]) == {"get", "head", "post"}
    allowed = _names(preflight.headers["access-control-allow-headers"])
    assert {"authorization", "content-type", "if-match", "if-none-match"} <= allowed
    assert preflight.headers["access-control-max-age"] == "600"
    assert "origin" in _names(preflight.headers["vary"])
    # The write itself: its answer readable, with its ETag and position.
    written = api.post("/statements", statement(quote=unique()), headers={"Origin": SITE})
    assert written.status_code == 201, written.text
    assert written.headers["access-control-allow-origin"] == SITE
    exposed = _names(written.headers["access-control-expose-headers"])
    assert exposed == {"etag", "x-timeline-position", "retry-after"}
    # A read, gzipped: it varies on both the origin and the encoding.
    read = api.read(
        "/timeline", {"limit": 500}, headers={"Origin": SITE, "Accept-Encoding": "gzip"}
    )
    assert read.headers["content-encoding"] == "gzip"
    assert read.headers["access-control-allow-origin"] == SITE
    assert {"origin", "accept-encoding"} <= _names(read.headers["vary"])
    # A 304 too, and a problem: a script can read both.
    again = api.read(
        "/timeline", {"limit": 500}, headers={"Origin": SITE, "If-None-Match": read.headers["etag"]}
    )
    assert (again.status_code, again.headers["access-control-allow-origin"]) == (304, SITE)
    problem = api.client.get("/topics/no-such-topic", headers={"Origin": SITE})
    assert (problem.status_code, problem.headers["access-control-allow-origin"]) == (404, SITE)
    # The other configured origin is allowed as itself.
    local = api.client.get("/health", headers={"Origin": "http://localhost:3000"})
    assert local.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_another_origin_gets_no_cors_headers_and_its_preflight_is_not_approved(
    api_factory: ApiFactory,
) -> None:
    api = api_factory("memory", seed=False, cors_origins=(SITE,))
    for origin in ("https://evil.example", "https://analyst.example.org.evil.example", "null"):
        preflight = api.client.options("/statements", headers={**PREFLIGHT, "Origin": origin})
        assert "access-control-allow-origin" not in preflight.headers, origin
        read = api.client.get("/timeline", headers={"Origin": origin})
        assert read.status_code == 200
        assert "access-control-allow-origin" not in read.headers, origin
        # A cache must not hand this answer to the allowed origin, nor the other way.
        assert "origin" in _names(read.headers["vary"])
    # Without an Origin (not a browser's cross-origin call): no CORS headers, but Vary.
    plain = api.client.get("/timeline")
    assert "access-control-allow-origin" not in plain.headers
    assert "origin" in _names(plain.headers["vary"])


def test_a_preflight_needs_no_key_where_reads_do(api_factory: ApiFactory) -> None:
    # A browser sends no Authorization with a preflight: it must not meet a 401.
    api = api_factory("memory", seed=False, cors_origins=(SITE,), read_requires_key=True)
    preflight = api.client.options("/timeline", headers=PREFLIGHT)
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (204, SITE)
    refused = api.client.get("/timeline", headers={"Origin": SITE})
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, SITE)


def test_any_origin_with_a_star(api_factory: ApiFactory) -> None:
    api = api_factory("memory", seed=False, cors_origins=("*",))
    read = api.client.get("/timeline", headers={"Origin": "https://anyone.example"})
    assert read.headers["access-control-allow-origin"] == "*"
    preflight = api.client.options("/timeline", headers=PREFLIGHT)
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_the_setting_reads_comma_separated_origins_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIMELINE_CORS_ORIGINS", " https://A.example.org/, http://localhost:3000 ")
    assert Settings().cors_origins == ("https://a.example.org", "http://localhost:3000")
    monkeypatch.delenv("TIMELINE_CORS_ORIGINS")
    assert Settings().cors_origins == ()
    assert parse_origins("http://[::1]:8080,*") == ("http://[::1]:8080", "*")
    for bad in ("example.org", "https://example.org/path", "ftp://example.org", "https://"):
        with pytest.raises(ValueError, match="TIMELINE_CORS_ORIGINS"):
            parse_origins(f"https://ok.example, {bad}")


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_refuse_a_bad_origin_before_they_start(command: str) -> None:
    env = {"TIMELINE_CORS_ORIGINS": "example.org", "TIMELINE_DATABASE_URL": "memory://"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli.app, [command, "--port", "1"], env=env)
        assert result.exit_code == 2, result.output
        assert "TIMELINE_CORS_ORIGINS: 'example.org' is not an origin" in result.output
        del result
        gc.collect()
    # Refused before it listens: no socket is left open behind it.
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
