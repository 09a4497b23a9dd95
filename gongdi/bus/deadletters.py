"""Dead letters of an ordered consumer: its status (applied position and what it passed), and their retry."""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import structlog
from nats.js import JetStreamContext

from contracts.envelope import Envelope
from contracts.queries import LETTERS_LISTED, ConsumerStatus, DeadLetter, RetryResult
from gongdi.bus.consumer import Handler, code_of, describe, error_code
from gongdi.store.base import MAX_ATTEMPTS, StaleTransactionError

# A dead letter refused for its stream's continuity is not the handler's failure: its event does not follow what
# was applied (a forgery, a stream out of order), and applying it later would be applying that. Never retried.
NOT_RETRYABLE = ("StreamContinuityError",)


def retries_sql(schema: str) -> str:
    """A later migration of every schema that runs consumers: what became of retried dead letters.

    A letter that fails again stays in `dead_letters` with its latest error and a count of retries; one that is
    applied leaves it for `retried_letters`, which keeps who it was (ids, type, the error it had) and when, never
    the payload.
    """
    return f"""
    ALTER TABLE {schema}.dead_letters ADD COLUMN IF NOT EXISTS retries int NOT NULL DEFAULT 0;
    ALTER TABLE {schema}.dead_letters ADD COLUMN IF NOT EXISTS last_retry_at timestamptz;
    CREATE TABLE IF NOT EXISTS {schema}.retried_letters (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        consumer text NOT NULL,
        stream text NOT NULL,
        stream_seq bigint NOT NULL,
        event_id uuid,
        event_type text,
        site_id text,
        error text NOT NULL,
        dead_lettered_at timestamptz NOT NULL,
        retries int NOT NULL,
        retried_at timestamptz NOT NULL DEFAULT now()
    );
    """


# What a dead letter may show of its message: ids and a type name, each checked to be one. A message that is
# not an event may carry anything in those fields, and status is read by people who may not see names.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def facts(body: bytes) -> dict[str, str | None]:
    """Event id, type, stream id and site id of a dead letter's message, as far as it has them; no payload."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        data = {}
    out: dict[str, str | None] = {}
    for key, name in (("event_id", "event_id"), ("type", "event_type"), ("stream_id", "stream_id"),
                      ("site_id", "site_id")):
        value = data.get(key)
        out[name] = value if isinstance(value, str) and _ID.match(value) else None
    return out


async def consumer_status(pool: asyncpg.Pool, js: JetStreamContext, schema: str, service: str, consumer: str,
                          stream: str) -> ConsumerStatus:
    """Where one consumer stands: its checkpoint, its stream's last sequence, its dead letters in stream order."""
    async with pool.acquire() as conn:
        applied = await conn.fetchval(
            f"SELECT stream_seq FROM {schema}.consumer_checkpoint WHERE consumer = $1 AND stream = $2",
            consumer, stream)
        count = await conn.fetchval(
            f"SELECT count(*) FROM {schema}.dead_letters WHERE consumer = $1 AND stream = $2", consumer, stream)
        rows = await conn.fetch(
            f"SELECT stream_seq, error, body, recorded_at, retries, last_retry_at FROM {schema}.dead_letters"
            " WHERE consumer = $1 AND stream = $2 ORDER BY stream_seq LIMIT $3", consumer, stream, LETTERS_LISTED)
    published = (await js.stream_info(stream)).state.last_seq
    letters = [DeadLetter(stream_seq=r["stream_seq"], code=code_of(r["error"]), error=r["error"],
                          recorded_at=r["recorded_at"], retries=r["retries"], last_retry_at=r["last_retry_at"],
                          **facts(r["body"])) for r in rows]
    return ConsumerStatus(service=service, consumer=consumer, stream=stream, applied=applied or 0,
                          published=published, dead_letters=count, letters=letters)


AfterCommit = Callable[[list[Envelope]], Awaitable[None]]


async def retry(pool: asyncpg.Pool, schema: str, service: str, consumer: str, stream: str, handler: Handler,
                after_commit: AfterCommit | None = None, log: Any = None) -> list[RetryResult]:
    """Re-apply one consumer's dead letters through its own handler, in stream order, each in its own transaction.

    Only the handler runs: the checkpoint and the stream heads moved past the letter when it was passed, and stay.
    Each letter's transaction first locks the consumer's checkpoint row, as every batch of the running consumer
    does, so a retry never interleaves with a batch; then the letter's row, which an applied letter leaves in the
    same transaction. A second retry, at once or later, finds it gone and applies nothing.
    """
    log = log or structlog.get_logger()
    seqs = [r["stream_seq"] for r in await pool.fetch(
        f"SELECT stream_seq FROM {schema}.dead_letters WHERE consumer = $1 AND stream = $2 ORDER BY stream_seq",
        consumer, stream)]
    results = []
    for seq in seqs:
        result, applied = await _retry_one(pool, schema, service, consumer, stream, seq, handler)
        log.info("dead letter retried", consumer=consumer, stream=stream, stream_seq=seq, outcome=result.outcome,
                 code=result.code)
        if applied is not None and after_commit is not None:
            await after_commit([applied])
        results.append(result)
    return results


async def _retry_one(pool: asyncpg.Pool, schema: str, service: str, consumer: str, stream: str, seq: int,
                     handler: Handler) -> tuple[RetryResult, Envelope | None]:
    def result(outcome: str, shown: dict[str, str | None], code: str | None = None) -> RetryResult:
        return RetryResult(service=service, consumer=consumer, stream=stream, stream_seq=seq,
                           event_type=shown.get("event_type"), site_id=shown.get("site_id"),
                           outcome=outcome, code=code)  # type: ignore[arg-type]

    shown: dict[str, str | None] = {}
    for _ in range(MAX_ATTEMPTS):
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"SELECT 1 FROM {schema}.consumer_checkpoint WHERE consumer = $1 AND stream = $2 FOR UPDATE",
                    consumer, stream)
                letter = await conn.fetchrow(
                    f"SELECT error, body, recorded_at, retries FROM {schema}.dead_letters"
                    " WHERE consumer = $1 AND stream = $2 AND stream_seq = $3 FOR UPDATE", consumer, stream, seq)
                if letter is None:
                    return result("gone", {}), None
                shown = facts(letter["body"])
                if code_of(letter["error"]) in NOT_RETRYABLE:
                    return result("refused", shown, code_of(letter["error"])), None
                try:
                    event = Envelope.from_json(letter["body"])
                except ValueError as exc:  # not an event: nothing to apply, ever
                    return result("refused", shown, error_code(exc)), None
                try:
                    async with conn.transaction():  # savepoint: a failing handler leaves no trace
                        await handler.apply(conn, event)
                except StaleTransactionError:
                    raise  # the whole transaction again, with a newer transaction id
                except Exception as exc:
                    await conn.execute(
                        f"UPDATE {schema}.dead_letters SET error = $4, retries = retries + 1, last_retry_at = now()"
                        " WHERE consumer = $1 AND stream = $2 AND stream_seq = $3",
                        consumer, stream, seq, describe(exc))
                    return result("failed", shown, error_code(exc)), None
                await conn.execute(
                    f"DELETE FROM {schema}.dead_letters WHERE consumer = $1 AND stream = $2 AND stream_seq = $3",
                    consumer, stream, seq)
                await conn.execute(
                    f"INSERT INTO {schema}.retried_letters (consumer, stream, stream_seq, event_id, event_type,"
                    " site_id, error, dead_lettered_at, retries) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    consumer, stream, seq, event.event_id, event.type, event.site_id, letter["error"],
                    letter["recorded_at"], letter["retries"])
                return result("applied", shown), event
        except StaleTransactionError:
            continue  # its append raced a command: a new transaction has a newer id (as the consumer does)
    return result("failed", shown, StaleTransactionError.__name__), None
