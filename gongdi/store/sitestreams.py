"""One stream per site with its folded state kept beside it: appends for policies, a repository for commands."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from contracts.base import Command, Event
from contracts.replies import ErrorInfo, RecordedRef
from gongdi.store.base import (
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    Loaded,
    Meta,
    Pending,
    StreamHead,
    retry_on_conflict,
)

S = TypeVar("S", bound=BaseModel)


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


class SiteStream(Generic[S]):
    """Append to one site's stream and keep its snapshot current, in the caller's transaction."""

    def __init__(self, store: EventStore, model: type[S], evolve: Callable[[S | None, Event], S]):
        self.store = store
        self.model = model
        self.evolve = evolve

    async def load(self, tx: Any, site_id: str) -> tuple[S | None, StreamHead]:
        state, head = await self.store.snapshot(tx, site_id)
        return (None if state is None else self.model.model_validate_json(state)), head

    async def append(self, tx: Any, site_id: str, township: str, state: S | None, head: StreamHead,
                     events: list[Event], meta: Meta) -> list[RecordedRef]:
        pending = [Pending(e, stream_of(site_id), township, site_id) for e in events]
        refs, heads = await self.store.append(tx, pending, {stream_of(site_id): head}, meta)
        for e in events:
            state = self.evolve(state, e)
        if state is not None:
            await self.store.save_snapshot(tx, site_id, heads[stream_of(site_id)], state.model_dump(mode="json"))
        return refs

    async def append_retrying(self, conn: Any, site_id: str, township: str,
                              decide: Callable[[S | None], list[Event]], meta: Meta) -> list[RecordedRef]:
        """For policies inside a consumer's transaction: a race lost to a command is retried in a savepoint. A
        StaleTransactionError is not: it goes up, and the consumer applies the batch again in a new transaction."""

        async def attempt() -> list[RecordedRef]:
            async with conn.transaction():
                state, head = await self.load(conn, site_id)
                events = decide(state)
                if not events:  # a policy with nothing to do (no open obligation left) writes nothing
                    return []
                return await self.append(conn, site_id, township, state, head, events, meta)

        return await retry_on_conflict(attempt, retry_on=(ConcurrencyError, DuplicateCommandError))


# The rule context a service needs besides its own snapshot: (given, township or None if the site is unknown).
ContextLoader = Callable[[Any, str, Any], Awaitable[tuple[Any, str | None]]]


@dataclass(frozen=True)
class _Target(Generic[S]):
    site_id: str
    township: str
    state: S | None
    head: StreamHead


class SiteStreams(Generic[S]):
    """The repository of a service whose commands each name one `site_id`: load its snapshot and rule context,
    append the decided events, keep the snapshot and the command id, all in one transaction."""

    def __init__(self, stream: SiteStream[S], context: ContextLoader):
        self.stream = stream
        self.context = context

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[_SiteAttempt[S]]:
        async with self.stream.store.transaction() as tx:
            yield _SiteAttempt(self, tx)


class _SiteAttempt(Generic[S]):
    def __init__(self, repo: SiteStreams[S], tx: Any):
        self.repo = repo
        self.tx = tx

    async def load(self, command: Command) -> Loaded:
        store = self.repo.stream.store
        reply = await store.find_command(command.command_id, self.tx)
        if reply is not None:
            return Loaded(None, reply=reply, asked=await store.command_fingerprint(command.command_id, self.tx))
        site_id: str = command.site_id  # type: ignore[attr-defined]
        state, head = await self.repo.stream.load(self.tx, site_id)
        given, township = await self.repo.context(self.tx, site_id, state)
        return Loaded(given, target=_Target(site_id, township or "", state, head), township=township)

    async def commit(self, command: Command, loaded: Loaded, events: list[Event], warnings: list[ErrorInfo],
                     actor: str) -> list[RecordedRef]:
        t: _Target[S] = loaded.target
        meta = Meta(actor=actor, command_id=command.command_id, correlation_id=command.correlation_id,
                    fingerprint=command.fingerprint(actor), warnings=warnings)
        refs = await self.repo.stream.append(self.tx, t.site_id, t.township, t.state, t.head, events, meta)
        await self.repo.stream.store.save_command(self.tx, command.command_id, warnings,
                                                  command.fingerprint(actor))
        return refs
