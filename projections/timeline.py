"""The timeline's projection: every event folded into the view's versioned rows.

Actors, topics and records become row versions: opened by the event that creates or
changes them, closed by the next (or a retraction). Each record version is linked to
the actors it names (`actor`: speakers too) and to its topics, and filed `under` every
topic above them, so that a topic's page reads its whole subtree from two index ranges
(its own links and those filing records under it); each topic is linked to its parent.
A move of a topic files the records below it anew from the move's position.
(Who-said-what finds the speakers in the records themselves: links of their own cost a
backfill a fifth more links.) The view (`projections/view.py`) stores what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.actors import Actor, Topic
from domain.ids import actor_id, topic_id
from domain.records import RECORD_CLASSES, Record, merge
from domain.when import When, parse_when
from projections.rows import Row, dumps, utc_text
from projections.shared import Item, Shared
from projections.view import Entity, TimelineView

# Fields of record content that name actors, and how each appears in an item.
ACTOR_FIELDS = ("speaker", "by", "participants", "mentions")
RECORDED_KINDS = {cls.Recorded: kind for kind, cls in RECORD_CLASSES.items()}


class TimelineProjection(Projection[TimelineView]):
    """Folds domain events into the timeline's versioned rows."""

    name = "timeline"

    def __init__(self, view: TimelineView, shared: Shared | None = None) -> None:
        super().__init__(view)
        self.shared = shared or Shared(size=2_000)
        self._names: dict[str, str] = {}  # actor names never change once registered
        self._slugs: dict[UUID, str] = {}
        # The tree as the events so far left it: read from the view once, then kept by
        # the events (a batch dropped after a failed write is built again from the first
        # event not stored, and a move starts a batch only once those before are stored).
        self._parents: dict[str, str | None] | None = None

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Events the view keeps no rows of only move the clock."""
        self._tick(domain_event, tracking)

    @staticmethod
    def settles(event: object) -> bool:
        """Whether an event reads the view as stored, so that it starts a batch of its
        own once every batch before it is stored: a move of a topic finds the records
        to file anew in the view."""
        return isinstance(event, Topic.Moved)

    def prepare(self, events: Iterable[object]) -> None:
        """Fetch, in one query, the current rows of the records a batch changes."""
        refs = [
            str(e.originator_id)
            for e in events
            if isinstance(e, Record.Event) and not isinstance(e, Record.Recorded)
        ]
        if refs:
            self.view.prefetch_records(refs)

    def _tick(self, event: DomainEvent, tracking: Tracking) -> None:
        self.view.tick(tracking.notification_id, event.timestamp)

    # Actors and topics -------------------------------------------------------------

    @process_event.register
    def _(self, event: Actor.Registered, tracking: Tracking) -> None:
        self._tick(event, tracking)
        profile = {
            "id": event.slug,
            "name": event.name,
            "kind": event.kind,
            "aliases": event.aliases,
            "roles": event.roles,
        }
        self._open_entity("actor", event.slug, profile, event, tracking)

    @process_event.register
    def _(self, event: Actor.AliasAdded, tracking: Tracking) -> None:
        self._change_entity(
            "actor",
            event,
            tracking,
            lambda b: {**b, "aliases": [*b["aliases"], event.alias]},
        )

    @process_event.register
    def _(self, event: Actor.RoleAssumed, tracking: Tracking) -> None:
        self._change_entity(
            "actor",
            event,
            tracking,
            lambda b: {**b, "roles": [*b["roles"], event.role]},
        )

    @process_event.register
    def _(self, event: Actor.RoleEnded, tracking: Tracking) -> None:
        def end(body: dict[str, Any]) -> dict[str, Any]:
            roles = [dict(r) for r in body["roles"]]
            for role in reversed(roles):
                if role["title"] == event.title and "until" not in role:
                    role["until"] = event.until
                    break
            return {**body, "roles": roles}

        self._change_entity("actor", event, tracking, end)

    @process_event.register
    def _(self, event: Topic.Defined, tracking: Tracking) -> None:
        self._tick(event, tracking)
        body = {
            "id": event.slug,
            "label": event.label,
            "parent": event.parent,
            "description": event.description,
        }
        self._open_entity("topic", event.slug, body, event, tracking)
        # No record names a topic before it is defined (the domain's rule): none to file.
        self._tree()[event.slug] = event.parent

    @process_event.register
    def _(self, event: Topic.Relabelled, tracking: Tracking) -> None:
        self._change_entity("topic", event, tracking, lambda b: {**b, "label": event.label})

    @process_event.register
    def _(self, event: Topic.Moved, tracking: Tracking) -> None:
        slug = self._slug_of("topic", event)
        filings = self.view.filed_under(slug)  # first: the batch is still empty
        self._change_entity("topic", event, tracking, lambda b: {**b, "parent": event.parent})
        self._tree()[slug] = event.parent
        for filing in filings:
            under = self._under(filing.topics) - filing.topics
            if under != filing.under:
                self.view.refile(filing, under, tracking.notification_id)

    def _tree(self) -> dict[str, str | None]:
        if self._parents is None:
            self._parents = self.view.parents()
        return self._parents

    def _under(self, topics: Iterable[str]) -> frozenset[str]:
        """The topics and every topic above them, as the tree stands (a cycle, which an
        old store may hold, is walked once). A record is filed under those above its
        own: its own are its `topic` links."""
        parents = self._tree()
        found: set[str] = set()
        for topic in topics:
            slug: str | None = topic
            while slug is not None and slug not in found:
                found.add(slug)
                slug = parents.get(slug)
        return frozenset(found)

    def _open_entity(
        self,
        kind: Entity,
        slug: str,
        body: dict[str, Any],
        event: DomainEvent,
        tracking: Tracking,
        first_pos: int | None = None,
    ) -> None:
        position = tracking.notification_id
        body = {**body, "version": event.originator_version, "position": position}
        links = [("parent", body["parent"])] if kind == "topic" and body.get("parent") else []
        self._slugs[event.originator_id] = slug
        if kind == "actor":
            self._names[slug] = body["name"]
        row = Row(kind, slug, position, first_pos or position, body, {}, links)
        self.view.open(row, first=first_pos is None)

    def _change_entity(
        self,
        kind: Entity,
        event: DomainEvent,
        tracking: Tracking,
        change: Any,
    ) -> None:
        self._tick(event, tracking)
        slug = self._slug_of(kind, event)
        row = self.view.current(kind, slug)
        if row is not None:
            self._open_entity(kind, slug, change(row.body), event, tracking, row.first_pos)

    def _slug_of(self, kind: Entity, event: DomainEvent) -> str:
        """Later events name an actor or topic by UUID only; ids are uuid5 of slugs, so
        the slugs stored so far are enough to find it after a restart."""
        if event.originator_id not in self._slugs:
            make = actor_id if kind == "actor" else topic_id
            for ref in self.view.current_refs(kind):
                self._slugs[make(ref)] = ref
        return self._slugs[event.originator_id]

    # Records -----------------------------------------------------------------------

    @process_event.register
    def _(self, event: Record.Recorded, tracking: Tracking) -> None:
        self._tick(event, tracking)
        kind = RECORDED_KINDS.get(type(event)) or next(
            k for k, cls in RECORD_CLASSES.items() if isinstance(event, cls.Recorded)
        )
        ref = str(event.originator_id)
        self._open_record(
            kind,
            ref,
            event,
            tracking,
            None,
            lambda: {
                "kind": kind,
                "id": ref,
                "key": event.key,
                "content": event.content,
                "first_recorded_at": utc_text(event.timestamp),
            },
        )

    @process_event.register
    def _(self, event: Record.Corrected, tracking: Tracking) -> None:
        self._change_record(event, tracking, lambda c: merge(c, event.changes))

    @process_event.register
    def _(self, event: Record.SourceAdded, tracking: Tracking) -> None:
        source = event.source
        self._change_record(event, tracking, lambda c: {**c, "sources": [*c["sources"], source]})

    @process_event.register
    def _(self, event: Record.TopicsTagged, tracking: Tracking) -> None:
        topics = event.topics
        self._change_record(
            event, tracking, lambda c: {**c, "topics": [*c.get("topics", []), *topics]}
        )

    @process_event.register
    def _(self, event: Record.TopicsUntagged, tracking: Tracking) -> None:
        gone = set(event.topics)
        self._change_record(
            event,
            tracking,
            lambda c: {**c, "topics": [t for t in c.get("topics", []) if t not in gone]},
        )

    @process_event.register
    def _(self, event: Record.Retracted, tracking: Tracking) -> None:
        self._tick(event, tracking)
        row = self.view.current_record(str(event.originator_id))
        if row is not None:
            self.view.close(row.kind, row.ref, tracking.notification_id)

    def _change_record(self, event: DomainEvent, tracking: Tracking, change: Any) -> None:
        self._tick(event, tracking)
        row = self.view.current_record(str(event.originator_id))
        if row is None:
            return
        state = row.state
        self._open_record(
            row.kind,
            row.ref,
            event,
            tracking,
            row.first_pos,
            lambda: {**state, "content": change(state["content"])},
        )

    def _open_record(
        self,
        kind: str,
        ref: str,
        event: DomainEvent,
        tracking: Tracking,
        first_pos: int | None,
        make_state: Callable[[], dict[str, Any]],
    ) -> None:
        """Open a record's next version; its item is made once for every runner of the
        process (a rebuild beside the live view makes the same)."""
        position = tracking.notification_id
        made = self.shared.items.get(
            (ref, event.originator_version),
            lambda: self._make_item(
                make_state(), event.originator_version, position, event.timestamp
            ),
        )
        row = Row(
            kind,
            ref,
            position,
            first_pos or position,
            made.body,
            made.state,
            made.links,
            start_at=made.start_at,
            end_at=made.end_at,
            body_text=made.body_text,
            state_text=made.state_text,
        )
        self.view.open(row, first=first_pos is None)

    def _make_item(
        self, state: dict[str, Any], version: int, position: int, recorded_at: datetime
    ) -> Item:
        occurred = parse_when(state["content"]["occurred_at"])
        body = self.item(state, version, position, recorded_at, occurred)
        content = state["content"]
        topics = content.get("topics", [])
        under = sorted(self._under(topics) - set(topics))
        links = [*dict.fromkeys(_links(content)), *(("under", topic) for topic in under)]
        return Item(body, state, dumps(body), dumps(state), occurred.start, occurred.end, links)

    def item(
        self,
        state: dict[str, Any],
        version: int,
        position: int,
        recorded_at: datetime,
        occurred: When,
    ) -> dict[str, Any]:
        """A timeline item: the record's fields, actors expanded, times normalised."""
        content = state["content"]
        item: dict[str, Any] = {"kind": state["kind"], "id": state["id"], "key": state["key"]}
        for name, value in content.items():
            if name == "kind":  # an occurrence's kind; `kind` says which record this is
                item["occurrence_kind"] = value
            elif name == "speaker":
                item[name] = self._actor(value)
            elif name in ACTOR_FIELDS:
                item[name] = [self._actor(slug) for slug in value]
            else:
                item[name] = value
        item.update(
            occurred_at=_start_text(occurred.text),
            occurred_precision=occurred.precision,
            occurred_as_given=occurred.text,
            version=version,
            position=position,
            recorded_at=utc_text(recorded_at),
            first_recorded_at=state["first_recorded_at"],
        )
        return item

    def _actor(self, slug: str) -> dict[str, str]:
        name = self._names.get(slug)
        if name is None:
            row = self.view.current("actor", slug)
            name = row.body["name"] if row is not None else slug
            self._names[slug] = name
        return {"id": slug, "name": name}


@lru_cache(maxsize=8192)
def _start_text(occurred_at: str) -> str:
    """The UTC text of an occurred time's start: histories repeat their times."""
    return utc_text(parse_when(occurred_at).start)


def _links(content: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """What a record version is linked to: the actors it names, and its topics."""
    for field in ACTOR_FIELDS:
        for slug in _slugs(content.get(field)):
            yield "actor", slug
    for slug in content.get("topics", []):
        yield "topic", slug


def _slugs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    assert isinstance(value, list)
    return [str(v) for v in value]
