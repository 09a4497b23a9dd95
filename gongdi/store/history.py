"""A history read from one service's log: the events touching a site, a member, a case or a branch, or those
following given events (contracts.history), limited to the sites the reader may read.

Sites and branches go by stream (the unique index on `(stream_id, version)`); members, cases and follow-ups scan
the log (jsonb containment, causation ids), a few milliseconds for the demo's thousands of events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from contracts.envelope import EnvelopeRow
from contracts.history import (
    BRANCH_EVENTS,
    BRANCH_OFFICERS,
    CASE_FIELD,
    CLOSES,
    LIMIT,
    MEMBER_ENTRIES,
    MEMBER_FIELDS,
    MEMBER_LISTS,
    NAMING,
    OFFICER_EVENTS,
    HistoryQuery,
)
from contracts.identity import Identity, Role
from gongdi.store.postgres import SELECT_LIST
from gongdi.store.sitestreams import stream_of

COLUMNS = ("position, event_id, event_type AS type, stream_id, version, site_id, township, actor, command_id,"
           " correlation_id, causation_id, occurred_at, recorded_at, payload::text AS payload")


@dataclass
class Where:
    """A WHERE clause with its positional parameters."""

    sql: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def text(self) -> str:
        return " AND ".join(self.sql) or "true"


def matching(schema: str, q: HistoryQuery) -> Where:
    """The events of `schema` that `q` asks for."""
    w = Where()
    if q.kind in ("site", "branch"):
        stream = w.arg(stream_of(q.id or ""))
        w.sql.append(f"stream_id = {stream}")
        if q.kind == "branch":
            branch = f"event_type = ANY({w.arg(sorted(BRANCH_EVENTS.get(schema, ())))}::text[])"
            if schema in BRANCH_OFFICERS:  # before, the secretary's departure was missing from the branch's history
                formed, fields, lists = BRANCH_OFFICERS[schema]
                named = " UNION ".join([*(f"SELECT b.payload->>{w.arg(f)}" for f in fields),
                                        *(f"SELECT jsonb_array_elements_text(b.payload->{w.arg(f)})" for f in lists)])
                officers = (f"SELECT o FROM {schema}.events b, LATERAL ({named}) AS x(o)"
                            f" WHERE b.stream_id = {stream} AND b.event_type = {w.arg(formed)}")
                branch = (f"({branch} OR (event_type = ANY({w.arg(list(OFFICER_EVENTS))}::text[])"
                          f" AND payload->>'member_id' IN ({officers})))")
            w.sql.append(branch)
    elif q.kind == "member":
        shapes = ([{f: q.id} for f in MEMBER_FIELDS] + [{f: [q.id]} for f in MEMBER_LISTS]
                  + [{f: [{"member_id": q.id}]} for f in MEMBER_ENTRIES])
        w.sql.append("(" + " OR ".join(f"payload @> {w.arg(orjson.dumps(s).decode())}::jsonb" for s in shapes) + ")")
    elif q.kind == "case":
        w.sql.append(f"payload @> {w.arg(orjson.dumps({CASE_FIELD: q.id}).decode())}::jsonb")
    elif q.kind == "caused_by":
        w.sql.append(f"causation_id = ANY({w.arg(q.ids)}::uuid[])")
    elif q.kind == "closing":  # the events closing the obligations named
        w.sql.append(_named_in(w, CLOSES, [str(i) for i in q.ids]))
    else:  # naming: the events giving the members' names
        w.sql.append(_named_in(w, NAMING, list(q.members)))
    return w


def _named_in(w: Where, fields: dict[str, str], values: list[str]) -> str:
    """Events of the types in `fields` whose payload's field (by type) holds one of `values`."""
    given = w.arg(values)
    return "(" + " OR ".join(f"(event_type = {w.arg(t)} AND payload->>{w.arg(f)} = ANY({given}::text[]))"
                             for t, f in fields.items()) + ")"


def readable(w: Where, sender: Identity) -> str:
    """The condition for the events `sender` may read (contracts.history.may_read_event), as SQL on `w`'s args."""
    if sender.role is Role.TOWNSHIP:
        return f"township = {w.arg(sender.township)}"
    if sender.role is Role.SITE:
        return f"(township = {w.arg(sender.township)} AND site_id IS NOT DISTINCT FROM {w.arg(sender.site)})"
    return "true"  # the kit refuses every other reader before asking


@dataclass(frozen=True)
class Found:
    events: list[dict[str, Any]]  # contracts.history.HistoryEvent without `service`, payload as orjson.Fragment
    withheld: int
    truncated: bool


async def read_history(pool: asyncpg.Pool, schema: str, q: HistoryQuery, sender: Identity) -> Found:
    """In recorded order (position), the first LIMIT that `sender` may read, and how many it may not."""
    w = matching(schema, q)
    allowed = readable(w, sender)
    base = f"FROM {schema}.events WHERE {w.text()}"
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(f"SELECT {COLUMNS} {base} AND {allowed} ORDER BY position LIMIT {LIMIT + 1}",
                                *w.args)
        withheld = 0 if allowed == "true" else await conn.fetchval(f"SELECT count(*) {base} AND NOT ({allowed})",
                                                                   *w.args)
        # Each event's hash recomputed from what the row holds now: an auditor reading a history is told at once
        # which records were changed after they were written (`gongdi verify` says how).
        stored = await conn.fetch(f"SELECT {SELECT_LIST} FROM {schema}.events e WHERE e.position = ANY($1::bigint[])",
                                  [r["position"] for r in rows[:LIMIT]])
    changed = {r["position"] for r in stored if not _intact(r, schema)}
    events = [{**dict(r), "payload": orjson.Fragment(r["payload"]), "intact": r["position"] not in changed}
              for r in rows[:LIMIT]]
    return Found(events, withheld, len(rows) > LIMIT)


def _intact(row: asyncpg.Record, service: str) -> bool:
    event = tuple.__new__(EnvelopeRow, (*row.values(), service))  # the select list is STORED, in its order
    try:
        return event.chain_hash() == event.hash
    except (TypeError, ValueError):  # a value no event could hold (a payload that is no JSON object): changed
        return False
