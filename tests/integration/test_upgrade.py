"""A state folder written by release 0.1 upgrades in place: `gongdi up` migrates it and every record is kept."""
from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import asyncpg
import pytest

from services.membership.repository import MIGRATIONS
from tests.integration.running import gongdi, start, stop, wait_for_line
from tests.integration.waiting import eventually

LATEST = MIGRATIONS[-1].number

FIXTURE = Path(__file__).parent.parent / "fixtures" / "release-0.1.tar.xz"


async def refused_edit(database_url: str) -> bool:
    """The append-only guard reached the old schemas: an edit of an old event is refused."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM membership.events WHERE version = 1")
    except asyncpg.PostgresError as exc:
        return exc.sqlstate == "GD403"
    finally:
        await conn.close()
    return False


@pytest.mark.slow
def test_a_release_0_1_state_folder_keeps_its_records_after_upgrade(tmp_path: Path):
    subprocess.run(["tar", "-xJf", str(FIXTURE), "-C", str(tmp_path)], check=True)
    home = tmp_path / "state"
    proc = start(home)  # no --seed, no --reset: the user's own folder, as they left it
    try:
        out = wait_for_line(proc, "Ctrl-C")
        # Release 0.1 kept no record of migrations: 1 (its own tables, all `IF NOT EXISTS`) runs as a no-op.
        every = ", ".join(str(n) for n in range(1, LATEST + 1))
        assert f"数据库模式 membership：迁移至第 {LATEST} 项（本次执行第 {every} 项）" in out
        assert "数据库模式 views：迁移至第" in out

        city = json.loads(gongdi(home, "view", "city", "--json").stdout)
        assert (city["projects"], city["workers"], city["members"], city["branches"]) == (2, 320, 5, 1)
        assert city["liaison"]["disputes"]["wages"]["mediating"] == 1
        assert city["activities"]["lessons"]["night_school"] == {"sessions": 1, "attendance": 30}
        site = json.loads(gongdi(home, "view", "site", "old-bridge", "--json").stdout)
        assert site["members_present"] == 4 and site["branch"]["secretary"] == "r1"
        verified = gongdi(home, "verify")
        assert verified.returncode == 0, verified.stdout
        assert asyncio.run(refused_edit(json.loads((home / "runtime.json").read_text())["database_url"]))

        # The old records take new commands and the new event: the site written by 0.1 is completed now.
        done = gongdi(home, "send", "membership", "CompleteSite", json.dumps(
            {"site_id": "old-school", "completed_on": "2021-04-30"}))
        assert done.returncode == 0, done.stdout
        late = gongdi(home, "send", "membership", "RecordArrival", json.dumps({
            "site_id": "old-school", "member_id": "r9", "arrived_on": "2021-05-01",
            "member": {"name": "党员9", "gender": "female", "admitted_on": "2010-07-01", "status": "full",
                       "unit_kind": "construction", "unit_name": "施工单位", "job": "worker", "section": "一工段",
                       "home_org": "某村党支部", "relation": "mobile"}}))
        assert late.returncode == 1 and "SITE_COMPLETED" in late.stdout
        # Snapshots written by 0.1 learnt their members' arrival dates (membership migration 6).
        early = gongdi(home, "send", "membership", "RecordDeparture", json.dumps(
            {"site_id": "old-bridge", "member_id": "r3", "departed_on": "2020-03-09"}))
        assert early.returncode == 1 and "DEPARTURE_BEFORE_ARRIVAL" in early.stdout, early.stdout
        moved = gongdi(home, "send", "membership", "RecordDeparture", json.dumps(
            {"site_id": "old-bridge", "member_id": "r2", "departed_on": "2021-05-01"}))
        assert moved.returncode == 0, moved.stdout
        # States folded by 0.1 are folded again from their streams' start (activities migration 12): its night
        # school, entered before retractions existed, can be retracted.
        records = json.loads(gongdi(home, "view", "site", "old-bridge", "--json").stdout)["records"]
        [lesson] = [r for r in records if r["record"] == "activity"]
        withdrawn = gongdi(home, "send", "activities", "RetractRecord", json.dumps(
            {"site_id": "old-bridge", "record": "activity", "record_id": lesson["record_id"], "reason": "记错工地"}))
        assert withdrawn.returncode == 0, withdrawn.stdout
        assert asyncio.run(eventually(lambda: not json.loads(gongdi(
            home, "view", "city", "--json").stdout)["activities"]["lessons"]["night_school"]["sessions"]))
        assert gongdi(home, "verify").returncode == 0
    finally:
        stop(proc)
    assert proc.returncode == 0

    # A second start finds nothing left to migrate and the new facts in place.
    again = start(home)
    try:
        out = wait_for_line(again, "Ctrl-C")
        assert f"数据库模式 membership：迁移至第 {LATEST} 项（已是最新）" in out
        site = json.loads(gongdi(home, "view", "site", "old-school", "--json").stdout)
        assert site["completed_on"] == "2021-04-30"
        city = json.loads(gongdi(home, "view", "city", "--json").stdout)
        # Five members, less old-school's one, handed back when it completed, and r2, who left old-bridge.
        assert (city["members"], city["completed"]) == (3, 1)
    finally:
        stop(again)
