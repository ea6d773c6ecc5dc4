"""Actors and topics: registered once, grown by events, kept free of cycles."""

from __future__ import annotations

import pytest
from eventsourcing.application import project_aggregate

from domain.actors import Topic, TopicTree
from domain.application import Timeline
from domain.errors import (
    InvalidInput,
    KeyConflict,
    NotFound,
    RuleViolation,
    TopicCycle,
    UnknownReference,
)
from domain.ids import TOPIC_TREE_ID, actor_id, topic_id
from domain.writers import Author

HEGSETH = {
    "id": "pete-hegseth",
    "name": "Pete Hegseth",
    "kind": "person",
    "aliases": ["Hegseth"],
    "roles": [{"title": "US Secretary of Defense", "since": "2025-01-25"}],
}


def test_an_actor_is_registered_once_and_grows_aliases_and_roles(
    timeline: Timeline, author: Author
) -> None:
    # Registered with an alias and a dated role.
    written = timeline.register_actor(HEGSETH)
    assert (written.id, written.ref, written.version) == (
        actor_id("pete-hegseth"),
        "pete-hegseth",
        1,
    )
    # The same registration again is a duplicate; other content under the slug is a conflict.
    assert timeline.register_actor(HEGSETH).duplicate
    with pytest.raises(KeyConflict):
        timeline.register_actor({**HEGSETH, "name": "Someone Else"})
    # An alias and a second role are added, then the role ends.
    timeline.add_alias("pete-hegseth", "US Defence Secretary Pete Hegseth")
    assert timeline.add_alias("pete-hegseth", "Hegseth").duplicate
    timeline.assume_role("pete-hegseth", {"title": "Envoy", "since": "2025-03"})
    ended = timeline.end_role("pete-hegseth", "Envoy", "2025-06")
    assert ended.version == 4
    actor = timeline.get_actor("pete-hegseth")
    assert actor.aliases == ["Hegseth", "US Defence Secretary Pete Hegseth"]
    assert actor.roles[1] == {"title": "Envoy", "since": "2025-03", "until": "2025-06"}
    # A role that is not open cannot end.
    with pytest.raises(RuleViolation):
        timeline.end_role("pete-hegseth", "Envoy", "2025-07")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HEGSETH, "id": "Pete Hegseth"}, "id"),
        ({**HEGSETH, "kind": "robot"}, "kind"),
        ({**HEGSETH, "name": ""}, "name"),
        ({**HEGSETH, "roles": [{"title": "X", "since": "2025-01-25T10:00"}]}, "roles[0].since"),
        (
            {**HEGSETH, "roles": [{"title": "X", "since": "2025", "until": "2024"}]},
            "roles[0].until",
        ),
        ({**HEGSETH, "aliases": ["Hegseth", "Hegseth"]}, "aliases"),
        ({**HEGSETH, "age": 44}, "age"),
        ({"name": "Nobody", "kind": "person"}, "id"),
    ],
)
def test_bad_registrations_are_refused(
    timeline: Timeline, author: Author, body: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        timeline.register_actor(body)
    assert caught.value.field == field
    assert timeline.head_position() == 0


def test_topics_form_a_tree_without_cycles(timeline: Timeline, author: Author) -> None:
    # A small tree: war > negotiations > territory.
    timeline.define_topic({"id": "war", "label": "War"})
    timeline.define_topic({"id": "negotiations", "label": "Negotiations", "parent": "war"})
    timeline.define_topic({"id": "territory", "label": "Territory", "parent": "negotiations"})
    # A parent must exist before its child.
    with pytest.raises(UnknownReference) as caught:
        timeline.define_topic({"id": "crimea", "label": "Crimea", "parent": "ghost"})
    assert caught.value.field == "parent"
    # Moving a topic below itself or its descendants is refused.
    for parent in ("war", "negotiations", "territory"):
        with pytest.raises(TopicCycle, match="below") as cycle:
            timeline.move_topic("war", parent)
        assert cycle.value.field == "parent"
    # Moving it elsewhere, and relabelling, are events.
    timeline.define_topic({"id": "diplomacy", "label": "Diplomacy"})
    timeline.move_topic("negotiations", "diplomacy")
    timeline.relabel_topic("negotiations", "Peace negotiations")
    topic = timeline.get_topic("negotiations")
    assert (topic.parent, topic.label, topic.version) == ("diplomacy", "Peace negotiations", 3)


def test_unknown_actors_and_topics_are_not_found(timeline: Timeline, author: Author) -> None:
    with pytest.raises(NotFound):
        timeline.add_alias("nobody", "N")
    with pytest.raises(NotFound):
        timeline.relabel_topic("nothing", "N")


def test_a_topic_moved_often_and_the_tree_are_read_from_snapshots(
    timeline: Timeline, author: Author
) -> None:
    timeline.define_topic({"id": "a", "label": "A"})
    timeline.define_topic({"id": "b", "label": "B"})
    # 120 moves of one topic: the tree and the topic reach versions 121.
    for n in range(120):
        timeline.move_topic("a", "b" if n % 2 == 0 else None)
    # Every 50 events a snapshot, from which they are read...
    snapshots = timeline.snapshots
    assert snapshots is not None
    for id in (topic_id("a"), TOPIC_TREE_ID):
        assert [s.originator_version for s in snapshots.get(id)] == [50, 100]
    # ...as they were from their whole history.
    tree: TopicTree = timeline.repository.get(TOPIC_TREE_ID)
    assert (tree.version, tree.moved) == (121, {"a": None})
    whole: Topic | None = project_aggregate(None, timeline.events.get(topic_id("a")))
    assert vars(timeline.get_topic("a")) == vars(whole)
