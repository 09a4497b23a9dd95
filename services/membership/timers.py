"""Membership's timers: the transfer prompt of a mobile member and the escalation of one out of contact."""
from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from contracts.base import Command
from contracts.membership import FireTimer
from contracts.rules import DEFAULT_RULES, Rules
from gongdi.service.timers import Timers
from services.membership.domain import SiteState, due_timers
from services.membership.repository import SCHEMA

# The firing of one timer has one command id: the same site, member, timer and stay (or episode of lost contact)
# always give the same, so two replicas or a pass repeated after a crash ask for the same command.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gongdi/membership/timers")

# Only sites with a mobile member or a member out of contact can have a timer due; the rules say which is.
_CANDIDATES = f"""
SELECT state::text AS state FROM {SCHEMA}.site_state
WHERE jsonb_path_exists(state, '$.members.* ? (@.relation == "mobile")')
   OR coalesce(state->'contact_lost', '{{}}'::jsonb) <> '{{}}'::jsonb
ORDER BY site_id"""


def firing_id(site_id: str, member_id: str, timer: str, since: dt.date) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{site_id}/{member_id}/{timer}/{since.isoformat()}")


async def due_commands(pool: asyncpg.Pool, today: dt.date, rules: Rules = DEFAULT_RULES) -> list[Command]:
    """The FireTimer commands due on `today`, read from the site snapshots (kept with the events, in their
    transactions): nothing about a timer lives in the process."""
    commands: list[Command] = []
    for row in await pool.fetch(_CANDIDATES):
        site = SiteState.model_validate_json(row["state"])
        commands += [FireTimer(command_id=firing_id(site.site_id, d.member_id, d.timer.value, d.since),
                               site_id=site.site_id, member_id=d.member_id, timer=d.timer, today=today)
                     for d in due_timers(site, today, rules)]
    return commands


TIMERS = Timers(actor="timer:流动党员", due=due_commands)
