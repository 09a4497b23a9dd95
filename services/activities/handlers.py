"""Activities handlers: the commands, and the policy that turns membership events into talk obligations."""
from __future__ import annotations

import asyncpg
import structlog

from contracts.activities import COMMANDS
from contracts.envelope import Envelope
from contracts.membership import MemberArrived, MemberDeparted, SiteRegistered, parse_event
from contracts.rules import Rules
from gongdi.store.postgres import Meta
from gongdi.store.sitestreams import SiteCommands, SiteStream
from services.activities.domain import ActivitySite, decide, on_member_arrived
from services.activities.repository import Directory


def activity_commands(pool: asyncpg.Pool, stream: SiteStream[ActivitySite], rules: Rules,
                      log: structlog.BoundLogger) -> SiteCommands[ActivitySite]:
    return SiteCommands(pool, stream, COMMANDS, Directory().context,
                        lambda command, given: decide(command, given, rules), log)


class MembershipPolicy:
    """Consumes membership events: learns sites and presence, and turns each arrival into a talk obligation.

    It runs inside the ordered consumer's transaction, so the obligation, the presence row and the checkpoint
    commit together: a redelivered or replayed arrival finds the checkpoint past it and creates nothing.
    """

    def __init__(self, stream: SiteStream[ActivitySite], rules: Rules):
        self.stream = stream
        self.directory = Directory()
        self.rules = rules

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.type not in ("SiteRegistered", "MemberArrived", "MemberDeparted"):
            return
        match parse_event(event.type, event.schema_version, event.payload):
            case SiteRegistered() as e:
                await self.directory.learn_site(conn, e)
            case MemberArrived() as e:
                await self.directory.arrived(conn, e)
                await self._obligation(conn, event, e)
            case MemberDeparted() as e:
                await self.directory.departed(conn, e)

    async def _obligation(self, conn: asyncpg.Connection, event: Envelope, arrived: MemberArrived) -> None:
        meta = Meta(actor="policy:新来党员必谈", causation_id=event.event_id,
                    correlation_id=event.correlation_id or event.command_id)
        talk = on_member_arrived(arrived.site_id, arrived.member_id, arrived.arrived_on, event.event_id, self.rules)
        await self.stream.append_retrying(conn, arrived.site_id, event.township, lambda _state: talk, meta)
