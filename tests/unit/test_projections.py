"""Views projections follow their contracts: every event type is shown or explicitly ignored, unknown ones fail."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contracts import activities, liaison, membership
from contracts.envelope import Envelope
from gongdi.bus.projection import Projection, UnknownEvent, method_name
from services.views.app import VIEWS

CONTRACTS = {membership.SERVICE: membership, activities.SERVICE: activities, liaison.SERVICE: liaison}


def test_snake_case_of_event_types():
    assert method_name("MemberArrived") == "member_arrived"
    assert method_name("CoBuildingAgreementSigned") == "co_building_agreement_signed"
    assert method_name("SiteRegistered") == "site_registered"


def test_views_read_every_service_stream_once():
    assert sorted(service for service, _ in VIEWS.feeds("views")) == sorted(CONTRACTS)


@pytest.mark.parametrize("service, projection", VIEWS.feeds("views"), ids=lambda v: v if isinstance(v, str) else "")
def test_every_event_type_is_handled_or_ignored(service: str, projection: Projection):
    contract = CONTRACTS[service]
    assert projection.contract is contract
    assert projection.ignored <= contract.EVENTS.keys()
    for event_type in contract.EVENTS:
        handler = getattr(projection, method_name(event_type), None)
        assert (handler is not None) != (event_type in projection.ignored), event_type


def test_a_projection_missing_a_method_fails_when_defined():
    with pytest.raises(TypeError, match=r"MemberDeparted needs a method member_departed\(\)"):

        class Incomplete(Projection):
            contract = membership
            ignored = frozenset({"SiteRegistered", "WorkforceReported", "BranchFormed", "PartyGroupFormed"})

            async def member_arrived(self, conn, env, e) -> None: ...


def test_ignoring_an_unknown_type_fails():
    with pytest.raises(TypeError, match="MemberPromoted"):

        class Confused(Projection):
            contract = membership
            ignored = frozenset({*membership.EVENTS, "MemberPromoted"})


def test_a_type_both_handled_and_ignored_fails():
    with pytest.raises(TypeError, match="MemberArrived is ignored, yet member_arrived"):

        class Undecided(Projection):
            contract = membership
            ignored = frozenset(membership.EVENTS)

            async def member_arrived(self, conn, env, e) -> None: ...


def _envelope(event_type: str, payload: dict) -> Envelope:
    now = dt.datetime(2020, 9, 1, tzinfo=dt.UTC)
    return Envelope(event_id=uuid.uuid4(), type=event_type, schema_version=1, stream_id="site-x", version=1,
                    position=1, tx_id=1, service="membership", township="bailin", site_id="x", actor="a",
                    command_id=None, correlation_id=None, causation_id=None, occurred_at=now, recorded_at=now,
                    payload=payload, prev_hash=None, hash="0" * 64)


class Counting(Projection):
    contract = membership
    ignored = frozenset(membership.EVENTS) - {"WorkforceReported"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    async def workforce_reported(self, conn, env, e) -> None:
        self.seen.append(e)


async def test_dispatch_parses_shown_skips_ignored_and_rejects_unknown():
    p = Counting()
    await p.apply(None, _envelope("WorkforceReported", {"site_id": "x", "headcount": 12, "as_of": "2020-09-01"}))
    await p.apply(None, _envelope("MemberDeparted", {"not": "even parsed"}))
    assert [type(e).__name__ for e in p.seen] == ["WorkforceReported"]
    with pytest.raises(UnknownEvent, match="MemberPromoted"):
        await p.apply(None, _envelope("MemberPromoted", {}))
