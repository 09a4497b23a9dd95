"""Activities handlers: the policy that turns membership events into talk obligations and closes them as moot
(commands go through the kit's pipeline)."""
from __future__ import annotations

import asyncpg

from contracts import membership
from contracts.envelope import Envelope
from contracts.membership import (
    ApplicationSubmitted,
    BranchDissolved,
    BranchFormed,
    MemberArrived,
    MemberDeparted,
    SiteCompleted,
    SiteRegistered,
)
from contracts.rules import Rules
from gongdi.bus.projection import Projection
from gongdi.store.base import Meta
from gongdi.store.sitestreams import SiteStream
from services.activities.domain import (
    ActivitySite,
    on_application_submitted,
    on_member_arrived,
    on_member_departed,
    on_site_completed,
)
from services.activities.repository import Directory


class MembershipPolicy(Projection):
    """Consumes membership events: learns sites, branches and presence, turns each arrival and each application
    into a talk obligation, and closes as moot a completed site's open obligations and those of a member who left.

    It runs inside the ordered consumer's transaction, so the obligation, the presence row and the checkpoint
    commit together: a redelivered or replayed arrival finds the checkpoint past it and creates nothing.
    """

    contract = membership
    reacts_only = True

    def __init__(self, stream: SiteStream[ActivitySite], rules: Rules):
        super().__init__()
        self.stream = stream
        self.directory = Directory()
        self.rules = rules

    async def site_registered(self, conn: asyncpg.Connection, env: Envelope, e: SiteRegistered) -> None:
        await self.directory.learn_site(conn, e)

    async def member_arrived(self, conn: asyncpg.Connection, env: Envelope, e: MemberArrived) -> None:
        await self.directory.arrived(conn, e)
        meta = Meta(actor="policy:新来党员必谈", causation_id=env.event_id,
                    correlation_id=env.correlation_id or env.command_id)
        talk = on_member_arrived(e.site_id, e.member_id, e.arrived_on, env.event_id, self.rules)
        await self.stream.append_retrying(conn, e.site_id, env.township, lambda _state: talk, meta)

    async def application_submitted(self, conn: asyncpg.Connection, env: Envelope, e: ApplicationSubmitted) -> None:
        """入党申请人谈话: the applicant (a worker, not yet a member) is the obligation's member_id."""
        meta = Meta(actor="policy:入党申请人谈话", causation_id=env.event_id,
                    correlation_id=env.correlation_id or env.command_id)
        talk = on_application_submitted(e.site_id, e.person_id, e.applied_on, env.event_id, self.rules)
        await self.stream.append_retrying(conn, e.site_id, env.township, lambda _state: talk, meta)

    async def branch_formed(self, conn: asyncpg.Connection, env: Envelope, e: BranchFormed) -> None:
        await self.directory.branch_formed(conn, e)

    async def branch_dissolved(self, conn: asyncpg.Connection, env: Envelope, e: BranchDissolved) -> None:
        await self.directory.branch_dissolved(conn, e.site_id)

    async def site_completed(self, conn: asyncpg.Connection, env: Envelope, e: SiteCompleted) -> None:
        await self.directory.completed(conn, e)
        meta = Meta(actor="policy:工地竣工", causation_id=env.event_id,
                    correlation_id=env.correlation_id or env.command_id)
        await self.stream.append_retrying(conn, e.site_id, env.township,
                                          lambda state: on_site_completed(state, e.site_id, e.completed_on), meta)

    async def member_departed(self, conn: asyncpg.Connection, env: Envelope, e: MemberDeparted) -> None:
        await self.directory.departed(conn, e)
        meta = Meta(actor="policy:党员离场", causation_id=env.event_id,
                    correlation_id=env.correlation_id or env.command_id)
        await self.stream.append_retrying(
            conn, e.site_id, env.township,
            lambda state: on_member_departed(state, e.site_id, e.member_id, e.departed_on), meta)
