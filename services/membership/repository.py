"""Membership's store: site snapshots and member presence kept beside the events, in two round trips per command.

`load` is one query (whether the command was seen, the site's state, the state of the site where the member is
now); `commit` is one call of a SQL function that appends the events and updates the inline tables in the
statement's transaction. A racing writer makes either a unique violation or GD409: a conflict, tried again.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from contracts.base import Command, Event
from contracts.city import City
from contracts.membership import AdmitProbationary, MemberArrived, MemberDeparted, RecordArrival, SiteRegistered
from contracts.replies import ErrorInfo, RecordedRef
from gongdi.store.base import ConcurrencyError, Loaded, Meta, Pending, StreamHead, prepare
from gongdi.store.migrations import Migration, numbered
from gongdi.store.postgres import (
    EVENT_STORE_MIGRATIONS,
    PostgresEventStore,
    command_fingerprints,
    conflicts,
    insert_sql,
    refs,
    routines_sql,
    rows_json,
    tamper_evidence,
    warnings_json,
)
from gongdi.store.sitestreams import stream_of
from services.membership.domain import Given, SiteState, evolve

SCHEMA = "membership"
CONFLICT_SQLSTATE = "GD409"

MIGRATIONS = numbered(EVENT_STORE_MIGRATIONS, [
    Migration(2, "member presence: one site at a time", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.member_presence (
            member_id text PRIMARY KEY,
            site_id text NOT NULL
        );"""),
    Migration(3, "commit takes a command's events as one JSON parameter (drops release 0.1's 24 arguments)",
              lambda s: f"""
        DROP FUNCTION IF EXISTS {s}.commit(uuid[], text[], int[], text[], int[], text[], text[], text, uuid, uuid,
            uuid, timestamptz, text[], text[], text[], jsonb, text[], int[], text[], text[], text[], text[], text[],
            text[]);"""),
    command_fingerprints(4),
    Migration(5, "commit also records the command's fingerprint (drops the six-argument commit)", lambda s: f"""
        DROP FUNCTION IF EXISTS {s}.commit(uuid, jsonb, jsonb, jsonb, jsonb, jsonb);"""),
    # The rule DEPARTURE_BEFORE_ARRIVAL reads each present member's arrival date from the snapshot; snapshots
    # written before learn it from the member's latest arrival event on that site.
    Migration(6, "site snapshots keep each present member's arrival date", lambda s: f"""
        UPDATE {s}.site_state st SET state = jsonb_set(st.state, '{{arrived}}', coalesce((
            SELECT jsonb_object_agg(m.member_id, a.arrived_on)
            FROM jsonb_object_keys(st.state->'members') AS m(member_id)
            CROSS JOIN LATERAL (
                SELECT e.payload->'arrived_on' AS arrived_on FROM {s}.events e
                WHERE e.stream_id = '{stream_of("")}' || st.site_id AND e.event_type = 'MemberArrived'
                  AND e.payload->>'member_id' = m.member_id
                ORDER BY e.version DESC LIMIT 1) a), '{{}}'::jsonb))
        WHERE NOT st.state ? 'arrived';"""),
    tamper_evidence(7),
])


def commit_function_sql(s: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {s}.commit(p_command uuid, p_warnings jsonb, p_events jsonb, p_states jsonb,
                                      p_left jsonb, p_came jsonb, p_fingerprint text)
RETURNS TABLE (event_id uuid, "position" bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    moved record;
BEGIN
    -- A move writes two streams; two moves in opposite directions would each hold one and wait for the other
    -- (a deadlock, one of them aborted). Taking the streams in one order makes them queue instead.
    IF jsonb_array_length(p_events) > 1 THEN
        PERFORM pg_advisory_xact_lock(hashtext('{s}.streams'), hashtext(x.stream_id))
        FROM (SELECT DISTINCT e->>'stream_id' AS stream_id FROM jsonb_array_elements(p_events) e ORDER BY 1) x;
    END IF;
    INSERT INTO {s}.commands (command_id, warnings, fingerprint) VALUES (p_command, p_warnings, p_fingerprint);
    RETURN QUERY {insert_sql(s, 'p_events')};
    FOR moved IN SELECT * FROM jsonb_to_recordset(p_left) AS l(member_id text, site_id text) LOOP
        DELETE FROM {s}.member_presence p WHERE p.member_id = moved.member_id AND p.site_id = moved.site_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'presence of % changed concurrently', moved.member_id USING ERRCODE = '{CONFLICT_SQLSTATE}';
        END IF;
    END LOOP;
    -- The primary key is the rule "a member is at one site at a time": a racing arrival fails here.
    INSERT INTO {s}.member_presence (member_id, site_id)
        SELECT c.member_id, c.site_id FROM jsonb_to_recordset(p_came) AS c(member_id text, site_id text);
    INSERT INTO {s}.site_state (site_id, version, hash, state)
        SELECT u.site_id, u.version, u.hash, u.state
        FROM jsonb_to_recordset(p_states) AS u(site_id text, version int, hash text, state jsonb)
        ON CONFLICT (site_id) DO UPDATE SET version = EXCLUDED.version, hash = EXCLUDED.hash, state = EXCLUDED.state;
END $fn$;
"""


ROUTINES = (routines_sql, commit_function_sql)

_LOAD = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.commands WHERE command_id = $1) AS done,
       s.version, s.hash, s.state::text AS state,
       ps.site_id AS prev_id, ps.version AS prev_version, ps.hash AS prev_hash, ps.state::text AS prev_state
FROM (VALUES (1)) AS one(x)
LEFT JOIN {SCHEMA}.site_state s ON s.site_id = $2
LEFT JOIN {SCHEMA}.member_presence p ON p.member_id = $3 AND p.site_id <> $2
LEFT JOIN {SCHEMA}.site_state ps ON ps.site_id = p.site_id
"""

_COMMIT = f"SELECT * FROM {SCHEMA}.commit($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7)"


class MembershipRepository:
    def __init__(self, pool: asyncpg.Pool, city: City):
        self.store = PostgresEventStore(pool, SCHEMA)
        self.city = city

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[_Attempt]:
        # No explicit transaction: each of the two statements is atomic on its own, and commit re-checks
        # everything load saw (stream versions, presence), so a stale load ends in a conflict, never a wrong write.
        async with self.store.pool.acquire() as conn:
            yield _Attempt(self.store, conn, self.city)


class _Attempt:
    def __init__(self, store: PostgresEventStore, conn: asyncpg.Connection, city: City):
        self.store = store
        self.conn = conn
        self.city = city

    async def load(self, command: Command) -> Loaded:
        site_id: str = command.site_id  # type: ignore[attr-defined]
        # An arrival and an admission both make a member present: the site where that id is now comes along.
        member_id = (command.member_id if isinstance(command, RecordArrival)
                     else command.person_id if isinstance(command, AdmitProbationary) else None)
        r = await self.conn.fetchrow(_LOAD, command.command_id, site_id, member_id)
        if r["done"]:
            return Loaded(None, reply=await self.store.find_command(command.command_id, self.conn),
                          asked=await self.store.command_fingerprint(command.command_id, self.conn))
        site = SiteState.model_validate_json(r["state"]) if r["state"] else None
        heads = {stream_of(site_id): StreamHead(r["version"], r["hash"]) if site else StreamHead()}
        previous = None
        if r["prev_id"] is not None:
            previous = SiteState.model_validate_json(r["prev_state"])
            heads[stream_of(r["prev_id"])] = StreamHead(r["prev_version"], r["prev_hash"])
        township = site.township if site else getattr(command, "township", None)  # RegisterSite names its own
        return Loaded(Given(site=site, previous_site=previous, city=self.city), target=heads, township=township)

    async def commit(self, command: Command, loaded: Loaded, events: list[Event], warnings: list[ErrorInfo],
                     actor: str) -> list[RecordedRef]:
        given: Given = loaded.given
        states: dict[str, SiteState | None] = {s.site_id: s for s in (given.site, given.previous_site) if s}
        township = {site_id: s.township for site_id, s in states.items() if s}
        pending: list[Pending] = []
        left: list[dict[str, str]] = []
        came: list[dict[str, str]] = []
        for event in events:
            site_id: str = event.site_id  # type: ignore[attr-defined]
            tw = event.township if isinstance(event, SiteRegistered) else township[site_id]
            pending.append(Pending(event, stream_of(site_id), tw, site_id))
            states[site_id] = evolve(states.get(site_id), event)
            if isinstance(event, MemberDeparted):
                left.append({"member_id": event.member_id, "site_id": site_id})
            elif isinstance(event, MemberArrived):
                came.append({"member_id": event.member_id, "site_id": site_id})
        meta = Meta(actor=actor, command_id=command.command_id, correlation_id=command.correlation_id,
                    fingerprint=command.fingerprint(actor), warnings=warnings)
        prepared = prepare(pending, loaded.target, meta)
        snapshots = [_snapshot(site_id, state, prepared.heads[stream_of(site_id)])
                     for site_id, state in states.items() if state is not None]
        try:
            with conflicts():
                returned = await self.conn.fetch(
                    _COMMIT, command.command_id, warnings_json(warnings), rows_json(prepared),
                    orjson.dumps(snapshots).decode(), orjson.dumps(left).decode(), orjson.dumps(came).decode(),
                    command.fingerprint(actor),
                )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == CONFLICT_SQLSTATE:
                raise ConcurrencyError(str(exc)) from exc
            raise
        return refs(prepared, returned)


def _snapshot(site_id: str, state: SiteState, head: StreamHead) -> dict[str, Any]:
    return {"site_id": site_id, "version": head.version, "hash": head.hash, "state": state.model_dump(mode="json")}
