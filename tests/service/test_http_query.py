"""Every query parameter of the service takes one value: given twice, on any route, it
is a 400 naming the parameter, never one of the two chosen in silence."""

from __future__ import annotations

import pytest

from tests.service.conftest import NDJSON, Api, concrete, operations, record_ids
from tests.service.test_http_api import assert_problem

# Two values each parameter would take, alone.
VALUES = {
    "as_of": ("2025-02-20T00:00:00Z", "2025-02-21T00:00:00Z"),
    "as_of_position": ("1", "2"),
    "min_position": ("0", "1"),
    "since": ("2014", "2025-02"),
    "until": ("2025", "2025-02-13"),
    "topic": ("negotiations", "territory"),
    "actor": ("donald-trump", "vladimir-putin"),
    "kind": ("statement", "occurrence"),
    "limit": ("5", "6"),
    "after": ("0", "1"),
    "dry_run": ("true", "false"),
    "atomic": ("false", "true"),
    "from": ("2025-02-20T00:00:00Z", "2025-02-21T00:00:00Z"),
    "to": ("2025-02-20T00:00:00Z", "2025-02-21T00:00:00Z"),
    "from_position": ("0", "1"),
    "to_position": ("1", "2"),
    "change": ("added", "corrected"),
    "bucket": ("week", "year"),
    "q": ("crimea", "putin"),
}


def query_parameters(api: Api) -> list[tuple[str, str, str]]:
    """(method, template, name) of each query parameter of each documented operation."""
    paths = api.client.get("/schema/openapi.json").json()["paths"]
    found = []
    for method, template in operations():
        path = template.replace(":str}", "}").replace(":uuid}", "}").replace(":path}", "}")
        for parameter in paths[path][method.lower()].get("parameters", []):
            if parameter["in"] == "query":
                found.append((method, template, parameter["name"]))
    return found


def test_a_query_parameter_given_twice_is_400_naming_it_on_every_route(api: Api) -> None:
    ids = record_ids(api)
    for kind, id in ids.items():  # histories of three events: two pages of one, of two
        for n in range(2):
            source = {"publisher": "BBC News", "url": f"https://www.bbc.com/news/{n}"}
            assert api.post(f"/{kind}s/{id}/sources", {"source": source}).status_code == 200
    asked = query_parameters(api)
    # Every route with a query parameter, each of them.
    assert {name for _, _, name in asked} == {*VALUES, "cursor"}
    assert len(asked) > 40
    for method, template, name in asked:
        path = concrete(template, ids)
        if name == "cursor":  # two cursors this route gave
            pages = [api.read(path, {"limit": 1}), api.read(path, {"limit": 2})]
            values = tuple(page.json()["next_cursor"] for page in pages)
        else:
            values = VALUES[name]
        query = [(name, value) for value in values]
        if method == "GET":
            # Each value alone is answered (HEAD: the live stream would not end)...
            for value in values:
                alone = api.client.head(path, params={name: value})
                assert alone.status_code in (200, 404), (path, name, value)
            answer = api.client.get(path, params=query)
        else:
            headers = {"Content-Type": NDJSON, **api.auth("admin")}
            answer = api.client.post(path, params=query, content=b"", headers=headers)
        # ...both together are a 400 naming the parameter.
        assert_problem(answer, 400, name)


@pytest.mark.parametrize("path", ["/timeline", "/events", "/events/stream"])
def test_a_parameter_given_twice_with_one_value_is_400_too(api: Api, path: str) -> None:
    name = "after" if path.startswith("/events") else "topic"
    value = VALUES[name][0]
    assert_problem(api.client.get(path, params=[(name, value), (name, value)]), 400, name)
