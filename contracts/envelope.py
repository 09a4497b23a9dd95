"""The event envelope: what every stored and published event carries around its payload."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict


def iso(ts: datetime) -> str:
    """One canonical text form of a timestamp, so the hash is the same before and after storage."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_id: UUID
    type: str
    schema_version: int
    stream_id: str
    version: int
    position: int
    tx_id: int
    service: str
    township: str
    site_id: str | None
    actor: str
    command_id: UUID | None
    correlation_id: UUID | None
    causation_id: UUID | None
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    prev_hash: str | None
    hash: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def chain_hash(
    prev_hash: str | None,
    *,
    event_id: UUID,
    event_type: str,
    schema_version: int,
    stream_id: str,
    version: int,
    occurred_at: datetime,
    actor: str,
    payload: dict[str, Any],
) -> str:
    """sha256 over the previous hash and the event's identity and content (canonical JSON)."""
    body = orjson.dumps(
        {
            "prev": prev_hash,
            "id": str(event_id),
            "type": event_type,
            "v": schema_version,
            "stream": stream_id,
            "version": version,
            "at": iso(occurred_at),
            "actor": actor,
            "payload": payload,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()
