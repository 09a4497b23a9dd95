"""Inline state the membership rules check, kept beside the events: site snapshots and member presence.

A command costs two round trips: `load` (state, presence and whether the command was seen) and `commit`, one
call of a SQL function that appends the events and updates the inline tables in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from contracts.base import Event
from contracts.membership import MemberArrived, MemberDeparted, RecordArrival
from contracts.replies import ErrorInfo
from gongdi.store.postgres import Batch, ConcurrencyError, StoredRow, StreamHead, conflict, insert_sql, warnings_json
from services.membership.domain import Given, SiteState, evolve

SCHEMA = "membership"
CONFLICT_SQLSTATE = "GD409"

TABLES_SQL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.site_state (
    site_id text PRIMARY KEY,
    version int NOT NULL,
    hash text NOT NULL,
    state jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.member_presence (
    member_id text PRIMARY KEY,
    site_id text NOT NULL
);
CREATE OR REPLACE FUNCTION {SCHEMA}.commit(
    uuid[], text[], int[], text[], int[], text[], text[], text, uuid, uuid, uuid, timestamptz, text[], text[], text[],
    warnings jsonb, state_ids text[], state_versions int[], state_hashes text[], state_docs text[],
    left_members text[], left_sites text[], came_members text[], came_sites text[]
) RETURNS TABLE (event_id uuid, "position" bigint, tx_id bigint, recorded_at timestamptz)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    INSERT INTO {SCHEMA}.commands (command_id, warnings) VALUES ($9, warnings);
    RETURN QUERY {insert_sql(SCHEMA)};
    FOR i IN 1 .. coalesce(array_length(left_members, 1), 0) LOOP
        DELETE FROM {SCHEMA}.member_presence p WHERE p.member_id = left_members[i] AND p.site_id = left_sites[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'presence of % changed concurrently', left_members[i] USING ERRCODE = '{CONFLICT_SQLSTATE}';
        END IF;
    END LOOP;
    -- The primary key is the rule "a member is at one site at a time": a racing arrival fails here.
    INSERT INTO {SCHEMA}.member_presence (member_id, site_id) SELECT * FROM unnest(came_members, came_sites);
    INSERT INTO {SCHEMA}.site_state (site_id, version, hash, state)
        SELECT u.id, u.v, u.h, u.d::jsonb
        FROM unnest(state_ids, state_versions, state_hashes, state_docs) AS u(id, v, h, d)
        ON CONFLICT (site_id) DO UPDATE SET version = EXCLUDED.version, hash = EXCLUDED.hash, state = EXCLUDED.state;
END $fn$;
"""

_LOAD = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.commands WHERE command_id = $1) AS done,
       s.version, s.hash, s.state::text AS state,
       ps.site_id AS prev_id, ps.version AS prev_version, ps.hash AS prev_hash, ps.state::text AS prev_state
FROM (VALUES (1)) AS one(x)
LEFT JOIN {SCHEMA}.site_state s ON s.site_id = $2
LEFT JOIN {SCHEMA}.member_presence p ON p.member_id = $3 AND p.site_id <> $2
LEFT JOIN {SCHEMA}.site_state ps ON ps.site_id = p.site_id
"""

_COMMIT = f"SELECT * FROM {SCHEMA}.commit({', '.join(f'${i}' for i in range(1, 25))})"


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


@dataclass(frozen=True)
class Loaded:
    done: bool
    given: Given
    heads: dict[str, StreamHead]


class SiteRepository:
    async def load(self, conn: asyncpg.Connection, command: object) -> Loaded:
        site_id: str = command.site_id  # type: ignore[attr-defined]
        member_id = command.member_id if isinstance(command, RecordArrival) else None
        r = await conn.fetchrow(_LOAD, command.command_id, site_id, member_id)  # type: ignore[attr-defined]
        site = SiteState.model_validate_json(r["state"]) if r["state"] else None
        heads = {stream_of(site_id): StreamHead(r["version"], r["hash"]) if site else StreamHead()}
        previous = None
        if r["prev_id"] is not None:
            previous = SiteState.model_validate_json(r["prev_state"])
            heads[stream_of(r["prev_id"])] = StreamHead(r["prev_version"], r["prev_hash"])
        return Loaded(r["done"], Given(site=site, previous_site=previous), heads)

    async def commit(
        self, conn: asyncpg.Connection, batch: Batch, given: Given, events: list[Event], warnings: list[ErrorInfo]
    ) -> list[StoredRow]:
        states: dict[str, SiteState | None] = {s.site_id: s for s in (given.site, given.previous_site) if s}
        left: list[tuple[str, str]] = []
        came: list[tuple[str, str]] = []
        for event in events:
            site_id = event.site_id  # type: ignore[attr-defined]
            states[site_id] = evolve(states.get(site_id), event)
            if isinstance(event, MemberDeparted):
                left.append((event.member_id, site_id))
            elif isinstance(event, MemberArrived):
                came.append((event.member_id, site_id))
        ids = list(states)
        heads = [batch.heads[stream_of(i)] for i in ids]
        try:
            returned = await conn.fetch(
                _COMMIT, *batch.args(), warnings_json(warnings),
                ids, [h.version for h in heads], [h.hash for h in heads],
                [states[i].model_dump_json() for i in ids],  # type: ignore[union-attr]
                [m for m, _ in left], [s for _, s in left], [m for m, _ in came], [s for _, s in came],
            )
        except asyncpg.UniqueViolationError as exc:
            raise conflict(exc) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == CONFLICT_SQLSTATE:
                raise ConcurrencyError(str(exc)) from exc
            raise
        return batch.stored(returned)
