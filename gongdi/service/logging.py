"""structlog set-up: JSON lines in production, readable lines on a console; never payloads or personal data."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(fmt: str = "console", level: str = "info", service: str = "gongdi",
              file: TextIO | None = None) -> structlog.BoundLogger:
    renderer = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=file or sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger().bind(service=service)
