"""Items name their topics with the labels the topics had at the answer's position,
and every instant they show says to what precision it is known."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import BBC, Api, unique


def _slug() -> str:
    return unique("t").replace(" ", "-")[:40]


def test_every_item_carries_its_topics_labels_as_of_the_answer(api: Api) -> None:
    # A topic, a statement tagged with it, then the topic relabelled.
    topic = _slug()
    assert api.post("/topics", {"id": topic, "label": "Old label"}).status_code == 201
    body = {
        "speaker": "mark-rutte",
        "quote": unique(),
        "occurred_at": "2025-02",
        "channel": "other",
        "topics": [topic, "territory"],
        "sources": [BBC],
    }
    written = api.post("/statements", body)
    assert written.status_code == 201, written.text
    id, tagged = written.json()["id"], written.json()["position"]
    relabelled = api.post(f"/topics/{topic}/changes", {"label": "New label"})
    assert relabelled.status_code == 200, relabelled.text
    after = relabelled.json()["position"]
    territory = api.read("/topics/territory").json()["label"]

    def answers(at: dict[str, Any]) -> list[dict[str, Any]]:
        """The item, as each read that shows it answers at a point."""
        timeline = api.read("/timeline", {"topic": topic, **at}).json()["items"]
        said = api.read(f"/topics/{topic}/who-said-what", at).json()["speakers"][0]["records"]
        profile = api.read("/actors/mark-rutte", at).json()["latest"]
        end = {"to_position": at["as_of_position"]} if at else {}
        changes = api.read("/changes", {"from_position": tagged - 1, **end}).json()["items"]
        return [
            api.read(f"/statements/{id}", at).json(),
            *[i for i in timeline if i["id"] == id],
            *[i for i in said if i["id"] == id],
            *[i for i in profile if i["id"] == id],
            *[c["item"] for c in changes if c["id"] == id],
        ]

    # Now: the new label; as of before the relabelling: the old one; in every read.
    for at, label in (({}, "New label"), ({"as_of_position": after - 1}, "Old label")):
        items = answers(at)
        assert len(items) == 5, items
        for item in items:
            assert set(item["topics"]) == {topic, "territory"}
            assert item["topic_labels"] == {topic: label, "territory": territory}


def test_a_speakers_first_and_last_instants_say_their_precision(api: Api) -> None:
    topic = _slug()
    assert api.post("/topics", {"id": topic, "label": "A topic"}).status_code == 201
    for when in ("2014", "2025-02-12T15:30:00-05:00"):
        body = {
            "speaker": "mark-rutte",
            "quote": unique(),
            "occurred_at": when,
            "channel": "other",
            "topics": [topic],
            "sources": [BBC],
        }
        assert api.post("/statements", body).status_code == 201
    (speaker,) = api.read(f"/topics/{topic}/who-said-what").json()["speakers"]
    # The year 2014 is not midnight of its first day: it says it is a year.
    assert speaker["first_at"].startswith("2014-01-01T00:00:00")
    assert speaker["first_precision"] == "year"
    assert speaker["last_at"].startswith("2025-02-12T20:30:00")
    assert speaker["last_precision"] == "second"
    # As each record's own occurred_at and occurred_precision say.
    first, last = speaker["records"]
    assert (first["occurred_at"], first["occurred_precision"]) == (
        speaker["first_at"],
        speaker["first_precision"],
    )
    assert (last["occurred_at"], last["occurred_precision"]) == (
        speaker["last_at"],
        speaker["last_precision"],
    )
