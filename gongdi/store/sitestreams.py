"""One stream per site with its folded state kept beside it: appends for policies, a repository for commands.

A site's state can grow with the site (every member present, every talk obligation ever opened), and writing it
with every event, then parsing it back at every load, made a command's cost grow with the site: an arrival into a
site of 3,000–4,000 members took ~65 ms (`python -m bench --big-site`). So the stored state is written again only
once the events since it outnumber a fiftieth of its entries (`refold_due`); in between only the head moves, and a
load folds the events after the stored state onto it (`SiteFolds`), or onto the state this process last had for
the site when that is newer.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel

from contracts.base import Command, Event, parse
from contracts.replies import ErrorInfo, RecordedRef
from gongdi.store.base import (
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    Loaded,
    Meta,
    Pending,
    StoredState,
    StreamHead,
    retry_on_conflict,
)

S = TypeVar("S", bound=BaseModel)


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


# A site's stored state is written again once the events since outnumber a fiftieth of its entries (`entries`): a
# small site with every event; one of 5,000 members (10,000 entries with their arrival dates) every 200th, so that
# a load folds at most ~200 events (each a copy of the member table) where it would have parsed the state anyway.
REFOLD_PER_ENTRIES = 50
FOLDS_KEPT = 64  # sites whose latest state a process keeps (a site of 5,000 members is ~8 MB of Python objects)


def refold_due(entries: int, version: int, state_version: int) -> bool:
    """Whether to store the state again at `version` (0 for `state_version`: none stored yet)."""
    return state_version == 0 or version - state_version > entries // REFOLD_PER_ENTRIES


def entries(state: BaseModel) -> int:
    """What a state's stored size grows with: the entries of its collections (members, arrival dates, talk
    obligations, cases…)."""
    return sum(len(v) for v in state.__dict__.values() if isinstance(v, dict | list))


class _Fold(NamedTuple):
    head: StreamHead
    state: Any


class SiteFolds(Generic[S]):
    """Sites' states folded up to their heads: the stored state, or the one this process last had if newer, with
    the events after it. Keeps the latest of `kept` sites. A kept state is used only when the events after it
    continue its hash and end at the head, so a state another process moved on from, one whose transaction rolled
    back, or one from before a restore of the database is never built on."""

    def __init__(self, model: type[S], evolve: Callable[[S | None, Event], S], events: dict[str, type[Event]],
                 kept: int = FOLDS_KEPT):
        self.model = model
        self.evolve = evolve
        self.events = events
        self.kept = kept
        self.latest: OrderedDict[str, _Fold] = OrderedDict()

    def version(self, site_id: str) -> int:
        """The version of the state kept for the site (-1: none): a load needs the stored state only if newer."""
        fold = self.latest.get(site_id)
        return -1 if fold is None else fold.head.version

    def keep(self, site_id: str, head: StreamHead, state: S) -> None:
        if self.kept:
            self.latest[site_id] = _Fold(head, state)
            self.latest.move_to_end(site_id)
            while len(self.latest) > self.kept:
                self.latest.popitem(last=False)

    def stored_form(self, state: S, head: StreamHead, state_version: int) -> str | None:
        """The state's JSON to store with `head`, or None while the stored one (as of `state_version`) will do."""
        return state.model_dump_json() if refold_due(entries(state), head.version, state_version) else None

    async def current(self, store: EventStore, tx: Any, site_id: str, stored: StoredState) -> S | None:
        """The site's state at `stored.head`. `stored` may lack the state text when the caller asked only for
        one newer than `version(site_id)`."""
        if stored.head.version == 0:
            return None
        fold = self.latest.get(site_id)
        if stored.state is None and fold is not None:
            state = await self._fold_after(store, tx, site_id, fold.state, fold.head, stored.head)
            if state is not None:
                self.keep(site_id, stored.head, state)
                return state
        if stored.state is None:
            stored = (await store.snapshot(tx, site_id))._replace(head=stored.head)
        state = await self._fold_after(store, tx, site_id, self.model.model_validate_json(stored.state),
                                       StreamHead(stored.state_version), stored.head)
        if state is None:  # written past the head the caller read: its read is stale
            raise ConcurrencyError(f"site {site_id} moved while its state was read")
        self.keep(site_id, stored.head, state)
        return state

    async def _fold_after(self, store: EventStore, tx: Any, site_id: str, state: S, base: StreamHead,
                          head: StreamHead) -> S | None:
        """`state`, as of `base`, with the events after it up to `head`; None if they do not continue `base` (its
        hash, when known) and end at `head`."""
        if base.version > head.version:
            return None
        later = await store.events_after(tx, stream_of(site_id), base.version, head.version) \
            if base.version < head.version else []
        last = base.hash
        for event in later:
            if last is not None and event.prev_hash != last:
                return None
            state = self.evolve(state, parse(self.events, event.type, event.schema_version, event.payload))
            last = event.hash
        if len(later) != head.version - base.version or (last is not None and last != head.hash):
            return None
        return state


class SiteStream(Generic[S]):
    """Append to one site's stream and keep its snapshot, in the caller's transaction."""

    def __init__(self, store: EventStore, folds: SiteFolds[S]):
        self.store = store
        self.folds = folds

    async def load(self, tx: Any, site_id: str) -> tuple[S | None, StreamHead, int]:
        """The site's state, its head, and the version its stored state is folded up to."""
        stored = await self.store.snapshot(tx, site_id, self.folds.version(site_id))
        return await self.folds.current(self.store, tx, site_id, stored), stored.head, stored.state_version

    async def append(self, tx: Any, site_id: str, township: str, state: S | None, head: StreamHead,
                     stored_at: int, events: list[Event], meta: Meta) -> list[RecordedRef]:
        pending = [Pending(e, stream_of(site_id), township, site_id) for e in events]
        refs, heads = await self.store.append(tx, pending, {stream_of(site_id): head}, meta)
        for e in events:
            state = self.folds.evolve(state, e)
        if state is not None:
            new_head = heads[stream_of(site_id)]
            await self.store.save_snapshot(tx, site_id, new_head, self.folds.stored_form(state, new_head, stored_at))
            # Kept before the caller's transaction commits: if it rolls back, the next load finds that the log
            # does not continue this state's hash, and folds from the stored one.
            self.folds.keep(site_id, new_head, state)
        return refs

    async def append_retrying(self, conn: Any, site_id: str, township: str,
                              decide: Callable[[S | None], list[Event]], meta: Meta) -> list[RecordedRef]:
        """For policies inside a consumer's transaction: a race lost to a command is retried in a savepoint. A
        StaleTransactionError is not: it goes up, and the consumer applies the batch again in a new transaction."""

        async def attempt() -> list[RecordedRef]:
            async with conn.transaction():
                state, head, stored_at = await self.load(conn, site_id)
                events = decide(state)
                if not events:  # a policy with nothing to do (no open obligation left) writes nothing
                    return []
                return await self.append(conn, site_id, township, state, head, stored_at, events, meta)

        return await retry_on_conflict(attempt, retry_on=(ConcurrencyError, DuplicateCommandError))


# The rule context a service needs besides its own snapshot: (given, township or None if the site is unknown).
ContextLoader = Callable[[Any, str, Any], Awaitable[tuple[Any, str | None]]]


@dataclass(frozen=True)
class _Target(Generic[S]):
    site_id: str
    township: str
    state: S | None
    head: StreamHead
    stored_at: int


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
        state, head, stored_at = await self.repo.stream.load(self.tx, site_id)
        given, township = await self.repo.context(self.tx, site_id, state)
        return Loaded(given, target=_Target(site_id, township or "", state, head, stored_at), township=township)

    async def commit(self, command: Command, loaded: Loaded, events: list[Event], warnings: list[ErrorInfo],
                     actor: str) -> list[RecordedRef]:
        t: _Target[S] = loaded.target
        meta = Meta(actor=actor, command_id=command.command_id, correlation_id=command.correlation_id,
                    fingerprint=command.fingerprint(actor), warnings=warnings)
        refs = await self.repo.stream.append(self.tx, t.site_id, t.township, t.state, t.head, t.stored_at, events,
                                             meta)
        await self.repo.stream.store.save_command(self.tx, command.command_id, warnings,
                                                  command.fingerprint(actor))
        return refs
