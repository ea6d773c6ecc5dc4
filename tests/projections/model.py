"""A pure-Python oracle for the read models, written from their specification only.

`fold` reads domain events (with their positions) into plain dicts of actors, topics and
records; the query functions answer what each read model should answer from that state.
Asking "as of position P" is folding only the events at or before P. Nothing here uses
the projections: a disagreement between the two is a bug in one of them.

The specification, in short:

- a record is current from its first event until it is retracted; each later event
  makes a new version (version = the aggregate version, position = that event's);
- the timeline holds every current record ordered by (occurred start in UTC, position of
  the record's first event); a topic filter includes the topic's descendants in the tree
  as it stood; an actor filter matches speaker, by, participants and mentions; a window
  [since, until) keeps a record whose precision interval [start, end) overlaps it;
- who-said-what groups the current statements and announcements on a topic (and below)
  by speaker (a statement's speaker, an announcement's `by`), most records first;
- the topic tree counts, for each topic, the current records tagged with it (`count`)
  and those tagged with it or anything below it, each once (`total`);
- an actor's profile counts the current records that concern the actor, each once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.when import parse_when

RECORD_KINDS = ("statement", "announcement", "occurrence")
SAID_KINDS = ("statement", "announcement")
PEOPLE_FIELDS = ("speaker", "by", "participants", "mentions")  # content naming actors
LATEST = 10  # how many of an actor's records a profile shows


@dataclass
class ActorState:
    slug: str
    name: str
    kind: str
    aliases: list[str]
    roles: list[dict[str, Any]]
    version: int
    position: int


@dataclass
class TopicState:
    slug: str
    label: str
    parent: str | None
    description: str | None
    version: int
    position: int


@dataclass
class RecordState:
    kind: str
    id: str
    key: str
    content: dict[str, Any]
    version: int
    position: int  # of the event that made this version
    first_position: int  # of the record's first event
    recorded_at: datetime  # of the event that made this version
    first_recorded_at: datetime
    retracted: bool = False

    @property
    def start(self) -> datetime:
        return parse_when(self.content["occurred_at"]).start

    @property
    def end(self) -> datetime:
        return parse_when(self.content["occurred_at"]).end

    def people(self) -> set[str]:
        """Every actor the record concerns."""
        found: set[str] = set()
        for name in PEOPLE_FIELDS:
            value = self.content.get(name)
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, list):
                found.update(value)
        return found

    def speakers(self) -> list[str]:
        if self.kind == "statement":
            return [self.content["speaker"]]
        if self.kind == "announcement":
            return list(self.content["by"])
        return []


@dataclass
class World:
    """Everything known as of one position."""

    actors: dict[str, ActorState] = field(default_factory=dict)
    topics: dict[str, TopicState] = field(default_factory=dict)
    records: dict[str, RecordState] = field(default_factory=dict)
    slugs: dict[UUID, str] = field(default_factory=dict)  # actor and topic ids

    # Folding ----------------------------------------------------------------------------

    def apply(self, position: int, event: Any) -> None:
        owner, _, what = type(event).__qualname__.partition(".")
        version: int = event.originator_version
        if owner == "Actor":
            self._actor(position, version, what, event)
        elif owner == "Topic":
            self._topic(position, version, what, event)
        elif owner == "Record" or owner.lower() in RECORD_KINDS:
            # Later events may be stored under the base class: the kind is the first's.
            self._record(owner.lower(), position, version, what, event)
        elif owner != "TopicTree":  # the tree's events only serialise moves: no read model
            raise AssertionError(f"an event the model does not know: {type(event)}")

    def _actor(self, position: int, version: int, what: str, event: Any) -> None:
        if what == "Registered":
            self.slugs[event.originator_id] = event.slug
            self.actors[event.slug] = ActorState(
                event.slug,
                event.name,
                event.kind,
                list(event.aliases),
                [dict(r) for r in event.roles],
                version,
                position,
            )
            return
        actor = self.actors[self.slugs[event.originator_id]]
        if what == "AliasAdded":
            actor.aliases = [*actor.aliases, event.alias]
        elif what == "RoleAssumed":
            actor.roles = [*actor.roles, dict(event.role)]
        elif what == "RoleEnded":
            for role in reversed(actor.roles):
                if role["title"] == event.title and "until" not in role:
                    role["until"] = event.until
                    break
        else:
            raise AssertionError(f"an actor event the model does not know: {what}")
        actor.version, actor.position = version, position

    def _topic(self, position: int, version: int, what: str, event: Any) -> None:
        if what == "Defined":
            self.slugs[event.originator_id] = event.slug
            self.topics[event.slug] = TopicState(
                event.slug, event.label, event.parent, event.description, version, position
            )
            return
        topic = self.topics[self.slugs[event.originator_id]]
        if what == "Relabelled":
            topic.label = event.label
        elif what == "Moved":
            topic.parent = event.parent
        else:
            raise AssertionError(f"a topic event the model does not know: {what}")
        topic.version, topic.position = version, position

    def _record(self, kind: str, position: int, version: int, what: str, event: Any) -> None:
        ref = str(event.originator_id)
        if what == "Recorded":
            assert kind in RECORD_KINDS, f"a record of no kind: {type(event)}"
            self.records[ref] = RecordState(
                kind,
                ref,
                event.key,
                dict(event.content),
                version,
                position,
                position,
                event.timestamp,
                event.timestamp,
            )
            return
        rec = self.records[ref]
        assert not rec.retracted, "an event after a retraction"
        content = dict(rec.content)
        if what == "Corrected":
            for name, value in event.changes.items():
                if value is None:
                    content.pop(name, None)
                else:
                    content[name] = value
        elif what == "Retracted":
            rec.retracted = True
        elif what == "SourceAdded":
            content["sources"] = [*content["sources"], event.source]
        elif what == "TopicsTagged":
            content["topics"] = [*content.get("topics", []), *event.topics]
        elif what == "TopicsUntagged":
            content["topics"] = [t for t in content.get("topics", []) if t not in event.topics]
        else:
            raise AssertionError(f"a record event the model does not know: {what}")
        rec.content = content
        rec.version, rec.position, rec.recorded_at = version, position, event.timestamp

    # Questions --------------------------------------------------------------------------

    def current(self) -> list[RecordState]:
        """The current records in timeline order."""
        live = [r for r in self.records.values() if not r.retracted]
        return sorted(live, key=lambda r: (r.start, r.first_position))

    def below(self, topic: str) -> set[str]:
        """The topic and its descendants, in the tree as it stands."""
        found = {topic}
        grew = True
        while grew:
            grew = False
            for t in self.topics.values():
                if t.parent in found and t.slug not in found:
                    found.add(t.slug)
                    grew = True
        return found

    def timeline(
        self,
        topic: str | None = None,
        actor: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        subtree = self.below(topic) if topic is not None else None
        out = []
        for rec in self.current():
            if kind is not None and rec.kind != kind:
                continue
            if actor is not None and actor not in rec.people():
                continue
            if subtree is not None and not subtree & set(rec.content.get("topics", [])):
                continue
            if not in_window(rec, since, until):
                continue
            out.append(self.item(rec))
        return out

    def record(self, ref: str) -> dict[str, Any] | None:
        rec = self.records.get(ref)
        return None if rec is None or rec.retracted else self.item(rec)

    def who_said_what(
        self, topic: str, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any] | None:
        found = self.topics.get(topic)
        if found is None:
            return None
        subtree = self.below(topic)
        said: dict[str, list[dict[str, Any]]] = {}
        for rec in self.current():
            if rec.kind not in SAID_KINDS or not in_window(rec, since, until):
                continue
            if not subtree & set(rec.content.get("topics", [])):
                continue
            for slug in rec.speakers():
                said.setdefault(slug, []).append(self.item(rec))
        speakers = [
            {
                "actor": {
                    "id": slug,
                    "name": self.actors[slug].name,
                    "kind": self.actors[slug].kind,
                },
                "count": len(items),
                "first_at": items[0]["occurred_at"],
                "first_precision": items[0]["occurred_precision"],
                "last_at": items[-1]["occurred_at"],
                "last_precision": items[-1]["occurred_precision"],
                "records": items,
            }
            for slug, items in said.items()
        ]
        speakers.sort(key=lambda s: (-s["count"], s["actor"]["name"]))
        return {"topic": {"id": topic, "label": found.label}, "speakers": speakers}

    def topic_tree(self) -> list[dict[str, Any]]:
        """Depth first, children in slug order."""
        live = self.current()
        out: list[dict[str, Any]] = []

        def children(slug: str | None) -> list[str]:
            return sorted(
                t.slug
                for t in self.topics.values()
                if (t.parent if t.parent in self.topics else None) == slug
            )

        def walk(slug: str, depth: int) -> None:
            t = self.topics[slug]
            subtree = self.below(slug)
            out.append(
                {
                    "id": slug,
                    "label": t.label,
                    "parent": t.parent,
                    "description": t.description,
                    "version": t.version,
                    "position": t.position,
                    "depth": depth,
                    "count": sum(slug in r.content.get("topics", []) for r in live),
                    "total": sum(bool(subtree & set(r.content.get("topics", []))) for r in live),
                    "children": children(slug),
                }
            )
            for child in children(slug):
                walk(child, depth + 1)

        for root in children(None):
            walk(root, 0)
        return out

    def profile(self, slug: str) -> dict[str, Any] | None:
        actor = self.actors.get(slug)
        if actor is None:
            return None
        mine = [r for r in self.current() if slug in r.people()]
        per_topic: dict[str, int] = {}
        for rec in mine:
            for topic in rec.content.get("topics", []):
                per_topic[topic] = per_topic.get(topic, 0) + 1
        latest = [
            {**self.item(r), "actor_role": role_held(actor.roles, r.start)}
            for r in reversed(mine[-LATEST:])
        ]
        return {
            "id": slug,
            "name": actor.name,
            "kind": actor.kind,
            "aliases": actor.aliases,
            "roles": actor.roles,
            "version": actor.version,
            "position": actor.position,
            "records": len(mine),
            "by_topic": [
                {"topic": t, "count": n}
                for t, n in sorted(per_topic.items(), key=lambda tn: (-tn[1], tn[0]))
            ],
            "latest": latest,
        }

    def item(self, rec: RecordState) -> dict[str, Any]:
        """A record as the read models show it: actors with their names, times in UTC."""
        occurred = parse_when(rec.content["occurred_at"])
        out: dict[str, Any] = {"kind": rec.kind, "id": rec.id, "key": rec.key}
        for name, value in rec.content.items():
            if name == "kind":
                out["occurrence_kind"] = value
            elif name == "speaker":
                out["speaker"] = self.person(value)
            elif name in PEOPLE_FIELDS:
                out[name] = [self.person(slug) for slug in value]
            else:
                out[name] = value
        out["occurred_at"] = utc(occurred.start)
        out["occurred_precision"] = occurred.precision
        out["occurred_as_given"] = occurred.text
        out["version"] = rec.version
        out["position"] = rec.position
        out["recorded_at"] = utc(rec.recorded_at)
        out["first_recorded_at"] = utc(rec.first_recorded_at)
        # Each topic's label as the world stands (a topic relabelled since says so).
        out["topic_labels"] = {t: self.topics[t].label for t in rec.content.get("topics", [])}
        return out

    def person(self, slug: str) -> dict[str, str]:
        return {"id": slug, "name": self.actors[slug].name}


def fold(events: Iterable[tuple[int, Any]], upto: int | None = None) -> World:
    """The world after the events at or before `upto` (all of them when None)."""
    world = World()
    for position, event in events:
        if upto is None or position <= upto:
            world.apply(position, event)
    return world


def in_window(rec: RecordState, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or rec.end > since) and (until is None or rec.start < until)


def role_held(roles: list[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    """The last listed role whose [since, until) holds the moment."""
    held = None
    for role in roles:
        if "since" in role and parse_when(role["since"]).start > moment:
            continue
        if "until" in role and parse_when(role["until"]).end <= moment:
            continue
        held = role
    return held


def utc(moment: datetime) -> str:
    """UTC with microseconds and a Z, the read models' text form of an instant."""
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond:06d}Z"
    )
