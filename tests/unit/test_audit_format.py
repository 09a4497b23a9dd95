"""How `gongdi verify` words what it found, without servers."""
from __future__ import annotations

from pathlib import Path

from gongdi.ops.audit import Report, city_time, lagging_heads, summary


def test_a_signed_head_s_time_reads_in_the_city_s_clock():
    assert city_time("2026-11-25T11:54:24.212856+00:00") == "2026-11-25 19:54:24 北京时间"
    assert city_time("not a time") == "not a time"  # shown as written; the signature check judges the head
    assert city_time(None) == "?"


def test_the_summary_names_the_head_s_time_in_the_city_s_clock():
    report = Report("membership", events=3, commands=2, published=3,
                    head={"signed_at": "2020-12-31T16:30:00+00:00", "events": 3})
    assert summary(report) == ("membership: 事件 3 条，命令 2 条，JetStream 副本 3 条，"
                               "签名日志头 2021-01-01 00:30:00 北京时间 覆盖 3 条事件")


def test_heads_exported_before_they_cover_the_log_are_said_to_lag():
    """Right after the demo was seeded, heads covering 0 events were exported without a word."""
    fresh = Report("membership", events=1279, head={"events": 0})
    covered = Report("activities", events=300, head={"events": 300})
    unsigned = Report("liaison", events=5, head=None)
    said = lagging_heads([fresh, covered, unsigned], Path("heads.jsonl"))
    assert len(said) == 2 and "membership 的签名日志头覆盖 0 / 1279 条事件" in said[0] and "heads.jsonl" in said[0]
    assert "liaison 的签名日志头覆盖 0 / 5" in said[1]
