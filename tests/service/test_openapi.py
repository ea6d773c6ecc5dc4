"""The OpenAPI document as a client generator and a person read it: every operation has
a human id, a summary and a description, every parameter a description, every closed
set an enum, every body an example the service accepts, every error problem+json; it is
valid OpenAPI 3.1; and the docs page at /schema is served under the page's policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery
from openapi_spec_validator import validate

from service.http import openapi, schemas
from service.http.app import build_services, create_app
from service.http.page import POLICY
from service.http.problems import PROBLEM_JSON
from service.settings import Settings
from tests.service.conftest import Api

HUMAN_ID = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*")


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    """The document the service serves, from an app on a memory store."""
    services = build_services(Settings(database_url="memory://"))
    try:
        app = create_app(services.settings, run_projections=False, built=services)
        yield app.state.openapi
    finally:
        services.models.close()
        services.timeline.close()


def each_operation(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def undocumented(doc: dict[str, Any]) -> list[str]:
    """What a person or a generator would miss: an operation without its id, summary,
    description or group, a parameter without its description."""
    missing = []
    for method, path, op in each_operation(doc):
        where = f"{method} {path}"
        for field in ("operationId", "summary", "description", "tags"):
            if not op.get(field):
                missing.append(f"{where}: no {field}")
        for parameter in op.get("parameters", []):
            if not parameter.get("description"):
                missing.append(f"{where}: no description of {parameter['name']}")
    return missing


def test_every_operation_and_parameter_is_described(document: dict[str, Any]) -> None:
    assert undocumented(document) == []
    ids = [op["operationId"] for _, _, op in each_operation(document)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not HUMAN_ID.fullmatch(i)] == []
    # The names a client is generated with, as a person would choose them.
    assert {
        "registerActor",
        "defineTopic",
        "createStatement",
        "correctStatement",
        "getWhoSaidWhat",
        "listTimeline",
        "getStatementHistory",
        "listChanges",
    } <= set(ids)
    # A list that comes in pages says how to walk them.
    for method, path, op in each_operation(document):
        if any(p["name"] == "cursor" for p in op.get("parameters", [])):
            assert "`next_cursor` back as `cursor`" in op["description"], (method, path)
    # The tables describe nothing that is not there.
    routes = {(method, path) for method, path, _ in each_operation(document)}
    assert set(openapi.OPERATIONS) - routes == set()
    names = {p["name"] for _, _, op in each_operation(document) for p in op.get("parameters", [])}
    assert set(openapi.PARAMETERS) - names == set()


def test_a_route_or_a_parameter_added_without_its_line_in_the_tables_is_caught() -> None:
    @get("/statements/by-title/{title:str}", opt={"scope": "read", "returns": schemas.Item})
    async def by_title(title: FromPath[str], near: FromQuery[str | None] = None) -> None:
        """A docstring is no description: the tables are."""

    app = Litestar([by_title], openapi_config=OpenAPIConfig(title="t", version="1"))
    assert undocumented(openapi.build(app)) == [
        "GET /statements/by-title/{title}: no operationId",
        "GET /statements/by-title/{title}: no summary",
        "GET /statements/by-title/{title}: no description",
        "GET /statements/by-title/{title}: no description of title",
        "GET /statements/by-title/{title}: no description of near",
    ]


def test_every_field_a_client_writes_is_described(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    bodies = {"Source", "Role", "Changes"} | {cls.__name__ for cls in openapi.EXAMPLES}
    missing = [
        f"{name}.{field}"
        for name in sorted(bodies)
        for field, schema in components[name]["properties"].items()
        if not schema.get("description")
    ]
    assert missing == []


def test_every_closed_set_is_an_enum_and_no_parameter_is_null(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for method, path, op in each_operation(document):
        for parameter in op.get("parameters", []):
            schema = parameter["schema"]
            assert "null" not in str(schema.get("type")), (method, path, parameter)
            assert "oneOf" not in schema and "anyOf" not in schema, (method, path, parameter)
            if parameter["name"] in openapi.ENUMS:
                named = openapi.ENUMS[parameter["name"]]
                assert schema["$ref"] == f"#/components/schemas/{named}", (method, path)
    # Each closed set schemas.py names is one component, in its own order, which every
    # parameter and field of it refers to.
    assert components["RecordKind"] == {
        "type": "string",
        "enum": ["statement", "announcement", "occurrence"],
    }
    assert components["Bucket"]["enum"] == ["day", "week", "month", "year"]
    assert components["Channel"]["enum"][0] == "press-conference"
    assert components["StatementIn"]["properties"]["channel"]["$ref"].endswith("/Channel")
    assert components["Changes"]["properties"]["kind"]["anyOf"][0] == {
        "$ref": "#/components/schemas/OccurrenceKind"
    }
    timeline = {p["name"]: p for p in document["paths"]["/timeline"]["get"]["parameters"]}
    assert timeline["limit"]["schema"] == {
        "type": "integer",
        "default": 50,
        "minimum": 1,
        "maximum": 500,
    }
    # A closed set no one named is a set of strings where it stands.
    actor = components["ActorIn"]["properties"]["kind"]
    assert actor["type"] == "string"
    assert set(actor["enum"]) == {"person", "state", "organization", "group"}


def test_every_error_is_problem_json_and_every_body_has_an_example(
    document: dict[str, Any],
) -> None:
    for method, path, op in each_operation(document):
        for status, response in op["responses"].items():
            assert response["description"], (method, path, status)
            if int(status) >= 400:
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            assert "example" in content["application/json"], (method, path)
    # A correction's changes are documented as what the service checks them against.
    correction = document["components"]["schemas"]["CorrectionIn"]
    assert correction["properties"]["changes"]["$ref"] == "#/components/schemas/Changes"


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first error


def test_every_request_example_is_accepted_as_written(sqlite_api: Api) -> None:
    api = sqlite_api
    ex = openapi.EXAMPLES
    # On the seed's world: a new actor and a new topic, then each change of each.
    assert api.post("/actors", ex[schemas.ActorIn]).status_code == 201
    for path, body in [
        ("/actors/mark-rutte/aliases", schemas.AliasIn),
        ("/actors/mark-rutte/roles", schemas.Role),
        ("/actors/mark-rutte/roles/end", schemas.RoleEndIn),
    ]:
        assert api.post(path, ex[body]).status_code == 200, path
    assert api.post("/topics", ex[schemas.TopicIn]).status_code == 201
    changed = api.post("/topics/munich-security-conference/changes", ex[schemas.TopicChangeIn])
    assert changed.status_code == 200, changed.text
    # A record of each kind, and each change of a record.
    for plural, body in [
        ("statements", schemas.StatementIn),
        ("announcements", schemas.AnnouncementIn),
        ("occurrences", schemas.OccurrenceIn),
    ]:
        created = api.post(f"/{plural}", ex[body])
        assert created.status_code == 201, created.text
        base = f"/{plural}/{created.json()['id']}"
        for path, change in [
            ("corrections", schemas.CorrectionIn),
            ("sources", schemas.SourceIn),
            ("tags", schemas.TagsIn),
            ("retraction", schemas.RetractionIn),
        ]:
            changed = api.post(f"{base}/{path}", ex[change])
            assert changed.status_code == 200, (plural, path, changed.text)
            assert changed.json()["duplicate"] is False
    # Every body type a route takes has its example.
    bodies = {
        handler.opt["body"]
        for route in api.app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler.opt.get("body"), type)
    }
    assert bodies == set(ex)


def test_litestars_own_route_of_the_document_answers_the_same_document(sqlite_api: Api) -> None:
    served = sqlite_api.client.get("/schema/openapi.json").json()
    assert served["paths"]["/statements"]["post"]["operationId"] == "createStatement"
    for path in ("/_openapi", "/_openapi/openapi.json"):
        assert sqlite_api.client.get(path).json() == served, path


def test_the_docs_page_and_its_script_are_the_services_own_under_its_policy(
    sqlite_api: Api,
) -> None:
    page = sqlite_api.client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == POLICY
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and "<style" not in page.text
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        asset = sqlite_api.client.get(path)
        assert asset.status_code == 200, path
    script = sqlite_api.client.get("/static/api.js").text
    # Text from the document is never parsed as markup.
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
