"""The one command pipeline every writing service uses: parse → load → decide → append → reply, once per id."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from contracts.base import Command, Event
from contracts.errors import DomainError, validation_error
from contracts.identity import ForbiddenError, Identity, Role
from contracts.replies import CommandReply, ErrorInfo, RecordedRef
from contracts.rules import LIMITS
from contracts.subjects import scope_of
from gongdi.service.locks import KeyedLocks
from gongdi.service.process import Request
from gongdi.store.base import (
    MAX_ATTEMPTS,
    WIDEST_TIME,
    ConflictsExhaustedError,
    Loaded,
    Meta,
    Pending,
    StreamHead,
    prepare,
    published_size,
    retry_on_conflict,
)
from gongdi.store.sitestreams import stream_of


class EventTooLargeError(DomainError):
    """An event this command would record is larger, encoded as the relay publishes it, than `max_event_bytes`:
    stored, it could never reach the bus (or every consumer would have to take it), so nothing is written."""

    code = "EVENT_TOO_LARGE"


# What is not known before the commit, at its widest: a stream far into its life (int version, a previous hash)
# and another site's township (a member moving away from it), a slug at its longest.
_WIDEST_HEAD = StreamHead(2**31 - 2, "f" * 64)
_WIDEST_SLUG = "x" * 63


class Attempt(Protocol):
    """One try at a command, inside whatever atomicity the repository needs."""

    async def load(self, command: Command) -> Loaded: ...

    async def commit(self, command: Command, loaded: Loaded, events: list[Event], warnings: list[ErrorInfo],
                     actor: str) -> list[RecordedRef]: ...


class Repository(Protocol):
    """A service's store as the pipeline sees it. A lost race raises ConcurrencyError or DuplicateCommandError
    (from `commit`, or when the attempt ends) and the pipeline tries again."""

    def attempt(self) -> AbstractAsyncContextManager[Attempt]: ...


def error_reply(code: str, message: str, field: str | None = None, command_id: Any = None) -> bytes:
    reply = CommandReply(ok=False, command_id=command_id, error=ErrorInfo(code=code, message=message, field=field))
    return reply.model_dump_json().encode()


def validation_reply(exc: ValidationError) -> bytes:
    return CommandReply(ok=False, error=validation_error(exc)).model_dump_json().encode()


def forbidden_reply(exc: ForbiddenError, command_id: Any = None) -> bytes:
    return error_reply("FORBIDDEN", f"{exc.message} [{exc.rule}]", exc.rule, command_id)


def accepted_reply(command: Command, refs: list[RecordedRef], warnings: list[ErrorInfo]) -> bytes:
    return CommandReply(ok=True, command_id=command.command_id, warnings=warnings, events=refs
                        ).model_dump_json().encode()


def site_key(command: Command) -> str:
    return command.site_id  # type: ignore[attr-defined]


def no_advice(_command: Command, _given: Any) -> list[ErrorInfo]:
    return []


class CommandPipeline:
    def __init__(self, commands: dict[str, type[Command]], repository: Repository,
                 decide: Callable[[Command, Any], list[Event]],
                 advise: Callable[[Command, Any], list[ErrorInfo]] = no_advice,
                 key: Callable[[Command], str] = site_key, log: structlog.BoundLogger | None = None,
                 attempts: int = MAX_ATTEMPTS, townships: Mapping[str, str] | None = None):
        self.commands = commands
        self.repository = repository
        self.decide = decide
        self.advise = advise
        self.key = key
        self.log = log or structlog.get_logger()
        self.attempts = attempts
        self.townships = townships  # code → name, for refusals a person reads
        self.locks = KeyedLocks()
        self.listeners: list[Callable[[str], None]] = []  # told the key (site) of each command recorded

    def listen(self, listener: Callable[[str], None]) -> None:
        """`listener(key)` after each command this pipeline recorded for a sender (not those it gives itself)."""
        self.listeners.append(listener)

    async def handle(self, name: str, request: Request) -> bytes:
        sender, scope = request.sender, scope_of(request.subject)
        try:
            if sender is None:
                raise ForbiddenError("NO_IDENTITY", "请求没有经平台认证的身份 (no identity asserted by the server)")
            sender.check_subject(scope)  # role and subject, before anything is read
        except ForbiddenError as exc:
            return forbidden_reply(exc)
        try:
            # Strict: a count is a JSON integer, not `true` or "12"; dates, ids and amounts still come as text.
            command = self.commands[name].model_validate_json(request.body, strict=True)
        except ValidationError as exc:
            return validation_reply(exc)
        # Optimistic concurrency is the guarantee across processes; the lock only spares this one the retries.
        async with self.locks.hold(self.key(command)):
            try:
                return await retry_on_conflict(lambda: self._attempt(command, sender, request.subject),
                                               self.attempts)
            except ForbiddenError as exc:
                return forbidden_reply(exc, command.command_id)
            except DomainError as exc:
                return error_reply(exc.code, exc.message, exc.field, command.command_id)
            except ConflictsExhaustedError:
                self.log.warning("command gave up after conflicts", command_id=str(command.command_id), command=name)
                return error_reply("CONCURRENCY_CONFLICT", "并发冲突，请重试 (too many concurrent writers)", None,
                                   command.command_id)

    async def record(self, command: Command, actor: str) -> list[RecordedRef] | None:
        """A command the service gives itself (a timer firing, gongdi.service.timers): no sender to check and no
        reply to send. None when its id was recorded before; [] when the rules decide nothing, and then the id is
        not recorded either, so a later firing is decided afresh."""
        async with self.locks.hold(self.key(command)):
            return await retry_on_conflict(lambda: self._record(command, actor), self.attempts)

    async def _record(self, command: Command, actor: str) -> list[RecordedRef] | None:
        async with self.repository.attempt() as attempt:
            loaded = await attempt.load(command)
            if loaded.reply is not None:
                return None
            events = self.decide(command, loaded.given)
            if not events:
                return []
            return await attempt.commit(command, loaded, events, [], actor)

    def check_sizes(self, command: Command, loaded: Loaded, events: list[Event], actor: str, service: str) -> None:
        """Refuse the command if one of its events, encoded as the relay will publish it, exceeds the limit."""
        site_id = self.key(command)
        meta = Meta(actor=actor, command_id=command.command_id, correlation_id=command.correlation_id,
                    occurred_at=WIDEST_TIME)
        for event in events:
            target = getattr(event, "site_id", None) or site_id
            township = loaded.township if target == site_id and loaded.township else _WIDEST_SLUG
            stream = stream_of(target)
            [row] = prepare([Pending(event, stream, township, target)], {stream: _WIDEST_HEAD}, meta).rows
            size = published_size(row, service)
            if size > LIMITS.max_event_bytes:
                raise EventTooLargeError(
                    f"事件 {event.type_name()} 编码后超过上限，请分成几条记录"
                    f" (rule max_event_bytes: {size} > {LIMITS.max_event_bytes} bytes)")

    async def _attempt(self, command: Command, sender: Identity, subject: str) -> bytes:
        scope, service = scope_of(subject), subject.split(".")[2]  # cmd.<scope>.<service>.<Name>
        async with self.repository.attempt() as attempt:
            loaded = await attempt.load(command)
            if loaded.reply is not None:
                if loaded.asked is not None and loaded.asked != command.fingerprint(sender.name):
                    return error_reply("COMMAND_ID_REUSED", f"命令编号 {command.command_id} 已用于另一条命令"
                                       "或另一身份，请用新的编号 (command id already used for something else)",
                                       "command_id", command.command_id)
                return loaded.reply.model_dump_json().encode()
            site_id = self.key(command)
            sender.check_write(scope, loaded.township, site_id, command.opens_site, self.townships)
            events = self.decide(command, loaded.given)
            if events and loaded.township is None and sender.role is not Role.CITY:
                # The rules let something be written on a site this service cannot place: only the city may.
                raise ForbiddenError("UNPLACED_SITE", f"工地 {site_id} 尚未登记到乡镇，只有市工委可以记录")
            self.check_sizes(command, loaded, events, sender.name, service)
            warnings = self.advise(command, loaded.given)
            refs = await attempt.commit(command, loaded, events, warnings, sender.name)
        # Only now has the attempt committed: the reply never announces what might still roll back.
        if events:
            for listener in self.listeners:
                listener(site_id)
        return accepted_reply(command, refs, warnings)
