"""Stream continuity as given/when/then: the head a consumer applied, an arriving event, the verdict. No I/O."""
from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from contracts.base import Event
from contracts.envelope import STORED, Envelope, EnvelopeRow
from gongdi.bus.continuity import Verdict, check, is_next, own_hash
from gongdi.store.base import Meta, Pending, StreamHead, prepare

AT = dt.datetime(2020, 5, 1, 8, 30, tzinfo=dt.UTC)


class Happened(Event):
    n: int


def chain(stream_id: str, count: int) -> list[Envelope]:
    """`count` events of one stream as the writer numbers and hashes them, in their published form."""
    prepared = prepare([Pending(Happened(n=n), stream_id, "bailin", None) for n in range(count)], {},
                       Meta("test", occurred_at=AT))
    return [Envelope.from_json(Envelope(**row, position=i + 1, tx_id=1, service="membership", recorded_at=AT)
                               .to_json()) for i, row in enumerate(prepared.rows)]


def head_of(event: Envelope) -> StreamHead:
    return StreamHead(event.version, event.hash)


def forged(event: Envelope, **changes: Any) -> Envelope:
    """An event changed by someone who also recomputed its hash, as anyone can: the hash has no secret."""
    changed = event.model_copy(update=changes)
    return changed.model_copy(update={"hash": own_hash(changed)})


def test_the_first_event_of_a_stream_starts_it():
    first = chain("s", 1)[0]
    assert first.prev_hash is None  # the writer starts every stream from StreamHead(): nothing before it
    assert check(StreamHead(), first).verdict is Verdict.APPLY


def test_each_event_continues_from_the_one_before_it():
    events = chain("s", 4)
    head = StreamHead()
    for event in events:
        assert check(head, event).verdict is Verdict.APPLY
        head = head_of(event)


def test_a_stream_first_seen_in_its_middle_is_refused():
    third = chain("s", 3)[2]
    verdict = check(StreamHead(), third)
    assert verdict.verdict is Verdict.REFUSE
    assert verdict.expected == "version 1 after nothing"
    assert verdict.got == f"version 3 after {third.prev_hash}"


def test_a_consumer_that_applied_events_before_it_kept_heads_takes_the_first_it_sees_as_the_start():
    third = chain("s", 3)[2]
    assert check(StreamHead(), third, adopt=True).verdict is Verdict.APPLY


def test_even_then_a_first_version_claiming_a_predecessor_is_refused():
    first = chain("s", 1)[0]
    assert check(StreamHead(), forged(first, prev_hash="0" * 64), adopt=True).verdict is Verdict.REFUSE


def test_adoption_stops_at_the_head():
    one, _, three = chain("s", 3)
    assert check(head_of(one), three, adopt=True).verdict is Verdict.REFUSE


def test_a_skipped_version_is_refused():
    one, _, three = chain("s", 3)
    verdict = check(head_of(one), forged(three, prev_hash=one.hash))
    assert verdict.verdict is Verdict.REFUSE
    assert (verdict.expected, verdict.got) == (f"version 2 after {one.hash}", f"version 3 after {one.hash}")


def test_a_wrong_prev_hash_is_refused_even_with_a_recomputed_hash():
    one, two = chain("s", 2)
    verdict = check(head_of(one), forged(two, prev_hash="0" * 64))
    assert verdict.verdict is Verdict.REFUSE
    assert verdict.got == f"version 2 after {'0' * 64}"


def test_content_that_does_not_match_its_hash_is_refused():
    one, two = chain("s", 2)
    tampered = two.model_copy(update={"payload": {"n": 666}})
    verdict = check(head_of(one), tampered)
    assert verdict.verdict is Verdict.REFUSE
    assert verdict.got == f"hash {two.hash}" and verdict.expected.startswith(f"hash {own_hash(tampered)}")


def test_the_event_at_the_head_again_is_a_duplicate():
    _, two = chain("s", 2)
    assert check(head_of(two), two).verdict is Verdict.DUPLICATE


def test_another_event_claiming_the_head_version_is_refused():
    _, two = chain("s", 2)
    assert check(head_of(two), forged(two, payload={"n": 666})).verdict is Verdict.REFUSE


def test_an_older_event_again_is_refused_since_only_the_head_hash_is_kept():
    one, two = chain("s", 2)
    assert check(head_of(two), one).verdict is Verdict.REFUSE


def test_the_refusal_names_the_stream_what_was_expected_and_what_came():
    one, two = chain("site-7", 2)
    verdict = check(StreamHead(), two)
    error = verdict.error(two)
    assert (error.stream_id, error.version) == ("site-7", 2)
    assert str(error) == ("site-7 v2 does not continue its stream: expected version 1 after nothing, got"
                          f" version 2 after {one.hash}")


def as_row(event: Envelope) -> EnvelopeRow:
    """The event as a replay reads its stored row: the fields in the table's order, the payload as stored text."""
    values = event.model_dump()
    values["payload"] = orjson.dumps(event.payload).decode()
    return EnvelopeRow(*(values[f.name] for f in STORED), event.service)


def test_a_row_read_back_hashes_as_its_event_under_either_scheme():
    event = chain("s", 2)[1]
    old = forged(event, hash_scheme=1)  # written before scheme 2: its hash leaves the township out
    for e in (event, old):
        row = as_row(e)
        assert row.chain_hash() == own_hash(row) == e.hash
        assert check(StreamHead(), row, adopt=True).verdict is Verdict.APPLY
    assert as_row(old.model_copy(update={"township": "x"})).chain_hash() == old.hash
    assert as_row(event.model_copy(update={"township": "x"})).chain_hash() != event.hash
    assert as_row(event.model_copy(update={"payload": {"n": 2}})).chain_hash() != event.hash


def test_a_row_hashes_as_its_event_whatever_its_time_and_ids():
    """A row's values go into its hash as they are (orjson writes the times and the database's UUIDs itself); the
    hash must be the one the writer computed, to the microsecond and across schemes and time zones."""
    from uuid import uuid4

    from asyncpg.pgproto.pgproto import UUID as DatabaseUUID

    event = chain("s", 1)[0]
    for micro in (0, 1, 5, 120, 999_999):
        for scheme in (1, 2):
            for ids in ({}, {"command_id": uuid4(), "correlation_id": uuid4(), "causation_id": uuid4(),
                             "command_digest": "ab" * 32}):
                at = AT.replace(microsecond=micro)
                written = forged(event, occurred_at=at, hash_scheme=scheme, **ids)
                row = as_row(written)
                assert row.chain_hash() == written.hash
                # As asyncpg reads it: its own UUID type, and a time in another zone naming the same instant.
                values = row._asdict()
                for name in ("event_id", "command_id", "correlation_id", "causation_id"):
                    if values[name] is not None:
                        values[name] = DatabaseUUID(str(values[name]))
                assert EnvelopeRow(**values).chain_hash() == written.hash
                values["occurred_at"] = at.astimezone(dt.timezone(dt.timedelta(hours=8)))
                assert EnvelopeRow(**values).chain_hash() == written.hash


def test_a_replays_shortcut_applies_exactly_what_the_check_applies():
    """`is_next` (a rebuild's every event but the rare one) says yes exactly where `check` applies: the next link
    with its hash recomputed, and no to a duplicate, a gap, a foreign predecessor, content off its hash."""
    one, two, three = chain("s", 3)
    cases = [
        (StreamHead(), one), (head_of(one), two), (head_of(two), three),  # each next link
        (head_of(two), two),  # the head again: a duplicate, skipped by the check's longer way
        (head_of(one), forged(three, prev_hash=one.hash)),  # a skipped version
        (head_of(one), forged(two, prev_hash="0" * 64)),  # another predecessor
        (head_of(one), two.model_copy(update={"payload": {"n": 666}})),  # content that does not match its hash
        (head_of(one), two.model_copy(update={"township": "x"})),  # a hashed envelope field changed
        (StreamHead(), three),  # a stream first seen in its middle
    ]
    said = [is_next(head, as_row(event)) for head, event in cases]
    assert said == [check(head, as_row(event)).verdict is Verdict.APPLY for head, event in cases]
    assert said == [True, True, True, False, False, False, False, False, False]
