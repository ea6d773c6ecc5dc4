"""The timeline's view in SQL, as PostgreSQL and SQLite share it.

A database's view (`projections/postgres.py`, `projections/sqlite.py`) gives the storage
primitives (`query`, `execute`, a batch's `_write`) and a few dialect hooks (`matching`,
`row_matches`, `unindexed`, `one_of`, `json_without`, `day_of`); every query the service
asks is written here once, as a method named for what it answers.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from eventsourcing.persistence import Tracking

from projections import answers
from projections.rows import (
    ANALYZE_AFTER,
    APPLICATION,
    Carry,
    Filing,
    Pending,
    Row,
    parse_utc,
    stored_row,
    utc_text,
)
from projections.shared import Memo
from projections.sql import RECORD_KINDS, Sql, in_list, in_order, overlapping, subtree, visible
from projections.view import (
    Bucket,
    Change,
    ChangePage,
    ChangesQuery,
    Entity,
    Page,
    TimelineQuery,
    TimelineView,
    Window,
)

NAME = "timeline"  # the view's tables, status, registry entry and lease are named for it
LATEST = 10  # the records an actor's profile lists
SAID = ("statement", "announcement")  # the records who-said-what lists
T = TypeVar("T")


class SqlView(TimelineView):
    def __init__(self, generation: int = 1) -> None:
        self.name = NAME
        self.generation = generation
        self.prefix = f"rm_{NAME}_g{generation}"
        self._local = threading.local()  # the batch being built, per writing thread
        self._grown = 0  # rows written since the statistics were last refreshed
        self._analyzed = 0
        self.listeners: list[Callable[[], None]] = []
        self._as_of: Memo[tuple[Any, ...], Any] = Memo(4096)

    # Storage primitives and dialect hooks, one implementation per database -----------

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement written with %s placeholders."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one writing statement, committed on its own."""

    @abstractmethod
    def _write(self, pending: Pending, tracking: Tracking) -> None:
        """Close, insert, tick the clock and track, in one transaction."""

    @abstractmethod
    def matching(self, text: str) -> tuple[str, list[Any]]:
        """A subquery of the `row_id`s of the row versions whose searched text holds every
        word of `text` (which has one at least: see `words`), and its parameters."""

    def row_matches(self, text: str, filtered: bool) -> tuple[str, list[Any]] | None:
        """A condition that the row `r` holds every word, checked row by row as the
        timeline is read in order (by a filter's links if `filtered`), where that reads
        fewer rows than the search index names; None: read those. Only for a database
        whose planner does not choose between the two by itself (PostgreSQL's does)."""
        return None

    def unindexed(self, column: str) -> str:
        """A column to compare without choosing an index for it (see SQLite's)."""
        return column

    def one_of(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """`column IN (%s, ...)` and its parameters. (PostgreSQL's view takes one array:
        a statement text that changes with the number of values is parsed anew by the
        driver and planned anew by the server each time.)"""
        return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)

    @abstractmethod
    def json_without(self, column: str, keys: Sequence[str]) -> str:
        """SQL for a column's JSON object without some of its keys, which `=` compares
        with another's: as values on PostgreSQL; as text on SQLite, so in the order the
        keys were written (a version keeps the order of the keys of the one before)."""

    @abstractmethod
    def day_of(self, column: str, bucket: Bucket) -> str:
        """SQL for the first day (`YYYY-MM-DD`, UTC) of the day, week (from Monday, as
        ISO 8601), month or year that an instant column falls in."""

    def analyze(self) -> None:
        """Refresh the planner's statistics of the tables (where the database has any)."""

    def reserve_ids(self, rows: Sequence[Row]) -> None:
        """Give rows their ids before they are written (where the database can)."""

    def _fixed(self, key: tuple[Any, ...], at: int | None, make: Callable[[], T]) -> T:
        """`make()`, remembered when it is as of a position: what the rows held at a
        position never changes, so what frames a page (a topic, its subtree, its labels,
        the speakers' names) is read once while the position stands, not every request.
        (What it gives is shared: never changed by its callers.)"""
        if at is None:
            return make()
        return cast(T, self._as_of.get((*key, at), make))

    # The timeline --------------------------------------------------------------------

    def page(self, query: TimelineQuery) -> Page:
        p = self.prefix
        kinds = [query.kind] if query.kind else list(RECORD_KINDS)
        # Read in order from the most selective index: the actor's links, the topic's
        # (its records, and those filed under it: its whole subtree in two ranges,
        # merged), or the rows themselves.
        links = None
        if query.actor is not None:
            links = [("actor", query.actor)]
        elif query.topic is not None:
            links = _subtree(query.topic)
        where = None
        if query.actor is not None and query.topic is not None:
            where = Sql().add(
                f"EXISTS (SELECT 1 FROM {p}_links lt WHERE lt.row_id = r.row_id "
                "AND lt.rel IN ('topic', 'under') AND lt.value = %s AND",
                query.topic,
            )
            visible(where, "lt", query.at).add(")")
        if query.q is not None:
            # A search reads from its index, unless it is cheaper to check each row as
            # the timeline is read in order (`row_matches`).
            check = self.row_matches(query.q, filtered=links is not None)
            if check is None:
                slugs = None if query.topic is None else self.subtopics(query.topic, query.at)
                return self._paged(self._found(query, slugs), query)
            where = (Sql() if where is None else where.add("AND")).add(check[0], *check[1])
        q = in_order(
            "r.body, d.start_at, d.first_pos",
            p,
            links,
            kinds,
            (query.since, query.until),
            query.at,
            where=where,
            after=query.after,
            limit=query.limit + 1,
        )
        return self._paged(q.add("ORDER BY d.start_at, d.first_pos"), query)

    def _found(self, query: TimelineQuery, slugs: list[str] | None) -> Sql:
        """A page of the records a search finds, in timeline order: the search index names
        the versions that hold the words, and the filters are checked on each of those.
        (On PostgreSQL the planner may instead read the timeline in order and look each
        row up in the search table by its key, when the words are common.)"""
        p = self.prefix
        q = Sql().add("SELECT r.body, d.start_at, d.first_pos FROM (SELECT r.row_id, r.start_at,")
        q.add(f"r.first_pos FROM {p}_rows r WHERE")
        self._records(q, "r", query.kind, slugs, query.actor).add("AND")
        visible(q, "r", query.at)
        overlapping(q, query.since, query.until)
        self._matching(q, query.q)
        if query.after is not None:
            q.add("AND (r.start_at, r.first_pos) > (%s, %s)", *query.after)
        q.add("ORDER BY r.start_at, r.first_pos LIMIT %s", query.limit + 1)
        # Only the page's bodies are read: not carried through the sort.
        q.add(f") d JOIN {p}_rows r ON r.row_id = d.row_id ORDER BY d.start_at, d.first_pos")
        return q

    def _paged(self, q: Sql, query: TimelineQuery) -> Page:
        rows = self.query(q.text, q.params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        last = (parse_utc(rows[-1][1]), int(rows[-1][2])) if more else None
        return Page(self._labelled([r[0] for r in rows], query.at), last)

    def _records(
        self, q: Sql, alias: str, kind: str | None, topics: list[str] | None, actor: str | None
    ) -> Sql:
        """The rows `alias` that are records a timeline filter keeps: of the kind, linked
        to one of the topics (a topic and its descendants) and to the actor. Written to
        be checked on each row that a scan of positions or of times finds: SQLite is kept
        from choosing an index of these instead (`unindexed`)."""
        in_list(q, self.unindexed(f"{alias}.kind"), [kind] if kind else RECORD_KINDS)
        for rel, values in (("topic", topics), ("actor", None if actor is None else [actor])):
            if values is not None:
                # By the row's own links, not by all the links of a value.
                q.add(
                    f"AND EXISTS (SELECT 1 FROM {self.prefix}_links l "
                    f"WHERE l.row_id = {alias}.row_id AND {self.unindexed('l.rel')} = %s AND",
                    rel,
                )
                in_list(q, "l.value", values).add(")")
        return q

    def _matching(self, q: Sql, words: str | None) -> Sql:
        """`AND` the rows `r` whose searched text holds every word (none: every row)."""
        if words is None:
            return q
        found, params = self.matching(words)
        return q.add(f"AND r.row_id IN ({found})", *params)

    def record(self, kind: str, id: str, at: int | None) -> str | None:
        q = Sql().add(
            f"SELECT r.body FROM {self.prefix}_rows r WHERE r.ref = %s AND r.kind = %s AND",
            id,
            kind,
        )
        found = self.query(visible(q, "r", at).text, q.params)
        return self._labelled([str(found[0][0])], at)[0] if found else None

    def history(self, id: str) -> dict[int, int]:
        # Each event opened a row version, and a retraction closed the last one.
        found = self.query(
            f"SELECT r.from_pos, r.to_pos, r.body FROM {self.prefix}_rows r WHERE r.ref = %s "
            "ORDER BY r.from_pos",
            (id,),
        )
        out: dict[int, int] = {}
        for from_pos, to_pos, body in found:
            version = int(json.loads(body)["version"])
            out[version] = int(from_pos)
            if to_pos is not None:
                out.setdefault(version + 1, int(to_pos))
        return out

    def counts(self, bucket: Bucket, query: TimelineQuery) -> list[tuple[str, int]]:
        # The records the timeline query lists (its page, `limit` and `after`, aside),
        # each read to be counted: a count of the whole timeline reads every current row.
        slugs = None if query.topic is None else self.subtopics(query.topic, query.at)
        q = Sql().add(
            f"SELECT {self.day_of('r.start_at', bucket)}, count(*) FROM {self.prefix}_rows r WHERE"
        )
        self._records(q, "r", query.kind, slugs, query.actor).add("AND")
        visible(q, "r", query.at)
        overlapping(q, query.since, query.until)
        self._matching(q, query.q)
        q.add("GROUP BY 1 ORDER BY 1")
        return [(str(day), int(n)) for day, n in self.query(q.text, q.params)]

    def changes(self, query: ChangesQuery) -> ChangePage:
        """Walked position by position through `rm_clock` over `(start, end]`, looking up
        the version opened and the version closed at each (decision 004): a version
        opened is `added` when it is the record's first, else compared with the one
        closed there (`sourced`, `tagged` or `corrected`); a version closed where none
        opened is `retracted`. A filter is checked at each position in turn."""
        p = self.prefix
        slugs = None if query.topic is None else self.subtopics(query.topic, query.end)

        def rest(alias: str, *more: str) -> str:
            return self.json_without(f"{alias}.body", [*answers.STAMPS, *more])

        # At each position: `o`, the version opened there, and `c`, the one closed
        # there. (A version that differs from the one before in nothing but its stamps,
        # which no rule of the domain makes, is neither sourced nor tagged.)
        change = (
            "CASE WHEN o.row_id IS NULL THEN 'retracted' "
            "WHEN o.from_pos = o.first_pos THEN 'added' "
            f"WHEN {rest('o')} = {rest('c')} THEN 'corrected' "
            f"WHEN {rest('o', 'topics')} = {rest('c', 'topics')} THEN 'tagged' "
            f"WHEN {rest('o', 'sources')} = {rest('c', 'sources')} THEN 'sourced' "
            "ELSE 'corrected' END"
        )
        after, end = max(query.start, query.after or 0), query.end
        # Each look-up bounded to the span too: PostgreSQL would otherwise merge the
        # whole index before the span's start with it.
        q = Sql().add(
            f"SELECT k.position, k.recorded_at, {change}, r.kind, r.ref, r.body, "
            "CASE WHEN o.row_id IS NULL THEN NULL ELSE c.body END FROM rm_clock k "
            f"LEFT JOIN {p}_rows o ON o.from_pos = k.position AND o.from_pos > %s "
            f"AND o.from_pos <= %s LEFT JOIN {p}_rows c ON c.to_pos = k.position "
            f"AND c.to_pos > %s AND c.to_pos <= %s "
            f"JOIN {p}_rows r ON r.row_id = coalesce(o.row_id, c.row_id) "
            "WHERE k.position > %s AND k.position <= %s AND",
            *(after, end) * 3,
        )
        self._records(q, "r", query.kind, slugs, query.actor)
        # The cheap tests first: only a correction, a source or a tag compares JSON.
        if query.change == "added":
            q.add("AND o.from_pos = o.first_pos")
        elif query.change == "retracted":
            q.add("AND o.row_id IS NULL")
        elif query.change is not None:
            q.add(f"AND o.from_pos <> o.first_pos AND {change} = %s", query.change)
        q.add("ORDER BY k.position LIMIT %s", query.limit + 1)
        rows = self.query(q.text, q.params)
        more, rows = len(rows) > query.limit, rows[: query.limit]
        # Each item with its topics' labels as they stood at the span's end.
        items = self._labelled([row[5] for row in rows], query.end)
        found = [
            Change(
                position=int(position),
                recorded_at=utc_text(parse_utc(recorded_at)),
                change=change,
                kind=kind,
                id=ref,
                fields=[] if previous is None else answers.changed_fields(body, previous),
                item=item,
            )
            for (position, recorded_at, change, kind, ref, body, previous), item in zip(
                rows, items, strict=True
            )
        ]
        return ChangePage(found, found[-1].position if more else None)

    # Actors and topics ---------------------------------------------------------------

    def knows(self, kind: Entity, slug: str, at: int | None) -> bool:
        return self._entity(kind, slug, at) is not None

    def _entity(self, kind: Entity, slug: str, at: int | None) -> dict[str, Any] | None:
        q = Sql().add(
            f"SELECT r.body FROM {self.prefix}_rows r WHERE r.kind = %s AND r.ref = %s AND",
            kind,
            slug,
        )
        visible(q, "r", at)

        def read() -> dict[str, Any] | None:
            found = self.query(q.text, q.params)
            return json.loads(found[0][0]) if found else None

        return self._fixed(("entity", kind, slug), at, read)

    def subtopics(self, topic: str, at: int | None) -> list[str]:
        q = subtree(self.prefix, topic, at)
        return self._fixed(
            ("subtree", topic), at, lambda: [str(slug) for (slug,) in self.query(q.text, q.params)]
        )

    def who_said_what(
        self, topic: str, window: Window, at: int | None, *, raw: bool = False
    ) -> dict[str, Any] | None:
        """`{topic, speakers: [{actor, count, first_at, first_precision, last_at,
        last_precision, records}]}`: the records in order, each naming its speakers
        (`speaker` or `by`) in its body."""
        found = self._entity("topic", topic, at)
        if found is None:
            return None
        q = in_order("r.body, d.start_at", self.prefix, _subtree(topic), SAID, window, at)
        rows = self.query(*_statement(q.add("ORDER BY d.start_at, d.first_pos")))
        items = zip(self._labelled([r[0] for r in rows], at), [r[1] for r in rows], strict=True)
        said = answers.said_by(items, raw=raw)
        speakers = answers.speakers(said, self._speakers(list(said), at))
        return {"topic": {"id": topic, "label": found["label"]}, "speakers": speakers}

    def _speakers(self, slugs: list[str], at: int | None) -> dict[str, dict[str, str]]:
        """`{id, name, kind}` of each speaker as it stood; a speaker never registered (a
        record from before the rule) is shown by its slug."""
        return self._fixed(("profiles", *slugs), at, lambda: self._read_speakers(slugs, at))

    def _read_speakers(self, slugs: list[str], at: int | None) -> dict[str, dict[str, str]]:
        found: dict[str, Any] = {}
        if slugs:
            refs, params = self.one_of("a.ref", slugs)
            q = Sql().add(
                f"SELECT a.ref, a.body FROM {self.prefix}_rows a "
                f"WHERE a.kind = 'actor' AND {refs} AND",
                *params,
            )
            found = {
                ref: json.loads(body) for ref, body in self.query(*_statement(visible(q, "a", at)))
            }
        out = {}
        for slug in slugs:
            actor = found.get(slug) or {"name": slug, "kind": "person"}
            out[slug] = {"id": slug, "name": actor["name"], "kind": actor["kind"]}
        return out

    def actors(self, at: int | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        q = Sql().add(f"SELECT r.body FROM {self.prefix}_rows r WHERE r.kind = 'actor' AND")
        visible(q, "r", at)
        if after is not None:
            q.add("AND r.ref > %s", after)
        q.add("ORDER BY r.ref LIMIT %s", limit + 1)
        return [json.loads(b) for (b,) in self.query(q.text, q.params)]

    def actor(self, slug: str, at: int | None) -> dict[str, Any] | None:
        found = self._entity("actor", slug, at)
        if found is None:
            return None
        by_topic = [
            {"topic": t, "count": int(n)}
            for t, n in self.query(*_statement(self._concerning(slug, at, by_topic=True)))
        ]
        ((count,),) = self.query(*_statement(self._concerning(slug, at, select="count(*)")))
        q = self._concerning(slug, at, select="r.body")
        q.add("ORDER BY r.start_at DESC, r.first_pos DESC LIMIT %s", LATEST)
        latest = [
            json.loads(b)
            for b in self._labelled([str(b) for (b,) in self.query(*_statement(q))], at)
        ]
        for item in latest:
            item["actor_role"] = answers.role_at(found["roles"], item["occurred_at"])
        return {**found, "records": int(count), "by_topic": by_topic, "latest": latest}

    def _concerning(
        self, slug: str, at: int | None, *, select: str = "", by_topic: bool = False
    ) -> Sql:
        """The records that name an actor: `select` of them, or their counts by topic."""
        p = self.prefix
        # EXISTS, not a join: a record may name the actor twice (a speaker who mentions
        # themselves) and still counts once.
        concerns = (
            f"EXISTS (SELECT 1 FROM {p}_links la WHERE la.row_id = r.row_id "
            "AND la.rel = 'actor' AND la.value = %s) AND"
        )
        if by_topic:
            q = Sql().add(
                f"SELECT lt.value, count(*) FROM {p}_rows r JOIN {p}_links lt "
                f"ON lt.row_id = r.row_id AND lt.rel = 'topic' WHERE {concerns}",
                slug,
            )
        else:
            q = Sql().add(f"SELECT {select} FROM {p}_rows r WHERE {concerns}", slug)
        in_list(q, "r.kind", RECORD_KINDS).add("AND")
        visible(q, "r", at)
        if by_topic:
            q.add("GROUP BY lt.value ORDER BY count(*) DESC, lt.value")
        return q

    def topic_tree(self, at: int | None) -> list[dict[str, Any]]:
        # Only records link topics, and a link knows when its row was current: the
        # links alone answer, from an index, without the rows.
        q = Sql().add(
            f"SELECT l.value, l.row_id FROM {self.prefix}_links l WHERE l.rel = 'topic' AND"
        )
        tagged: dict[str, set[int]] = {}
        for slug, row_id in self.query(*_statement(visible(q, "l", at))):
            tagged.setdefault(slug, set()).add(row_id)
        return answers.topic_tree(self._topics(at), tagged)

    def topic_cycles(self) -> list[list[str]]:
        return answers.cycles(self._topics(None))

    def _topics(self, at: int | None) -> dict[str, dict[str, Any]]:
        q = Sql().add(f"SELECT r.ref, r.body FROM {self.prefix}_rows r WHERE r.kind = 'topic' AND")
        return {ref: json.loads(body) for ref, body in self.query(*_statement(visible(q, "r", at)))}

    def _labelled(self, items: list[str], at: int | None) -> list[str]:
        """Items with the label of each of their topics as it stood at `at` (None: now)."""
        tagged = answers.topics_of(items)
        wanted = sorted({slug for slugs in tagged for slug in slugs})
        labels = self._fixed(("labels", *wanted), at, lambda: self._labels(wanted, at))
        return answers.labelled(items, tagged, labels)

    def _labels(self, wanted: list[str], at: int | None) -> dict[str, str]:
        """The label of each of these topics, as it stood at `at` (None: now)."""
        if not wanted:
            return {}
        refs, params = self.one_of("r.ref", wanted)
        q = Sql().add(
            f"SELECT r.ref, r.body FROM {self.prefix}_rows r WHERE r.kind = 'topic' AND {refs} AND",
            *params,
        )
        found = self.query(*_statement(visible(q, "r", at)))
        return {str(ref): str(json.loads(body)["label"]) for ref, body in found}

    # Position, status, generations ---------------------------------------------------

    def max_tracking_id(self, application_name: str) -> int | None:
        found = self.query(
            f"SELECT notification_id FROM {self.prefix}_tracking WHERE application_name = %s",
            (application_name,),
        )
        return int(found[0][0]) if found else None

    def insert_tracking(self, tracking: Tracking) -> None:
        self.commit(Pending(self.position()), tracking)

    def position(self) -> int:
        return self.max_tracking_id(APPLICATION) or 0

    def position_at(self, instant: datetime) -> tuple[int, bool]:
        """The last position recorded at or before the instant (0 if none), and whether
        that is final: whether a later position, whose high water is past the instant,
        is stored already (high waters never go back, so no position to come is in)."""
        ((at, last),) = self.query(
            "SELECT (SELECT position FROM rm_clock WHERE high_water <= %s "
            "ORDER BY high_water DESC, position DESC LIMIT 1), "
            "(SELECT high_water FROM rm_clock ORDER BY high_water DESC, position DESC LIMIT 1)",
            (instant,),
        )
        return int(at or 0), last is not None and parse_utc(last) > instant

    def save_status(self, state: str, error: str | None, error_position: int | None) -> None:
        self.execute(
            "INSERT INTO rm_status VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "state = excluded.state, error = excluded.error, "
            "error_position = excluded.error_position",
            (self.name, state, error, error_position),
        )

    def status(self) -> tuple[str, str | None, int | None]:
        found = self.query(
            "SELECT state, error, error_position FROM rm_status WHERE name = %s", (self.name,)
        )
        if not found:
            return ("stopped", None, None)
        state, error, error_position = found[0]
        return state, error, error_position

    def generation_in_use(self) -> int | None:
        found = self.query("SELECT generation FROM rm_registry WHERE name = %s", (self.name,))
        return int(found[0][0]) if found else None

    def use_generation(self, generation: int) -> None:
        self.execute(
            "INSERT INTO rm_registry VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET generation = excluded.generation",
            (self.name, generation),
        )

    # Writing in batches --------------------------------------------------------------

    @contextmanager
    def batch(self, after: int, carry: Carry | None = None) -> Iterator[Pending]:
        self._local.pending = Pending(after, current=dict(carry or {}))
        try:
            yield self._local.pending
        finally:
            self._local.pending = None

    def commit(self, pending: Pending, tracking: Tracking) -> None:
        self._write(pending, tracking)
        self._grown += len(pending.rows)
        if self._grown > max(ANALYZE_AFTER, self._analyzed):
            # A table filled in batches outgrows its planner statistics long before
            # autovacuum looks; stale ones make look-ups scan every current row.
            self.analyze()
            self._analyzed += self._grown
            self._grown = 0
        for listener in self.listeners:
            listener()

    def current(self, kind: Entity, ref: str) -> Row | None:
        pending = self._pending()
        key = (kind, ref)
        if key not in pending.current:
            pending.current[key] = self._fetch_current((kind,), ref)
        return pending.current[key]

    def current_record(self, ref: str) -> Row | None:
        pending = self._pending()
        # A row opened in this batch wins over the "none" that a prefetch noted for
        # every kind before the record was created (in this same batch).
        for kind in RECORD_KINDS:
            if (found := pending.current.get((kind, ref))) is not None:
                return found
        if any((kind, ref) in pending.current for kind in RECORD_KINDS):
            return None
        row = self._fetch_current(RECORD_KINDS, ref)
        if row is not None:
            pending.current[(row.kind, ref)] = row
        return row

    def _fetch_current(self, kinds: Sequence[str], ref: str) -> Row | None:
        found = self.query(
            f"SELECT row_id, kind, from_pos, first_pos, body, state, start_at, end_at "
            f"FROM {self.prefix}_rows WHERE ref = %s AND to_pos IS NULL "
            f"AND kind IN ({', '.join(['%s'] * len(kinds))})",
            (ref, *kinds),
        )
        if not found:
            return None
        row_id, kind, *rest = found[0]
        return stored_row((row_id, kind, ref, *rest))

    def current_refs(self, kind: Entity) -> Iterator[str]:
        found = self.query(
            f"SELECT ref FROM {self.prefix}_rows WHERE kind = %s AND to_pos IS NULL", (kind,)
        )
        return (str(ref) for (ref,) in found)

    def open(self, row: Row, *, first: bool = False) -> None:
        if not first:
            self.close(row.kind, row.ref, row.from_pos)
        pending = self._pending()
        pending.rows.append(row)
        pending.current[(row.kind, row.ref)] = row
        pending.touched.add((row.kind, row.ref))

    def close(self, kind: str, ref: str, position: int) -> None:
        pending = self._pending()
        key = (kind, ref)
        if key not in pending.current:
            pending.current[key] = self._fetch_current((kind,), ref)
        row = pending.current[key]
        if row is None:
            return
        if row.row_id is None:  # opened in this batch
            row.to_pos = position
        else:
            pending.closes.setdefault(row.row_id, position)
        pending.current[key] = None
        pending.touched.add(key)

    def prefetch_records(self, refs: Sequence[str]) -> None:
        pending = self._pending()
        kinds = RECORD_KINDS
        wanted = sorted({r for r in refs if not any((k, r) in pending.current for k in kinds)})
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            refs_in, refs_params = self.one_of("ref", part)
            kinds_in, kinds_params = self.one_of("kind", kinds)
            found = self.query(
                f"SELECT row_id, kind, ref, from_pos, first_pos, body, state, start_at, end_at "
                f"FROM {self.prefix}_rows WHERE to_pos IS NULL AND {refs_in} AND {kinds_in}",
                (*refs_params, *kinds_params),
            )
            seen: set[str] = set()
            for values in found:
                row = stored_row(values)
                seen.add(row.ref)
                pending.current[(row.kind, row.ref)] = row
            # None under every kind only when no row is current: `current_record` takes
            # the first kind it finds, and a record has one kind.
            for ref in part:
                if ref not in seen:
                    for kind in kinds:
                        pending.current.setdefault((kind, ref), None)

    def parents(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {
            str(ref): parent
            for ref, parent in self.query(
                f"SELECT t.ref, l.value FROM {self.prefix}_rows t LEFT JOIN {self.prefix}_links l "
                "ON l.row_id = t.row_id AND l.rel = 'parent' "
                "WHERE t.kind = 'topic' AND t.to_pos IS NULL"
            )
        }
        for (kind, ref), row in self._pending().current.items():
            if kind == "topic":
                if row is None:
                    found.pop(ref, None)
                else:
                    found[ref] = row.body.get("parent")
        return found

    def filed_under(self, topic: str) -> list[Filing]:
        pending = self._pending()
        if pending.rows or pending.closes:
            raise RuntimeError("a change of the tree must start a batch of its own")
        p = self.prefix
        order: dict[int, tuple[Any, Any, int]] = {}
        links: dict[tuple[int, str], set[str]] = {}
        for row_id, start_at, end_at, first_pos, rel, value in self.query(
            f"SELECT l.row_id, l.start_at, l.end_at, l.first_pos, l.rel, l.value FROM {p}_links u "
            f"JOIN {p}_links l ON l.row_id = u.row_id AND l.rel IN ('topic', 'under') "
            "AND l.to_pos IS NULL "
            "WHERE u.rel IN ('topic', 'under') AND u.value = %s AND u.to_pos IS NULL",
            (topic,),
        ):
            order[int(row_id)] = (start_at, end_at, int(first_pos))
            links.setdefault((int(row_id), str(rel)), set()).add(str(value))
        return [
            Filing(
                row_id,
                None if start_at is None else parse_utc(start_at),
                None if end_at is None else parse_utc(end_at),
                first_pos,
                frozenset(links.get((row_id, "topic"), ())),
                frozenset(links.get((row_id, "under"), ())),
            )
            for row_id, (start_at, end_at, first_pos) in order.items()
        ]

    def refile(self, filing: Filing, under: frozenset[str], position: int) -> None:
        pending = self._pending()
        for topic in sorted(filing.under - under):
            pending.unfiled.append((filing.row_id, topic, position))
        for topic in sorted(under - filing.under):
            pending.filed.append(
                (
                    filing.row_id,
                    "under",
                    topic,
                    filing.start_at,
                    filing.first_pos,
                    position,
                    None,
                    filing.end_at,
                )
            )

    def tick(self, position: int, recorded_at: datetime) -> None:
        self._pending().clock.append((position, recorded_at))

    def _pending(self) -> Pending:
        pending: Pending | None = getattr(self._local, "pending", None)
        if pending is None:
            raise RuntimeError("rows are written inside view.batch()")
        return pending


def _subtree(topic: str) -> list[tuple[str, str]]:
    """The links of a topic's subtree: its records, and those filed under it."""
    return [("topic", topic), ("under", topic)]


def _statement(q: Sql) -> tuple[str, list[Any]]:
    return q.text, q.params
