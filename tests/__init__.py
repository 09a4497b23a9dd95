"""Tests: unit (no I/O) and integration (real nats-server and PostgreSQL)."""
