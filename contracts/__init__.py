"""Shared language between services: events, commands, replies, subjects, schema versions."""
