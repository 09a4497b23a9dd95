"""Membership's timers: the transfer prompt of a mobile member and the escalation of one out of contact."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

from contracts.base import Command
from contracts.membership import FireTimer
from contracts.rules import DEFAULT_RULES, Rules
from gongdi.service.timers import Timers
from gongdi.store.base import StoredState, StreamHead
from gongdi.store.postgres import PostgresEventStore
from services.membership.domain import due_timers
from services.membership.repository import SCHEMA, site_folds

# The firing of one timer has one command id: the same site, member, timer and stay (or episode of lost contact)
# always give the same, so two replicas or a pass repeated after a crash ask for the same command.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gongdi/membership/timers")

# Only sites with a mobile member or a member out of contact can have a timer due; the rules say which is. A
# stored state that trails its head (see the repository) may not show them yet: those sites are folded first.
_CANDIDATES = f"""
SELECT site_id, version, hash, state_version, state::text AS state FROM {SCHEMA}.site_state
WHERE ($1::text[] IS NULL OR site_id = ANY($1::text[]))
  AND (state_version < version
       OR jsonb_path_exists(state, '$.members.* ? (@.relation == "mobile")')
       OR coalesce(state->'contact_lost', '{{}}'::jsonb) <> '{{}}'::jsonb)
ORDER BY site_id"""


def firing_id(site_id: str, member_id: str, timer: str, since: dt.date) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{site_id}/{member_id}/{timer}/{since.isoformat()}")


async def due_commands(pool: asyncpg.Pool, today: dt.date, sites: Sequence[str] | None = None,
                       rules: Rules = DEFAULT_RULES) -> list[Command]:
    """The FireTimer commands due on `today` (on every site, or on `sites`), read from the site snapshots (kept with
    the events, in their transactions): nothing about a timer lives in the process."""
    commands: list[Command] = []
    folds, store = site_folds(kept=0), PostgresEventStore(pool, SCHEMA)
    async with pool.acquire() as conn:
        sites = [await folds.current(store, conn, r["site_id"], StoredState(StreamHead(r["version"], r["hash"]),
                                                                            r["state_version"], r["state"]))
                 for r in await conn.fetch(_CANDIDATES, list(sites) if sites is not None else None)]
    for site in sites:
        commands += [FireTimer(command_id=firing_id(site.site_id, d.member_id, d.timer.value, d.since),
                               site_id=site.site_id, member_id=d.member_id, timer=d.timer, today=today)
                     for d in due_timers(site, today, rules)]
    return commands


TIMERS = Timers(actor="timer:流动党员", due=due_commands)
