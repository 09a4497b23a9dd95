"""Liaison handlers: the commands, and the policy that learns sites and branches from membership events."""
from __future__ import annotations

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.liaison import COMMANDS
from contracts.membership import BranchFormed, SiteRegistered, parse_event
from gongdi.store.sitestreams import SiteCommands, SiteStream
from services.liaison.domain import LiaisonSite, decide
from services.liaison.repository import Directory


def liaison_commands(pool: asyncpg.Pool, stream: SiteStream[LiaisonSite], log: structlog.BoundLogger
                     ) -> SiteCommands[LiaisonSite]:
    return SiteCommands(pool, stream, COMMANDS, Directory().context, decide, log)


class MembershipPolicy:
    """Keeps `known_site` current, in the consumer's transaction with its checkpoint."""

    def __init__(self) -> None:
        self.directory = Directory()

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.type not in ("SiteRegistered", "BranchFormed"):
            return
        match parse_event(event.type, event.schema_version, event.payload):
            case SiteRegistered() as e:
                await self.directory.learn_site(conn, e)
            case BranchFormed() as e:
                await self.directory.branch_formed(conn, e)
