"""Signed log heads: what a writing service's log held at a moment (counts and Merkle roots), signed with Ed25519.

A head covers the events and `commands` rows written by transactions below `tx_below` (a snapshot's xmin: every
such transaction had ended, so the covered set never changes afterwards). Its roots are Merkle roots over each
stream's last (stream, version, hash) and over each command's digest (`contracts.envelope.command_digest`).
The key is the platform's, kept in the state folder's credentials and given only to the writing services'
serve processes: PostgreSQL never holds it, so whoever rewrites the database cannot sign a head for the rewrite.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.envelope import command_digest

HEAD_VERSION = 1


def merkle_root(leaves: Iterable[bytes]) -> str:
    """sha256 Merkle root over the leaves in the order given (an odd node is carried up); of nothing, sha256('')."""
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0].hex()


def streams_root(heads: Iterable[tuple[str, int, str]]) -> str:
    """Over every stream's last (stream, version, hash), sorted by stream id (in Python: no collation involved)."""
    return merkle_root(orjson.dumps(list(h)) for h in sorted(heads))


def commands_root(digests: Iterable[tuple[str, str]]) -> str:
    """Over every command's (id, digest), sorted by id."""
    return merkle_root(orjson.dumps(list(d)) for d in sorted(digests))


@dataclass(frozen=True)
class LogHead:
    """The unsigned part of a head: what the log held below `tx_below`."""

    service: str
    tx_below: int
    events: int
    position: int  # the largest position covered (0: none)
    streams: int
    streams_root: str
    commands: int
    commands_root: str


def head_of(service: str, tx_below: int, events: Sequence[Any], commands: Sequence[Any]) -> LogHead:
    """The head a log's rows make below `tx_below`: `events` are stored rows, `commands` rows with command_id,
    fingerprint, decoded warnings and tx_id (0 for rows written before commands kept it)."""
    covered = [e for e in events if e.tx_id < tx_below]
    last: dict[str, tuple[int, str]] = {}
    per_command: dict[UUID, int] = {}
    for e in covered:
        if e.version > last.get(e.stream_id, (0, ""))[0]:
            last[e.stream_id] = (e.version, e.hash)
        if e.command_id is not None:
            per_command[e.command_id] = per_command.get(e.command_id, 0) + 1
    cmds = [c for c in commands if c.tx_id < tx_below]
    digests = [(str(c.command_id), command_digest(c.command_id, c.fingerprint, c.warnings,
                                                   per_command.get(c.command_id, 0))) for c in cmds]
    return LogHead(service, tx_below, len(covered), max((e.position for e in covered), default=0), len(last),
                   streams_root((s, v, h) for s, (v, h) in last.items()), len(cmds), commands_root(digests))


async def read_head(conn: asyncpg.Connection, service: str) -> LogHead:
    """The head of a service's log now, read in one snapshot (a few aggregate queries, not the rows)."""
    s = service
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        below = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        x = str(below)
        count, position = await conn.fetchrow(
            f"SELECT count(*), coalesce(max(position), 0) FROM {s}.events WHERE tx_id < $1::text::xid8", x)
        heads = await conn.fetch(
            f"SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM {s}.events WHERE tx_id < $1::text::xid8"
            " ORDER BY stream_id, version DESC", x)
        commands = await conn.fetch(
            f"SELECT c.command_id, c.fingerprint, c.warnings::text AS warnings,"
            f" (SELECT count(*) FROM {s}.events e WHERE e.command_id = c.command_id) AS n"
            f" FROM {s}.commands c WHERE coalesce(c.tx_id, '0'::xid8) < $1::text::xid8", x)
    digests = [(str(c["command_id"]), command_digest(c["command_id"], c["fingerprint"], orjson.loads(c["warnings"]),
                                                     c["n"])) for c in commands]
    return LogHead(service, below, count, position, len(heads),
                   streams_root((h["stream_id"], h["version"], h["hash"]) for h in heads), len(commands),
                   commands_root(digests))


class HeadKey:
    """The platform's Ed25519 signing key, from its 32-byte seed (hex, as the credentials keep it)."""

    def __init__(self, seed_hex: str):
        self._private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
        self.public_hex = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.key_id = key_id(self.public_hex)

    def sign(self, head: LogHead, signed_at: datetime | None = None) -> dict[str, Any]:
        body = {"version": HEAD_VERSION, **asdict(head),
                "signed_at": (signed_at or datetime.now(UTC)).isoformat(timespec="microseconds"),
                "key_id": self.key_id, "public_key": self.public_hex}
        return {**body, "signature": self._private.sign(signed_bytes(body)).hex()}


def new_seed() -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def signed_bytes(body: dict[str, Any]) -> bytes:
    """What the signature covers: every field but the signature, as canonical JSON."""
    return orjson.dumps({k: v for k, v in body.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def signature_valid(signed: dict[str, Any], public_hex: str) -> bool:
    """Whether `signed` was signed by the key `public_hex` (the verifier's own copy, never the head's)."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signed.get("signature", "")), signed_bytes(signed))
    except (InvalidSignature, ValueError):
        return False
    return True


def unsigned(signed: dict[str, Any]) -> LogHead:
    return LogHead(**{name: signed[name] for name in LogHead.__dataclass_fields__})
