"""Logins: each person's session is a NATS connection made with their own identity, so the bus checks their rights."""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field

import nats
import nats.errors
import structlog

from contracts.identity import LABELS, Identity
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from services.gateway.throttle import LoginThrottle, Throttled

COOKIE = "gongdi_session"
IDLE_SECONDS = 12 * 3600  # a big screen stays logged in through a working day
MAX_SESSIONS = 500  # each holds one NATS connection
PER_PERSON = 20  # sessions one login may hold (screens, phones, scripts); a new one closes its least used
CROWDED_IDLE = 15 * 60  # when MAX_SESSIONS are open, a session idle this long gives way to a new login


class SessionsFull(Exception):
    """Every session is in use: a new login would have to close somebody else's working session."""


class LoginFailed(Exception):
    """The bus did not accept this user and password (or the user is no person's identity)."""


@dataclass
class Session:
    token: str
    identity: Identity
    client: GongdiClient
    last_used: float = field(default_factory=time.monotonic)

    def me(self, city: dict) -> dict:
        i = self.identity
        return {"user": i.name, "role": i.role.value, "role_label": LABELS[i.role], "township": i.township,
                "site": i.site, "department": i.department, "scope": i.scope, "may_write": i.scope is not None,
                "city": city}


class Sessions:
    """Token → session. The gateway never holds more rights than the person logged in: it keeps no password list
    and asks NATS to authenticate each login."""

    def __init__(self, settings: Settings, timeout: float = 10.0):
        self.settings = settings
        self.timeout = timeout
        self.by_token: dict[str, Session] = {}
        self.lock = asyncio.Lock()
        self.throttle = LoginThrottle()

    async def login(self, user: str, password: str, address: str = "") -> Session:
        """A session for `user`, or LoginFailed; Throttled (before trying the password) after too many failures
        of that name from `address`, or from `address` at all."""
        # The gateway's own record of logins (before, only nats.log had failures, with the gateway's address): the
        # name only when it is an identity's, never other text someone typed.
        log = structlog.get_logger().bind(user=_shown(user), address=address)
        try:
            self.throttle.check(user, address)
        except Throttled as exc:
            log.warning("login throttled", wait=round(exc.wait))
            raise
        try:
            identity = Identity.parse(user)  # a person's identity only: platform users cannot log in here
            as_user = self.settings.as_user(user, password)
            await self._check(as_user)
        except (LoginFailed, ValueError):
            self.throttle.failed(user, address)
            log.warning("login refused")
            raise LoginFailed(user) from None
        self.throttle.succeeded(user, address)
        log.info("login")
        client = await GongdiClient.connect(as_user, timeout=self.timeout, lasting=True)
        session = Session(secrets.token_urlsafe(32), identity, client)
        async with self.lock:
            try:
                await self._make_room(identity.name)
            except SessionsFull:
                await _close(session)
                raise
            self.by_token[session.token] = session
        return session

    async def _check(self, settings: Settings) -> None:
        """One attempt, no retries: a long-lived connection would retry a wrong password for ever."""

        async def quiet(_: Exception) -> None:
            return None

        try:
            nc = await nats.connect(settings.nats_servers, allow_reconnect=False, max_reconnect_attempts=0,
                                    connect_timeout=2, error_cb=quiet)
        except nats.errors.NoServersError:
            raise
        except (nats.errors.Error, OSError) as exc:
            if "authorization" in str(exc).lower():
                raise LoginFailed(settings.nats_user) from None
            raise
        await nc.close()

    def get(self, token: str | None) -> Session | None:
        session = self.by_token.get(token or "")
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_used > IDLE_SECONDS:
            return None  # closed by the next sweep
        session.last_used = now
        return session

    async def logout(self, token: str | None) -> None:
        async with self.lock:
            session = self.by_token.pop(token or "", None)
        if session:
            await _close(session)

    async def sweep(self) -> None:
        """Close sessions idle for longer than IDLE_SECONDS."""
        now = time.monotonic()
        async with self.lock:
            idle = [s for s in self.by_token.values() if now - s.last_used > IDLE_SECONDS]
            for s in idle:
                del self.by_token[s.token]
        for s in idle:
            await _close(s)

    async def _make_room(self, user: str) -> None:
        """One person's logins make room among their own sessions; only a long idle session of someone else gives
        way, so that logging in many times never logs anybody else out (a wall screen, a secretary mid-form)."""
        mine = [s for s in self.by_token.values() if s.identity.name == user]
        if len(mine) >= PER_PERSON:
            await self._drop(min(mine, key=lambda s: s.last_used))
        if len(self.by_token) >= MAX_SESSIONS:
            oldest = min(self.by_token.values(), key=lambda s: s.last_used)
            if time.monotonic() - oldest.last_used < CROWDED_IDLE:
                raise SessionsFull
            await self._drop(oldest)

    async def _drop(self, session: Session) -> None:
        del self.by_token[session.token]
        await _close(session)

    async def close(self) -> None:
        async with self.lock:
            sessions, self.by_token = list(self.by_token.values()), {}
        for s in sessions:
            await _close(s)


async def _close(session: Session) -> None:
    with contextlib.suppress(nats.errors.Error):  # already closed: nothing left to release
        await session.client.nc.close()


def _shown(user: str) -> str:
    """A login name as the log may show it: an identity's name, else only that it was none."""
    try:
        return Identity.parse(user).name
    except ValueError:
        return "(not an identity)"
