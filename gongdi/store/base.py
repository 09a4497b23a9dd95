"""What every event store offers, and the pure part of appending: numbering and hashing events against heads."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

import orjson

from contracts.base import Event
from contracts.envelope import HASH_SCHEME, STORED, Envelope, chain_hash, command_digest
from contracts.replies import CommandReply, ErrorInfo, RecordedRef


class ConcurrencyError(Exception):
    """Another writer appended to the stream first; reload and decide again."""


class DuplicateCommandError(Exception):
    """The command id was already recorded by a concurrent attempt."""


class ConflictsExhaustedError(Exception):
    """Every attempt lost a race to another writer."""


class StaleTransactionError(Exception):
    """The stream's last event was written by a transaction that began writing after this one: appending here
    would put the stream out of order in the log's (transaction, position) order, which relays publish in. Only a
    new transaction can append (a savepoint keeps the old transaction id)."""


MAX_ATTEMPTS = 20
T = TypeVar("T")
RETRYABLE: tuple[type[Exception], ...] = (ConcurrencyError, DuplicateCommandError, StaleTransactionError)


async def retry_on_conflict(work: Callable[[], Awaitable[T]], attempts: int = MAX_ATTEMPTS,
                            retry_on: tuple[type[Exception], ...] = RETRYABLE) -> T:
    """Run `work` again after a conflict, after a short random pause that grows with each attempt."""
    for attempt in range(attempts):
        try:
            return await work()
        except retry_on:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise ConflictsExhaustedError(f"gave up after {attempts} conflicting attempts")


class StreamHead(NamedTuple):
    """A stream's last event as a reader applied or a writer stored it: its version and hash (none: 0, None). A
    tuple: every event of a rebuild makes one, and a frozen dataclass cost three times as much to make."""

    version: int = 0
    hash: str | None = None


class StoredState(NamedTuple):
    """A stream's snapshot as stored: the stream's head, and its folded state (JSON text) as of `state_version`,
    which may trail the head (the events after it fold onto it: gongdi.store.sitestreams.SiteFolds). `state` is
    None when there is none, or when the reader asked only for one newer than it has."""

    head: StreamHead = StreamHead()
    state_version: int = 0
    state: bytes | str | None = None


class Later(NamedTuple):
    """An event to fold onto a stored state: its place in the stream's chain and its payload as stored."""

    version: int
    prev_hash: str | None
    hash: str
    type: str
    schema_version: int
    payload: str


@dataclass(frozen=True)
class Pending:
    """An event decided but not yet stored, with the stream it goes to."""

    event: Event
    stream_id: str
    township: str
    site_id: str | None


@dataclass(frozen=True)
class Meta:
    """Who and why, the same for every event of one command."""

    actor: str
    command_id: UUID | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    occurred_at: datetime | None = None
    # What the command's `commands` row will hold, bound into its events' hashes (scheme 2): None for events that
    # no command wrote (a policy's).
    fingerprint: str | None = None
    warnings: Sequence[Any] = ()


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A place in the log's gap-safe order: (writing transaction id, position)."""

    tx_id: int = 0
    position: int = 0


def _checkpoint(self: Any) -> Checkpoint:
    return Checkpoint(self.tx_id, self.position)


def _envelope_json(self: Any, service: str) -> bytes:
    """The published form, without decoding and re-encoding the payload."""
    values = {f.name: getattr(self, f.name) for f in STORED}
    values["payload"] = orjson.Fragment(self.payload)
    values["service"] = service
    return orjson.dumps(values, default=str)  # asyncpg returns its own UUID type


def _envelope(self: Any, service: str) -> Envelope:
    return Envelope.from_json(self.envelope_json(service))


def _hash_values(self: Any) -> dict[str, Any]:
    return {f.name: (orjson.loads(self.payload) if f.name == "payload" else getattr(self, f.name)) for f in STORED}


# A raw event row, one attribute per stored envelope field; `payload` stays JSON text so that the relay can
# forward it without re-encoding.
StoredRow = dataclasses.make_dataclass(
    "StoredRow",
    [(f.name, str if f.name == "payload" else Envelope.model_fields[f.name].annotation) for f in STORED],
    frozen=True,
    namespace={"checkpoint": property(_checkpoint), "envelope_json": _envelope_json, "envelope": _envelope,
               "hash_values": _hash_values, "__module__": __name__},
)


# What only the database fills in, at its widest, to measure an event before it is stored.
_WIDEST_BIGINT = 2**63 - 1
WIDEST_TIME = datetime.max.replace(tzinfo=UTC)  # with microseconds: orjson leaves a zero fraction out


def jsonb_text(payload: Any) -> str:
    """`payload` as PostgreSQL prints a jsonb value, which is what the relay reads and forwards: a space after
    every ':' and ',' and the same escapes as here; jsonb orders keys differently, which changes no length."""
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))


def published_size(row: dict[str, Any], service: str) -> int:
    """The bytes the relay will publish for a row that `prepare` made: the relay's own encoder
    (`StoredRow.envelope_json`) over the row, with the payload as jsonb prints it and position, transaction id and
    recorded_at at their widest; so never less than what is published, and more only by those widths."""
    values = {**row, "payload": jsonb_text(row["payload"]), "position": _WIDEST_BIGINT, "tx_id": _WIDEST_BIGINT,
              "recorded_at": WIDEST_TIME}
    return len(StoredRow(**values).envelope_json(service))


@dataclass(frozen=True)
class Loaded:
    """What `load` found: the rule context `decide` needs, or the first reply if the command id was seen.

    `target` is the repository's own note of where the events go (stream heads, township), handed back to
    `commit` unchanged. `township` is the target site's, as the store knows it (None while the site is unknown):
    the pipeline checks the sender's rights against it.
    """

    given: Any
    reply: CommandReply | None = None
    target: Any = None
    township: str | None = None
    asked: str | None = None  # with `reply`: the fingerprint of the command first accepted under this id


@dataclass(frozen=True)
class Prepared:
    """Events numbered and hashed against their stream heads: `rows` are keyed by envelope field name."""

    rows: list[dict[str, Any]]
    heads: dict[str, StreamHead]


def prepare(pending: Sequence[Pending], heads: dict[str, StreamHead], meta: Meta) -> Prepared:
    """Number, hash and encode the events; nothing is written yet."""
    occurred_at = meta.occurred_at or datetime.now(UTC)
    digest = None
    if meta.command_id is not None:
        # As the `commands` row will read back: warnings through JSON, the way they are stored.
        warnings = orjson.loads(orjson.dumps([_plain(w) for w in meta.warnings]))
        digest = command_digest(meta.command_id, meta.fingerprint, warnings, len(pending))
    heads = dict(heads)
    rows: list[dict[str, Any]] = []
    for p in pending:
        head = heads.get(p.stream_id, StreamHead())
        row = {
            "event_id": uuid.uuid4(), "type": p.event.type_name(), "schema_version": p.event.schema_version,
            "stream_id": p.stream_id, "version": head.version + 1, "township": p.township, "site_id": p.site_id,
            "actor": meta.actor, "command_id": meta.command_id, "correlation_id": meta.correlation_id,
            "causation_id": meta.causation_id, "occurred_at": occurred_at,
            "payload": p.event.model_dump(mode="json"), "prev_hash": head.hash, "hash_scheme": HASH_SCHEME,
            "command_digest": digest,
        }
        row["hash"] = chain_hash(row)
        rows.append(row)
        heads[p.stream_id] = StreamHead(row["version"], row["hash"])
    return Prepared(rows, heads)


def _plain(warning: Any) -> Any:
    return warning.model_dump() if hasattr(warning, "model_dump") else warning


def recorded(rows: list[dict[str, Any]], positions: Sequence[int]) -> list[RecordedRef]:
    return [RecordedRef(event_id=r["event_id"], type=r["type"], stream_id=r["stream_id"], version=r["version"],
                        position=p) for r, p in zip(rows, positions, strict=True)]


def duplicate_reply(command_id: UUID, warnings: list[Any], refs: list[RecordedRef]) -> CommandReply:
    return CommandReply(ok=True, command_id=command_id, duplicate=True, warnings=warnings, events=refs)


def check_chains(rows: Sequence[Any], digests: dict[UUID, str] | None = None) -> list[str]:
    """Recompute the hash chains of rows ordered by (stream, version); a description of each broken link.

    `digests`: each command's digest from its `commands` row (`command_digests`): a scheme 2 event must carry its
    command's (a missing or changed `commands` row, or an event added to or taken from a command, shows here)."""
    problems: list[str] = []
    prev: dict[str, tuple[int, str | None, int]] = {}
    for row in rows:
        last_version, last_hash, last_scheme = prev.get(row.stream_id, (0, None, 1))
        if row.version != last_version + 1:
            problems.append(f"{row.stream_id}: version {row.version} follows {last_version}")
        if row.prev_hash != last_hash:
            problems.append(f"{row.stream_id} v{row.version}: prev_hash does not match")
        scheme = getattr(row, "hash_scheme", 1)
        if scheme < last_scheme:
            problems.append(f"{row.stream_id} v{row.version}: hash scheme {scheme} after {last_scheme}")
        if chain_hash(row.hash_values()) != row.hash:
            problems.append(f"{row.stream_id} v{row.version}: content does not match its hash")
        if scheme >= 2 and row.command_id is not None and (digests or {}).get(row.command_id) != row.command_digest:
            problems.append(f"{row.stream_id} v{row.version}: its command's row is missing or differs")
        prev[row.stream_id] = (row.version, row.hash, scheme)
    return problems


def command_digests(commands: dict[UUID, tuple[str | None, Any]], rows: Sequence[Any]) -> dict[UUID, str]:
    """Each command's digest from its row (command id → fingerprint, decoded warnings) and its events among `rows`."""
    counts: dict[UUID, int] = {}
    for row in rows:
        if row.command_id is not None:
            counts[row.command_id] = counts.get(row.command_id, 0) + 1
    return {cid: command_digest(cid, fp, warnings, counts.get(cid, 0)) for cid, (fp, warnings) in commands.items()}


class EventStore(Protocol):
    """The contract every event store keeps (tests/contract runs it against each implementation).

    `transaction()` yields the handle that `append`, `head`, `find_command`, `save_command` and the snapshot
    methods take: all that is done through one handle commits together or not at all. A snapshot is a stream's
    head, kept current in the same transaction as the events, with its folded state (JSON) as of a version that may
    trail the head (`StoredState`): `save_snapshot` without a state moves only the head.
    """

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def append(self, tx: Any, pending: Sequence[Pending], heads: dict[str, StreamHead], meta: Meta
                     ) -> tuple[list[RecordedRef], dict[str, StreamHead]]: ...

    async def head(self, tx: Any, stream_id: str) -> StreamHead: ...

    async def load(self, stream_id: str) -> list[Any]: ...

    async def read_all(self, after: Checkpoint, limit: int = 1000) -> list[Any]: ...

    async def find_command(self, command_id: UUID, tx: Any = None) -> CommandReply | None: ...

    async def save_command(self, tx: Any, command_id: UUID, warnings: list[ErrorInfo],
                           fingerprint: str | None = None) -> None: ...

    async def command_fingerprint(self, command_id: UUID, tx: Any = None) -> str | None: ...

    async def snapshot(self, tx: Any, key: str, newer_than: int = -1) -> StoredState:
        """The stored snapshot, its state left out unless its `state_version` is above `newer_than`."""
        ...

    async def save_snapshot(self, tx: Any, key: str, head: StreamHead, state: str | None) -> None: ...

    async def events_after(self, tx: Any, stream_id: str, after: int, upto: int) -> list[Later]:
        """The stream's events with versions in (after, upto], in order."""
        ...

    async def verify(self) -> list[str]: ...
