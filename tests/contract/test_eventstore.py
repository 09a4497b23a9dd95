"""The event-store contract, written once: what the command pipeline, the relay and the policies rely on."""
from __future__ import annotations

import asyncio
import random
import uuid

import orjson
import pytest

from contracts.replies import ErrorInfo
from gongdi.store.base import (
    Checkpoint,
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    Meta,
    Pending,
    StoredState,
    StreamHead,
)
from tests.appending import Happened, append_one


def pending(stream_id: str, *ns: int) -> list[Pending]:
    return [Pending(Happened(n=n), stream_id, "bailin", "site-a") for n in ns]


async def test_appended_events_load_in_order_with_a_linked_chain(store: EventStore):
    await append_one(store, "s-1", 1)
    await append_one(store, "s-1", 2)
    rows = await store.load("s-1")
    assert [r.version for r in rows] == [1, 2]
    assert rows[0].prev_hash is None and rows[1].prev_hash == rows[0].hash
    assert [r.envelope("svc").payload for r in rows] == [{"n": 1}, {"n": 2}]
    assert await store.verify() == []


async def test_one_append_numbers_several_events_and_returns_their_heads(store: EventStore):
    command = uuid.uuid4()
    async with store.transaction() as tx:
        refs, heads = await store.append(tx, pending("s-1", 1, 2) + pending("s-2", 3), {},
                                         Meta("tester", command_id=command))
    assert [(r.stream_id, r.version) for r in refs] == [("s-1", 1), ("s-1", 2), ("s-2", 1)]
    assert refs[0].position < refs[1].position < refs[2].position
    stored = await store.load("s-1") + await store.load("s-2")
    assert [r.position for r in stored] == [r.position for r in refs]
    assert heads["s-1"] == StreamHead(2, stored[1].hash) and heads["s-2"] == StreamHead(1, stored[2].hash)
    assert all(r.actor == "tester" and r.command_id == command and r.site_id == "site-a" for r in stored)


async def test_a_stale_head_is_a_concurrency_error_and_writes_nothing(store: EventStore):
    await append_one(store, "s-1", 1)
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as tx:
            await store.append(tx, pending("s-1", 9), {}, Meta("test"))
    assert [r.version for r in await store.load("s-1")] == [1]


async def test_a_failed_transaction_leaves_no_trace(store: EventStore):
    command = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await store.append(tx, pending("s-1", 1), {}, Meta("test", command_id=command))
            await store.save_command(tx, command, [])
            await store.save_snapshot(tx, "s-1", StreamHead(1, "h"), '{"n": 1}')
            raise RuntimeError("the decision failed after the append")
    assert await store.load("s-1") == []
    assert await store.find_command(command) is None
    async with store.transaction() as tx:
        assert await store.snapshot(tx, "s-1") == StoredState(StreamHead(), 0, None)


async def test_a_command_is_recorded_once_and_its_reply_rebuilt(store: EventStore):
    command = uuid.uuid4()
    warning = ErrorInfo(code="BRANCH_TOO_LARGE", message="too many")
    async with store.transaction() as tx:
        refs, _ = await store.append(tx, pending("s-1", 1, 2), {}, Meta("test", command_id=command))
        await store.save_command(tx, command, [warning])
    reply = await store.find_command(command)
    assert reply is not None and reply.duplicate and reply.ok
    assert reply.events == refs and reply.warnings == [warning]
    with pytest.raises(DuplicateCommandError):
        async with store.transaction() as tx:
            await store.save_command(tx, command, [])
    assert await store.find_command(uuid.uuid4()) is None


async def test_a_command_that_wrote_no_events_still_counts_as_seen(store: EventStore):
    command = uuid.uuid4()
    async with store.transaction() as tx:
        await store.save_command(tx, command, [])
    reply = await store.find_command(command)
    assert reply is not None and reply.events == []


async def test_snapshots_keep_the_state_and_head_they_were_folded_to(store: EventStore):
    async with store.transaction() as tx:
        await store.save_snapshot(tx, "site-a", StreamHead(3, "abc"), '{"members": ["m1"]}')
        stored = await store.snapshot(tx, "site-a")  # visible inside the transaction that wrote it
        assert (stored.head, stored.state_version) == (StreamHead(3, "abc"), 3)
    async with store.transaction() as tx:
        await store.save_snapshot(tx, "site-a", StreamHead(4, "def"), '{"members": ["m1", "m2"]}')
    async with store.transaction() as tx:
        stored = await store.snapshot(tx, "site-a")
    assert (stored.head, stored.state_version) == (StreamHead(4, "def"), 4)
    assert stored.state is not None and orjson.loads(stored.state) == {"members": ["m1", "m2"]}


async def test_a_snapshot_without_a_state_moves_only_the_head(store: EventStore):
    async with store.transaction() as tx:
        await store.save_snapshot(tx, "site-a", StreamHead(3, "abc"), '{"members": ["m1"]}')
    async with store.transaction() as tx:
        await store.save_snapshot(tx, "site-a", StreamHead(5, "ghi"), None)
    async with store.transaction() as tx:
        stored = await store.snapshot(tx, "site-a")
        newer = await store.snapshot(tx, "site-a", newer_than=3)  # the reader holds a state as of 3 or later
    assert (stored.head, stored.state_version) == (StreamHead(5, "ghi"), 3)
    assert orjson.loads(stored.state) == {"members": ["m1"]}
    assert newer == StoredState(StreamHead(5, "ghi"), 3, None)


async def test_events_after_a_version_come_in_their_chain(store: EventStore):
    await append_one(store, "s-1", 0)
    async with store.transaction() as tx:
        head = await store.head(tx, "s-1")
        await store.append(tx, pending("s-1", 1, 2, 3), {"s-1": head}, Meta("test"))
    rows = await store.load("s-1")
    async with store.transaction() as tx:
        later = await store.events_after(tx, "s-1", 1, 3)
        assert await store.events_after(tx, "s-1", 4, 4) == []
    assert [(e.version, e.prev_hash, e.hash) for e in later] == [(r.version, r.prev_hash, r.hash) for r in rows[1:3]]
    assert [orjson.loads(e.payload) for e in later] == [r.envelope("svc").payload for r in rows[1:3]]
    assert {(e.type, e.schema_version) for e in later} == {(r.type, r.schema_version) for r in rows}


async def test_read_all_pages_through_the_log_in_order_from_a_checkpoint(store: EventStore):
    for n in range(7):
        await append_one(store, f"s-{n % 3}", n)
    first = await store.read_all(Checkpoint(), 4)
    rest = await store.read_all(first[-1].checkpoint, 100)
    rows = first + rest
    assert [r.envelope("svc").payload["n"] for r in rows] == list(range(7))
    assert [r.checkpoint for r in rows] == sorted(r.checkpoint for r in rows)
    assert await store.read_all(rows[-1].checkpoint) == []


async def test_tampering_with_the_order_of_a_chain_is_detected(store: EventStore):
    """Two streams whose events were appended in one transaction still verify one by one."""
    async with store.transaction() as tx:
        await store.append(tx, pending("s-1", 1) + pending("s-2", 2) + pending("s-1", 3), {}, Meta("test"))
    assert await store.verify() == []
    assert [r.version for r in await store.load("s-1")] == [1, 2]


async def test_reader_never_skips_a_slower_transaction(store: EventStore):
    """Writers hold their transactions open for random times; a polling reader must still see every event once."""
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()

    async def reader() -> None:
        checkpoint = Checkpoint()
        while True:
            finished = done.is_set()
            rows = await store.read_all(checkpoint, 100)
            for r in rows:
                seen.append((r.stream_id, r.version))
                checkpoint = r.checkpoint
            if finished and not rows:
                return
            await asyncio.sleep(0.001)

    async def writer(w: int) -> None:
        for n in range(25):
            await append_one(store, f"s-{(w + n) % 3}", n, hold=random.uniform(0, 0.02))

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(8)))
    done.set()
    await task
    assert len(seen) == 200 and len(set(seen)) == 200
    for s in ("s-0", "s-1", "s-2"):
        versions = [v for sid, v in seen if sid == s]
        assert versions == list(range(1, len(versions) + 1))


async def test_a_command_remembers_what_was_asked(store: EventStore):
    asked, before_fingerprints = uuid.uuid4(), uuid.uuid4()
    async with store.transaction() as tx:
        await store.save_command(tx, asked, [], "f1")
        await store.save_command(tx, before_fingerprints, [])  # as commands of release 0.1 were stored
    assert await store.command_fingerprint(asked) == "f1"
    async with store.transaction() as tx:
        assert await store.command_fingerprint(asked, tx) == "f1"
    assert await store.command_fingerprint(before_fingerprints) is None
    assert await store.command_fingerprint(uuid.uuid4()) is None
