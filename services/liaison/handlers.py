"""Liaison handlers: the policy that learns sites and branches from membership events (commands go through the
kit's pipeline)."""
from __future__ import annotations

import asyncpg

from contracts import membership
from contracts.envelope import Envelope
from contracts.membership import BranchFormed, SiteCompleted, SiteRegistered
from gongdi.bus.projection import Projection
from services.liaison.repository import Directory


class MembershipPolicy(Projection):
    """Keeps `known_site` current (registration, branch, completion), in the consumer's transaction with its
    checkpoint."""

    contract = membership
    reacts_only = True

    def __init__(self) -> None:
        super().__init__()
        self.directory = Directory()

    async def site_registered(self, conn: asyncpg.Connection, env: Envelope, e: SiteRegistered) -> None:
        await self.directory.learn_site(conn, e)

    async def branch_formed(self, conn: asyncpg.Connection, env: Envelope, e: BranchFormed) -> None:
        await self.directory.branch_formed(conn, e)

    async def site_completed(self, conn: asyncpg.Connection, env: Envelope, e: SiteCompleted) -> None:
        await self.directory.completed(conn, e)
