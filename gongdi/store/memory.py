"""In-memory event store with the Postgres store's contract: for the fast tier of tests, never for running."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts.replies import CommandReply, ErrorInfo, RecordedRef
from gongdi.store.base import (
    Checkpoint,
    ConcurrencyError,
    DuplicateCommandError,
    Later,
    Meta,
    Pending,
    StoredRow,
    StoredState,
    StreamHead,
    check_chains,
    command_digests,
    duplicate_reply,
    prepare,
    recorded,
)


@dataclasses.dataclass
class MemoryTx:
    """What one transaction wrote; it becomes visible, all of it, when the transaction ends without error."""

    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    commands: dict[UUID, list[ErrorInfo]] = dataclasses.field(default_factory=dict)
    snapshots: dict[str, StoredState] = dataclasses.field(default_factory=dict)
    fingerprints: dict[UUID, str | None] = dataclasses.field(default_factory=dict)


class MemoryEventStore:
    def __init__(self) -> None:
        self.rows: list[StoredRow] = []
        self.commands: dict[UUID, list[ErrorInfo]] = {}
        self.fingerprints: dict[UUID, str | None] = {}
        self.snapshots: dict[str, StoredState] = {}
        self._tx = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTx]:
        tx = MemoryTx()
        yield tx
        self._commit(tx)  # no await from the checks to the writes: atomic for every other task

    def _commit(self, tx: MemoryTx) -> None:
        taken = {(r.stream_id, r.version) for r in self.rows}
        if any((r["stream_id"], r["version"]) in taken for r in tx.rows):
            raise ConcurrencyError("a stream head moved since it was read")
        if any(c in self.commands for c in tx.commands):
            raise DuplicateCommandError("command recorded by another attempt")
        self._tx += 1
        now = datetime.now(UTC)
        for row in tx.rows:
            values = {**row, "payload": orjson.dumps(row["payload"]).decode(), "position": len(self.rows) + 1,
                      "tx_id": self._tx, "recorded_at": now}
            self.rows.append(StoredRow(**values))
            row["position"] = values["position"]
        self.commands.update(tx.commands)
        self.fingerprints.update(tx.fingerprints)
        self.snapshots.update(tx.snapshots)

    def _heads(self, tx: MemoryTx) -> dict[str, StreamHead]:
        heads: dict[str, StreamHead] = {}
        for r in self.rows:
            heads[r.stream_id] = StreamHead(r.version, r.hash)
        for row in tx.rows:
            heads[row["stream_id"]] = StreamHead(row["version"], row["hash"])
        return heads

    async def append(self, tx: MemoryTx, pending: Sequence[Pending], heads: dict[str, StreamHead], meta: Meta
                     ) -> tuple[list[RecordedRef], dict[str, StreamHead]]:
        prepared = prepare(pending, heads, meta)
        current = self._heads(tx)
        for stream_id in {p.stream_id for p in pending}:
            if current.get(stream_id, StreamHead()) != heads.get(stream_id, StreamHead()):
                raise ConcurrencyError(f"stale head for {stream_id}")
        tx.rows.extend(prepared.rows)
        # Positions are only known at commit; until then the reply numbers events as they will be stored.
        first = len(self.rows) + len(tx.rows) - len(prepared.rows) + 1
        return recorded(prepared.rows, range(first, first + len(prepared.rows))), prepared.heads

    async def head(self, tx: MemoryTx, stream_id: str) -> StreamHead:
        return self._heads(tx).get(stream_id, StreamHead())

    async def load(self, stream_id: str) -> list[Any]:
        return sorted((r for r in self.rows if r.stream_id == stream_id), key=lambda r: r.version)

    async def read_all(self, after: Checkpoint, limit: int = 1000) -> list[Any]:
        return [r for r in self.rows if r.checkpoint > after][:limit]

    async def find_command(self, command_id: UUID, tx: MemoryTx | None = None) -> CommandReply | None:
        if command_id not in self.commands:
            return None
        refs = [RecordedRef(event_id=r.event_id, type=r.type, stream_id=r.stream_id, version=r.version,
                            position=r.position) for r in self.rows if r.command_id == command_id]
        return duplicate_reply(command_id, [w.model_dump() for w in self.commands[command_id]], refs)

    async def save_command(self, tx: MemoryTx, command_id: UUID, warnings: list[ErrorInfo],
                           fingerprint: str | None = None) -> None:
        if command_id in self.commands or command_id in tx.commands:
            raise DuplicateCommandError(str(command_id))
        tx.commands[command_id] = list(warnings)
        tx.fingerprints[command_id] = fingerprint

    async def command_fingerprint(self, command_id: UUID, tx: MemoryTx | None = None) -> str | None:
        return self.fingerprints.get(command_id)

    async def snapshot(self, tx: MemoryTx, key: str, newer_than: int = -1) -> StoredState:
        stored = tx.snapshots.get(key) or self.snapshots.get(key) or StoredState()
        return stored if stored.state_version > newer_than else stored._replace(state=None)

    async def save_snapshot(self, tx: MemoryTx, key: str, head: StreamHead, state: str | None) -> None:
        if state is None:
            tx.snapshots[key] = (tx.snapshots.get(key) or self.snapshots[key])._replace(head=head)
        else:
            tx.snapshots[key] = StoredState(head, head.version, state)

    async def events_after(self, tx: MemoryTx, stream_id: str, after: int, upto: int) -> list[Later]:
        rows = [*self.rows, *(StoredRow(**{**r, "payload": orjson.dumps(r["payload"]).decode(), "position": 0,
                                            "tx_id": 0, "recorded_at": None}) for r in tx.rows)]
        return sorted((Later(r.version, r.prev_hash, r.hash, r.type, r.schema_version, r.payload) for r in rows
                       if r.stream_id == stream_id and after < r.version <= upto), key=lambda later: later.version)

    async def verify(self) -> list[str]:
        commands = {cid: (self.fingerprints.get(cid), orjson.loads(orjson.dumps([w.model_dump() for w in warnings])))
                    for cid, warnings in self.commands.items()}
        return check_chains(sorted(self.rows, key=lambda r: (r.stream_id, r.version)),
                            command_digests(commands, self.rows))
