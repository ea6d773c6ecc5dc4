"""Actors (people, states, organizations, groups) and topics: the vocabulary records use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import rules
from domain.errors import InvalidInput, RuleViolation
from domain.ids import TOPIC_TREE_ID, actor_id, topic_id
from domain.when import parse_when
from domain.writers import Authored


class Actor(Aggregate):
    """A person, state, organization or group that speaks or acts."""

    class Event(Authored):
        """Each event says who wrote it (see domain.writers)."""

    class Registered(Aggregate.Created):
        slug: str
        name: str
        kind: str
        aliases: list[str]
        roles: list[dict[str, Any]]
        fingerprint: str

    class AliasAdded(Aggregate.Event):
        alias: str

    class RoleAssumed(Aggregate.Event):
        role: dict[str, Any]

    class RoleEnded(Aggregate.Event):
        title: str
        until: str

    @staticmethod
    def create_id(slug: str) -> UUID:
        return actor_id(slug)

    @event(Registered)
    def __init__(
        self,
        slug: str,
        name: str,
        kind: str,
        aliases: list[str],
        roles: list[dict[str, Any]],
        fingerprint: str,
    ) -> None:
        self.fingerprint = fingerprint
        self.slug = slug
        self.name = name
        self.kind = kind
        self.aliases: list[str] = list(aliases)
        self.roles: list[dict[str, Any]] = [dict(r) for r in roles]

    @event(AliasAdded)
    def add_alias(self, alias: str) -> None:
        self.aliases.append(alias)

    @event(RoleAssumed)
    def assume_role(self, role: dict[str, Any]) -> None:
        self.roles.append(dict(role))

    @event(RoleEnded)
    def end_role(self, title: str, until: str) -> None:
        self.roles[self.open_role(title)]["until"] = until

    def open_role(self, title: str) -> int:
        """The index of the role of that title that has no end yet."""
        for i in reversed(range(len(self.roles))):
            if self.roles[i]["title"] == title and "until" not in self.roles[i]:
                return i
        raise RuleViolation(f"{self.slug} holds no open role {title!r}", field="title")


class Topic(Aggregate):
    """A controlled subject a record bears on, in a tree."""

    class Event(Authored):
        """Each event says who wrote it (see domain.writers)."""

    class Defined(Aggregate.Created):
        slug: str
        label: str
        parent: str | None
        description: str | None
        fingerprint: str

    class Relabelled(Aggregate.Event):
        label: str

    class Moved(Aggregate.Event):
        parent: str | None

    @staticmethod
    def create_id(slug: str) -> UUID:
        return topic_id(slug)

    @event(Defined)
    def __init__(
        self,
        slug: str,
        label: str,
        parent: str | None,
        description: str | None,
        fingerprint: str,
    ) -> None:
        self.fingerprint = fingerprint
        self.slug = slug
        self.label = label
        self.parent = parent
        self.description = description

    @event(Relabelled)
    def relabel(self, label: str) -> None:
        self.label = label

    @event(Moved)
    def move(self, parent: str | None) -> None:
        self.parent = parent


class TopicTree(Aggregate):
    """The shape of the topic tree as one consistency boundary. Every move of a topic is
    recorded here too, so two moves saved at once collide on this aggregate's version and
    the later one is checked again against the earlier: without it, two moves each valid
    alone (x under y, y under x) could both be stored and close a cycle. It knows where
    each moved topic hangs now (a topic never moved hangs where it was defined)."""

    class Planted(Aggregate.Created):
        pass

    class TopicMoved(Authored):
        topic: str
        parent: str | None

    @staticmethod
    def create_id() -> UUID:
        return TOPIC_TREE_ID  # there is one tree

    @event(Planted)
    def __init__(self) -> None:
        self.moved: dict[str, str | None] = {}  # topic: its parent since its last move

    @event(TopicMoved)
    def record_move(self, topic: str, parent: str | None) -> None:
        self.moved[topic] = parent


def clean_role(value: object, field: str = "role") -> dict[str, Any]:
    """A dated role: `{title, organization?, since?, until?}`."""
    raw = rules.known_keys(value, field, _ROLE_FIELDS)
    if raw.get("title") is None:
        raise InvalidInput("is required", field=f"{field}.title")
    role = {
        name: rule(raw[name], f"{field}.{name}")
        for name, rule in _ROLE_FIELDS.items()
        if raw.get(name) is not None
    }
    if (
        "since" in role
        and "until" in role
        and parse_when(role["until"]).end <= parse_when(role["since"]).start
    ):
        raise InvalidInput("must not be before since", field=f"{field}.until")
    return role


_ROLE_FIELDS: dict[str, Callable[[object, str], Any]] = {
    "title": rules.name,
    "organization": rules.slug,
    "since": rules.when,
    "until": rules.when,
}


def clean_actor(data: Mapping[str, object]) -> dict[str, Any]:
    """A registration: `{id, name, kind, aliases?, roles?}`."""
    raw = rules.known_keys(
        dict(data), "", dict.fromkeys(("id", "name", "kind", "aliases", "roles"))
    )
    for required in ("id", "name", "kind"):
        if raw.get(required) is None:
            raise InvalidInput("is required", field=required)
    return {
        "slug": rules.slug(raw["id"], "id"),
        "name": rules.name(raw["name"], "name"),
        "kind": rules.choice(raw["kind"], "kind", rules.ACTOR_KINDS),
        "aliases": rules.items(raw.get("aliases") or [], "aliases", rules.name),
        "roles": rules.items(
            raw.get("roles") or [], "roles", clean_role, max_items=rules.ROLES_MAX
        ),
    }


def clean_topic(data: Mapping[str, object]) -> dict[str, Any]:
    """A definition: `{id, label, parent?, description?}`."""
    raw = rules.known_keys(dict(data), "", dict.fromkeys(("id", "label", "parent", "description")))
    for required in ("id", "label"):
        if raw.get(required) is None:
            raise InvalidInput("is required", field=required)
    parent = raw.get("parent")
    description = raw.get("description")
    return {
        "slug": rules.slug(raw["id"], "id"),
        "label": rules.name(raw["label"], "label"),
        "parent": None if parent is None else rules.slug(parent, "parent"),
        "description": None
        if description is None
        else rules.text(description, "description", max_length=rules.DESCRIPTION_MAX),
    }
