"""Request and response bodies: strict msgspec Structs whose types carry the limits.

Requests forbid unknown fields; no number passes where a string or a date belongs.
The OpenAPI document's schemas are generated from these same Structs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from domain import rules
from domain.records import RecordKind as RecordKind
from domain.rules import Channel as Channel
from domain.rules import OccurrenceKind as OccurrenceKind
from domain.when import Precision as Precision

Slug = Annotated[
    str,
    Meta(
        pattern=f"^{rules.SLUG.pattern}$",
        max_length=rules.SLUG_MAX,
        description="a lower-case slug",
    ),
]
When = Annotated[
    str,
    Meta(
        min_length=4,
        max_length=40,
        # [0-9], not \d: Python's \d also matches full-width and Arabic-Indic digits.
        pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
        r"(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?$",
        description="a year, month, day, or instant with a UTC offset",
        examples=["2014", "2014-03", "2014-03-18", "2025-02-12T15:30:00-05:00"],
    ),
]


# The limits and closed sets are the domain's (domain/rules.py, domain/records.py).
Name = Annotated[str, Meta(min_length=1, max_length=rules.NAME_MAX)]
Short = Annotated[str, Meta(min_length=1, max_length=rules.TITLE_MAX)]
Long = Annotated[str, Meta(min_length=1, max_length=rules.TEXT_MAX)]
Reason = Annotated[str, Meta(min_length=1, max_length=rules.REASON_MAX)]
Key = Annotated[str, Meta(min_length=1, max_length=rules.KEY_MAX)]
Description = Annotated[str, Meta(min_length=1, max_length=rules.DESCRIPTION_MAX)]
SourceTitle = Annotated[str, Meta(min_length=1, max_length=rules.SOURCE_TITLE_MAX)]
Excerpt = Annotated[str, Meta(min_length=1, max_length=rules.EXCERPT_MAX)]
Url = Annotated[str, Meta(min_length=1, max_length=rules.URL_MAX, description="http(s) URL or URN")]
Slugs = Annotated[list[Slug], Meta(max_length=rules.LIST_MAX)]
Authors = Annotated[list[Slug], Meta(min_length=1, max_length=rules.LIST_MAX)]
Aliases = Annotated[list[Name], Meta(max_length=rules.LIST_MAX)]


class Body(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of request bodies."""


class Source(Body, kw_only=True):
    publisher: Name
    url: Url
    title: SourceTitle | None = None
    published_at: When | None = None
    excerpt: Excerpt | None = None


Sources = Annotated[list[Source], Meta(min_length=1, max_length=rules.SOURCES_MAX)]


class Role(Body, kw_only=True):
    title: Name
    organization: Slug | None = None
    since: When | None = None
    until: When | None = None


class ActorIn(Body, kw_only=True):
    id: Slug
    name: Name
    kind: rules.ActorKind  # not imported by name: the document keeps this set inline
    aliases: Aliases = []
    roles: Annotated[list[Role], Meta(max_length=rules.ROLES_MAX)] = []


class AliasIn(Body, kw_only=True):
    alias: Name


class RoleEndIn(Body, kw_only=True):
    title: Name
    until: When


class TopicIn(Body, kw_only=True):
    id: Slug
    label: Name
    parent: Slug | None = None
    description: Description | None = None


class TopicChangeIn(Body, kw_only=True):
    label: Name | None = None
    parent: Slug | None = None


class StatementIn(Body, kw_only=True):
    key: Key | None = None
    speaker: Slug
    quote: Long | None = None
    summary: Long | None = None
    occurred_at: When
    channel: Channel
    location: Short | None = None
    topics: Slugs = []
    mentions: Slugs = []
    sources: Sources


class AnnouncementIn(Body, kw_only=True):
    key: Key | None = None
    by: Authors
    quote: Long | None = None
    summary: Long
    occurred_at: When
    channel: Channel
    location: Short | None = None
    topics: Slugs = []
    mentions: Slugs = []
    sources: Sources


class OccurrenceIn(Body, kw_only=True):
    key: Key | None = None
    title: Short
    summary: Long | None = None
    kind: OccurrenceKind
    occurred_at: When
    ended_at: When | None = None
    participants: Slugs = []
    location: Short | None = None
    topics: Slugs = []
    sources: Sources


class Changes(Body, kw_only=True):
    """The fields a correction changes; `null` removes an optional field."""

    speaker: Slug | None = None
    by: Authors | None = None
    title: Short | None = None
    quote: Long | None = None
    summary: Long | None = None
    kind: OccurrenceKind | None = None
    occurred_at: When | None = None
    ended_at: When | None = None
    channel: Channel | None = None
    location: Short | None = None
    topics: Slugs | None = None
    mentions: Slugs | None = None
    participants: Slugs | None = None
    sources: Sources | None = None


class CorrectionIn(Body, kw_only=True):
    changes: dict[str, Any]  # checked as `Changes` below, so explicit nulls survive
    reason: Reason


class RetractionIn(Body, kw_only=True):
    reason: Reason


class SourceIn(Body, kw_only=True):
    source: Source


class TagsIn(Body, kw_only=True):
    add: Slugs = []
    remove: Slugs = []


RECORD_BODIES: dict[str, type[Body]] = {
    "statement": StatementIn,
    "announcement": AnnouncementIn,
    "occurrence": OccurrenceIn,
}

Article = Annotated[str, Meta(min_length=1, description="an article (bounded by the body)")]


class DraftsIn(Body, kw_only=True):
    text: Article | None = None
    html: Article | None = None
    published_at: When
    url: Url | None = None
    publisher: Name | None = None
    title: SourceTitle | None = None


# Responses ------------------------------------------------------------------------------


DraftKind = Literal["statement", "announcement"]


class Sentence(Struct, kw_only=True):
    start: int
    end: int


class DraftNote(Struct, kw_only=True):
    speaker_text: str
    confidence: float
    rule: str
    sentence: Sentence
    date_text: str | None
    existing: str | None


class Draft(Struct, kw_only=True):
    """A line of the backfill format: `speaker` for a statement (null when no known actor
    said it), `by` for an announcement."""

    type: DraftKind
    key: str
    speaker: str | msgspec.UnsetType | None = msgspec.UNSET
    by: list[str] | msgspec.UnsetType = msgspec.UNSET
    quote: str | msgspec.UnsetType = msgspec.UNSET
    summary: str
    channel: Channel
    occurred_at: str
    topics: list[str]
    mentions: list[str]
    sources: list[Source]
    draft: DraftNote


class Drafts(Struct, kw_only=True):
    text: str
    drafts: list[Draft]


class Written(Struct, kw_only=True):
    id: str
    version: int
    position: int
    recorded_at: str
    duplicate: bool = False


class ActorRef(Struct, kw_only=True):
    id: str
    name: str


class Item(Struct, kw_only=True, omit_defaults=True):
    """A timeline item: a record's fields, actors expanded, occurred time normalised."""

    kind: RecordKind
    id: str
    key: str
    occurred_at: str
    occurred_precision: Precision
    occurred_as_given: str
    version: int
    position: int
    recorded_at: str
    first_recorded_at: str
    topics: list[str] = []
    topic_labels: Annotated[
        dict[str, str],
        Meta(
            description="each of `topics` with its label as the topic stood at the "
            "answer's position (a topic may be relabelled after the record was written)"
        ),
    ]
    sources: list[Source] = []
    speaker: ActorRef | None = None
    by: list[ActorRef] | None = None
    participants: list[ActorRef] | None = None
    mentions: list[ActorRef] | None = None
    quote: str | None = None
    summary: str | None = None
    title: str | None = None
    occurrence_kind: OccurrenceKind | None = None
    channel: Channel | None = None
    location: str | None = None
    ended_at: str | None = None
    actor_role: dict[str, Any] | None = None


class Page(Struct, kw_only=True):
    items: list[Item]
    next_cursor: str | None


class SpeakerActor(Struct, kw_only=True):
    id: str
    name: str
    kind: str


class Speaker(Struct, kw_only=True):
    """A speaker on a page of who said what: its records there, in occurred order. A
    speaker whose records run past the page's end is listed again, first on the next."""

    actor: SpeakerActor
    count: Annotated[int, Meta(description="all the speaker's records, on every page")]
    first_at: Annotated[
        str, Meta(description="the UTC start of the occurred time of the speaker's first record")
    ]
    first_precision: Annotated[
        Precision, Meta(description="to what precision first_at is known: its occurred_precision")
    ]
    last_at: Annotated[
        str, Meta(description="the UTC start of the occurred time of the speaker's last record")
    ]
    last_precision: Annotated[
        Precision, Meta(description="to what precision last_at is known: its occurred_precision")
    ]
    records: list[Item]
    offset: Annotated[
        int, Meta(description="the place of this page's first record among the `count`")
    ]


class TopicRef(Struct, kw_only=True):
    id: str
    label: str


class WhoSaidWhat(Struct, kw_only=True):
    topic: TopicRef
    speakers: list[Speaker]
    next_cursor: str | None


class ActorOut(Struct, kw_only=True):
    id: str
    name: str
    kind: str
    aliases: list[str]
    roles: list[Role]
    version: int
    position: int


class TopicCount(Struct, kw_only=True):
    topic: str
    count: int


class ActorProfile(ActorOut, kw_only=True):
    records: int
    by_topic: list[TopicCount]
    latest: list[Item]


class ActorPage(Struct, kw_only=True):
    items: list[ActorOut]
    next_cursor: str | None


class TopicOut(Struct, kw_only=True):
    id: str
    label: str
    parent: str | None
    description: str | None
    version: int
    position: int
    depth: int
    count: int
    total: int
    children: list[str]
    # On the first topic of a cycle among parents (stored before moves were serialised):
    # the cycle, parent after parent. Its topics are listed from here.
    cycle: list[str] | None = None


class TopicPage(Struct, kw_only=True):
    items: list[TopicOut]
    next_cursor: str | None


class Event(Struct, kw_only=True):
    position: int
    type: str
    aggregate_id: str
    aggregate_version: int
    recorded_at: str
    data: dict[str, Any]


class EventPage(Struct, kw_only=True):
    events: list[Event]
    next_after: int


class HistoryPage(Struct, kw_only=True):
    """A record's events in version order (position 0: not read by the read models yet)."""

    items: list[Event]
    next_cursor: str | None


class ProjectionOut(Struct, kw_only=True):
    name: str
    state: str
    position: int
    head: int
    lag: int
    error: str | None = None
    error_position: int | None = None
    read_models: list[str] = []  # the read models answered from this projection's rows
    warnings: list[str] = []  # what is wrong in its rows, such as a cycle of topics


class ProjectionList(Struct, kw_only=True):
    items: list[ProjectionOut]


class Health(Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


class BackfillRejected(Struct, kw_only=True):
    line: int
    key: str | None
    error: str


class BackfillReport(Struct, kw_only=True):
    accepted: int
    duplicates: int
    rejected: list[BackfillRejected]
    first_position: int | None
    last_position: int | None
    elapsed: float = 0.0
    rate: float = 0.0  # lines per second
    batch_id: str | None = None
    rejected_omitted: int = 0  # rejected lines past the first MAX_REJECTED: counted, not listed


class FieldError(Struct, kw_only=True):
    field: str
    message: str


class Problem(Struct, kw_only=True):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []


def to_builtins(body: Body) -> dict[str, Any]:
    built = msgspec.to_builtins(body)
    assert isinstance(built, dict)
    return built


# The analyst's reads (service/http/browse.py) ---------------------------------------------

ChangeKind = Literal["added", "corrected", "sourced", "tagged", "retracted"]
Bucket = Literal["day", "week", "month", "year"]


class Change(Struct, kw_only=True):
    """One event that changed a record, at its position."""

    position: int
    recorded_at: str
    change: ChangeKind
    kind: RecordKind
    id: str
    # The item's fields whose values the change changed (version, position and
    # recorded_at aside); empty when added or retracted.
    fields: list[str]
    item: Item  # after the change; for a retraction, the last version before it


class ChangePage(Struct, kw_only=True):
    from_position: int  # the changes after this position...
    to_position: int  # ...up to this one, included
    items: list[Change]
    next_cursor: str | None


class BucketCount(Struct, kw_only=True):
    start: Annotated[
        str, Meta(description="the bucket's first day, UTC", extra_json_schema={"format": "date"})
    ]
    count: int


class Counts(Struct, kw_only=True):
    bucket: Bucket
    items: list[BucketCount]  # the buckets that hold records, in order
    total: int
