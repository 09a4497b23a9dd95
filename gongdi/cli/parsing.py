"""The command line's parser in Chinese: argparse's own words (用法, 参数, 选项, -h, errors) for its users, city and
township staff, help wrapped and aligned by the columns Chinese characters take on a terminal, and examples."""
from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from typing import Any, NoReturn

# Chinese punctuation that may not begin a line (it stays with the character before it), or end one.
CLOSING = set("，。、；：！？）》」』】”’")
OPENING = set("（《「『【“‘")
# A Chinese character (breakable anywhere), or a run of anything else without spaces, or spaces.
TOKENS = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]|[^\s\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+|\s+")
# argparse's own error messages (Python 3.11) in Chinese; the English follows, as the rest of the help does.
ERRORS = [
    (re.compile(r"the following arguments are required: (.+)"), "缺少必填的参数：{0}"),
    (re.compile(r"argument (\S+): invalid choice: (.+?) \(choose from (.+)\)"), "参数 {0} 不接受 {1}；可选：{2}"),
    (re.compile(r"argument (\S+): invalid (\w+) value: (.+)"), "参数 {0} 的值 {2} 不是有效的 {1}"),
    (re.compile(r"argument (\S+): expected one argument"), "参数 {0} 后面需要一个值"),
    (re.compile(r"unrecognized arguments: (.+)"), "无法识别的参数：{0}"),
]


def width(text: str) -> int:
    """The columns a text takes on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most `columns` terminal columns: between words, and between any two Chinese characters (never
    before closing punctuation), as Chinese text has no spaces for textwrap to break at."""
    lines: list[str] = []
    line = ""
    for token in TOKENS.findall(" ".join(text.split())):
        if token.isspace():
            token = " "
        if line and width(line) + width(token) > columns and not token.isspace() and token not in CLOSING:
            carried = line[-1] if line[-1] in OPENING and len(line) > 1 else ""
            lines.append(line[:len(line) - len(carried)].rstrip())
            line = carried
        if not (token.isspace() and not line):
            line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout with a Chinese usage line, help wrapped and aligned by terminal columns; descriptions and
    examples keep their own line breaks."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "用法: " if prefix is None else prefix)

    def _format_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any) -> str:
        # argparse wraps the usage by len(): narrowed by what Chinese takes beyond it, until every line fits.
        columns = self._width
        try:
            for _ in range(4):
                text = super()._format_usage(usage, actions, groups, prefix)
                over = max(width(line) for line in text.splitlines()) - columns
                if over <= 0:
                    break
                self._width -= over
        finally:
            self._width = columns
        return text

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # Descriptions are wrapped by terminal columns; indented lines (the examples) are kept as written.
        return "\n".join(line if not line.strip() or line.startswith(" ")
                         else "\n".join(indent + part for part in wrap(line, width - len(indent)))
                         for line in text.splitlines())

    def _format_action(self, action: argparse.Action) -> str:
        # argparse pads the option (`--as 身份`) to the help column by len(): each Chinese character in it would push
        # the help one column too far right. The padding is given back where the help shares its line, and the help
        # goes to the next line where there is too little to give back.
        indent = self._current_indent
        text = super()._format_action(action)
        invocation = " " * indent + self._format_action_invocation(action)
        extra = width(invocation) - len(invocation)
        first, newline, rest = text.partition("\n")
        if not extra or not first.startswith(invocation) or first == invocation:
            return text
        helped = first[len(invocation):]
        if helped.startswith(" " * (extra + 2)):
            first = invocation + helped[extra:]
        else:
            column = min(self._action_max_length + 2, self._max_help_position)
            first = f"{invocation}\n{' ' * column}{helped.lstrip()}"
        return first + newline + rest


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that says its headings, its -h and its errors in Chinese. `add_parser` makes subcommands of
    this same class, so every subcommand's help is in Chinese too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        # argparse has no public way to name these two groups; their titles are plain attributes of the groups.
        self._positionals.title = "参数 (arguments)"
        self._optionals.title = "选项 (options)"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help="显示本帮助并退出 (show this help)")

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: 错误: {chinese_error(message)}\n（`{self.prog} -h` 查看说明）\n")


def chinese_error(message: str) -> str:
    """argparse's message in Chinese, with the English after it; a message not known here as it is."""
    for pattern, said in ERRORS:
        found = pattern.fullmatch(message)
        if found:
            return f"{said.format(*found.groups())} ({message})"
    return message


def examples(*lines: tuple[str, str]) -> str:
    """An epilog of examples, each command with what it does: side by side when they fit a terminal, else what it
    does above the command."""
    command_width = max(width(command) for command, _ in lines)
    if command_width + max(width(what) for _, what in lines) <= 90:
        return "示例 (examples):\n" + "\n".join(
            f"  {command}{' ' * (command_width - width(command))}  # {what}" for command, what in lines)
    return "示例 (examples):\n" + "\n".join(f"  # {what}\n  {command}" for command, what in lines)
