"""The operator's view of a rebuild: a progress bar on stderr and the one-line result."""
from __future__ import annotations

from gongdi.bus.shadow import Outcome
from gongdi.ops.progress import ProgressBar


def rebuild_bar() -> ProgressBar:
    return ProgressBar("重建", "事件")


def result_line(schema: str, outcome: Outcome) -> str:
    """What a finished rebuild says, in the CLI's two languages."""
    resumed = (f"，续接已有的 {outcome.resumed_from:,} 条 (resumed after {outcome.resumed_from:,})"
               if outcome.resumed_from else "")
    swapped = (f"，已切换为在用视图，查询最多等待 {outcome.held * 1000:.0f} ms (swapped in; queries waited at most"
               f" {outcome.held * 1000:.0f} ms)" if outcome.swapped else "，未切换 (not swapped)")
    letters = f"，死信 {outcome.dead_letters} 条 (dead letters)" if outcome.dead_letters else ""
    if outcome.dropped:
        letters += (f"，按要求不再显示在用视图显示过的 {outcome.dropped} 条事件（死信） ({outcome.dropped} events the"
                    " old views showed are dead letters now, as accepted)")
    return (f"已重建 {schema}: 应用 {outcome.applied:,} 条事件，用时 {outcome.seconds:.1f}s，"
            f"{outcome.rate:,.0f} 条/秒{resumed}{swapped}{letters}"
            f" (rebuilt {schema}: {outcome.applied:,} events applied in {outcome.seconds:.1f} s,"
            f" {outcome.rate:,.0f}/s)")
