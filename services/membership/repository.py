"""Membership's store: site states and member presence kept beside the events, in two round trips per command.

`load` is one query (whether the command was seen, the site's state, the state of the site where the member is
now); `commit` is one call of a SQL function that appends the events and updates the inline tables in the
statement's transaction. A racing writer makes either a unique violation or GD409: a conflict, tried again.

A site's stored state may trail its head, as every site stream's does (gongdi.store.sitestreams: `SiteFolds`).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from contracts.base import Command, Event
from contracts.city import City
from contracts.membership import (
    EVENTS,
    AdmitProbationary,
    MemberArrived,
    MemberDeparted,
    RecordArrival,
    RegisterSite,
    SiteRegistered,
    SubmitApplication,
)
from contracts.replies import ErrorInfo, RecordedRef
from gongdi.store.base import ConcurrencyError, Loaded, Meta, Pending, StoredState, StreamHead, prepare
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
    trailing_states,
    warnings_json,
)
from gongdi.store.sitestreams import FOLDS_KEPT, SiteFolds, stream_of
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
    trailing_states(8),
    # SITE_NAME_TAKEN looks for the township's other sites of a name: by this index rather than by reading (and
    # decompressing) every site's state, which grows with its members.
    Migration(9, "site snapshots indexed by township and name", lambda s: f"""
        CREATE INDEX IF NOT EXISTS site_state_township_name
            ON {s}.site_state ((state->>'township'), (state->>'name'));"""),
])


def site_folds(kept: int = FOLDS_KEPT) -> SiteFolds[SiteState]:
    return SiteFolds(SiteState, evolve, EVENTS, kept=kept)


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
    -- A row without a state moves only the head: the stored state stays, folded up to its state_version. (Not an
    -- upsert: the insert's NOT NULL check on state comes before its conflict.)
    UPDATE {s}.site_state st SET version = u.version, hash = u.hash, state = coalesce(u.state, st.state),
        state_version = CASE WHEN u.state IS NULL THEN st.state_version ELSE u.version END
    FROM jsonb_to_recordset(p_states) AS u(site_id text, version int, hash text, state jsonb)
    WHERE st.site_id = u.site_id;
    INSERT INTO {s}.site_state (site_id, version, hash, state, state_version)
        SELECT u.site_id, u.version, u.hash, u.state, u.version
        FROM jsonb_to_recordset(p_states) AS u(site_id text, version int, hash text, state jsonb)
        WHERE u.state IS NOT NULL
        ON CONFLICT (site_id) DO NOTHING;
END $fn$;
"""


ROUTINES = (routines_sql, commit_function_sql)

# $4: the version of the target site's state this process holds (-1: none); the stored state comes only if newer.
_LOAD = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.commands WHERE command_id = $1) AS done,
       s.version, s.hash, s.state_version, CASE WHEN s.state_version > $4 THEN s.state::text END AS state,
       ps.site_id AS prev_id, ps.version AS prev_version, ps.hash AS prev_hash, ps.state_version AS prev_state_version,
       ps.state::text AS prev_state
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
        self.folds = site_folds()

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[_Attempt]:
        # No explicit transaction: each of the two statements is atomic on its own, and commit re-checks
        # everything load saw (stream versions, presence), so a stale load ends in a conflict, never a wrong write.
        async with self.store.pool.acquire() as conn:
            yield _Attempt(self.store, conn, self.city, self.folds)


class _Attempt:
    def __init__(self, store: PostgresEventStore, conn: asyncpg.Connection, city: City, folds: SiteFolds):
        self.store = store
        self.conn = conn
        self.city = city
        self.folds = folds
        self.stored_at: dict[str, int] = {}  # per site loaded: the version its stored state is folded up to

    async def load(self, command: Command) -> Loaded:
        site_id: str = command.site_id  # type: ignore[attr-defined]
        # An arrival and an admission both make a member present, and an application takes an id that becomes a
        # member's: the site where that id is present now comes along.
        member_id = (command.member_id if isinstance(command, RecordArrival)
                     else command.person_id if isinstance(command, AdmitProbationary | SubmitApplication) else None)
        r = await self.conn.fetchrow(_LOAD, command.command_id, site_id, member_id, self.folds.version(site_id))
        if r["done"]:
            return Loaded(None, reply=await self.store.find_command(command.command_id, self.conn),
                          asked=await self.store.command_fingerprint(command.command_id, self.conn))
        site = None
        heads = {stream_of(site_id): StreamHead()}
        if r["version"] is not None:
            heads[stream_of(site_id)] = head = StreamHead(r["version"], r["hash"])
            site = await self.folds.current(self.store, self.conn, site_id,
                                            StoredState(head, r["state_version"], r["state"]))
            self.stored_at[site_id] = r["state_version"]
        previous = None
        if r["prev_id"] is not None:
            heads[stream_of(r["prev_id"])] = head = StreamHead(r["prev_version"], r["prev_hash"])
            previous = await self.folds.current(self.store, self.conn, r["prev_id"],
                                                StoredState(head, r["prev_state_version"], r["prev_state"]))
            self.stored_at[r["prev_id"]] = r["prev_state_version"]
        township = site.township if site else getattr(command, "township", None)  # RegisterSite names its own
        same_name: tuple[str, ...] = ()
        if isinstance(command, RegisterSite) and site is None:  # by the index of migration 9
            same_name = tuple(r["site_id"] for r in await self.conn.fetch(
                f"SELECT site_id FROM {SCHEMA}.site_state WHERE state->>'township' = $2"
                " AND state->>'name' = $1 AND site_id <> $3 ORDER BY site_id",
                command.name, command.township, site_id))
        return Loaded(Given(site=site, previous_site=previous, city=self.city, same_name=same_name), target=heads,
                      township=township)

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
        kept = {site_id: (prepared.heads[stream_of(site_id)], state)
                for site_id, state in states.items() if state is not None}
        snapshots = [{"site_id": site_id, "version": head.version, "hash": head.hash,
                      "state": _raw(self.folds.stored_form(state, head, self.stored_at.get(site_id, 0)))}
                     for site_id, (head, state) in kept.items()]
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
        for site_id, (head, state) in kept.items():
            self.folds.keep(site_id, head, state)
        return refs(prepared, returned)


def _raw(state: str | None) -> orjson.Fragment | None:
    """A state's JSON as it is, inside the commit's JSON parameter (through Python values it cost twice as much)."""
    return None if state is None else orjson.Fragment(state)
