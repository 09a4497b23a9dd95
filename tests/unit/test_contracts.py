"""Contracts: hash chain, coverage rule, subjects, settings."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from contracts.envelope import chain_hash
from contracts.rules import qualifies_for_coverage
from contracts.subjects import event_subject, stream_name
from gongdi.service.settings import Settings


def _hash(prev: str | None, payload: dict) -> str:
    return chain_hash(prev, event_id=uuid.UUID(int=1), event_type="X", schema_version=1, stream_id="s", version=1,
                      occurred_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), actor="a", payload=payload)


def test_hash_ignores_key_order():
    assert _hash(None, {"a": 1, "b": 2}) == _hash(None, {"b": 2, "a": 1})


def test_hash_depends_on_content_and_predecessor():
    base = _hash(None, {"a": 1})
    assert base != _hash(None, {"a": 2})
    assert base != _hash("f" * 64, {"a": 1})


def test_coverage_needs_both_cost_and_duration():
    assert qualifies_for_coverage(Decimal(5000), 24)
    assert not qualifies_for_coverage(Decimal("4999.99"), 48)
    assert not qualifies_for_coverage(Decimal(90000), 23)


def test_event_subject_carries_township():
    assert event_subject("bailin", "membership", "MemberArrived") == "evt.bailin.membership.MemberArrived"
    assert stream_name("membership") == "EVT_MEMBERSHIP"


def test_settings_round_trip_through_environment():
    s = Settings(nats_url="nats://x:1", database_url="postgresql://y/z", workers=3)
    assert Settings.from_env(s.env()) == s
