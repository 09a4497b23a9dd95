"""The event envelope, described once: the stored row, the DDL, the insert, the published JSON and the hash follow."""
from __future__ import annotations

import hashlib
import operator
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Stored:
    """How an envelope field lives in a service's `events` table.

    `written_by`: "writer" (the appending code supplies it) or "database" (a default or identity fills it in).
    `hashed_as`: its key in the hash-chain input, or None when the field is outside the hash.
    `since_scheme`: the first hash scheme whose input holds it (scheme 1: release 0.1's; scheme 2: every field the
    writer knows, and the command's digest; see `chain_hash`).
    """

    sql_type: str
    constraints: str = ""
    column: str | None = None
    hashed_as: str | None = None
    written_by: str = "writer"
    read_as: str | None = None
    since_scheme: int = 1


class Envelope(BaseModel):
    """One event as stored and as published on JetStream. Field order is the table's column order."""

    model_config = ConfigDict(frozen=True)
    position: Annotated[int, Stored("bigint", "GENERATED ALWAYS AS IDENTITY PRIMARY KEY", written_by="database")]
    # The writing transaction: readers never pass a transaction that may still commit (see docs/architecture.md).
    tx_id: Annotated[int, Stored("xid8", "NOT NULL DEFAULT pg_current_xact_id()", written_by="database",
                                 read_as="tx_id::text::bigint")]
    event_id: Annotated[UUID, Stored("uuid", "NOT NULL UNIQUE", hashed_as="id")]
    type: Annotated[str, Stored("text", "NOT NULL", column="event_type", hashed_as="type")]
    schema_version: Annotated[int, Stored("int", "NOT NULL", hashed_as="v")]
    stream_id: Annotated[str, Stored("text", "NOT NULL", hashed_as="stream")]
    version: Annotated[int, Stored("int", "NOT NULL CHECK (version > 0)", hashed_as="version")]
    service: str  # not stored: every service has its own table
    township: Annotated[str, Stored("text", "NOT NULL", hashed_as="township", since_scheme=2)]
    site_id: Annotated[str | None, Stored("text", hashed_as="site", since_scheme=2)]
    actor: Annotated[str, Stored("text", "NOT NULL", hashed_as="actor")]
    command_id: Annotated[UUID | None, Stored("uuid", hashed_as="command", since_scheme=2)]
    correlation_id: Annotated[UUID | None, Stored("uuid", hashed_as="correlation", since_scheme=2)]
    causation_id: Annotated[UUID | None, Stored("uuid", hashed_as="causation", since_scheme=2)]
    occurred_at: Annotated[datetime, Stored("timestamptz", "NOT NULL", hashed_as="at")]
    recorded_at: Annotated[datetime, Stored("timestamptz", "NOT NULL DEFAULT clock_timestamp()",
                                            written_by="database")]
    payload: Annotated[dict[str, Any], Stored("jsonb", "NOT NULL", hashed_as="payload", read_as="payload::text")]
    prev_hash: Annotated[str | None, Stored("text", hashed_as="prev")]
    hash: Annotated[str, Stored("text", "NOT NULL")]
    # Which hash input `hash` was computed over: rows written before scheme 2 keep 1 (the migration's default) and
    # verify as they were written. Messages published before it lack the field: 1 as well.
    hash_scheme: Annotated[int, Stored("smallint", "NOT NULL DEFAULT 1", hashed_as="scheme", since_scheme=2)] = 1
    # Scheme 2: the digest of the command's `commands` row (`command_digest`), so that the row cannot be removed,
    # edited or made up for events without breaking their hashes. None for events no command wrote (a policy's).
    command_digest: Annotated[str | None, Stored("text", hashed_as="cmd", since_scheme=2)] = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


@dataclass(frozen=True)
class StoredField:
    name: str  # in the envelope and on the stored row
    stored: Stored

    @property
    def column(self) -> str:
        return self.stored.column or self.name

    @property
    def select(self) -> str:
        """The select-list item that reads it back under its envelope name."""
        return f"{self.stored.read_as or self.column} AS {self.name}"


def _stored_fields() -> tuple[StoredField, ...]:
    out = []
    for name, info in Envelope.model_fields.items():
        marks = [m for m in info.metadata if isinstance(m, Stored)]
        if marks:
            out.append(StoredField(name, marks[0]))
    return tuple(out)


STORED: tuple[StoredField, ...] = _stored_fields()
WRITTEN: tuple[StoredField, ...] = tuple(f for f in STORED if f.stored.written_by == "writer")
HASH_SCHEME = 2  # what `prepare` writes now
# The hash input of each scheme. Outside every scheme: position, tx_id and recorded_at, which only the database
# knows (filled in by the insert; hashing them would cost a second statement per command), and the hash itself.
# They are checked against the JetStream copy and the signed heads instead (docs/architecture.md, Tamper evidence).
HASHED_BY_SCHEME: dict[int, tuple[StoredField, ...]] = {
    n: tuple(f for f in STORED if f.stored.hashed_as and f.stored.since_scheme <= n) for n in (1, HASH_SCHEME)}
HASHED: tuple[StoredField, ...] = HASHED_BY_SCHEME[1]  # release 0.1's


class EnvelopeRow(namedtuple("EnvelopeRow", [f.name if f.name != "payload" else "payload_json" for f in STORED]
                             + ["service"])):
    """A stored event as a replay reads it (`gongdi.bus.logread.decode`): the envelope's fields by the same names,
    made from the row without validation or copies, the payload kept as its stored JSON text (`payload_json`) and
    decoded only when asked for (`payload`). A projection reads it as it reads an `Envelope`; its contract parses
    the text straight into the event's model (`contracts.base.parse`). Building an `Envelope` and decoding the
    payload first was a fifth of a rebuild's work (measured)."""

    __slots__ = ()

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.payload_json)

    def chain_hash(self) -> str:
        """`chain_hash` of its fields, taken by position (a dict of them by name cost a sixth of checking a row).

        Converting each value to its canonical text in Python was half of a row's check (measured): orjson writes a
        UTC time with microseconds exactly as `iso` does, and the database's UUIDs through `_uuid_text`, so the row's
        values go in as they are. A time on a whole second (orjson leaves out ".000000") takes the converting way."""
        at = self.occurred_at
        if at.microsecond == 0 or at.tzinfo is not UTC:
            return _digest({key: self[i] if convert is None else convert(self[i])
                            for key, i, convert in _ROW_PLAN[self.hash_scheme or 1]})
        keys, values = _ROW_TAKE[self.hash_scheme or 1]
        body = dict(zip(keys, values(self)))  # noqa: B905 (both from one plan: of one length)
        body["payload"] = orjson.loads(self.payload_json)
        return hashlib.sha256(orjson.dumps(body, default=_uuid_text, option=orjson.OPT_SORT_KEYS)).hexdigest()


def iso(ts: datetime) -> str:
    """One canonical text form of a timestamp, so the hash is the same before and after storage."""
    # Stored timestamps come back in UTC already: converting them again costs a tenth of an event's hash.
    return (ts if ts.tzinfo is UTC else ts.astimezone(UTC)).isoformat(timespec="microseconds")


def _canonical(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def _as_text(value: Any) -> Any:
    """A UUID field's canonical form: its text (already text stays as it is; None stays None)."""
    return value if value is None else str(value)


def _converter(field: StoredField) -> Any:
    """What `_canonical` would do to this field's values, chosen once from its type instead of per value."""
    annotation = Envelope.model_fields[field.name].annotation
    if annotation in (UUID, UUID | None):
        return _as_text
    if annotation in (datetime, datetime | None):
        return _canonical
    return None


# Per scheme, the hash input's (key, field, converter): the canonical JSON of every event, so built once. Every
# consumer recomputes every event's hash; by type rather than by isinstance per value it costs a third as much.
_HASH_PLAN: dict[int, tuple[tuple[str, str, Any], ...]] = {
    n: tuple((f.stored.hashed_as or "", f.name, _converter(f)) for f in fields)
    for n, fields in HASHED_BY_SCHEME.items()}
# The same by position in an `EnvelopeRow`, whose payload is parsed from its stored text.
_ROW_PLAN: dict[int, tuple[tuple[str, int, Any], ...]] = {
    n: tuple((key, EnvelopeRow._fields.index("payload_json"), orjson.loads) if name == "payload"
             else (key, EnvelopeRow._fields.index(name), convert) for key, name, convert in plan)
    for n, plan in _HASH_PLAN.items()}

# The same as keys and one getter of their values, for a row whose values orjson takes as they are.
_ROW_TAKE: dict[int, tuple[tuple[str, ...], Any]] = {
    n: (tuple(key for key, _, _ in plan), operator.itemgetter(*(i for _, i, _ in plan)))
    for n, plan in _ROW_PLAN.items()}


def _uuid_text(value: Any) -> str:
    """orjson's fallback for the hash input: a UUID as the database gives it (a subclass orjson does not know)."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no canonical form in a hash")


def chain_hash(values: dict[str, Any]) -> str:
    """sha256 over the hashed fields of the row's scheme (`hash_scheme`, 1 when absent) as canonical JSON.

    `values` is keyed by envelope field name; `payload` is the decoded payload.
    """
    get = values.get
    body = {key: get(name) if convert is None else convert(get(name))
            for key, name, convert in _HASH_PLAN[get("hash_scheme") or 1]}
    return _digest(body)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def command_digest(command_id: UUID, fingerprint: str | None, warnings: Any, events: int) -> str:
    """A `commands` row as the events of its command bind it: its id, what was asked, the warnings answered (as
    decoded JSON) and how many events it wrote."""
    body = {"id": str(command_id), "fingerprint": fingerprint, "warnings": warnings, "events": events}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
