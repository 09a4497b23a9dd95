"""Replies to commands and queries: success with recorded events, or a typed error."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    message: str  # what is wrong with it, in Chinese first (contracts.errors)


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str
    field: str | None = None
    # Input refused on several fields: each with its own words (the first is `field` and `message`), so that a form
    # marks every one beside itself from one reply. Before, only the first said what was wrong.
    problems: list[FieldProblem] | None = Field(default=None, exclude_if=lambda v: v is None)


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
