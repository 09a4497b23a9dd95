"""Dispatch derived from a contract: each event type of the source stream has its snake_case method or is ignored."""
from __future__ import annotations

import inspect
import re
from typing import ClassVar, Protocol

import asyncpg

from contracts.base import Event
from contracts.envelope import Envelope, EnvelopeRow


class Contract(Protocol):
    """What a contracts module (contracts.membership, ...) offers: its service, its event types, their parser."""

    SERVICE: str
    EVENTS: dict[str, type[Event]]

    def parse_event(self, event_type: str, schema_version: int, payload: dict) -> Event: ...


class UnknownEvent(ValueError):
    """An event whose type the projection's contract does not declare: a newer writer, or the wrong stream."""


def method_name(event_type: str) -> str:
    """`MemberArrived` → `member_arrived`, `CoBuildingAgreementSigned` → `co_building_agreement_signed`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", event_type).lower()


def dispatch_table(cls: type) -> dict[str, str | None]:
    """Event type → method name (None when ignored); raises TypeError unless the contract is covered exactly."""
    contract: Contract = cls.contract  # type: ignore[attr-defined]
    ignored: frozenset[str] = cls.ignored  # type: ignore[attr-defined]
    if cls.reacts_only:  # type: ignore[attr-defined]
        ignored = ignored | {t for t in contract.EVENTS if not hasattr(cls, method_name(t))}
    problems = [f"`ignored` names {t!r}, which {contract.SERVICE} does not declare"
                for t in sorted(ignored - contract.EVENTS.keys())]
    table: dict[str, str | None] = {}
    for event_type in contract.EVENTS:
        name = method_name(event_type)
        method = getattr(cls, name, None)
        if event_type in ignored:
            if method is not None:
                problems.append(f"{event_type} is ignored, yet {name}() exists")
            table[event_type] = None
        elif method is None:
            problems.append(f"{event_type} needs a method {name}() or an entry in `ignored`")
        elif not inspect.iscoroutinefunction(method):
            problems.append(f"{name}() must be `async def {name}(self, conn, env, event)`")
        else:
            table[event_type] = name
    if problems:
        raise TypeError(f"{cls.__name__} does not follow contract {contract.SERVICE}: " + "; ".join(problems))
    return table


class Projection:
    """Subclasses set `contract` (a contracts module) and `ignored`, and define one method per shown event type:

        async def member_arrived(self, conn, env, e: MemberArrived) -> None

    The coverage is checked when the subclass is defined, so a contract that gains an event type fails at import
    until the projection shows it or says it ignores it. At run time an event type the contract does not declare
    is an error (the consumer retries, then dead-letters it), never silently skipped.
    """

    contract: ClassVar[Contract]
    ignored: ClassVar[frozenset[str]] = frozenset()
    # A policy reacts to a few event types of another service and lets the rest pass by design; a projection
    # (the default) must account for every type, so that a new one is shown or ignored on purpose.
    reacts_only: ClassVar[bool] = False
    # True when the writes for events of different event streams (stream_id) touch different rows, so that only
    # each stream's own order matters: a rebuild may then send one statement for many streams' events at once
    # (gongdi.bus.shadow.Batcher). Left False, the rebuild keeps the log's order exactly.
    streams_commute: ClassVar[bool] = False
    _dispatch: ClassVar[dict[str, str | None]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "contract", None) is not None:  # an intermediate base without a contract is not checked
            cls._dispatch = dispatch_table(cls)

    def __init__(self) -> None:
        if getattr(type(self), "contract", None) is None:
            raise TypeError(f"{type(self).__name__} declares no contract")

    async def apply(self, conn: asyncpg.Connection, env: Envelope | EnvelopeRow) -> None:
        try:
            name = self._dispatch[env.type]
        except KeyError:
            raise UnknownEvent(f"{type(self).__name__} follows {self.contract.SERVICE}, which declares no event "
                               f"type {env.type!r} (event {env.event_id} from {env.service})") from None
        if name is not None:
            # A rebuild's row keeps its payload as the stored text, which the contract parses at once.
            payload = env.payload_json if isinstance(env, EnvelopeRow) else env.payload
            await getattr(self, name)(conn, env, self.contract.parse_event(env.type, env.schema_version, payload))
