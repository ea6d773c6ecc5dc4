"""An OpenAPI 3.1 document a client generator can trust, and a docs page that needs no
internet.

Litestar gives the paths and their parameters; the request and response schemas come
from the msgspec Structs themselves (so `forbid_unknown_fields` shows as
`additionalProperties: false` and limits are kept); every error is documented as
`application/problem+json`; security follows each route's scope. What a person reads —
each operation's id, summary and description, each parameter's description, the closed
sets, the request examples — is written once, in the tables below: a route or a query
parameter added without its line there is left undocumented, and a test fails.
"""

from __future__ import annotations

import re
import typing
from typing import Any, NamedTuple

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin

from domain.ids import NAMESPACE
from service.files.backfill import MAX_REJECTED
from service.http import schemas
from service.http.ops import READY_LAG
from service.http.page import ASSETS, send_asset
from service.http.params import MAX_LIMIT, MAX_SEARCH
from service.http.problems import PROBLEM_JSON, TITLES
from service.http.routing import Routes

routes = Routes()


class Op(NamedTuple):
    id: str
    summary: str
    description: str


# What a record of each kind is, as the operations on it say.
_KINDS = {
    "statement": ("statements", "Statement", "what an actor said, on a channel, with sources"),
    "announcement": (
        "announcements",
        "Announcement",
        "what one or more actors announced, with sources",
    ),
    "occurrence": ("occurrences", "Occurrence", "something that happened, with sources"),
}
_IF_MATCH = (
    ' `If-Match: "<version>"` makes it conditional: 412 when the version is not the '
    "current one, 409 when another writer changed it first."
)
_PAGED = " A page at a time: pass `next_cursor` back as `cursor`."
_AS_OF = (
    " As now, or as the service knew it at an earlier point of its log (`as_of`, `as_of_position`)."
)


def _record_operations(kind: str) -> dict[tuple[str, str], Op]:
    plural, name, what = _KINDS[kind]
    base = f"/{plural}"
    one = f"{'an' if kind[0] in 'ao' else 'a'} {kind}"  # "an announcement"
    return {
        ("POST", base): Op(
            f"create{name}",
            f"Record {one}",
            f"Record {what}. Its id is made from its `key` (or, without one, from its "
            "content), so the same record sent again answers 200 with `duplicate: true` "
            "and stores nothing; the same key with other content is a 409. Every actor and "
            "topic it names must exist (422 naming the field).",
        ),
        ("POST", f"{base}/{{id}}/corrections"): Op(
            f"correct{name}",
            f"Correct {one}",
            "Change some of its fields, giving the reason. The earlier version stays in "
            "the log: reads `as_of` a point before the correction answer as they did "
            "then. `null` removes an optional field; a retracted record cannot be "
            f"corrected (422).{_IF_MATCH}",
        ),
        ("POST", f"{base}/{{id}}/retraction"): Op(
            f"retract{name}",
            f"Retract {one}",
            "Withdraw it, giving the reason: current reads leave it out (and a read of it "
            f"is 410); reads as of an earlier point still show it.{_IF_MATCH}",
        ),
        ("POST", f"{base}/{{id}}/sources"): Op(
            f"add{name}Source",
            f"Add a source to {one}",
            f"Add one more source (a publisher, an address, an excerpt).{_IF_MATCH}",
        ),
        ("POST", f"{base}/{{id}}/tags"): Op(
            f"tag{name}",
            f"Tag or untag {one}",
            "Add topics to it, remove topics from it, or both in one change (stored "
            f"together or not at all).{_IF_MATCH}",
        ),
        ("GET", f"{base}/{{id}}"): Op(
            f"get{name}",
            f"Read {one}",
            f"The {kind} as a timeline item: its fields, its actors with their names, its "
            f"sources.{_AS_OF} 410 when it is retracted (read now); `ETag` is its version and "
            "a digest of the item; `If-None-Match` with it answers 304.",
        ),
        ("GET", f"{base}/by-key/{{key}}"): Op(
            f"get{name}ByKey",
            f"Read {one} by its key",
            f"The {kind} whose key this is, answered as `GET {base}/{{id}}` answers for "
            f"the id the key gives.{_AS_OF} 410 when it is retracted (read now).",
        ),
        ("GET", f"{base}/{{id}}/history"): Op(
            f"get{name}History",
            f"The history of {one}",
            "Every event of the record, oldest first: recorded, corrected, sourced, "
            "tagged, retracted, each with its position in the log and when it was recorded."
            f"{_PAGED}",
        ),
    }


# Each operation by (method, path): its id, summary and description. One line per route.
OPERATIONS: dict[tuple[str, str], Op] = {
    ("POST", "/actors"): Op(
        "registerActor",
        "Register an actor",
        "A person, a state, an organization or a group, under a slug you choose (`id`), "
        "with its aliases and roles. The same actor sent again answers 200 with "
        "`duplicate: true`; the same slug with other content is a 409.",
    ),
    ("GET", "/actors"): Op(
        "listActors",
        "List actors",
        f"Every actor with aliases and roles, in slug order.{_AS_OF}{_PAGED}",
    ),
    ("GET", "/actors/{id}"): Op(
        "getActor",
        "Read an actor's profile",
        f"The actor's roles and aliases, how many records name it by topic, and its "
        f"latest records.{_AS_OF}",
    ),
    ("POST", "/actors/{id}/aliases"): Op(
        "addActorAlias",
        "Add an alias to an actor",
        f"Another name the actor is known by.{_IF_MATCH}",
    ),
    ("POST", "/actors/{id}/roles"): Op(
        "assumeActorRole",
        "Give an actor a role",
        "A title the actor holds from a date (`since`), in an organization, until a "
        f"date if it has ended.{_IF_MATCH}",
    ),
    ("POST", "/actors/{id}/roles/end"): Op(
        "endActorRole",
        "End an actor's role",
        f"The date a role the actor holds ended.{_IF_MATCH}",
    ),
    ("POST", "/topics"): Op(
        "defineTopic",
        "Define a topic",
        "A topic under a slug you choose (`id`), below a parent topic or at the top of "
        "the tree. Reads by topic include the topics below it. The same topic sent again "
        "answers 200 with `duplicate: true`; the same slug with other content is a 409.",
    ),
    ("GET", "/topics"): Op(
        "listTopics",
        "List topics",
        "The topic tree, depth first, with each topic's count of records (its own, and "
        f"with the topics below it).{_AS_OF}{_PAGED}",
    ),
    ("GET", "/topics/{id}"): Op(
        "getTopic",
        "Read a topic",
        f"The topic, its place in the tree and its counts.{_AS_OF}",
    ),
    ("POST", "/topics/{id}/changes"): Op(
        "changeTopic",
        "Relabel or move a topic",
        "A new label, a new parent (`null`: the top of the tree), or both, stored "
        f"together. A move below itself is a 409.{_IF_MATCH}",
    ),
    ("GET", "/topics/{id}/who-said-what"): Op(
        "getWhoSaidWhat",
        "Who said what about a topic",
        "For a topic and the topics below it: each speaker (and author of "
        "announcements) with their records in order, within an optional window of "
        f"occurred time.{_AS_OF} 404 when there was no such topic then.{_PAGED}",
    ),
    ("GET", "/timeline"): Op(
        "listTimeline",
        "The timeline",
        "Every current record in the order it occurred, filtered by topic (and the "
        f"topics below it), actor, kind and a window of occurred time.{_AS_OF}{_PAGED}",
    ),
    ("GET", "/timeline/counts"): Op(
        "countTimeline",
        "Count the timeline by day, week, month or year",
        "How many records of the timeline, filtered as /timeline is, each bucket holds: "
        f"the buckets that hold any, in order, and their total.{_AS_OF}",
    ),
    ("GET", "/changes"): Op(
        "listChanges",
        "What changed between two points",
        "Every record added, corrected, sourced, tagged or retracted between two points "
        "of the log (instants or positions), in the order it was recorded, with the "
        f"fields that changed and the record after the change.{_PAGED}",
    ),
    ("GET", "/events"): Op(
        "listEvents",
        "Read the event log",
        "Every domain event after a position, in position order: the log itself, for a "
        "client that keeps its own copy. `next_after` is where the next page starts.",
    ),
    ("GET", "/events/stream"): Op(
        "streamEvents",
        "Follow the event log live",
        "The event log as Server-Sent Events, live: each event's `id` is its position, so "
        "a client that reconnects with `Last-Event-ID` resumes after it. A comment every "
        "15 s of quiet keeps the connection open. Past TIMELINE_MAX_STREAMS open "
        "streams, 503 with Retry-After.",
    ),
    ("GET", "/projections"): Op(
        "listProjections",
        "The projections' state",
        "Each projection's position, the log's head, the lag between them, its state "
        "(with its error if it failed), and the read models it keeps.",
    ),
    ("GET", "/health"): Op(
        "getHealth",
        "Is the process up",
        "Answers at once without touching the store: the process is up.",
    ),
    ("GET", "/ready"): Op(
        "getReadiness",
        "Is the service ready",
        f"The store answers and every read model is within {READY_LAG:,} events of the log's "
        "head; otherwise 503 with what is wrong.",
    ),
    ("GET", "/metrics"): Op(
        "getMetrics",
        "Prometheus metrics",
        "Requests and their latencies by route, writes and duplicates by kind, the "
        "projections' positions and lag, waiting reads and open streams.",
    ),
    ("POST", "/drafts"): Op(
        "draftStatements",
        "Draft the statements of an article",
        "Paste an article (`text`, or `html`, reduced to its text first) with when it was "
        "published: the statements it reports, each a record body of `POST /statements` or "
        "`POST /announcements` (speaker resolved to a known actor, or null; date resolved "
        "from the text) with a `draft` object saying how it was found. Nothing is stored: "
        "a person reviews the drafts and records the good ones; each draft's `key` is made "
        "from the source and the sentence, so recording one twice stores it once.",
    ),
    ("POST", "/admin/backfill"): Op(
        "backfill",
        "Import NDJSON",
        "Import a backfill file (one JSON object a line: actors, topics, records and "
        "their corrections, retractions and sources), as sent or gzipped "
        "(`Content-Encoding: gzip`). Each bad line is reported with its number and "
        "reason and the rest go on; `atomic` stores all or nothing, `dry_run` only checks.",
    ),
    **{k: v for kind in _KINDS for k, v in _record_operations(kind).items()},
}

# The first segment of a path names the group its operation is listed in.
TAGS = {
    "actors": "actors",
    "topics": "topics",
    "statements": "records",
    "announcements": "records",
    "occurrences": "records",
    "timeline": "timeline",
    "changes": "timeline",
    "events": "events",
    "projections": "operations",
    "health": "operations",
    "ready": "operations",
    "metrics": "operations",
    "admin": "admin",
    "drafts": "drafts",
}

_SLUG = "a lower-case slug, like `negotiations`"
_INSTANT = "an instant with a UTC offset, like `2025-02-13T12:00:00Z`"
_WHEN = "year, month, day or instant (with a UTC offset)"
# Each path parameter by (the path's first segment, its name).
PATH_PARAMETERS = {
    ("actors", "id"): "The actor's slug (a lower-case slug, like `donald-trump`).",
    ("topics", "id"): f"The topic's slug ({_SLUG}).",
    **{
        (plural, "id"): f"The {kind}'s id: the UUID its write answered."
        for kind, (plural, _, _) in _KINDS.items()
    },
    **{
        (plural, "key"): f"The {kind}'s key, percent-encoded (a `/` as %2F): its id is "
        f"the UUID 5 of `{kind}:<key>` in the namespace {NAMESPACE}."
        for kind, (plural, _, _) in _KINDS.items()
    },
}
# Each query parameter by its name, on whichever route takes it.
PARAMETERS = {
    "as_of": f"Answer as the service knew it at this instant ({_INSTANT}): from the "
    "longest prefix of the log recorded by then. Waits, bounded, for the read models "
    "when they may not have read to it (then 503 with Retry-After). Not with "
    "as_of_position.",
    "as_of_position": "Answer as of this position of the log (a write's `position`). "
    "Waits, bounded, for the read models to reach it (503 with Retry-After); past the "
    "log's head, 422 at once.",
    "min_position": "Read your own writes: answer once the read models have reached this "
    "position (a write's `position`). A bounded wait, then 503 with Retry-After; past the "
    "log's head, 422 at once.",
    "since": f"Only records that overlap the time from the start of this {_WHEN} on: "
    "`2014`, `2025-02`, `2025-02-12`, `2025-02-12T15:00:00Z`.",
    "until": f"Only records that overlap the time up to the end of this {_WHEN}: `2025`, "
    "`2025-02`, `2025-02-13`, `2025-02-13T18:00:00Z`.",
    "topic": f"Only records of this topic or of a topic below it, as the tree stood then "
    f"({_SLUG}).",
    "actor": "Only records that name this actor, as speaker, author, participant or "
    "mention (a slug, like `vladimir-putin`).",
    "kind": "Only records of this kind.",
    "q": "Only records whose title, quote or summary holds every word of this text, in any "
    "order and case (accents count; no operators: every character is text). At most "
    f"{MAX_SEARCH} characters, with a letter or a digit. Searches the records as they "
    "stood at the point asked; the order stays the timeline's.",
    "limit": f"The most items a page holds, from 1 to {MAX_LIMIT}.",
    "cursor": "Where the page starts: the `next_cursor` of the page before (opaque). It "
    "carries the point of the log the walk's first page answered as of, and every later "
    "page answers as of it too: `as_of`, `as_of_position`, `to` or `to_position`, if given, "
    "must name the same point.",
    "from": f"The changes after this instant ({_INSTANT}): after the longest prefix of "
    "the log recorded by then, as `as_of` reads it. Not with from_position; the default "
    "is the log's start.",
    "to": f"The changes up to this instant ({_INSTANT}), as `as_of` reads it. Not with "
    "to_position; the default is the position the read models have reached.",
    "from_position": "The changes after this position of the log. Not with from.",
    "to_position": "The changes up to this position of the log, included. Waits, bounded, "
    "for the read models to reach it; past the log's head, 422 at once. Not with to.",
    "change": "Only this kind of change: added (a new record), corrected, sourced (only "
    "its sources changed), tagged (only its topics changed), retracted.",
    "bucket": "Count by day, week (from Monday, as ISO 8601), month or year, each record "
    "in the bucket of the UTC start of its occurred time.",
    "after": "Only events after this position of the log (0: from the first). On the "
    "stream, a `Last-Event-ID` header takes its place.",
    "dry_run": "Check every line and report, storing nothing.",
    "atomic": "Store every line or none: one bad line rejects the whole file.",
}
# The headers a client may send, as parameters of the operations that read them.
HEADERS = {
    "If-Match": 'Make the change conditional on this version, in quotes (`"3"`: the `ETag` '
    "of a read, or a write's `version`): 412 when it is at another version, 409 when "
    "another writer changed it first.",
    "If-None-Match": "The `ETag` of an answer you hold: 304, without a body, while the "
    "answer is still that one.",
    "Last-Event-ID": "Resume after this position: the `id` of the last event received "
    "(in place of `after`).",
}
# The closed sets among query parameters, by name: the closed sets schemas.py names,
# each a component of the document.
ENUMS = {"kind": "RecordKind", "change": "ChangeKind", "bucket": "Bucket"}
BOUNDS: dict[str, dict[str, int]] = {
    "limit": {"minimum": 1, "maximum": MAX_LIMIT},
    **{
        name: {"minimum": 0}
        for name in ("as_of_position", "min_position", "from_position", "to_position", "after")
    },
}

_SOURCE = {
    "publisher": "BBC News",
    "url": "urn:bbc-live:000_9be14b46189953d5",
    "title": "Trump not betraying Ukraine by seeking peace deal with Putin, US defence "
    "secretary says \u2013 live updates",
    "published_at": "2025-02-13",
}
# A request body for each body type, from the seed's world (12 and 13 February 2025);
# a test sends them all, in this order, to a seeded service.
EXAMPLES: dict[type[Any], dict[str, Any]] = {
    schemas.ActorIn: {
        "id": "john-healey",
        "name": "John Healey",
        "kind": "person",
        "aliases": ["Healey", "UK Defence Secretary John Healey"],
        "roles": [{"title": "Secretary of State for Defence", "since": "2024-07-05"}],
    },
    schemas.AliasIn: {"alias": "Nato chief Mark Rutte"},
    schemas.Role: {"title": "Prime Minister of the Netherlands", "since": "2010-10-14"},
    schemas.RoleEndIn: {"title": "Prime Minister of the Netherlands", "until": "2024-07-02"},
    schemas.TopicIn: {
        "id": "munich-security-conference",
        "label": "Munich Security Conference",
        "parent": "european-security",
        "description": "The yearly meeting on security policy in Munich.",
    },
    schemas.TopicChangeIn: {"label": "Munich Security Conference 2025"},
    schemas.StatementIn: {
        "key": "rutte-ukraine-strongest-position",
        "speaker": "mark-rutte",
        "quote": "in the strongest possible position",
        "summary": "Rutte said Ukraine must be in the strongest possible position before any "
        "talks with Russia.",
        "occurred_at": "2025-02-13",
        "channel": "press-conference",
        "location": "Nato headquarters, Brussels",
        "topics": ["negotiations"],
        "mentions": ["ukraine", "russia"],
        "sources": [_SOURCE],
    },
    schemas.AnnouncementIn: {
        "key": "trump-putin-teams-start-negotiations",
        "by": ["donald-trump"],
        "summary": "Trump announced that he and Putin had agreed their teams would start "
        "negotiations at once.",
        "occurred_at": "2025-02-12",
        "channel": "social-media",
        "topics": ["negotiations", "us-russia-relations"],
        "mentions": ["vladimir-putin"],
        "sources": [_SOURCE],
    },
    schemas.OccurrenceIn: {
        "key": "munich-security-conference-2025",
        "title": "Munich Security Conference",
        "kind": "meeting",
        "occurred_at": "2025-02-14",
        "ended_at": "2025-02-16",
        "participants": ["volodymyr-zelensky"],
        "location": "Munich",
        "topics": ["european-security"],
        "sources": [_SOURCE],
    },
    schemas.CorrectionIn: {
        "changes": {"location": "Brussels"},
        "reason": "the page names the city, not the building",
    },
    schemas.SourceIn: {
        "source": {
            "publisher": "Nato",
            "url": "https://www.nato.int/",
            "title": "Press conference by Nato Secretary General Mark Rutte",
            "published_at": "2025-02-13",
        }
    },
    schemas.TagsIn: {"add": ["security-guarantees"]},
    schemas.RetractionIn: {"reason": "entered twice: the same remark is recorded already"},
    schemas.DraftsIn: {
        "text": "Nato Secretary General Mark Rutte said Ukraine must be in \u201cthe strongest "
        "possible position\u201d before any talks.",
        "published_at": "2025-02-13T14:09:00Z",
        "url": "https://www.bbc.com/news/live/example",
        "publisher": "BBC News",
    },
}
# Each field of the schemas by name, or by `Schema.field` where one name means two
# things; the schemas' own words for a type (a slug, a time's forms) stay beneath.
FIELDS = {
    # What a client writes.
    "ActorIn.id": "The actor's slug, chosen by you: how every record names it.",
    "TopicIn.id": "The topic's slug, chosen by you: how every record names it.",
    "name": "The name it is known by.",
    "ActorIn.kind": "What the actor is.",
    "aliases": "Other names it is known by.",
    "roles": "The titles it holds or held, with their dates.",
    "Role.title": "The title, like `President`.",
    "RoleEndIn.title": "The title of the role that ended.",
    "organization": "The organization or state the role is in: an actor's slug.",
    "since": "When the role began (a year, month, day or instant).",
    "until": "When the role ended (a year, month, day or instant).",
    "alias": "Another name the actor is known by.",
    "label": "The topic's name, as people read it.",
    "parent": "The topic above it: a topic's slug (`null` or absent: the top of the tree).",
    "description": "What the topic covers.",
    "key": "Your key for the record, unique among its kind: its id is made from it, so "
    "the same record sent again stores nothing. Without one, a key is made from the content.",
    "speaker": "Who said it: an actor's slug.",
    "by": "Who announced it: actors' slugs.",
    "quote": "The words as said, as the source quotes them.",
    "summary": "What was said, announced or happened, in a sentence.",
    "title": "A short title of what happened.",
    "Source.title": "The title of the page or document.",
    "Problem.title": "The status's name.",
    "OccurrenceIn.kind": "What kind of occurrence it is.",
    "Changes.kind": "What kind of occurrence it is.",
    "occurred_at": "When it was said or happened: a year, month, day or instant with a UTC "
    "offset, kept at the precision given.",
    "ended_at": "When it ended, in the same forms as occurred_at.",
    "channel": "How it was said or announced.",
    "location": "Where, in words.",
    "topics": "The topics it is about: topics' slugs.",
    "mentions": "The actors it names: actors' slugs.",
    "participants": "The actors that took part: actors' slugs.",
    "sources": "Where it was reported (one at least).",
    "publisher": "Who published the source.",
    "url": "The source's address: http(s), or a URN where it has none.",
    "published_at": "When the source was published.",
    "excerpt": "The passage of the source that reports it.",
    "changes": "The fields to change, each to its new value (`null` removes an optional one).",
    "reason": "Why, in a sentence: kept in the record's history.",
    "source": "The source to add.",
    "add": "Topics to add: topics' slugs.",
    "remove": "Topics to remove: topics' slugs.",
    # What the service answers.
    "id": "The id: a slug for an actor or a topic, a UUID for a record.",
    "version": "Its version: 1 when created, one more at each change (`If-Match` takes it).",
    "position": "The position in the log of the event that made this version.",
    "recorded_at": "When the service recorded it (UTC).",
    "duplicate": "True when this was stored already: nothing was written.",
    "first_recorded_at": "When the record was first recorded (UTC).",
    "occurred_precision": "How precisely occurred_at is known.",
    "occurred_as_given": "occurred_at as it was given.",
    "occurrence_kind": "An occurrence's kind.",
    "actor_role": "On an actor's profile: the role the actor held when it occurred.",
    "Item.kind": "The record's kind.",
    "Item.id": "The record's id (a UUID).",
    "Item.key": "The record's key: given when it was recorded, or made from its content.",
    "Item.occurred_at": "When it was said or happened: the UTC start of the time given.",
    "Item.speaker": "Who said it: the actor's slug and name.",
    "Item.by": "Who announced it: the actors' slugs and names.",
    "Item.participants": "The actors that took part: slugs and names.",
    "Item.mentions": "The actors it names: slugs and names.",
    "Change.kind": "The record's kind.",
    "kind": "What it is.",
    "items": "This page's items, in order.",
    "next_cursor": "Pass it as `cursor` for the next page; null on the last.",
    "topic": "The topic.",
    "speakers": "Each speaker, with their records in order.",
    "actor": "The speaker.",
    "count": "How many records.",
    "first_at": "When the first of these records occurred.",
    "last_at": "When the last of these records occurred.",
    "records": "The records, in the order they occurred.",
    "ActorProfile.records": "How many current records name the actor.",
    "by_topic": "How many of its records each topic holds.",
    "latest": "Its latest records.",
    "depth": "How deep in the tree it is (0: at the top).",
    "total": "The count with everything below it.",
    "children": "The topics right below it: slugs.",
    "cycle": "Topics whose parents form a cycle (stored before moves were checked), from here.",
    "events": "The events, in position order.",
    "next_after": "Pass it as `after` for the next page.",
    "type": "The event's type.",
    "aggregate_id": "The id of what the event changed.",
    "aggregate_version": "Its version after the event.",
    "data": "The event's fields.",
    "state": "Running, stopped, or failed.",
    "head": "The log's last position.",
    "lag": "Events between its position and the head.",
    "error": "What went wrong.",
    "error_position": "The position of the event it failed on.",
    "read_models": "The read models answered from its rows.",
    "warnings": "What is wrong in its rows, such as a cycle of topics.",
    "status": "`ok`, or `unavailable`.",
    "Problem.status": "The HTTP status.",
    "Problem.type": "A URI for the kind of problem (`about:blank`: the status says it).",
    "checks": "Each check and what it found (`ok`, or what is wrong).",
    "accepted": "Lines stored.",
    "duplicates": "Lines already stored: nothing written.",
    "rejected": f"The rejected lines (the first {MAX_REJECTED:,}), with their reasons.",
    "first_position": "The first position written.",
    "last_position": "The last position written.",
    "elapsed": "Seconds taken.",
    "rate": "Lines a second.",
    "batch_id": "The import's batch id, carried by each event it wrote.",
    "rejected_omitted": f"Rejected lines past the first {MAX_REJECTED:,}: counted, not listed.",
    "line": "The line's number, from 1.",
    "detail": "What went wrong, for a person.",
    "errors": "Each field at fault, by its name or JSON path.",
    "field": "The field, parameter or header at fault.",
    "message": "What is wrong with it.",
    "change": "What kind of change.",
    "fields": "The item's fields whose values the change changed.",
    "item": "The record after the change (for a retraction, the last version before it).",
    "from_position": "The changes after this position...",
    "to_position": "...up to this one, included.",
    "bucket": "The buckets' size.",
    "start": "The bucket's first day (UTC).",
    # Drafts.
    "DraftsIn.text": "The article as plain text (or give `html`).",
    "html": "The article as HTML: reduced to its text (scripts and styles dropped) first.",
    "DraftsIn.published_at": "When the page was published: an instant with a UTC offset. "
    "Relative words (`yesterday`, `on Wednesday`) resolve against it, or against the time "
    "line of the live post they are in.",
    "DraftsIn.url": "The page's address (default: a URN of the text's digest).",
    "DraftsIn.publisher": "Who published it (default: the address's host).",
    "DraftsIn.title": "The page's title.",
    "Drafts.text": "The text the drafts were read from (HTML reduced): `sentence` offsets "
    "point into it.",
    "drafts": "The draft statements and announcements, in the order of the text.",
    "Draft.type": "`statement`, or `announcement` (an organization or a state, or a verb "
    "of announcing).",
    "Draft.key": "Made from the source's address, the sentence and the quotation: the same "
    "draft always has the same key.",
    "Draft.speaker": "Who said it: an actor's slug, or null when the text names no known "
    "actor (never a guess).",
    "Draft.occurred_at": "When it was said, at the precision the text gives.",
    "draft": "How the draft was found.",
    "speaker_text": "The speaker as the text wrote it (a name, a role, a pronoun).",
    "confidence": "How sure the rule is, from 0 to 1.",
    "rule": "The rule that found it: subject, inverted, colon, pronoun, role, participle, "
    "continuation or unknown-name.",
    "sentence": "Where the sentence is in `text` (character offsets, end excluded).",
    "Sentence.start": "The sentence's first character.",
    "Sentence.end": "The character after the sentence.",
    "date_text": "The words the date came from (or the live post's time line); null when "
    "it is the page's publication day.",
    "existing": "The id of a stored record with the same speaker and quotation, if any.",
}
# What each error status means on any route.
ERRORS = {
    400: "Bad request: the request cannot be read — a body that is not JSON, a query "
    "parameter this route does not take, one given twice, or a value not in its written "
    "form.",
    401: "Unauthorized: no key, or a key that is unknown or revoked.",
    403: "Forbidden: the key's scope is too low (read < write < admin).",
    404: "Not found: the path, or a filter, names nothing that exists (then).",
    405: "Method not allowed.",
    409: "Conflict: a key reused with other content, a topic below itself, or another "
    "writer changed it first (`ETag` is the current version).",
    410: "Gone: the record was retracted.",
    412: "Precondition failed: `If-Match` is not the current version (`ETag` is).",
    413: "Payload too large.",
    415: "Unsupported media type: send the body as the operation says.",
    422: "Invalid input: it reads, but breaks a rule — a field of the wrong type, shape "
    "or size, an unknown actor or topic, a rule of the domain, a value out of range.",
    500: "Internal server error: logged; the body says nothing of the code.",
    503: "Service unavailable: the store, or the wait for the read models, cannot answer "
    "now; retry after `Retry-After` seconds.",
}

_PARAM = re.compile(r"\{(\w+):\w+\}")


def _structs() -> list[type[Any]]:
    return [
        v
        for v in vars(schemas).values()
        if isinstance(v, type)
        and issubclass(v, msgspec.Struct)
        and v not in (msgspec.Struct, schemas.Body)
    ]


def build(app: Litestar) -> dict[str, Any]:
    doc = app.openapi_schema.to_schema()
    _, components = msgspec.json.schema_components(
        _structs(), ref_template="#/components/schemas/{name}"
    )
    # A correction's changes are checked as `Changes` (kept a plain dict when decoded, so
    # that an explicit null survives).
    components["CorrectionIn"]["properties"]["changes"] = _ref(schemas.Changes)
    components["Changes"]["minProperties"] = 1
    _name_closed_sets(components)
    # A field's own words win; the words of its type (a slug, a time's forms) give way.
    of_types = {
        meta.description
        for alias in (schemas.Slug, schemas.When, schemas.Url)
        for meta in typing.get_args(alias)[1:]
    }
    for name, component in components.items():
        for field, schema in component.get("properties", {}).items():
            text = FIELDS.get(f"{name}.{field}") or FIELDS.get(field)
            if text is not None and schema.get("description") in (None, *of_types):
                schema["description"] = text
    doc["components"] = {
        "schemas": components,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (`timeline keys create NAME --scope SCOPE`): "
                "read < write < admin. Writes need write, /admin/ needs admin; reads need "
                "read only when TIMELINE_READ_REQUIRES_KEY is set.",
            }
        },
    }
    paths: dict[str, Any] = {}
    tags: set[str] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            path = _PARAM.sub(r"{\1}", route.path)
            item = doc["paths"].get(path)
            if item is None:
                continue
            # Every GET also answers HEAD, without a body (RFC 9110 says a GET implies
            # it): the document lists the GET only.
            item.pop("head", None)
            for method in handler.http_methods - {"HEAD"}:
                op = item.get(method.lower())
                if op is not None:
                    _describe(op, method, path)
                    _operation(op, handler)
                    _headers(op, method, path, handler.opt)
                    tags.update(op.get("tags", ()))
            paths[path] = item
    doc["paths"] = paths
    doc["tags"] = [{"name": t} for t in sorted(tags)]
    return doc


def _name_closed_sets(components: dict[str, Any]) -> None:
    """Each closed set that schemas.py names (`Channel`, `RecordKind`, …) becomes one
    component that every field of it refers to, so that a generated client has one type
    for it, not one for each field; an unnamed one is at least a set of strings."""
    named = {
        name: typing.get_args(value)
        for name, value in vars(schemas).items()
        if typing.get_origin(value) is typing.Literal
    }
    by_values = {frozenset(values): name for name, values in named.items()}

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: visit(v) for k, v in node.items()}
        if "enum" in node and all(isinstance(v, str) for v in node["enum"]):
            name = by_values.get(frozenset(node["enum"]))
            if name is not None:
                rest = {k: v for k, v in node.items() if k not in ("enum", "type")}
                return {"$ref": f"#/components/schemas/{name}", **rest}
            node.setdefault("type", "string")
        return node

    components.update({k: visit(v) for k, v in components.items()})
    for name, values in named.items():
        components[name] = {"type": "string", "enum": list(values)}


def _describe(op: dict[str, Any], method: str, path: str) -> None:
    """The operation's words from the tables; Litestar's made-up ones never."""
    for name in ("operationId", "summary", "description", "deprecated"):
        op.pop(name, None)
    known = OPERATIONS.get((method, path))
    if known is not None:
        op.update(operationId=known.id, summary=known.summary, description=known.description)
    segment = path.strip("/").split("/")[0]
    if segment in TAGS:
        op["tags"] = [TAGS[segment]]
    op["parameters"] = [_parameter(p, segment) for p in op.get("parameters", [])]
    if not op["parameters"]:
        del op["parameters"]


def _headers(op: dict[str, Any], method: str, path: str, opt: dict[str, Any]) -> None:
    """The request headers an operation reads: If-Match on a change of something that
    exists, If-None-Match on a read, Last-Event-ID on the stream."""
    if opt.get("sse"):
        names = ["Last-Event-ID"]
    elif method == "GET" and opt.get("scope") == "read":
        names = ["If-None-Match"]
    elif method == "POST" and "{id}" in path:
        names = ["If-Match"]
    else:
        return
    op.setdefault("parameters", []).extend(
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": HEADERS[name],
            "schema": {"type": "string"},
        }
        for name in names
    )


def _parameter(given: dict[str, Any], segment: str) -> dict[str, Any]:
    """A parameter as a client sees it: absent rather than null, its closed set and
    bounds, its description from the tables."""
    name, where = given["name"], given["in"]
    schema = _not_null(given.get("schema", {}))
    schema.pop("description", None)
    if name in ENUMS:
        schema = {
            "$ref": f"#/components/schemas/{ENUMS[name]}",
            **{k: v for k, v in schema.items() if k == "default"},
        }
    schema.update(BOUNDS.get(name, {}))
    out: dict[str, Any] = {"name": name, "in": where, "required": given.get("required", False)}
    text = PATH_PARAMETERS.get((segment, name)) if where == "path" else PARAMETERS.get(name)
    if text is not None:
        out["description"] = text
    out["schema"] = schema
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or has a value: never JSON's null."""
    for key in ("oneOf", "anyOf"):
        if key in schema:
            rest = [s for s in schema[key] if s != {"type": "null"}]
            if len(rest) == 1:
                return {**{k: v for k, v in schema.items() if k != key}, **rest[0]}
    out = dict(schema)
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if len(types) == 1 else types
    if "enum" in out:
        out["enum"] = [v for v in out["enum"] if v is not None]
    return out


def _ref(cls: type[Any]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def _operation(op: dict[str, Any], handler: HTTPRouteHandler) -> None:
    opt = handler.opt
    body = opt.get("body")
    if body == "ndjson":
        op["requestBody"] = {
            "required": True,
            "description": "NDJSON, one line a record or change (docs/backfill.md), as it "
            "is or gzipped with `Content-Encoding: gzip`.",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one JSON object a line"}
                }
            },
        }
    elif body is not None:
        media: dict[str, Any] = {"schema": _ref(body)}
        if body in EXAMPLES:
            media["example"] = EXAMPLES[body]
        op["requestBody"] = {
            "required": True,
            "description": "JSON (`application/json`); a field the schema does not name "
            "is refused (422).",
            "content": {"application/json": media},
        }
    success = str(handler.status_code)
    returns = opt.get("returns")
    responses: dict[str, Any] = {}
    if opt.get("sse"):
        responses["200"] = {
            "description": "Server-Sent Events, one domain event each: `id` its position, "
            "`event` its type, `data` the Event as JSON.",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        }
    elif handler.media_type.startswith("text/plain"):
        responses["200"] = {
            "description": "The metrics in Prometheus's text format.",
            "content": {handler.media_type: {"schema": {"type": "string"}}},
        }
    elif returns is not None:
        content = {"application/json": {"schema": _ref(returns)}}
        if success == "201":
            responses["201"] = {
                "description": "Stored: its id, its version, and the position of the "
                "write in the log (pass it as `min_position` to read it back).",
                "content": content,
            }
            responses["200"] = {
                "description": "Already stored with this content: nothing was written "
                "(`duplicate: true`).",
                "content": content,
            }
        elif "POST" in handler.http_methods and returns is schemas.Written:
            responses["200"] = {
                "description": "Stored (or already so: `duplicate: true`): the new version "
                "(also as `ETag`) and the position of the write.",
                "content": content,
            }
        else:
            responses[success] = {"description": "The answer.", "content": content}
        if opt.get("position", True):
            for status in ("200", "201"):
                if status in responses:
                    responses[status]["headers"] = _position_header()
        if "GET" in handler.http_methods and opt.get("scope") == "read":
            responses[success]["headers"] = {**_position_header(), **_cache_headers()}
            responses["304"] = {
                "description": "Not modified: If-None-Match names this answer's ETag.",
                "headers": {**_position_header(), **_cache_headers()},
            }
    scope = opt.get("scope")
    errors = set(opt.get("errors", ()))
    if scope in ("read", "write", "admin"):
        errors |= {401, 403}
    errors |= {500}
    if handler.http_methods & {"POST"}:
        errors |= {405}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERRORS.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM_JSON: {"schema": _ref(schemas.Problem)}},
        }
    op["responses"] = responses
    if scope is not None:
        op["security"] = [{"bearer": []}] if scope != "read" else [{"bearer": []}, {}]


SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/Event"},
        },
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


def _position_header() -> dict[str, Any]:
    return {
        "X-Timeline-Position": {
            "description": "The position of the log the answer reflects.",
            "schema": {"type": "integer"},
        }
    }


def _cache_headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": "A weak tag of the answer's body; a record's: its version.",
            "schema": {"type": "string"},
        },
        "Cache-Control": {
            "description": "Immutable for a year when the answer is as of a fixed point "
            "of the log, otherwise no-cache (docs/http.md).",
            "schema": {"type": "string"},
        },
    }


class SameDocument(JsonRenderPlugin):
    """Litestar's own JSON route of the document (`/_openapi`), answering this module's
    document: one document, wherever it is read."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return self.render_json(request, request.app.state.openapi)


@routes.add(get, "/schema/openapi.json", include_in_schema=False, media_type=MediaType.JSON)
async def openapi_json(state: State) -> dict[str, Any]:
    return state.openapi  # type: ignore[no-any-return]


@routes.add(get, "/schema", include_in_schema=False)
async def docs(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The document for a person: service/http/web/api.html and its script, which reads
    /schema/openapi.json (under the page's Content-Security-Policy)."""
    return send_asset(request, ASSETS["api.html"])
