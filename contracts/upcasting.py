"""Event schema evolution: stored payloads of an older schema version are brought to the current one on read.

An event type that changes shape gets `schema_version = n + 1` on its class and an upcaster from n: a pure function
from a payload of version n to one of version n + 1, registered here by (event type, n). Stored events are never
rewritten (the hash chain covers payload and schema version): `contracts.base.parse` applies the chain of
upcasters from the stored version up to the class's, then validates, so projections, policies and `evolve` only
ever see the current shape.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class SchemaVersionError(ValueError):
    """A stored schema version this code cannot read: newer than it knows, or a step of the chain is missing.

    The message names the event type and the versions only, never the payload (which may quote a person)."""


class Upcasters:
    """The registry: (event type, from_version) → the function that makes version from_version + 1 of it."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: `@upcaster("TalkHeld", 1)` over a function from a v1 payload to a v2 payload."""
        if from_version < 1:
            raise ValueError(f"schema versions start at 1, not {from_version}")

        def add(step: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._steps:
                raise ValueError(f"{event_type} v{from_version} → v{from_version + 1} has an upcaster already")
            self._steps[key] = step
            return step

        return add

    def upcast(self, event_type: str, stored: int, current: int, payload: Payload) -> Payload:
        """`payload`, stored as version `stored`, in the shape of version `current`; the input is left as it is."""
        if stored == current:
            return payload
        if stored > current:
            raise SchemaVersionError(
                f"{event_type} v{stored} is newer than this code, which reads up to v{current}: upgrade this service"
                " before it reads these events (事件版本高于本程序)")
        if stored < 1:
            raise SchemaVersionError(f"{event_type} has no schema version {stored}: versions start at 1")
        out = copy.deepcopy(payload)
        for version in range(stored, current):
            step = self._steps.get((event_type, version))
            if step is None:
                raise SchemaVersionError(f"no upcaster for {event_type} v{version} → v{version + 1}"
                                         f" (stored as v{stored}, read as v{current})")
            out = step(out)
            if not isinstance(out, dict):
                raise TypeError(f"the upcaster of {event_type} v{version} returned {type(out).__name__}, not a dict")
        return out

    def missing(self, events: Mapping[str, type]) -> list[str]:
        """The steps an event catalogue needs and lacks: each class's versions 1 … schema_version − 1."""
        return [f"{name} v{v} → v{v + 1}" for name, cls in events.items()
                for v in range(1, cls.schema_version) if (name, v) not in self._steps]  # type: ignore[attr-defined]


UPCASTERS = Upcasters()
upcaster = UPCASTERS.register
