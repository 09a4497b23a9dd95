"""Base models for commands and events: strict, frozen, JSON-friendly."""
from __future__ import annotations

import hashlib
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Command(BaseModel):
    """A request to change the record; `command_id` makes retries safe."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Whether it brings a new site into the record (only townships and the city may): RegisterSite.
    opens_site: ClassVar[bool] = False
    command_id: UUID
    correlation_id: UUID | None = None

    def fingerprint(self, sender: str) -> str:
        """Who asked what, without the id: the same id sent with another command, body or sender is told apart
        from a retry (and nobody learns another identity's reply by guessing its id)."""
        body = self.model_dump_json(exclude={"command_id"})
        return hashlib.sha256(f"{sender}\n{type(self).__name__}\n{body}".encode()).hexdigest()[:32]


class Event(BaseModel):
    """A fact that happened; the class name is the event type."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]


def parse(events: dict[str, type[Event]], event_type: str, schema_version: int, payload: dict) -> Event:
    """Turn a stored payload back into its model; upcasters for older schema versions go here."""
    cls = events[event_type]
    if schema_version != cls.schema_version:
        raise ValueError(f"no upcaster for {event_type} v{schema_version}")
    return cls.model_validate(payload)
