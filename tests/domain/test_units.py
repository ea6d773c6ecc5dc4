"""A unit of work: use cases run against it, stored together when it commits."""

from __future__ import annotations

import pytest

from domain.application import Timeline
from domain.errors import ConcurrentWrite, UnknownReference
from domain.writers import Author
from tests.domain.conftest import statement


def test_a_unit_sees_its_own_changes_and_stores_them_in_one_commit(
    world: Timeline, author: Author
) -> None:
    head = world.head_position()
    unit = world.unit()
    # An actor registered in the unit may be named by a record in the same unit.
    unit.register_actor({"id": "kaja-kallas", "name": "Kaja Kallas", "kind": "person"})
    written = unit.record("statement", statement(speaker="kaja-kallas", key="kallas"))
    assert (written.version, written.position) == (1, 0)  # positions come with the commit
    # Nothing is stored before the commit, and the timeline does not see the unit's work.
    assert world.head_position() == head
    with pytest.raises(UnknownReference):
        world.record("statement", statement(speaker="kaja-kallas", key="too-early"))
    # The commit stores both, in one transaction, in the order they were made.
    recordings = unit.commit()
    assert [r.notification.id for r in recordings] == [head + 1, head + 2]
    assert world.get_record("statement", written.id).content["speaker"] == "kaja-kallas"


def test_an_open_unit_changes_nothing_about_the_timelines_own_use_cases(
    world: Timeline, author: Author
) -> None:
    unit = world.unit()
    pending = unit.record("statement", statement(key="in-the-unit"))
    # The timeline saves at once, whatever unit is open beside it.
    now = world.record("statement", statement(key="at-once"))
    assert now.position == world.head_position() > 0
    assert [e.originator_version for e in world.history(now.id)] == [1]
    # The unit, never committed, stored nothing.
    assert list(world.history(pending.id)) == []
    assert unit.recordings == []


def test_an_optimistic_unit_that_meets_a_stored_aggregate_fails_as_a_whole(
    world: Timeline, author: Author
) -> None:
    world.record("statement", statement(key="stored"))
    head = world.head_position()
    # Optimistic: the unit does not look before creating, so the repeat is found on commit.
    unit = world.unit(optimistic=True)
    assert not unit.record("statement", statement(key="new")).duplicate
    assert not unit.record("statement", statement(key="stored")).duplicate
    with pytest.raises(ConcurrentWrite):
        unit.commit()
    assert world.head_position() == head
    # Looked up first, the repeat is a duplicate and the rest is stored.
    again = world.unit()
    assert again.record("statement", statement(key="stored")).duplicate
    again.record("statement", statement(key="new"))
    assert len(again.commit()) == 1
