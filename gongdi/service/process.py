"""What every service process shares: a connection pool, a broker, signal-driven shutdown, a background task."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import nats.errors
import orjson
import structlog
from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NATS
from pydantic import ValidationError

from contracts.errors import validation_error
from contracts.identity import Identity
from gongdi.service.settings import Settings
from gongdi.store.migrations import Migration, migrate
from gongdi.store.roles import ROLE_PASSWORD_ENV, grant_service_role


class Connection(asyncpg.Connection):
    """No reset query on release: services keep no session state, and it would cost a round trip per use."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(settings: Settings, size: int | None = None) -> asyncpg.Pool:
    size = size or settings.pool_size
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=min(2, size), max_size=size, connection_class=Connection
    )
    assert pool is not None
    return pool


def role_password() -> str | None:
    """The password `setup` gives its service's login role. From the environment, not Settings: only a setup
    process is given it (by the supervisor), and no process but setup should carry it."""
    return os.environ.get(ROLE_PASSWORD_ENV)


def set_up(service: str, settings: Settings, work: Callable[[], Awaitable[list[str]]]) -> None:
    """A service's `setup` from its command line: its lines printed, or, when a server cannot be reached, one line
    saying which (the supervisor shows the operator that line, not a traceback)."""
    try:
        print(*asyncio.run(work()), sep="\n")
    except (OSError, asyncpg.CannotConnectNowError, nats.errors.NoServersError) as exc:
        if isinstance(exc, nats.errors.NoServersError):
            what, where = "NATS", ", ".join(settings.nats_servers)
        else:
            url = urlsplit(settings.database_url)
            what, where = "PostgreSQL", f"{url.hostname}:{url.port or 5432}"
        why = ("连接被拒绝，服务器没有在运行" if isinstance(exc, ConnectionRefusedError | nats.errors.NoServersError)
               else type(exc).__name__)
        raise SystemExit(f"{service}: 无法连接 {what}（{where}）：{why} (cannot reach {what})") from None


async def migrate_schema(settings: Settings, schema: str, migrations: Sequence[Migration],
                         routines: Sequence[Callable[[str], str]] = (), password: str | None = None) -> str:
    """`setup`'s work on Postgres for one schema, as its owner: its numbered migrations, its routines, then the
    service's own login role (with `password`; None: the role as it is) and its rights (gongdi.store.roles),
    re-granted every time."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        migrated = await migrate(conn, schema, migrations, routines)
        granted = await grant_service_role(conn, schema, password)
        return f"{migrated}\n{granted}"
    finally:
        await conn.close()


def broker(settings: Settings) -> NatsBroker:
    # The hot path logs nothing per command: FastStream's own per-message and lifecycle lines go to a logger
    # that only lets warnings and errors through.
    quiet = logging.getLogger("gongdi.faststream")
    quiet.setLevel(logging.WARNING)
    if not quiet.handlers:
        quiet.addHandler(logging.StreamHandler())
    # No dependency injection per message: measured at 1,520 → 2,320 requests/s for an echo handler (bench notes).
    return NatsBroker(
        settings.nats_servers, logger=quiet, log_level=logging.DEBUG, max_reconnect_attempts=-1, apply_types=False,
        **bus_watch("requests"),
    )


REQUEST_INFO = "Nats-Request-Info"  # set by the server on requests crossing from USERS into PLATFORM


@dataclass(frozen=True)
class Request:
    """What a handler gets: the raw bytes (so that malformed JSON still gets a typed error reply), the subject,
    and who sent it as the NATS server asserts, never as the sender says."""

    body: bytes
    subject: str
    sender: Identity | None


def sender_of(headers: Mapping[str, str] | None) -> Identity | None:
    """The identity in the server's request info; None when there is none or it names no platform identity."""
    info = (headers or {}).get(REQUEST_INFO)
    if not info:
        return None
    try:
        data = orjson.loads(info)
        return Identity.parse(data["user"], data["acc"])
    except (ValueError, KeyError, TypeError):
        return None


def origin_of(exc: BaseException) -> str:
    """file:line of the innermost frame, for the operator; no values."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


async def as_request(msg: NatsMessage) -> Request:
    return Request(msg.body, msg.raw_message.subject, sender_of(msg.headers))


MAX_REQUEST_BYTES = 256 * 1024  # no command or query of the contracts comes near; refused before parsing


def refusal(code: str, message: str, field: str | None = None) -> bytes:
    """A typed error in the shape every command and query reply shares."""
    return orjson.dumps({"ok": False, "error": {"code": code, "message": message, "field": field}})


def invalid(exc: ValidationError) -> bytes:
    """The typed refusal of input that does not parse (contracts.errors.validation_error), as a reply."""
    return orjson.dumps({"ok": False, "error": validation_error(exc).model_dump()})


# The database gone for a moment (restarted, shutting down, not yet taking connections): nothing was written, and
# the same command sent again is recorded once, so the caller is told to retry (UNAVAILABLE), not to call an admin.
DATABASE_DOWN = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                 asyncpg.CrashShutdownError, asyncpg.InterfaceError, ConnectionError)
UNAVAILABLE = "UNAVAILABLE"
# A server gone from under a long-running loop (a relay): the database as above, or the bus.
SERVERS_GONE = (*DATABASE_DOWN, OSError, nats.errors.NoServersError, nats.errors.ConnectionClosedError)


def reply_handler(broker_: NatsBroker, subject: str, queue: str, workers: int,
                  handle: Callable[[Request], Awaitable[bytes]], max_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Subscribe `handle(request) -> reply` as a request/reply endpoint of a queue group. Every request gets an
    answer: an oversized one is refused unread, and an unexpected failure (a transaction that rolled back, so
    nothing was written) becomes a typed INTERNAL reply with an id to find the log line by, never the input."""
    log = structlog.get_logger()

    async def endpoint(request: Request) -> bytes:
        if len(request.body) > max_bytes:
            return refusal("REQUEST_TOO_LARGE", f"请求超过 {max_bytes // 1024} KiB (request too large)")
        try:
            return await handle(request)
        except DATABASE_DOWN as exc:
            log.warning("request failed: database unavailable", subject=subject, error=type(exc).__name__)
            return refusal(UNAVAILABLE, "数据库暂时无法访问，未记录任何内容；请稍后重试，同一命令只会记录一次"
                                        " (the database is unavailable, nothing recorded; retry)")
        except asyncpg.InsufficientResourcesError as exc:
            # A full disk (53100), out of memory or connections (53xxx): nothing was written, and the same command
            # succeeds once the operator frees the resource. Before, it was INTERNAL, which nobody retries.
            log.error("request failed: database out of resources", subject=subject, error=type(exc).__name__,
                      sqlstate=exc.sqlstate)
            what = "磁盘已满" if isinstance(exc, asyncpg.DiskFullError) else "资源不足"
            return refusal(UNAVAILABLE, f"数据库{what}，未记录任何内容；请通知管理员，之后重试，同一命令只会记录一次"
                                        f" (database out of resources: {exc.sqlstate}; nothing recorded; retry)")
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            # The exception's type and where it came from, not its text: texts quote the input (names, ids).
            log.error("request failed", subject=subject, incident=incident, error=type(exc).__name__,
                      where=origin_of(exc))
            return refusal("INTERNAL", f"平台内部错误，未记录任何内容；请联系管理员，编号 {incident}"
                                       f" (internal error, nothing recorded)")

    broker_.subscriber(subject, queue=queue, max_workers=workers, decoder=as_request)(endpoint)


def bus_watch(name: str, closed: Callable[[], bool] = lambda: False) -> dict[str, Callable[[], Awaitable[None]]]:
    """Connection callbacks that put losing and regaining the bus in the log: an outage is visible per process,
    and so is the moment it healed. `closed` tells a close asked for (nats-py calls the same callback) from a loss."""
    log = structlog.get_logger()

    async def lost() -> None:
        if closed():
            return
        log.warning("bus connection lost; reconnecting", connection=name)

    async def regained() -> None:
        log.info("bus connection regained", connection=name)

    return {"disconnected_cb": lost, "reconnected_cb": regained}


async def connect_nats(settings: Settings, name: str) -> NATS:
    # Reconnects forever: the supervisor brings the embedded server back, a cluster another node.
    nc = NATS()
    await nc.connect(settings.nats_servers, name=name, max_reconnect_attempts=-1,
                     **bus_watch(name, lambda: nc.is_closed))
    return nc


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until SIGTERM or SIGINT sets `stop`."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner())


class Background:
    """A task that runs beside a FastStream app; its failure stops the process so the supervisor restarts it."""

    def __init__(self, work: Callable[[asyncio.Event], Awaitable[None]], on_failure: Callable[[], None]):
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(work(self.stop))
        self.task.add_done_callback(lambda t: on_failure() if not t.cancelled() and t.exception() else None)

    async def close(self) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(self.task, 10)
        except TimeoutError:
            self.task.cancel()
