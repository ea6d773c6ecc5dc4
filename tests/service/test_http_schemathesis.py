"""Property-based checks of every operation of /schema/openapi.json with schemathesis.

The document the app serves is loaded as it is, and each operation is fuzzed in-process
(valid and invalid inputs, a fixed seed) with a write key (admin for /admin/*). Every
answer must be no 5xx, a documented status, of a documented content type, and match its
documented schema. One test per operation, so that a known bug marks only its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import NDJSON, Api, Apps, operations


@schemathesis.check
def no_server_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """not_a_server_error, but for the documented 503 of a read asked to wait for a
    position its read model has not reached (`min_position`, `as_of_position`)."""
    if response.status_code == 503 and response.headers.get("retry-after"):
        body = json.loads(response.content)
        if [e["field"] for e in body.get("errors", [])] == ["min_position"]:
            return None
    return not_a_server_error(ctx, response, case)


CHECKS: list[Callable[..., Any]] = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25  # per generation mode and operation
STREAM = ("GET", "/events/stream")


class Fuzzed:
    """The app on SQLite, the schema it serves, and a client that reaches it in-process."""

    def __init__(self, api: Api) -> None:
        self.api = api
        document = api.client.get("/schema/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(document)
        self.schema.app = api.app
        # Not entered: the app's lifespan is the TestClient's, not schemathesis's own.
        app: Any = api.app
        self.client = ASGIClient(app)

    def failures(self, method: str, template: str, checks: list[Callable[..., Any]]) -> list[str]:
        """Fuzz one operation with valid, then invalid inputs; every failure found."""
        path = template.replace(":str}", "}").replace(":uuid}", "}").replace(":path}", "}")
        operation = self.schema[path][method]
        headers = self.api.auth("admin" if template.startswith("/admin/") else "write")
        # An event stream never ends: read what it has sent within a moment.
        extra: dict[str, Any] = {"timeout": 0.3} if (method, template) == STREAM else {}
        failures: list[str] = []

        def fuzz(mode: GenerationMode) -> None:
            @given(data=st.data())
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(data: st.DataObject) -> None:
                case = data.draw(operation.as_strategy(generation_mode=mode))
                try:
                    case.call_and_validate(
                        session=self.client, headers=headers, checks=checks, **extra
                    )
                except (Exception, BaseExceptionGroup) as e:  # collect all, shrink none
                    found = e.exceptions if isinstance(e, BaseExceptionGroup) else [e]
                    failures.extend(f"{mode.value}: {case.as_curl_command()}: {f}" for f in found)

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid: no parameter, no body.
                assert mode == GenerationMode.NEGATIVE
                assert not (operation.path_parameters or operation.query or operation.body)

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(mode)
        return failures


@pytest.fixture(scope="module")
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    # /admin/backfill takes NDJSON: its documented schema is a string, sent as text.
    schemathesis.serializer.alias(NDJSON, "text/plain")
    apps = Apps(tmp_path_factory.mktemp("fuzz"), request)
    try:
        yield Fuzzed(apps("sqlite", wait_timeout=0.05))
    finally:
        apps.close()


@pytest.mark.parametrize(("method", "template"), operations())
def test_every_operation_answers_as_its_schema_says(
    fuzzed: Fuzzed, method: str, template: str
) -> None:
    checks = CHECKS
    if (method, template) == STREAM:  # its events' schema: the test below
        checks = [c for c in CHECKS if c is not response_schema_conformance]
    failures = fuzzed.failures(method, template, checks)
    assert not failures, "\n\n".join(failures[:10])


def test_the_event_streams_events_match_their_documented_schema(fuzzed: Fuzzed) -> None:
    failures = fuzzed.failures(*STREAM, [response_schema_conformance])
    assert not failures, "\n\n".join(failures[:3])
