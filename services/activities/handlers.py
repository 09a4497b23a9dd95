"""Activities handlers: commands (parse → load → decide → append → reply) and the membership-event policy."""
from __future__ import annotations

import asyncio
import random
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError

from contracts.activities import COMMANDS
from contracts.base import Command, Event
from contracts.envelope import Envelope
from contracts.membership import MemberArrived, MemberDeparted, SiteRegistered, parse_event
from contracts.replies import CommandReply, ErrorInfo, RecordedRef
from contracts.rules import Rules
from gongdi.eventstore import ConcurrencyError, DuplicateCommandError, EventStore, Meta, Pending, StoredRow
from gongdi.locks import KeyedLocks
from services.activities.domain import DomainError, decide, evolve, on_member_arrived
from services.activities.repository import ActivityRepository, stream_of

MAX_ATTEMPTS = 20


def error_reply(code: str, message: str, field: str | None = None, command_id: UUID | None = None) -> bytes:
    reply = CommandReply(ok=False, command_id=command_id, error=ErrorInfo(code=code, message=message, field=field))
    return reply.model_dump_json().encode()


class ActivityHandlers:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, rules: Rules, log: structlog.BoundLogger):
        self.pool = pool
        self.store = store
        self.repo = ActivityRepository()
        self.rules = rules
        self.log = log
        self.locks = KeyedLocks()

    async def handle(self, name: str, raw: bytes) -> bytes:
        try:
            command = COMMANDS[name].model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            return error_reply("VALIDATION_FAILED", f"{field or 'body'}: {first['msg']}", field)
        async with self.locks.hold(command.site_id):  # type: ignore[attr-defined]
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return await self._attempt(command)
                except DomainError as exc:
                    return error_reply(exc.code, exc.message, exc.field, command.command_id)
                except (ConcurrencyError, DuplicateCommandError):
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        return error_reply("CONCURRENCY_CONFLICT", "并发冲突，请重试 (too many concurrent writers)", None,
                           command.command_id)

    async def _attempt(self, command: Command) -> bytes:
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await self.store.find_command(command.command_id, conn)
            if stored is not None:
                return stored.model_dump_json().encode()
            site_id: str = command.site_id  # type: ignore[attr-defined]
            given, township, head = await self.repo.given(conn, site_id)
            events = decide(command, given, self.rules)
            meta = Meta(actor=command.actor, command_id=command.command_id, correlation_id=command.correlation_id)
            rows = await append(conn, self.store, self.repo, site_id, township or "", given.site, head, events, meta)
            await self.store.save_command(conn, command.command_id, [])
        return CommandReply(
            ok=True, command_id=command.command_id,
            events=[RecordedRef(event_id=r.event_id, type=r.event_type, stream_id=r.stream_id, version=r.version,
                                position=r.position) for r in rows],
        ).model_dump_json().encode()


async def append(conn: asyncpg.Connection, store: EventStore, repo: ActivityRepository, site_id: str,
                 township: str, state, head, events: list[Event], meta: Meta) -> list[StoredRow]:
    pending = [Pending(e, stream_of(site_id), township, site_id) for e in events]
    rows, heads = await store.append(conn, pending, {stream_of(site_id): head}, meta)
    for e in events:
        state = evolve(state, e)
    await repo.save(conn, state, heads[stream_of(site_id)])
    return rows


class MembershipPolicy:
    """Consumes membership events: learns sites and presence, and turns each arrival into a talk obligation.

    It runs inside the ordered consumer's transaction, so the obligation, the presence row and the checkpoint
    commit together: a redelivered or replayed arrival finds the checkpoint past it and creates nothing.
    """

    def __init__(self, store: EventStore, rules: Rules):
        self.store = store
        self.repo = ActivityRepository()
        self.rules = rules

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.type not in ("SiteRegistered", "MemberArrived", "MemberDeparted"):
            return
        match parse_event(event.type, event.schema_version, event.payload):
            case SiteRegistered() as e:
                await self.repo.learn_site(conn, e)
            case MemberArrived() as e:
                await self.repo.arrived(conn, e)
                await self._obligation(conn, event, e)
            case MemberDeparted() as e:
                await self.repo.departed(conn, e)

    async def _obligation(self, conn: asyncpg.Connection, event: Envelope, arrived: MemberArrived) -> None:
        site_id = arrived.site_id
        new = on_member_arrived(site_id, arrived.member_id, arrived.arrived_on, event.event_id, self.rules)
        meta = Meta(actor="policy:新来党员必谈", causation_id=event.event_id,
                    correlation_id=event.correlation_id or event.command_id)
        for _ in range(MAX_ATTEMPTS):
            try:
                async with conn.transaction():  # a savepoint: a lost race with a command is retried here
                    state, head = await self.repo.load(conn, site_id)
                    await append(conn, self.store, self.repo, site_id, event.township, state, head, new, meta)
                return
            except ConcurrencyError:
                await asyncio.sleep(random.uniform(0, 0.005))
        raise ConcurrencyError(f"could not record the talk obligation for {event.event_id}")
