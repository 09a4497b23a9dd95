"""Every signed head of a service folded in order: a head covering less than the one before it is a regression (a
log only grows); the widest head is kept for the comparison with the database; heads not signed by the platform's
key do not count."""
from __future__ import annotations

import os

from gongdi.ops.audit import HeadHistory
from gongdi.store.heads import HeadKey, LogHead

KEY = HeadKey(os.urandom(32).hex())


def head(events: int, commands: int | None = None, key: HeadKey = KEY) -> dict:
    n = events if commands is None else commands
    return key.sign(LogHead("membership", 100 + events, events, events, 1, "r", n, "c"))


def folded(*heads: dict) -> HeadHistory:
    history = HeadHistory(KEY.public_hex)
    for h in heads:
        history.add(h)
    return history


def test_heads_that_only_grow_are_no_problem():
    history = folded(head(1), head(5), head(5), head(9))
    assert history.problems("membership") == [] and history.widest["events"] == 9 and history.last["events"] == 9


def test_a_head_covering_fewer_events_than_the_one_before_is_named():
    later = head(10)
    history = folded(head(4), head(12), later, head(11))
    (problem,) = history.problems("membership")
    assert problem.code == "HEAD_REGRESSED" and "覆盖 12 条事件" in problem.text and "只有 10 条事件" in problem.text
    assert "共 1 次" not in problem.text and history.widest["events"] == 12 and history.valid is not later


def test_fewer_commands_alone_is_a_regression():
    (problem,) = folded(head(5, commands=5), head(5, commands=4)).problems("membership")
    assert "命令 5 条" in problem.text and "命令 4 条" in problem.text


def test_a_head_signed_by_another_key_neither_counts_nor_hides_a_regression():
    forged = head(3, key=HeadKey(os.urandom(32).hex()))
    history = folded(head(8), forged, head(9))
    assert history.problems("membership") == [] and history.last["events"] == 9 and history.widest["events"] == 9
    assert folded(head(8), forged).last is forged  # reported by the signature check on the latest head
