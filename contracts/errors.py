"""The base of every domain error: a machine code, a human message, and the field at fault."""
from __future__ import annotations

from contracts.replies import ErrorInfo


class DomainError(Exception):
    code = "RULE_BROKEN"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, field=self.field)
