"""The README's first command as a new user meets it: `gongdi up --seed`, then the CLI views and commands."""
from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import nats
import pytest

from tests.conftest import Servers
from tests.integration.running import GONGDI, _env, gongdi, start, stop, wait_for_line

ARRIVAL = {
    "site_id": "xm-002", "member_id": "m9001", "arrived_on": "2020-09-01",
    "member": {"name": "孟令奇", "gender": "male", "admitted_on": "2010-07-01", "status": "full",
               "unit_kind": "construction", "unit_name": "施工单位", "job": "technician", "section": "一工段",
               "home_org": "某村党支部", "relation": "mobile"},
}


@pytest.mark.slow
def test_up_seed_view_and_record_an_arrival(tmp_path: Path):
    home = tmp_path / "home"
    proc = start(home, "--seed")
    try:
        out = wait_for_line(proc, "Ctrl-C")
        assert "重点工程项目       82" in out and "12,708" in out and "251" in out

        city = json.loads(gongdi(home, "view", "city", "--json").stdout)
        assert (city["projects"], city["workers"], city["members"]) == (82, 12_708, 251)
        # The demo's mobile members arrived in 2020: prompted as their arrivals are recorded (or by the pass the
        # seeder asks for at its end), not an hour later (the timer interval).
        assert city["mobility"]["transfer_prompts_open"] > 100
        a = city["activities"]
        assert (a["zones"], sum(a["teams"].values()), a["post_kinds"], a["work_points"]) == (60, 45, 6, 7)
        # every member's arrival or admission, a violation, a family change, every application (39 + 28 developed)
        assert a["talks"]["open"] + a["talks"]["done"] == 251 + 2 + 39 + 28
        d = city["development"]
        assert (d["developed"], d["applied"], d["activists"], city["completed"]) == (28, 39, 18, 1)
        assert "落后 0" in gongdi(home, "view", "status").stdout
        printed = gongdi(home, "view", "city").stdout
        assert "全市视图" in printed and "空白点" in printed and "发展党员 28，入党申请 39，积极分子 18" in printed
        # the talks done said as what they were: applicants' talks are no 必谈 (the yearly report says them apart)
        required, applicants = (sum(a["talks_by_reason"].values()) - a["talks_by_reason"]["application"],
                                a["talks_by_reason"]["application"])
        assert f"已谈 {a['talks']['done']}（其中三必谈 {required}，入党申请人谈话 {applicants}）" in printed
        assert applicants > 0 and required + applicants == a["talks"]["done"]

        sent = gongdi(home, "send", "membership", "RecordArrival", json.dumps(ARRIVAL))
        assert sent.returncode == 0, sent.stdout
        deadline = time.monotonic() + 30.0  # a bound on failure, not a speed claim: each poll starts a process
        while json.loads(gongdi(home, "view", "city", "--json").stdout)["members"] != 252:
            assert time.monotonic() < deadline, "the arrival did not reach the city view"
        site = gongdi(home, "view", "site", "xm-002")
        assert "在场党员 4" in site.stdout

        # A site and its talks as people read them: Chinese words for the coded values, names, the project's name.
        pilot = gongdi(home, "view", "site", "shachengwan").stdout
        assert "按单位: 施工单位 15，" in pilot and "；按关系: 流动党员 " in pilot and "组织关系转入 " in pilot, pilot
        assert "按工段/班组: 一工段 " in pilot and "{" not in pilot and "construction" not in pilot, pilot
        talks = gongdi(home, "view", "talks", "shachengwan").stdout
        first = talks.splitlines()
        assert first[0].startswith("沙埕湾跨海公路通道工程 [shachengwan] · 待谈话 "), talks
        open_talks = json.loads(gongdi(home, "view", "talks", "shachengwan", "--json").stdout)["open"]
        assert open_talks and all(f"{t['name']}（{t['member_id']}）" in talks for t in open_talks), talks
        # What 撤销记录 may withdraw, of one kind, each with the names RetractRecord takes
        held = gongdi(home, "view", "records", "shachengwan", "--record", "talk").stdout
        assert held.startswith("沙埕湾跨海公路通道工程 [shachengwan] · 可撤销的记录 "), held
        assert "谈心谈话（新来党员必谈）" in held and "record talk record_id " in held and "会议" not in held, held
        assert gongdi(home, "view", "city", "--record", "talk").returncode == 2  # not a list of records
        # A township or a department as people name it (before: refused as no code)
        assert gongdi(home, "view", "township", "点头镇").stdout.startswith("点头镇 [diantou] 工地 6，")
        assert gongdi(home, "view", "department", "交通运输局").stdout.startswith("交通运输局 [jiaotong] 主管工地 ")
        unknown = gongdi(home, "view", "township", "某某镇")
        assert unknown.returncode == 2 and "本市没有名为 某某镇 的乡镇；可用: " in unknown.stderr, unknown.stderr
        assert "点头镇（diantou）" in unknown.stderr
        named = gongdi(home, "view", "site", "沙埕湾")  # a site goes by its id: refused by the view, no traceback
        assert named.returncode == 1 and "VALIDATION_FAILED" in named.stdout + named.stderr, named.stderr
        assert "Traceback" not in named.stderr
        birthdays = gongdi(home, "view", "birthdays", "shachengwan", "--month", "2020-07").stdout
        assert birthdays.startswith("沙埕湾跨海公路通道工程 [shachengwan] · 2020-07 政治生日"), birthdays
        assert re.search(r"\n  \w+（m\d{4}）  入党 \d{4}-07-", birthdays), birthdays
        # A reader that stops reading (`gongdi view … | head`) is no failure of the platform.
        gone = subprocess.Popen([*GONGDI, "--home", str(home), "view", "site", "shachengwan"], text=True, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert gone.stdout is not None
        gone.stdout.close()
        _, err = gone.communicate(timeout=30)
        assert "无法连接平台" not in err and "Traceback" not in err, err
        # The demo's members work for units with Chinese names, never an English code (…construction单位).
        members = json.loads(gongdi(home, "view", "site", "shachengwan", "--json").stdout)["members"]
        units = {m["unit_name"] for m in members}
        assert "沙埕湾跨海公路通道工程施工单位" in units and not any(re.search("[a-z]", u) for u in units), units

        refused = gongdi(home, "send", "membership", "RecordArrival", json.dumps(ARRIVAL))
        assert refused.returncode == 1 and "ARRIVAL_ALREADY_RECORDED" in refused.stdout  # the same facts again
        assert gongdi(home, "verify").returncode == 0

        # A holder who left is named with what they held, by its name (before: `示范岗 safety_patrol`, `group g2`).
        post = json.dumps({"site_id": "xm-002", "post_id": "p-cli", "kind": "safety_patrol", "holder": "m9001",
                           "place": "桥面", "established_on": "2020-09-05"})
        deadline = time.monotonic() + 30.0
        while (held := gongdi(home, "send", "activities", "EstablishPost", post)).returncode != 0:
            assert "MEMBER_NOT_PRESENT" in held.stdout and time.monotonic() < deadline, held.stdout  # not yet known
        left = json.dumps({"site_id": "xm-002", "member_id": "m9001", "departed_on": "2020-10-01"})
        assert gongdi(home, "send", "membership", "RecordDeparture", left).returncode == 0
        flag = "!! 示范岗「安全生产巡查岗」上岗党员 孟令奇(m9001) 已离场，请重新指定"
        deadline = time.monotonic() + 30.0
        while flag not in (shown := gongdi(home, "view", "site", "xm-002").stdout):
            assert time.monotonic() < deadline, shown
        assert "离场 2020-10-01 孟令奇（市工委 记录）" in shown  # who recorded it by role (before: `city`)
        back = json.dumps({**ARRIVAL, "arrived_on": "2020-11-01"})  # and back: the city has 252 members again
        assert gongdi(home, "send", "membership", "RecordArrival", back).returncode == 0

        # A second `up` or a `reset` on the running folder is refused at once (before, the second one took the
        # running servers for leftovers and killed them; a reset emptied the folder under them).
        for args, said in ((("up",), "平台已在运行"), (("reset",), "未清空")):
            other = gongdi(home, *args)
            assert other.returncode == 1 and said in other.stderr and f"PID {proc.pid}" in other.stderr, other.stderr
        assert gongdi(home, "view", "status").returncode == 0 and (home / "credentials.json").exists()

        # Identities: the passwords are the owner's alone; each township writes its own sites only.
        assert (home / "credentials.json").stat().st_mode & 0o777 == 0o600
        listed = gongdi(home, "users").stdout
        assert "township.diantou" in listed and "点头镇党委" in listed and "dashboard" in listed
        added = gongdi(home, "users", "add-secretary", "baolong", "tongshan")
        secretary = "site.tongshan.baolong"
        password = json.loads((home / "credentials.json").read_text())["nats"][secretary]
        assert f"登录名 {secretary}  密码 {password}" in added.stdout, added.stdout  # to hand over, not to look up
        headcount = json.dumps({"site_id": "baolong", "headcount": 1500, "as_of": "2020-09-01"})
        foreign = gongdi(home, "--as", "township.diantou", "send", "membership", "ReportWorkforce", headcount)
        assert foreign.returncode == 1 and "FORBIDDEN" in foreign.stdout and "OTHER_TOWNSHIP" in foreign.stdout
        own = gongdi(home, "--as", "township.tongshan", "send", "membership", "ReportWorkforce", headcount)
        assert own.returncode == 0, own.stdout
        # A secretary for a site of another township, or of no site, is refused: before, the mistyped one took the
        # real secretary's place and could read the site's members.
        wrong = gongdi(home, "users", "add-secretary", "shachengwan", "bailin")
        assert wrong.returncode == 2
        assert "工地 shachengwan 属于沙埕镇（shacheng），不属于白琳镇（bailin）" in wrong.stderr
        nowhere = gongdi(home, "users", "add-secretary", "no-such-site", "bailin")
        assert nowhere.returncode == 2 and "SITE_NOT_FOUND" in nowhere.stderr
        assert "site.bailin.shachengwan" not in gongdi(home, "users").stdout
        # A reading role is told so in its words, as over HTTP (before: the bus's subject and NATS_PERMISSION).
        audit = gongdi(home, "--as", "auditor", "send", "membership", "ReportWorkforce", headcount)
        assert audit.returncode == 1 and json.loads(audit.stdout)["error"]["field"] == "READ_ONLY_ROLE"
        assert "审计身份只能查看，不能记录" in audit.stdout
        names = gongdi(home, "--as", "dashboard", "view", "site", "baolong")
        assert names.returncode == 1 and "FORBIDDEN" in names.stderr
        assert "全市视图" in gongdi(home, "--as", "dashboard", "view", "city").stdout
        unknown = gongdi(home, "--as", "mayor", "view", "city")
        assert unknown.returncode != 0 and "mayor" in unknown.stderr

        # A wage dispute reported and resolved at a site, as the mediation station would record it.
        def wages() -> dict:
            return json.loads(gongdi(home, "view", "city", "--json").stdout)["liaison"]["disputes"]["wages"]

        before = wages()["resolved"]
        for name, body in (
            ("ReportDispute", {"site_id": "baolong", "case_id": "w-new", "kind": "wages", "reported_on": "2020-09-01",
                               "parties": ["劳务班组"], "amount_yuan": "5000", "description": "欠薪"}),
            ("StartMediation", {"site_id": "baolong", "case_id": "w-new", "mediator": "调解站",
                                "started_on": "2020-09-02"}),
            ("ResolveMediation", {"site_id": "baolong", "case_id": "w-new", "resolved_on": "2020-09-03",
                                  "outcome": "结清", "amount_settled_yuan": "5000"}),
        ):
            assert gongdi(home, "send", "liaison", name, json.dumps(body)).returncode == 0
        deadline = time.monotonic() + 30.0
        while wages()["resolved"] != before + 1:
            assert time.monotonic() < deadline, "the resolved dispute did not reach the city view"
        printed = gongdi(home, "view", "city").stdout
        assert "其中薪资纠纷上访 0 起" in printed
    finally:
        stop(proc)
    assert proc.returncode == 0

    # State is kept between runs, and seeding again writes nothing twice.
    again = start(home, "--seed")
    try:
        out = wait_for_line(again, "Ctrl-C")
        assert "新记录 0 条" in out and "252" in out and "党员责任区         60" in out
        # Stopped from another terminal, as one started in the background is (before: kill with its PID)
        stopped = subprocess.run([*GONGDI, "--home", str(home), "stop"], capture_output=True, text=True,
                                 env=_env(), timeout=150)
        assert stopped.returncode == 0 and "已停止" in stopped.stdout, (stopped.stdout, stopped.stderr)
        assert again.wait(10) == 0  # it had ended when `stop` said so
        assert "没有正在运行的平台" in gongdi(home, "stop").stdout
    finally:
        if again.poll() is None:
            stop(again)


def test_send_names_an_unknown_service_or_command_and_a_bad_body_at_once(tmp_path: Path):
    """No platform is running: what the contracts can tell is said before connecting, in Chinese, with what exists
    (before, an unknown name waited 30 s for a service that does not exist and blamed the platform)."""
    service = gongdi(tmp_path, "send", "nosvc", "X", "{}")
    assert service.returncode == 2 and "UNKNOWN_SERVICE" in service.stderr and "没有服务 nosvc" in service.stderr
    assert "membership、activities、liaison" in service.stderr and "平台暂不可用" not in service.stderr
    command = gongdi(tmp_path, "send", "membership", "NoSuchCmd", "{}")
    assert command.returncode == 2 and "服务 membership 没有命令 NoSuchCmd" in command.stderr
    assert "RecordArrival" in command.stderr and "平台暂不可用" not in command.stderr
    typo = gongdi(tmp_path, "send", "membership", "RecordArival", "{}")
    assert typo.returncode == 2 and "是否指 RecordArrival" in typo.stderr
    body = gongdi(tmp_path, "send", "membership", "RecordArrival", "{site_id: 1}")
    assert body.returncode == 2 and body.stderr.startswith("错误 BODY_NOT_JSON: 命令内容不是有效的 JSON"), body.stderr
    listed = gongdi(tmp_path, "send", "membership", "RecordArrival", "[1]")
    assert listed.returncode == 2 and "命令内容须为 JSON 对象" in listed.stderr


@pytest.mark.parametrize(("body", "said"), [
    ('{"site_id": "baolong", "headcount": 99999999999999999999999, "as_of": "2020-09-01"}', "超出 64 位的整数"),
    ('{"site_id": "baolong\\ud800", "headcount": 1, "as_of": "2020-09-01"}', "不成对"),
    ("[" * 5000 + "]" * 5000, "嵌套过深"),
])
def test_send_refuses_a_body_the_bus_cannot_carry_instead_of_crashing(tmp_path: Path, body: str, said: str):
    sent = gongdi(tmp_path, "send", "membership", "ReportWorkforce", body)
    assert sent.returncode == 2 and sent.stderr.startswith("错误 BODY_NOT_JSON") and said in sent.stderr, sent.stderr
    assert "Traceback" not in sent.stderr


def test_verify_report_and_view_refuse_bad_arguments_before_connecting(tmp_path: Path):
    """Before, each of these ended in a traceback or blamed the platform (`无法连接平台`)."""
    (tmp_path / "garbage.jsonl").write_text("garbage\n")
    (tmp_path / "a-file").write_text("")
    for args, said in [(("verify", "--heads", str(tmp_path / "none.jsonl")), "无法读取留存的日志头文件"),
                       (("verify", "--heads", str(tmp_path / "garbage.jsonl")), "不是 `gongdi verify --export-heads`"),
                       (("verify", "--schema", "views"), "invalid choice"),
                       (("report", "--year", "2030"), "年度应在 1922 至"),
                       (("report", "--year", "-1"), "年度应在 1922 至"),
                       (("report", "--year", "1921"), "年度应在 1922 至"),  # before: refused for an `as_of`
                       (("report", "--year", "2020", "--out", str(tmp_path / "a-file")), "--out 应为文件夹"),
                       (("view", "city", "--basis", "recorded"), "--basis 须与 --as-of 一起使用"),
                       (("view", "city", "extra"), "gongdi view city 不接受编号 extra"),
                       (("--as", "township.shacheng", "rebuild"), "不接受 --as"),
                       (("--as", "township.shacheng", "verify"), "不接受 --as")]:
        done = gongdi(tmp_path, *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and "无法连接平台" not in done.stderr, (args, done.stderr)


def _unreachable_env() -> dict[str, str]:
    """A user of a deployment whose NATS does not answer: a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {**_env(), "NATS_URL": f"nats://127.0.0.1:{port}", "GONGDI_NATS_USER": "city",
            "GONGDI_NATS_PASSWORD": "unused"}


SEND = ["send", "--wait", "7", "membership", "ReportWorkforce",
        json.dumps({"site_id": "baolong", "headcount": 1500, "as_of": "2020-09-01"})]


def test_up_on_a_port_that_is_taken_says_so_before_starting_anything(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([*GONGDI, "--home", str(tmp_path / "home"), "up"], capture_output=True, text=True,
                              env={**_env(), "GONGDI_HTTP_PORT": str(port)}, timeout=60)
    assert done.returncode == 1 and f"端口 {port} 已被占用" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 30
    assert not (tmp_path / "home" / "postgres").exists()  # nothing started


@pytest.mark.parametrize("port", ["abc", "99999", "-1"])
def test_up_on_a_port_that_is_no_port_says_so(tmp_path: Path, port: str):
    """Before: a ValueError or OverflowError traceback."""
    done = subprocess.run([*GONGDI, "--home", str(tmp_path / "home"), "up"], capture_output=True, text=True,
                          env={**_env(), "GONGDI_HTTP_PORT": port}, timeout=60)
    assert done.returncode == 1 and f"GONGDI_HTTP_PORT='{port}' 不是端口号" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_setup_without_its_servers_says_which_one_it_cannot_reach(tmp_path: Path):
    """Before, `gongdi setup` with no database running printed each service's traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**_unreachable_env(), "DATABASE_URL": f"postgresql://gongdi:x@127.0.0.1:{port}/gongdi"}
    done = subprocess.run([*GONGDI, "--home", str(tmp_path / "home"), "setup"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"membership: 无法连接 PostgreSQL（127.0.0.1:{port}）：连接被拒绝，服务器没有在运行" in done.stderr
    assert "由 `gongdi up` 启动" in done.stderr


def test_damaged_state_files_are_said_not_tracebacks(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "runtime.json").write_text('{"nats_url": "nats://127.0.0.1:')  # cut off mid-write
    (home / "credentials.json").write_text('{"nats": {"city": "x')
    env = _unreachable_env()
    done = subprocess.run([*GONGDI, "--home", str(home), "verify"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "runtime.json 已损坏" in done.stderr and "credentials.json 已损坏" in done.stderr, done.stderr


async def test_a_service_that_does_not_answer_in_time_is_not_said_unreachable(tmp_path: Path, servers: Servers):
    """nats' TimeoutError is an OSError too (Python 3.11): a service that took too long (its database frozen) was
    reported as `cannot reach NATS: timeout`."""
    async def take(_msg: object) -> None:  # takes the request, never answers
        return None

    silent = await nats.connect(servers.nats_url, user="views", password=servers.credentials.password("views"))
    try:
        await silent.subscribe("qry.views.city", cb=take)
        await silent.flush()
        env = {**_env(), "NATS_URL": servers.nats_url, "GONGDI_NATS_USER": "city",
               "GONGDI_NATS_PASSWORD": servers.credentials.password("city")}
        done = await asyncio.to_thread(subprocess.run, [*GONGDI, "--home", str(tmp_path), "view", "city"],
                                       capture_output=True, text=True, env=env, timeout=60)
    finally:
        await silent.close()
    assert done.returncode == 1 and "服务未在时限内应答" in done.stderr, done.stderr
    assert "cannot reach NATS" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_operators_commands_say_at_once_that_the_platform_is_not_running(tmp_path: Path):
    """Before, `gongdi verify` with the platform stopped retried the bus for ever (and printed its tracebacks)."""
    home = tmp_path / "home"
    home.mkdir()
    env = _unreachable_env()
    (home / "runtime.json").write_text(json.dumps({"nats_url": env["NATS_URL"],
                                                   "database_url": "postgresql://nobody@127.0.0.1:1/none"}))
    for args in (("verify",), ("rebuild",), ("repair-stream", "membership")):
        started = time.monotonic()
        done = subprocess.run([*GONGDI, "--home", str(home), *args], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 1 and done.stderr.startswith("无法连接平台：NATS 没有应答"), (args, done.stderr)
        assert "Traceback" not in done.stderr and time.monotonic() - started < 30, args


def test_send_to_an_unreachable_platform_writes_a_log_line_every_few_seconds_then_the_outcome(tmp_path: Path):
    """stderr to a log (not a terminal): before, one line per attempt, a second apart, 30 of them by default."""
    sent = subprocess.run([*GONGDI, "--home", str(tmp_path), *SEND], capture_output=True, text=True,
                          env=_unreachable_env(), timeout=60)
    assert sent.returncode == 1, sent.stderr
    lines = sent.stderr.splitlines()
    waiting = [line for line in lines if line.startswith("平台暂不可用")]
    assert 1 <= len(waiting) <= 2, sent.stderr  # at the first failure, then after 5 s; the wait is 7 s
    assert all("同一命令编号" in line for line in waiting) and "\r" not in sent.stderr
    assert lines[-2].startswith("已放弃：平台 ") and "command_id" in lines[-2], sent.stderr
    assert lines[-1].startswith("无法连接平台"), sent.stderr


def test_send_to_an_unreachable_platform_redraws_one_line_on_a_terminal(tmp_path: Path):
    main, side = pty.openpty()
    proc = subprocess.Popen([*GONGDI, "--home", str(tmp_path), *SEND[:2], "3", *SEND[3:]], stdout=subprocess.PIPE,
                            stderr=side, env=_unreachable_env())
    os.close(side)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal's other end closed: the command has exited
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait(30) == 1
    said = seen.decode()
    waiting, _, after = said.partition("已放弃：")
    assert waiting.count("\r平台暂不可用，正在重试：第 ") >= 1 and "\n" not in waiting, said
    outcome, _, explained = after.partition("\n")
    assert "command_id" in outcome and explained.startswith("无法连接平台"), said


def test_import_of_a_missing_file_says_the_file_does_not_exist(tmp_path: Path):
    env = _unreachable_env()

    def imported(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([*GONGDI, "--home", str(tmp_path), "import", "members", str(path)],
                              capture_output=True, text=True, env=env, timeout=30)

    missing = imported(tmp_path / "nonexist.csv")
    assert missing.returncode == 2 and "文件不存在" in missing.stderr, missing.stderr
    assert "超过" not in missing.stderr and "不是文件" not in missing.stderr
    folder = imported(tmp_path)
    assert folder.returncode == 2 and "不是文件" in folder.stderr and "文件不存在" not in folder.stderr, folder.stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_up_stops_everything_when_its_terminal_closes(tmp_path: Path):
    """Before, SIGHUP (the terminal closing) killed `up` at once and left both servers and every service running,
    with nobody watching; the next `up` failed on PostgreSQL's lock file."""
    home = tmp_path / "home"
    proc = start(home)
    try:
        wait_for_line(proc, "Ctrl-C")
        noted = [int(line.split()[0]) for line in (home / "logs" / "processes.pid").read_text().splitlines()]
        servers = [int((home / "nats" / "nats.pid").read_text().split()[0]),
                   int((home / "postgres" / "data" / "postmaster.pid").read_text().split()[0])]
        assert len(noted) >= 8 and all(map(_alive, noted + servers))
        proc.send_signal(signal.SIGHUP)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.returncode == 0 and "已停止 (stopped)" in out
    assert not [pid for pid in noted + servers if _alive(pid)]
    assert not (home / "logs" / "processes.pid").exists()


def test_up_ends_the_services_a_dead_supervisor_left_running(tmp_path: Path):
    """What kill -9 of `up` leaves: its services, noted with their start times; a noted pid now another process
    (another start time) is left alone."""
    logs = tmp_path / "home" / "logs"
    logs.mkdir(parents=True)
    left, other = (subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(2))
    try:
        started = Path(f"/proc/{left.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (logs / "processes.pid").write_text(f"{left.pid} {started}\n{other.pid} 1\n")
        with pytest.raises(subprocess.TimeoutExpired):  # still running, until `up` comes
            left.wait(0.1)
        proc = start(tmp_path / "home")
        try:
            assert "已结束上次未正常停止时遗留的 1 个平台进程" in wait_for_line(proc, "Ctrl-C")
        finally:
            stop(proc)
        assert left.wait(10) == -signal.SIGTERM
        assert other.poll() is None
    finally:
        for p in (left, other):
            p.kill()
            p.wait()


@pytest.mark.parametrize(("typed", "emptied"), [("home\n", True), ("yes\n", False), ("", False)])
def test_reset_on_a_terminal_asks_for_the_folders_name(tmp_path: Path, typed: str, emptied: bool):
    """Before, `gongdi reset` wiped the folder (passwords included) without a word, on a terminal too."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "credentials.json").write_text("{}")
    main, side = pty.openpty()
    proc = subprocess.Popen([*GONGDI, "--home", str(home), "reset"], stdin=side, stdout=side, stderr=side,
                            env=_env())
    os.close(side)
    os.write(main, typed.encode() or b"\x04")  # a name, another word, or end of input (Ctrl-D)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait(30) == (0 if emptied else 1), seen.decode()
    assert "确认请输入目录名 home" in seen.decode()
    assert (home / "credentials.json").exists() is not emptied
    scripted = subprocess.run([*GONGDI, "--home", str(home), "reset"], capture_output=True, text=True, env=_env(),
                              stdin=subprocess.DEVNULL, timeout=60)  # no terminal: not asked
    assert scripted.returncode == 0 and not (home / "credentials.json").exists()


def test_up_on_a_home_that_is_a_file_names_the_file_not_the_bus(tmp_path: Path):
    """Before: `无法连接平台 (cannot reach NATS: [Errno 17] File exists …)`, from `up` itself."""
    home = tmp_path / "afile"
    home.write_text("")
    done = subprocess.run([*GONGDI, "--home", str(home), "up"], capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 1 and f"无法使用 {home}" in done.stderr and "NATS" not in done.stderr, done.stderr
