"""Replies to commands and queries: success with recorded events, or a typed error."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str
    field: str | None = None


class RecordedRef(BaseModel):
    event_id: UUID
    type: str
    stream_id: str
    version: int
    position: int


class CommandReply(BaseModel):
    ok: bool
    command_id: UUID | None = None
    events: list[RecordedRef] = []
    warnings: list[ErrorInfo] = []
    duplicate: bool = False
    error: ErrorInfo | None = None


class QueryReply(BaseModel):
    ok: bool
    data: Any = None
    error: ErrorInfo | None = None
