"""The command line's help as its users read it (`gongdi … -h`, no platform needed): every command, positional and
option described in Chinese first, argparse's own words in Chinese, lines that fit an 80-column terminal, help
aligned by the columns Chinese takes, and examples kept."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from functools import cache

import pytest

COMMANDS = ["up", "stop", "setup", "seed", "reset", "view", "export", "history", "report", "send", "import", "users",
            "deadletters", "repair-stream", "rebuild", "verify"]
# Every subcommand that takes more than its name shows how it is used.
WITH_EXAMPLES = set(COMMANDS) - {"setup", "seed", "reset"}
CJK = re.compile("[\u4e00-\u9fff]")
ENTRY = re.compile(r"(?P<indent> {2,4})(?P<invocation>\S+(?: \S+)*?)(?: {2,}(?P<help>\S.*))?$")


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@cache
def helps() -> dict[str, str]:
    """Each command's `-h`, as printed on an 80-column terminal; asked all at once."""
    env = {**os.environ, "COLUMNS": "80"}
    running = {name: subprocess.Popen([sys.executable, "-m", "gongdi", *([name] if name != "gongdi" else []), "-h"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for name in ["gongdi", *COMMANDS]}
    out = {}
    for name, proc in running.items():
        text, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (name, err)
        out[name] = text
    return out


def entries(text: str) -> dict[str, str]:
    """The positionals and options a help lists, each with its help text (which may start on the next line)."""
    found: dict[str, str] = {}
    lines = text.split("\n\n")
    for block in lines:
        head, *rows = block.splitlines()
        if not head.startswith(("参数 (arguments):", "选项 (options):", "命令 (commands):")):
            continue
        current = None
        for row in rows:
            entry = ENTRY.match(row)
            if entry and len(row) - len(row.lstrip()) == len(entry["indent"]) and not row.startswith(" " * 6):
                current = entry["invocation"]
                found[current] = entry["help"] or ""
            elif current is not None:
                found[current] = (found[current] + " " + row.strip()).strip()
    return found


def chinese_first(text: str) -> bool:
    """Chinese within the first words: `xlsx：Excel 工作簿…` and `list 列出…` are, `the file to write` is not."""
    return bool(CJK.search(text[:14]))


@pytest.mark.parametrize("name", ["gongdi", *COMMANDS])
def test_every_positional_and_option_is_described_in_chinese(name: str):
    """Before, `gongdi report --year` and the positionals of `users` and `send` had no help at all, and most of the
    rest was English only (`start NATS, Postgres and every service`)."""
    listed = entries(helps()[name])
    assert "-h, --help" in listed, listed
    if name == "gongdi":
        assert set(COMMANDS) <= set(listed), listed
        listed.pop("命令")  # the heading of the commands, each listed under it
    undescribed = {entry: said for entry, said in listed.items() if not chinese_first(said)}
    assert not undescribed, (name, undescribed)
    # The ones that had no help at all are there (they show under their Chinese names).
    assert {"report": {"--year 年度", "--out 文件夹"}, "users": {"操作", "工地编号", "乡镇代码"},
            "send": {"服务", "命令", "内容", "--wait 秒"}}.get(name, set()) <= set(listed), listed


@pytest.mark.parametrize("name", ["gongdi", *COMMANDS])
def test_the_help_is_in_chinese_fits_the_terminal_and_keeps_its_examples(name: str):
    text = helps()[name]
    assert text.startswith(f"用法: gongdi{'' if name == 'gongdi' else ' ' + name}") and "选项 (options):" in text
    for english in ("usage:", "positional arguments", "options:", "show this help message"):
        assert english not in text, (name, english)
    description = text.split("\n\n")[1]
    assert CJK.match(description), (name, description)
    for line in text.splitlines():
        if line.startswith(("  gongdi", "  # ")):  # an example is kept whole, to be copied
            continue
        assert width(line) <= 80, (name, line)
    if name in WITH_EXAMPLES or name == "gongdi":
        assert "示例 (examples):\n" in text and "\n  gongdi " in text, name
    # `--as 身份` puts its help in the column of -h's, by the columns Chinese takes (argparse counts characters).
    column = {width(line[:line.index("显示本帮助")]) for line in text.splitlines() if "显示本帮助" in line}
    for line in text.splitlines():
        entry = ENTRY.match(line)
        if entry and entry["help"] and line.startswith("  -") and CJK.search(entry["invocation"]):
            assert {width(line[:line.index(entry["help"])])} == column, (name, line)


def test_the_examples_people_know_are_kept():
    h = helps()
    assert "gongdi send membership RecordArrival '{...}'" in h["gongdi"] + h["send"]
    assert "gongdi up --seed" in h["gongdi"] and "gongdi --as township.diantou view township diantou" in h["gongdi"]
    assert "gongdi users add-secretary shachengwan shacheng" in h["users"]
    assert "gongdi report --year 2020" in h["report"]


def test_a_mistyped_command_line_is_explained_in_chinese():
    said = subprocess.run([sys.executable, "-m", "gongdi", "report"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "80"})
    assert said.returncode == 2
    assert said.stderr.startswith("用法: gongdi report"), said.stderr
    assert "gongdi report: 错误: 缺少必填的参数：--year" in said.stderr and "`gongdi report -h`" in said.stderr
