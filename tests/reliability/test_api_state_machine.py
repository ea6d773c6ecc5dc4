"""A Hypothesis state machine drives the API — append, repeat, correct, retract,
backfill, read the timeline, read a record, `as_of_position` and `as_of` — and compares
every answer with a pure in-memory model of the documented contract (README,
docs/backfill.md).

The model knows nothing of the implementation: a record is created once per key
(docs/backfill.md, "Keys, ids and targets": the same key and content again is a
duplicate answering the current version, other content a 409; without a key, the key
derives from who, the occurred day, the words and the first source); each correction,
retraction or backfilled change makes a new version at the position the service reports
(a token the model only records); a correction that changes nothing or touches a
retracted record is a 422; `If-Match` behind the current version is a 409, ahead of it a
412; a retracted record leaves the timeline and reads as 410; the timeline is
every current record in occurred order (UTC start, then first position); asked
`as_of_position=P`, every answer is the model folded over the versions at or before P;
asked `as_of=T`, over the longest prefix of the log recorded at or before T (README,
"`as_of` an instant", and decision 004: an instant means a prefix).

Each run works on an actor and topics of its own in one app per store, and reads the
timeline filtered by that actor, so runs do not see each other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.reliability.conftest import CHAOS, Figures
from tests.service.conftest import HTTP_STORES, NDJSON, Api, Apps

KINDS = ("statement", "announcement", "occurrence")
WORDS = {"statement": "quote", "announcement": "summary", "occurrence": "title"}
TEXTS = ["talks can start immediately", "not one square mile", "of course"]
KEYS = ["k1", "k2", "k3"]
# Occurred times as given, and the UTC start each one means (docs/backfill.md), written out.
OCCURRED = {
    "2014": "2014-01-01T00:00:00.000000Z",
    "2014-03": "2014-03-01T00:00:00.000000Z",
    "2014-03-18": "2014-03-18T00:00:00.000000Z",
    "2014-03-18T12:00:00+03:00": "2014-03-18T09:00:00.000000Z",
    "2025-02-12T15:30:00-05:00": "2025-02-12T20:30:00.000000Z",
    "2025-02-12T20:30Z": "2025-02-12T20:30:00.000000Z",
    "2025-02-13": "2025-02-13T00:00:00.000000Z",
}
PLACES = ["Brussels", "Munich", None]
URL = "https://example.org/model"
COMPARED = ("id", "kind", "version", "position", "occurred_as_given", "occurred_at", "topics")


@dataclass
class Version:
    version: int
    position: int
    recorded_at: str
    content: dict[str, Any]  # occurred_at, topics, location?, and the words
    retracted: bool = False


@dataclass
class Rec:
    kind: str
    key: tuple[str, ...]  # the model's key: a client key, or what it derives from
    id: str
    body: dict[str, Any]  # as first sent (its content is what duplicates compare)
    versions: list[Version] = field(default_factory=list)

    @property
    def now(self) -> Version:
        return self.versions[-1]

    @property
    def first_position(self) -> int:
        return self.versions[0].position

    def at(self, position: int) -> Version | None:
        seen = [v for v in self.versions if v.position <= position]
        return seen[-1] if seen else None


def content_of(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    out = {"occurred_at": body["occurred_at"], "topics": list(body["topics"])}
    out[WORDS[kind]] = body[WORDS[kind]]
    if body.get("location") is not None:
        out["location"] = body["location"]
    return out


def item(rec: Rec, v: Version) -> dict[str, Any]:
    """A timeline item as the model expects it, in the compared fields."""
    return {
        "id": rec.id,
        "kind": rec.kind,
        "version": v.version,
        "position": v.position,
        "occurred_as_given": v.content["occurred_at"],
        "occurred_at": OCCURRED[v.content["occurred_at"]],
        "topics": v.content["topics"],
        WORDS[rec.kind]: v.content[WORDS[rec.kind]],
        "location": v.content.get("location"),
    }


def seen(served: dict[str, Any]) -> dict[str, Any]:
    """A served item in the compared fields."""
    words = WORDS[served["kind"]]
    return {
        **{k: served[k] for k in COMPARED},
        words: served.get(words),
        "location": served.get("location"),
    }


class ApiMachine(RuleBasedStateMachine):
    def __init__(self, api: Api, tally: dict[str, int]) -> None:
        super().__init__()
        self.api = api
        self.tally = tally
        run = self.run = uuid.uuid4().hex[:10]
        self.actor = f"sm-{run}"
        self.topics = [f"sm-{run}-a", f"sm-{run}-b"]
        self.records: list[Rec] = []
        self.reasons = 0
        self.head = 0  # the highest position the service has reported to this run

    # Set-up and helpers -------------------------------------------------------------

    @initialize()
    def vocabulary(self) -> None:
        actor = {"id": self.actor, "name": "Model Actor", "kind": "person"}
        assert self.api.post("/actors", actor).status_code == 201
        for slug in self.topics:
            assert self.api.post("/topics", {"id": slug, "label": slug}).status_code == 201
        self.head = self.api.services.timeline.head_position()
        self.tally["runs"] += 1

    def count(self, what: str) -> None:
        self.tally[what] += 1

    def body(
        self, kind: str, words: str, occurred: str, topics: list[str], key: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            WORDS[kind]: words,
            "occurred_at": occurred,
            "topics": topics,
            "sources": [{"publisher": "Model", "url": URL}],
        }
        if kind == "statement":
            body |= {"speaker": self.actor, "channel": "speech"}
        elif kind == "announcement":
            body |= {"by": [self.actor], "channel": "speech"}
        else:
            body |= {"kind": "meeting", "participants": [self.actor]}
        if key is not None:
            body["key"] = f"{self.run}-{key}"  # client keys are global: one set per run
        return body

    @staticmethod
    def model_key(kind: str, body: dict[str, Any]) -> tuple[str, ...]:
        if "key" in body:
            return (kind, "client", body["key"])
        # The derived key: who (one actor per run), the occurred day, the words, the first URL.
        return (kind, "derived", body["occurred_at"][:10], body[WORDS[kind]])

    def find(self, key: tuple[str, ...]) -> Rec | None:
        return next((r for r in self.records if r.key == key), None)

    def remember(self, answer: dict[str, Any]) -> None:
        self.head = max(self.head, int(answer["position"]))

    def reason(self) -> str:
        self.reasons += 1
        return f"model correction {self.reasons}"

    def pick(self, n: int) -> Rec:
        return self.records[n % len(self.records)]

    @staticmethod
    def if_match(rec: Rec, mode: str) -> tuple[dict[str, str], int | None]:
        """Headers for an If-Match mode, and the status a mismatch must answer."""
        now = rec.now.version
        if mode == "current":
            return {"If-Match": f'"{now}"'}, None
        if mode == "behind" and now > 1:
            return {"If-Match": f'"{now - 1}"'}, 409
        if mode == "ahead":
            return {"If-Match": f'"{now + 1}"'}, 412
        return {}, None

    # Writes -----------------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(KINDS),
        words=st.sampled_from(TEXTS),
        occurred=st.sampled_from(list(OCCURRED)),
        topics=st.lists(st.sampled_from(["a", "b"]), unique=True, max_size=2),
        key=st.sampled_from([None, *KEYS]),
    )
    def append(
        self, kind: str, words: str, occurred: str, topics: list[str], key: str | None
    ) -> None:
        slugs = [self.topics[0] if t == "a" else self.topics[1] for t in topics]
        body = self.body(kind, words, occurred, slugs, key)
        self.create(kind, body)

    def create(self, kind: str, body: dict[str, Any]) -> None:
        answer = self.api.post(f"/{kind}s", body)
        existing = self.find(self.model_key(kind, body))
        if existing is None:
            assert answer.status_code == 201, answer.text
            got = answer.json()
            assert (got["version"], got["duplicate"]) == (1, False)
            rec = Rec(kind, self.model_key(kind, body), got["id"], body)
            rec.versions.append(
                Version(1, got["position"], got["recorded_at"], content_of(kind, body))
            )
            self.records.append(rec)
            self.remember(got)
            self.count("appended")
        elif content_of(kind, existing.body) == content_of(kind, body):
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert (got["id"], got["version"], got["duplicate"]) == (
                existing.id,
                existing.now.version,
                True,
            )
            self.count("duplicates")
        else:
            assert answer.status_code == 409, answer.text
            self.count("conflicts_409")

    @precondition(lambda self: self.records)
    @rule(n=st.integers(0, 100))
    def repeat(self, n: int) -> None:
        """The same POST again: a duplicate answering the current version."""
        rec = self.pick(n)
        self.create(rec.kind, rec.body)

    def correction(self, rec: Rec, change: str, value: Any) -> dict[str, Any]:
        if change == "location":
            return {"location": value}
        if change == "occurred_at":
            return {"occurred_at": value}
        if change == "topics":
            return {"topics": value}
        return {WORDS[rec.kind]: value}

    @staticmethod
    def changed(content: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any] | None:
        """The content after the changes; None if they change nothing (a 422)."""
        new = {**content, **changes}
        new = {k: v for k, v in new.items() if v is not None}
        if all(new.get(k) == content.get(k) for k in changes):
            return None
        return new

    @precondition(lambda self: self.records)
    @rule(
        n=st.integers(0, 100),
        change=st.sampled_from(["location", "occurred_at", "topics", "words"]),
        data=st.data(),
        match=st.sampled_from(["none", "none", "current", "behind", "ahead"]),
    )
    def correct(self, n: int, change: str, data: st.DataObject, match: str) -> None:
        rec = self.pick(n)
        values: dict[str, Any] = {
            "location": st.sampled_from(PLACES),
            "occurred_at": st.sampled_from(list(OCCURRED)),
            "topics": st.lists(st.sampled_from(self.topics), unique=True, max_size=2),
            "words": st.sampled_from(TEXTS),
        }
        changes = self.correction(rec, change, data.draw(values[change]))
        headers, mismatch = self.if_match(rec, match)
        answer = self.api.post(
            f"/{rec.kind}s/{rec.id}/corrections",
            {"changes": changes, "reason": self.reason()},
            headers=headers,
        )
        new = self.changed(rec.now.content, changes)
        if mismatch is not None:
            assert answer.status_code == mismatch, answer.text
            assert answer.headers["etag"] == f'"{rec.now.version}"'
            self.count(f"if_match_{mismatch}")
        elif rec.now.retracted or new is None:
            assert answer.status_code == 422, answer.text
            self.count("refused_422")
        else:
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert (got["version"], got["duplicate"]) == (rec.now.version + 1, False)
            rec.versions.append(Version(got["version"], got["position"], got["recorded_at"], new))
            self.remember(got)
            self.count("corrected")

    @precondition(lambda self: self.records)
    @rule(n=st.integers(0, 100), match=st.sampled_from(["none", "current", "behind", "ahead"]))
    def retract(self, n: int, match: str) -> None:
        rec = self.pick(n)
        headers, mismatch = self.if_match(rec, match)
        answer = self.api.post(
            f"/{rec.kind}s/{rec.id}/retraction", {"reason": self.reason()}, headers=headers
        )
        if mismatch is not None:
            assert answer.status_code == mismatch, answer.text
            self.count(f"if_match_{mismatch}")
        elif rec.now.retracted:
            assert answer.status_code == 200 and answer.json()["duplicate"] is True, answer.text
            assert answer.json()["version"] == rec.now.version
            self.count("duplicates")
        else:
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["version"] == rec.now.version + 1
            now = rec.now
            rec.versions.append(
                Version(got["version"], got["position"], got["recorded_at"], now.content, True)
            )
            self.remember(got)
            self.count("retracted")

    @rule(
        news=st.lists(
            st.tuples(
                st.sampled_from(KINDS),
                st.sampled_from(TEXTS),
                st.sampled_from(list(OCCURRED)),
                st.sampled_from([*KEYS, "k4", "k5"]),
            ),
            max_size=3,
        ),
        changes=st.lists(
            st.tuples(st.integers(0, 100), st.sampled_from([*PLACES, "retract"])), max_size=3
        ),
    )
    def backfill(
        self, news: list[tuple[str, str, str, str]], changes: list[tuple[int, Any]]
    ) -> None:
        """NDJSON: new records (or repeats, or conflicts) first, then changes of records
        known before this file (as the loader applies them: records, then changes)."""
        lines: list[dict[str, Any]] = []
        expect: list[str] = []  # per line: accepted | duplicate | rejected
        planned: list[tuple[Rec, dict[str, Any] | None]] = []  # changes, in order
        fresh: dict[tuple[str, ...], Rec] = {}
        for kind, words, occurred, key in news:
            body = self.body(kind, words, occurred, [self.topics[0]], key)
            lines.append({"type": kind, **body})
            mkey = self.model_key(kind, body)
            known = self.find(mkey) or fresh.get(mkey)
            if known is None:
                fresh[mkey] = Rec(kind, mkey, "", body)
                expect.append("accepted")
            elif content_of(kind, known.body) == content_of(kind, body):
                expect.append("duplicate")
            else:
                expect.append("rejected")
        before = list(self.records)
        state: dict[str, tuple[bool, dict[str, Any]]] = {
            r.id: (r.now.retracted, r.now.content) for r in before
        }
        for n, place in changes if before else []:
            rec = before[n % len(before)]
            retracted, content = state[rec.id]
            target = {"kind": rec.kind, "key": rec.body.get("key") or None}
            target = {"kind": rec.kind, "id": rec.id} if target["key"] is None else target
            if place == "retract":
                lines.append({"type": "retraction", "target": target, "reason": self.reason()})
                expect.append("duplicate" if retracted else "accepted")
                if not retracted:
                    state[rec.id] = (True, content)
                    planned.append((rec, None))
                continue
            lines.append(
                {
                    "type": "correction",
                    "target": target,
                    "changes": {"location": place},
                    "reason": self.reason(),
                }
            )
            new = self.changed(content, {"location": place})
            if retracted or new is None:
                expect.append("rejected")
            else:
                expect.append("accepted")
                state[rec.id] = (False, new)
                planned.append((rec, new))
        if not lines:
            return
        report = backfill_report(self.api, lines)
        rejected = sorted(r["line"] for r in report["rejected"])
        assert rejected == [i + 1 for i, e in enumerate(expect) if e == "rejected"], report
        assert report["accepted"] == expect.count("accepted"), report
        assert report["duplicates"] == expect.count("duplicate"), report
        # Where each new event went: the service's feed after the head before the file.
        feed = self.feed_after(self.head)
        for rec in fresh.values():
            recorded = next(e for e in feed if is_recording_of(e, rec))
            rec.id = recorded["aggregate_id"]
            first = Version(
                1, recorded["position"], recorded["recorded_at"], content_of(rec.kind, rec.body)
            )
            rec.versions.append(first)
            self.records.append(rec)
        for rec, new in planned:
            version = rec.now.version + 1
            event = next(
                e for e in feed if e["aggregate_id"] == rec.id and e["aggregate_version"] == version
            )
            content = rec.now.content if new is None else new
            rec.versions.append(
                Version(version, event["position"], event["recorded_at"], content, new is None)
            )
        if feed:
            self.head = max(self.head, feed[-1]["position"])
        self.count("backfill_lines")
        self.tally["backfill_lines"] += len(lines) - 1

    def feed_after(self, position: int) -> list[dict[str, Any]]:
        page = self.api.client.get("/events", params={"after": position, "limit": 500})
        assert page.status_code == 200, page.text
        events: list[dict[str, Any]] = page.json()["events"]
        return events

    # Reads ------------------------------------------------------------------------------

    def expected_timeline(self, upto: int | None) -> list[dict[str, Any]]:
        live = []
        for rec in self.records:
            v = rec.now if upto is None else rec.at(upto)
            if v is not None and not v.retracted:
                live.append((OCCURRED[v.content["occurred_at"]], rec.first_position, item(rec, v)))
        return [i for _, _, i in sorted(live, key=lambda t: (t[0], t[1]))]

    def served_timeline(self, **params: Any) -> list[dict[str, Any]]:
        query = {"actor": self.actor, "limit": 500, "min_position": self.head, **params}
        page = self.api.client.get("/timeline", params=query)
        assert page.status_code == 200, page.text
        return [seen(i) for i in page.json()["items"]]

    @rule()
    def query(self) -> None:
        assert self.served_timeline() == self.expected_timeline(None)
        self.count("queries")

    def positions(self) -> list[int]:
        return sorted({v.position for r in self.records for v in r.versions})

    @precondition(lambda self: self.records)
    @rule(n=st.integers(0, 1000), before=st.booleans())
    def as_of_position(self, n: int, before: bool) -> None:
        known = self.positions()
        p = known[n % len(known)] - (1 if before else 0)
        assert self.served_timeline(as_of_position=p) == self.expected_timeline(p)
        self.count("as_of_queries")

    @precondition(lambda self: self.records)
    @rule(n=st.integers(0, 1000))
    def as_of(self, n: int) -> None:
        versions = sorted((v for r in self.records for v in r.versions), key=lambda v: v.position)
        instant = versions[n % len(versions)].recorded_at
        served = self.served_timeline(as_of=instant)
        assert served == self.expected_timeline(prefix_recorded_by(versions, instant))
        self.count("as_of_queries")

    @precondition(lambda self: self.records)
    @rule(n=st.integers(0, 100), at=st.sampled_from(["now", "first", "before"]))
    def read_record(self, n: int, at: str) -> None:
        rec = self.pick(n)
        params: dict[str, Any] = {"min_position": self.head}
        expected: Version | None = rec.now
        if at == "first":
            params["as_of_position"] = rec.first_position
            expected = rec.versions[0]
        elif at == "before":
            params["as_of_position"] = rec.first_position - 1
            expected = None
        answer = self.api.client.get(f"/{rec.kind}s/{rec.id}", params=params)
        if expected is None:
            assert answer.status_code == 404, answer.text
        elif expected.retracted and at == "now":
            assert answer.status_code == 410, answer.text
        else:
            assert answer.status_code == 200, answer.text
            assert seen(answer.json()) == item(rec, expected)
            assert answer.headers["etag"].startswith(f'"{expected.version}.')
        self.count("record_reads")

    def teardown(self) -> None:
        # The whole history once more: now, and as of every position this run made.
        if self.records:
            assert self.served_timeline() == self.expected_timeline(None)
            for p in self.positions():
                assert self.served_timeline(as_of_position=p) == self.expected_timeline(p)
                self.tally["as_of_queries"] += 1


def prefix_recorded_by(versions: list[Version], instant: str) -> int:
    """The position an instant means (decision 004): the end of the longest prefix of the
    log whose events were all recorded at or before it. Events saved in one transaction
    are stored aggregate by aggregate, so a later position can carry an earlier time; the
    prefix then stops before the first event recorded after the instant."""
    upto = 0
    for v in sorted(versions, key=lambda v: v.position):
        if v.recorded_at > instant:
            break
        upto = v.position
    return upto


def is_recording_of(event: dict[str, Any], rec: Rec) -> bool:
    """Whether a feed event is the creation of a record the model planned."""
    data = event["data"]
    if "content" not in data or "key" not in data or event["aggregate_version"] != 1:
        return False
    content, words = data["content"], WORDS[rec.kind]
    key = rec.body.get("key")
    return (
        content.get(words) == rec.body[words]
        and words in content
        and not any(w in content for w in WORDS.values() if w != words)
        and content["occurred_at"] == rec.body["occurred_at"]
        and (data["key"] == key if key is not None else data["key"].startswith("auto-"))
    )


def backfill_report(api: Api, lines: list[dict[str, Any]]) -> dict[str, Any]:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    answer = api.post("/admin/backfill", content=body, content_type=NDJSON, who="admin")
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


@pytest.fixture(scope="module", params=HTTP_STORES)
def model_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    apps = Apps(tmp_path_factory.mktemp("model"), request)
    try:
        yield apps(str(request.param), seed=False)
    finally:
        apps.close()


def run_machine(api: Api, figures: Figures, examples: int, steps: int) -> None:
    tally: dict[str, int] = dict.fromkeys(
        ["runs", "appended", "duplicates", "conflicts_409", "corrected", "retracted",
         "refused_422", "if_match_409", "if_match_412", "backfill_lines", "queries",
         "as_of_queries", "record_reads"],
        0,
    )  # fmt: skip

    class OnThisApi(ApiMachine):
        def __init__(self) -> None:
            super().__init__(api, tally)

    run_state_machine_as_test(
        OnThisApi,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            derandomize=not CHAOS,
            suppress_health_check=list(HealthCheck),
        ),
    )
    figures(
        store=api.services.store.kind,
        examples=examples,
        steps_per_run=steps,
        **tally,
        counterexamples=0,
    )


def test_the_api_behaves_as_the_model_of_the_spec(model_api: Api, figures: Figures) -> None:
    run_machine(model_api, figures, examples=25, steps=30)


@pytest.mark.chaos
def test_the_api_behaves_as_the_model_of_the_spec_at_length(
    model_api: Api, figures: Figures
) -> None:
    run_machine(model_api, figures, examples=100, steps=40)


def test_an_instant_inside_one_backfill_means_a_prefix_of_the_log(model_api: Api) -> None:
    """A backfill's events are stored aggregate by aggregate: b's two corrections, then
    a's, although a's was made between b's. An instant between them means the prefix
    that ends before the first event recorded after it (decision 004), so a's correction,
    recorded before the instant, is not in the answer: no answer is ever a set of events
    that is not a prefix of the log. (The counterexample the state machine found before
    its model said so.)"""
    api, run = model_api, uuid.uuid4().hex[:10]
    actor, topic = f"pre-{run}", f"pre-{run}-t"
    assert api.post("/actors", {"id": actor, "name": "P", "kind": "person"}).status_code == 201
    assert api.post("/topics", {"id": topic, "label": "P"}).status_code == 201
    ids = []
    for words in ("a", "b"):
        body = {
            "speaker": actor,
            "quote": words,
            "occurred_at": "2014",
            "channel": "speech",
            "topics": [topic],
            "sources": [{"publisher": "P", "url": URL}],
        }
        answer = api.post("/statements", body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    a, b = ids
    head = api.services.timeline.head_position()
    lines = [
        {
            "type": "correction",
            "target": {"kind": "statement", "id": id},
            "changes": {"location": place},
            "reason": place,
        }
        for id, place in ((b, "first"), (a, "second"), (b, "third"))
    ]
    report = backfill_report(api, lines)
    assert report["accepted"] == 3, report
    feed = api.client.get("/events", params={"after": head}).json()["events"]
    order = [(e["aggregate_id"], e["data"]["changes"]["location"]) for e in feed]
    assert order == [(b, "first"), (b, "third"), (a, "second")]  # stored by aggregate
    by_place = {e["data"]["changes"]["location"]: e for e in feed}
    instant = by_place["second"]["recorded_at"]
    assert by_place["first"]["recorded_at"] < instant < by_place["third"]["recorded_at"]
    query = {"actor": actor, "as_of": instant, "min_position": feed[-1]["position"]}
    page = api.client.get("/timeline", params=query)
    assert page.status_code == 200, page.text
    versions = {i["id"]: (i["version"], i.get("location")) for i in page.json()["items"]}
    assert versions == {a: (1, None), b: (2, "first")}
    # From the last time of the backfill on, all of it.
    query["as_of"] = by_place["third"]["recorded_at"]
    page = api.client.get("/timeline", params=query)
    versions = {i["id"]: (i["version"], i.get("location")) for i in page.json()["items"]}
    assert versions == {a: (2, "second"), b: (3, "third")}
