"""`gongdi report --year 2020` on the seeded demo city, as the city committee runs it: the seed's figures in the HTML
and the PDF, and the very same bytes from two runs over the same log."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader

from contracts.queries import QUERIES
from gongdi.demo.seeder import seed_as_townships
from gongdi.ops.readiness import wait_caught_up
from gongdi.ops.supervisor import Supervisor
from gongdi.report.gather import as_of_params
from gongdi.service.settings import Settings
from tests.conftest import Servers

# The seed report's sentences (../shared/seed): 82 projects, 12708 workers, 251 members, 60 zones, 45 teams.
SEED_PHRASES = ("重点工程项目82个", "从业人员12708人", "党员251人", "“工地党员责任区”60个", "等45支",
                "6类党员示范岗", "发展党员28名", "培养党员骨干48名", "推荐32名党员骨干进入项目管理层",
                "39人向组织递交入党申请书", "其中18人纳入入党积极分子培养")


def report(home: Path, out: Path, servers: Servers, settings: Settings, who: str) -> subprocess.Popen:
    """`gongdi report` as `who`, its identity from the environment (as a deployment without a state folder)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(NATS_URL=settings.nats_url, GONGDI_NATS_USER=who, GONGDI_NATS_PASSWORD=servers.credentials.password(who))
    return subprocess.Popen([sys.executable, "-m", "gongdi", "--home", str(home), "report", "--year", "2020",
                             "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_demo_years_report_holds_the_seeds_figures_and_is_the_same_twice(
        platform: Supervisor, ready_settings: Settings, admin_settings: Settings, servers: Servers, tmp_path: Path):
    asyncio.run(seed_as_townships(ready_settings, servers.credentials.password))
    wait_caught_up(admin_settings)

    runs = [report(tmp_path / "home", tmp_path / name, servers, ready_settings, "city") for name in ("one", "two")]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert "report-2020.html" in out and "report-2020.pdf" in out
    for name in ("report-2020.html", "report-2020.pdf"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name

    html = (tmp_path / "one" / "report-2020.html").read_text(encoding="utf-8")
    pdf = PdfReader(tmp_path / "one" / "report-2020.pdf")
    words = re.sub(r"\s", "", "".join(page.extract_text() for page in pdf.pages))  # lines wrap anywhere
    for phrase in SEED_PHRASES:
        assert phrase in html, phrase
        assert phrase in words, phrase
    assert "12,708" in html  # the tables' total
    assert "平台尚未记录" not in html  # every figure of the seed is recorded now
    assert html.count("<svg") == 4
    as_of = as_of_params(QUERIES["city"].params, 2020)  # asked as of the year's end once the views take it
    assert ("数据截至 2020年12月31日（按业务日期）" if as_of else "数据为平台当前视图") in html

    township = report(tmp_path / "home", tmp_path / "township", servers, ready_settings, "township.shacheng")
    _, err = township.communicate(timeout=60)
    assert township.returncode == 1 and "FORBIDDEN" in err and not (tmp_path / "township").exists()
