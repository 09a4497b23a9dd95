"""The rebuild's write batching (in order, or in waves when streams commute) and its progress line."""
from __future__ import annotations

import asyncio

from gongdi.bus.shadow import Batcher
from gongdi.ops.progress import bar_line


def queued(commute: bool, writes: list[tuple[str, str, list[tuple]]]) -> list[tuple[str, list[tuple]]]:
    """`writes`: (stream, statement, rows), one event each; the groups the batcher would send."""
    batcher = Batcher(None, commute)  # type: ignore[arg-type]  # nothing is sent: only the grouping is looked at

    async def project() -> None:
        for stream, sql, rows in writes:
            batcher.begin(stream)
            await batcher.executemany(sql, rows)

    asyncio.run(project())
    return batcher.groups()


def test_in_order_runs_of_the_same_statement_only():
    writes = [("a", "ins", [(1,)]), ("b", "ins", [(2,)]), ("a", "upd", [(3,)]), ("c", "ins", [(4,)])]
    assert queued(False, writes) == [("ins", [(1,), (2,)]), ("upd", [(3,)]), ("ins", [(4,)])]


def test_waves_keep_each_streams_order_and_merge_across_streams():
    # a: ins, upd, ins; b: ins, ins; c: upd. Wave 0 = first event of each stream, and so on.
    writes = [("a", "ins", [(1,)]), ("a", "upd", [(2,)]), ("b", "ins", [(3,)]), ("a", "ins", [(4,)]),
              ("c", "upd", [(5,)]), ("b", "ins", [(6,)])]
    assert queued(True, writes) == [("ins", [(1,), (3,)]), ("upd", [(5,)]),  # wave 0
                                    ("upd", [(2,)]), ("ins", [(6,)]),  # wave 1
                                    ("ins", [(4,)])]  # wave 2


def test_an_events_statements_stay_in_its_order():
    batcher = Batcher(None, True)  # type: ignore[arg-type]

    async def project() -> None:
        batcher.begin("a")
        await batcher.execute("x", 1)
        await batcher.execute("y", 2)
        batcher.begin("b")
        await batcher.execute("y", 3)
        await batcher.execute("x", 4)

    asyncio.run(project())
    # Level 0 of both events, then level 1: b's y before its x, a's x before its y.
    assert batcher.groups() == [("x", [(1,)]), ("y", [(3,)]), ("y", [(2,)]), ("x", [(4,)])]


def test_after_a_flush_an_events_later_writes_and_its_streams_next_events_come_in_order():
    """A projection that reads mid-batch flushes the queue: what the current event writes next goes out first, its
    stream's next event after it."""
    batcher = Batcher(None, True)  # type: ignore[arg-type]

    async def project() -> list[tuple[str, list[tuple]]]:
        batcher.begin("a")
        await batcher.execute("x", 1)
        batcher.begin("b")
        await batcher.execute("x", 2)
        first = batcher.groups()  # as a read would flush
        await batcher.execute("y", 3)  # b's second statement
        batcher.begin("b")
        await batcher.execute("x", 4)
        batcher.begin("a")
        await batcher.execute("x", 5)
        return first

    assert asyncio.run(project()) == [("x", [(1,), (2,)])]
    # b's rest is wave 0; b's next event and a's (a's first since the flush) wave 1 and 0.
    assert batcher.groups() == [("y", [(3,)]), ("x", [(5,)]), ("x", [(4,)])]


def test_progress_line():
    line = bar_line(500, 1000, 500, 2.0, width=10)
    assert "[#####.....]" in line and "500/1,000" in line and "250/s" in line and "剩余 2s" in line
    assert "?" in bar_line(0, 0, 0, 0.0)


def test_stamps_keep_the_latest_per_key_only():
    batcher = Batcher(None, True)  # type: ignore[arg-type]
    for key, order, value in [("a", 3, "x"), ("b", 1, "y"), ("a", 5, "z"), ("a", 4, "w")]:
        batcher.stamp("stamp", key, order, value)
    assert batcher._stamps == {"stamp": {"a": ("a", 5, "z"), "b": ("b", 1, "y")}}
