"""Membership command handlers: parse → load → decide → append → reply, once per command id."""
from __future__ import annotations

import asyncio
import random

import asyncpg
import structlog
from pydantic import ValidationError

from contracts.base import Command
from contracts.membership import COMMANDS, SiteRegistered
from contracts.rules import Rules
from gongdi.service.locks import KeyedLocks
from gongdi.store.postgres import ConcurrencyError, DuplicateCommandError, EventStore, Meta, Pending
from gongdi.store.sitestreams import MAX_ATTEMPTS, accepted_reply, conflict_reply, error_reply, validation_reply
from services.membership.domain import DomainError, advise, decide
from services.membership.repository import SiteRepository, stream_of


class MembershipHandlers:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, rules: Rules, log: structlog.BoundLogger):
        self.pool = pool
        self.store = store
        self.repo = SiteRepository()
        self.rules = rules
        self.log = log
        self.locks = KeyedLocks()

    async def handle(self, name: str, raw: bytes) -> bytes:
        try:
            command = COMMANDS[name].model_validate_json(raw)
        except ValidationError as exc:
            return validation_reply(exc)
        # Optimistic concurrency is the guarantee across processes; the lock only spares this one the retries.
        async with self.locks.hold(command.site_id), self.pool.acquire() as conn:  # type: ignore[attr-defined]
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return await self._attempt(conn, command)
                except DomainError as exc:
                    return error_reply(exc.code, exc.message, exc.field, command.command_id)
                except (ConcurrencyError, DuplicateCommandError):
                    # Someone else wrote first: look again and decide again, after a short random pause.
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        self.log.warning("command gave up after conflicts", command_id=str(command.command_id), command=name)
        return conflict_reply(command)

    async def _attempt(self, conn: asyncpg.Connection, command: Command) -> bytes:
        loaded = await self.repo.load(conn, command)
        if loaded.done:
            stored = await self.store.find_command(command.command_id, conn)
            assert stored is not None
            return stored.model_dump_json().encode()
        given = loaded.given
        events = decide(command, given, self.rules)
        warnings = advise(command, given, self.rules)
        township = {s.site_id: s.township for s in (given.site, given.previous_site) if s is not None}
        pending = []
        for event in events:
            site_id = event.site_id  # type: ignore[attr-defined]
            tw = event.township if isinstance(event, SiteRegistered) else township[site_id]
            pending.append(Pending(event, stream_of(site_id), tw, site_id))
        meta = Meta(actor=command.actor, command_id=command.command_id, correlation_id=command.correlation_id)
        batch = self.store.prepare(pending, loaded.heads, meta)
        rows = await self.repo.commit(conn, batch, given, events, warnings)
        return accepted_reply(command, rows, warnings)
