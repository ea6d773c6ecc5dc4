"""docs/errors.md answers as written: each of its requests, sent in order to the seeded
service, answers the status and names the fields its example shows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import Api

DOC = Path(__file__).parents[2] / "docs" / "errors.md"
_BLOCK = re.compile(r"^```(http|json)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_SIZE = re.compile(r"<([0-9][0-9,]*) bytes>")


@dataclass(frozen=True, slots=True)
class Example:
    """A request of the doc, and the answer it shows (None: a step that succeeds)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None
    answer: dict[str, Any] | None


def examples(text: str) -> list[Example]:
    """The doc's requests in order, each with the JSON block that follows it, if any."""
    blocks = [(m[1], m[2]) for m in _BLOCK.finditer(text)]
    found = []
    for i, (kind, content) in enumerate(blocks):
        if kind != "http":
            continue
        head, _, body = content.partition("\n\n")
        request, *header_lines = head.strip().splitlines()
        method, target = request.split()
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        answer = following[1] if following is not None and following[0] == "json" else None
        found.append(
            Example(
                method,
                target,
                dict(line.split(": ", 1) for line in header_lines),
                _body(body),
                json.loads(answer) if answer is not None and answer.strip() else None,
            )
        )
    return found


def _body(text: str) -> bytes | None:
    if not text.strip():
        return None
    if size := _SIZE.fullmatch(text.strip()):
        return b"x" * int(size[1].replace(",", ""))
    return text.strip().encode()


def send(api: Api, example: Example) -> httpx.Response:
    headers = {
        name: value.replace("$WRITE_KEY", api.secrets["write"]).replace(
            "$READ_KEY", api.secrets["read"]
        )
        for name, value in example.headers.items()
    }
    return api.client.request(example.method, example.target, headers=headers, content=example.body)


@pytest.mark.parametrize("any_store", ["memory"], indirect=True)
def test_every_example_of_the_errors_doc_answers_as_written(api: Api) -> None:
    found = examples(DOC.read_text())
    shown = [e for e in found if e.answer is not None]
    # Every status of the rule has an example that runs (503 and 500 aside).
    statuses = {e.answer["status"] for e in shown if e.answer is not None}
    assert statuses == {400, 401, 403, 404, 409, 410, 412, 413, 415, 422}
    for example in found:
        answer = send(api, example)
        if example.answer is None:  # a step that sets up the next
            assert answer.status_code in (200, 201), (example, answer.text)
            continue
        assert answer.status_code == example.answer["status"], (example, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        got = answer.json()
        assert got["title"] == example.answer["title"], (example, got)
        assert [e["field"] for e in got["errors"]] == [
            e["field"] for e in example.answer["errors"]
        ], (example, got)
