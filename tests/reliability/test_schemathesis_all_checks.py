"""Schemathesis with every check it has (the Python API's `--checks all`) over every
operation of /schema/openapi.json: 0 failures.

Each operation is fuzzed in-process with schema-valid, then schema-invalid inputs, with a
write key (admin for /admin/*). The checks are all of schemathesis's registered checks:
no server error, status code, content type, response headers and response schema
conformance, negative data rejected, positive data accepted, missing required header,
unsupported method, Allow header conformance, use after free, resource availability,
ignored auth and object-level authorization.

Two settings say what the README says and the schema cannot:
- a `503` with `Retry-After` naming `min_position` is the documented answer of a read
  asked to wait for a position its read model has not reached; any other 5xx
  fails (`no_server_error` of test_http_schemathesis.py stands in for
  `not_a_server_error`);
- schema-valid input may still break a rule the schema cannot express (valid JSON that
  breaks a rule: an unknown actor or topic, a key used for other content, a
  retracted record, `as_of` with `as_of_position`, a cursor the service never gave), so
  `positive_data_acceptance` also expects 400, 409, 410, 412, 422 and that 503.

`make test` runs a few examples per operation and mode; the `chaos` run a few hundred
(TIMELINE_CHAOS=1).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import CHECKS, load_all_checks, not_a_server_error
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.python.asgi import ASGIClient, shutdown_lifespans
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.reliability.conftest import Figures
from tests.service.conftest import NDJSON, Api, Apps, operations
from tests.service.test_http_schemathesis import STREAM, no_server_error

SMALL, LARGE = 8, 100  # examples per operation and generation mode (valid, invalid)
POSITIVE_ALSO = ["400", "409", "410", "412", "422", "503"]


def all_checks() -> list[Callable[..., Any]]:
    """Every check schemathesis has (not ones registered by tests)."""
    load_all_checks()
    built_in = [c for c in CHECKS.get_all() if c.__module__.startswith("schemathesis.")]
    assert len(built_in) >= 14 and not_a_server_error in built_in
    return [*(c for c in built_in if c is not not_a_server_error), no_server_error]


def backfill_stores_nothing_invalid(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """negative_data_rejection's stand-in for /admin/backfill. Its body is NDJSON text
    (documented as a string), so a "schema-violating" body is still text; the answer to
    any NDJSON is a 200 report that rejects each bad line (docs/backfill.md). An invalid
    request must therefore be a 4xx, or a report that stored nothing."""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return None
    if response.status_code >= 400:
        return None
    report = json.loads(response.content)
    if report["accepted"] or report["duplicates"] or report["last_position"] is not None:
        raise AssertionError(f"an invalid backfill was stored: {report}")
    return None


def without_lifespan(app: Any) -> Any:
    """The app, refusing the lifespan scope before reading any message: an ASGI server
    then serves it without running its startup and shutdown."""

    async def shim(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("the lifespan runs in the test client")
        await app(scope, receive, send)

    return shim


class Fuzzer:
    def __init__(self, api: Api) -> None:
        self.api = api
        document = api.client.get("/schema/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(document)
        # Checks that send probes of their own (ignored_auth) reach the app through
        # `schema.app`; schemathesis would run its lifespan a second time (projections
        # started twice, never stopped): the app's lifespan is the TestClient's.
        self.schema.app = without_lifespan(api.app)
        config = self.schema.config.checks
        config.update(included_check_names=["all"])
        config.positive_data_acceptance = PositiveDataAcceptanceConfig(
            expected_statuses=[*PositiveDataAcceptanceConfig().expected_statuses, *POSITIVE_ALSO]
        )
        app: Any = api.app
        self.client = ASGIClient(app)
        self.checks = all_checks()

    def run(self, method: str, template: str, examples: int) -> tuple[list[str], Counter[str]]:
        path = template.replace(":str}", "}").replace(":uuid}", "}").replace(":path}", "}")
        operation = self.schema[path][method]
        headers = self.api.auth("admin" if template.startswith("/admin/") else "write")
        extra: dict[str, Any] = {"timeout": 0.3} if (method, template) == STREAM else {}
        checks = self.checks
        if template == "/admin/backfill":
            checks = [c for c in checks if c is not negative_data_rejection]
            checks.append(backfill_stores_nothing_invalid)
        failures: list[str] = []
        counts = Counter[str]()

        def fuzzing(mode: GenerationMode) -> Callable[[], None]:
            @given(data=st.data())
            @settings(
                max_examples=examples,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(data: st.DataObject) -> None:
                case = data.draw(operation.as_strategy(generation_mode=mode))
                counts[f"{mode.value}_examples"] += 1
                try:
                    response = case.call_and_validate(
                        session=self.client, headers=headers, checks=checks, **extra
                    )
                    status = response.status_code
                    if status == 503 and response.headers.get("retry-after"):
                        counts["documented_503"] += 1  # waited for a position (see above)
                    else:
                        counts[f"status_{status // 100}xx"] += 1
                except (Exception, BaseExceptionGroup) as e:  # collect all, shrink none
                    found = e.exceptions if isinstance(e, BaseExceptionGroup) else [e]
                    failures.extend(f"{mode.value}: {case.as_curl_command()}: {f}" for f in found)

            return fuzz

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzzing(mode)()
            except Unsatisfiable:
                # Nothing to make invalid: no parameter, no body.
                assert mode == GenerationMode.NEGATIVE
                assert not (operation.path_parameters or operation.query or operation.body)
        return failures, counts


@pytest.fixture(scope="module")
def fuzzer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzer]:
    # /admin/backfill takes NDJSON: its documented schema is a string, sent as text.
    schemathesis.serializer.alias(NDJSON, "text/plain")
    apps = Apps(tmp_path_factory.mktemp("fuzz-all"), request)
    try:
        yield Fuzzer(apps("sqlite", wait_timeout=0.05))
    finally:
        shutdown_lifespans()  # closes what schemathesis opened for the probes
        apps.close()


def fuzz_every_operation(fuzzer: Fuzzer, examples: int, figures: Figures) -> None:
    started = time.monotonic()
    failures: list[str] = []
    totals = Counter[str]()
    for method, template in operations():
        found, counts = fuzzer.run(method, template, examples)
        failures += [f"{method} {template}: {f}" for f in found]
        totals.update(counts)
    figures(
        operations=len(operations()),
        checks=len(fuzzer.checks),
        examples_per_operation_and_mode=examples,
        **dict(sorted(totals.items())),
        failures=len(failures),
        seconds=round(time.monotonic() - started, 1),
    )
    assert failures == [], "\n\n".join(failures[:15]) + f"\n\n({len(failures)} in all)"


def test_every_operation_passes_every_schemathesis_check(fuzzer: Fuzzer, figures: Figures) -> None:
    fuzz_every_operation(fuzzer, SMALL, figures)


@pytest.mark.chaos
def test_every_operation_passes_every_schemathesis_check_hundreds_of_times(
    fuzzer: Fuzzer, figures: Figures
) -> None:
    fuzz_every_operation(fuzzer, LARGE, figures)
