"""One spreadsheet cell as people really fill it in → the typed value a command wants, or a refusal naming the column.

Every function takes the raw cell (what openpyxl or the CSV reader gave: str, int, float, datetime, date, bool or
None) and the column's Chinese header, and either returns the value or raises `CellRefusal(code, message, column)`.
Messages say what was expected, never echo the value: the row sits next to them in the result file, and the
platform's messages never repeat what was sent (contracts.errors)."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

# ---- refusals -----------------------------------------------------------------------------------------------------

MISSING_VALUE = "MISSING_VALUE"
INVALID_DATE = "INVALID_DATE"
INVALID_NUMBER = "INVALID_NUMBER"
INVALID_CHOICE = "INVALID_CHOICE"
INVALID_ID = "INVALID_ID"
INVALID_TEXT = "INVALID_TEXT"
UNKNOWN_TOWNSHIP = "UNKNOWN_TOWNSHIP"
UNKNOWN_DEPARTMENT = "UNKNOWN_DEPARTMENT"
UNCOMPUTED_FORMULA = "UNCOMPUTED_FORMULA"


class CellRefusal(Exception):
    """A cell that cannot be understood: a machine `code`, what was expected in Chinese, and the column's header."""

    def __init__(self, code: str, message: str, column: str | None = None):
        super().__init__(f"{code} {column or ''}: {message}")
        self.code = code
        self.message = message
        self.column = column

    def text(self) -> str:
        return f"{self.column}：{self.message}" if self.column else self.message


# ---- text -------------------------------------------------------------------------------------------------------

# Full-width digits, letters and the ideographic space typed by a Chinese input method, folded to ASCII. Full-width
# brackets and punctuation inside names stay as written: 中交三航局（福建） is how the company spells itself.
_WIDTH = str.maketrans({**{chr(0xFF10 + i): chr(0x30 + i) for i in range(10)},
                        **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
                        **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
                        "\u3000": " ", "\u00a0": " ", "\t": " ", "\r": " ", "\n": " ",
                        "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None, "\ufeff": None})
_SPACES = re.compile(r" {2,}")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# 张　三 (a two-character name padded to line up with three-character ones): the space is layout, not the name.
_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}]) +(?=[{_CJK}])")


def computed(value: Any, column: str) -> Any:
    """The cell's value, or the refusal of a formula whose result the file does not hold (reading.Uncomputed)."""
    formula = getattr(value, "formula", None)
    if isinstance(formula, str):
        raise CellRefusal(UNCOMPUTED_FORMULA, f"是公式 {formula[:40]}，但文件里没有它的计算结果（文件由程序生成、"
                          "未经 Excel 或 WPS 保存）：请用 Excel 或 WPS 打开并保存一次后再导入", column)
    return value


def blank(value: Any) -> bool:
    """Nothing in the cell: None, or only spaces (full-width ones too)."""
    return value is None or (isinstance(value, str) and not value.translate(_WIDTH).strip())


def _plain(value: Any) -> str:
    """A cell as the text it shows: 1001 (a number cell) is "1001", not "1001.0"; a date cell is YYYY-MM-DD."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def clean(value: Any) -> str:
    """Text with full-width letters, digits and spaces folded, line breaks and runs of spaces made one space, the
    ends trimmed and spaces between Chinese characters dropped."""
    if value is None:
        return ""
    text = _plain(value).translate(_WIDTH)
    return _BETWEEN_CJK.sub("", _SPACES.sub(" ", text).strip())


def compact(value: Any) -> str:
    """For codes, dates and numbers: every compatibility form folded (NFKC: ２０２０ → 2020, ， → ,) and every space
    dropped."""
    return "".join(unicodedata.normalize("NFKC", clean(value)).split())


def text(value: Any, column: str, required: bool = True) -> str:
    """A name or a free text; blank is refused when `required` (length and characters are the contract's to check)."""
    if isinstance(value, dt.time):
        raise CellRefusal(INVALID_TEXT, "应为文字，不是时间", column)
    out = clean(value)
    if required and not out:
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    return out


# ---- ids ----------------------------------------------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # contracts.base.Slug


def ident(value: Any, column: str) -> str | None:
    """An id (工地编号, 党员编号): lower-cased, full-width folded; None when blank (the caller derives one)."""
    if blank(value):
        return None
    out = compact(value).lower()
    if not SLUG.match(out):
        raise CellRefusal(INVALID_ID, "编号只能用字母、数字、-、_，以字母或数字开头，最长 63 个字符", column)
    return out


def looks_like_id(value: Any) -> bool:
    """Whether a cell reads as an id rather than a name (工地编号 may hold the project's name instead)."""
    return not blank(value) and bool(SLUG.match(compact(value).lower()))


# ---- dates --------------------------------------------------------------------------------------------------------

_TIME = r"(?:(?: +|T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_YMD = re.compile(r"^(\d{4}) ?[-/.年] ?(\d{1,2}) ?[-/.月] ?(\d{1,2}) ?[日号]?" + _TIME + "$")
_COMPACT_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL_TEXT = re.compile(r"^\d{5}(?:\.\d+)?$")  # an Excel serial that came through a CSV as text
_EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 is 1900-01-01 once Excel's 29 February 1900 is allowed for
_SERIAL_MAX = 2_958_465  # 9999-12-31
DATE_FORMS = "2020-06-01、2020/6/1、2020.6.1、2020年6月1日 或 20200601"


def _serial(number: float, column: str) -> dt.date:
    if not 1 <= number <= _SERIAL_MAX:
        raise CellRefusal(INVALID_DATE, f"不是日期，应写作 {DATE_FORMS}", column)
    days = int(number)
    if days < 61:  # Excel counts a 29 February 1900 that never was
        days += 1
    return _EXCEL_EPOCH + dt.timedelta(days=days)


def day(value: Any, column: str) -> dt.date:
    """A day from a date cell, an Excel serial number, or text in the forms people write (see DATE_FORMS)."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, dt.time | bool):
        raise CellRefusal(INVALID_DATE, f"不是日期，应写作 {DATE_FORMS}", column)
    if isinstance(value, int | float | Decimal):
        whole = _number_cell(value, column)
        if whole is not None and whole == whole.to_integral_value() and 1000 <= whole <= 9999:
            raise CellRefusal(INVALID_DATE, f"只有年份，应写作完整日期，如 {DATE_FORMS}", column)
        if whole is not None and whole == whole.to_integral_value() and 10_000_000 <= whole <= 99_999_999:
            value = str(int(whole))  # 20200601 typed into a number cell
        else:
            return _serial(float(value), column)
    written = " ".join(unicodedata.normalize("NFKC", clean(value)).split())
    m = _YMD.match(written) or _COMPACT_DAY.match(written)
    if m is None:
        if _SERIAL_TEXT.match(written):
            return _serial(float(written), column)
        raise CellRefusal(INVALID_DATE, f"无法识别的日期，应写作 {DATE_FORMS}", column)
    year, month, d = (int(x) for x in m.groups())
    try:
        return dt.date(year, month, d)
    except ValueError:
        raise CellRefusal(INVALID_DATE, "不是有效的日期（月份或日期超出范围）", column) from None


# ---- numbers ------------------------------------------------------------------------------------------------------

_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# A cost written with its unit: the column is in 万元, so 万 needs nothing, 亿 is ten thousand of them.
_WAN_UNITS = (("亿元", Decimal(10_000)), ("亿", Decimal(10_000)), ("万元", Decimal(1)), ("万", Decimal(1)),
              ("元", Decimal("0.0001")))


def _decimal(written: str, column: str) -> Decimal:
    if "," in written:
        if not _GROUPED.match(written):
            raise CellRefusal(INVALID_NUMBER, "应为数字（千位分隔符位置不对）", column)
        written = written.replace(",", "")
    if not _DECIMAL.match(written):
        raise CellRefusal(INVALID_NUMBER, "应为数字", column)
    try:
        return Decimal(written)
    except InvalidOperation:
        raise CellRefusal(INVALID_NUMBER, "应为数字", column) from None


def _number_cell(value: Any, column: str) -> Decimal | None:
    """A number cell as a Decimal (a float by its shortest repr: 0.1 stays 0.1); None for text."""
    if isinstance(value, bool | dt.date | dt.time):
        raise CellRefusal(INVALID_NUMBER, "应为数字", column)
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CellRefusal(INVALID_NUMBER, "应为有限的数字", column)
        return Decimal(int(value)) if value.is_integer() else Decimal(repr(value))
    return None


def number(value: Any, column: str) -> Decimal:
    """A plain number: 9000, 9,000, ９０００, 9000.5."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    cell = _number_cell(value, column)
    return cell if cell is not None else _decimal(compact(value).removeprefix("¥"), column)


def amount_wan(value: Any, column: str) -> Decimal:
    """An amount in 万元: 9000, 9,000, 9000万元, 9000万, 0.9亿, 90,000,000元 all give 9000."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    cell = _number_cell(value, column)
    if cell is not None:
        return cell
    written = compact(value).removeprefix("¥").removeprefix("人民币")
    for unit, factor in _WAN_UNITS:
        if written.endswith(unit):
            amount = _decimal(written.removesuffix(unit), column) * factor
            # 0.9亿 is 9000, not 9000.0 nor 9E+3: the contract counts decimal places
            return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount.normalize()
    return _decimal(written, column)


def months(value: Any, column: str) -> int:
    """A duration in whole months: 30, 30个月, 30月, 2.5年, 3年."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    cell = _number_cell(value, column)
    if cell is None:
        written = compact(value)
        factor = Decimal(1)
        for unit, times in (("个月", 1), ("月", 1), ("年", 12)):
            if written.endswith(unit):
                written, factor = written.removesuffix(unit), Decimal(times)
                break
        cell = _decimal(written, column) * factor
    if cell != cell.to_integral_value():
        raise CellRefusal(INVALID_NUMBER, "应为整月数", column)
    return int(cell)


# ---- choices ------------------------------------------------------------------------------------------------------

E = TypeVar("E", bound=Enum)


def _key(value: Any) -> str:
    return compact(value).casefold()


def words(named: Mapping[E, str], also: Mapping[Any, tuple[str, ...]] | None = None) -> dict[str, E]:
    """The lookup for a coded column: each value's Chinese word (`named`), its other words (`also`) and the code
    itself, compared without spaces, full-width folded, case-insensitive."""
    out: dict[str, E] = {}
    for member, word in named.items():
        for w in (word, str(member.value), *((also or {}).get(member, ()))):
            out.setdefault(_key(w), member)
    return out


def choice(value: Any, column: str, lookup: Mapping[str, E], shown: Mapping[E, str]) -> E:
    """One of a coded column's values; `shown` gives the words a refusal lists."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    found = lookup.get(_key(value))
    if found is None:
        raise CellRefusal(INVALID_CHOICE, "应为以下之一：" + "、".join(shown.values()), column)
    return found


_YES = {"是", "是的", "有", "y", "yes", "true", "1", "√", "✓", "对"}
_NO = {"否", "不是", "无", "没有", "n", "no", "false", "0", "×", "✗", "不"}


def yes_no(value: Any, column: str) -> bool:
    """是/否 (and Y/N, yes/no, 1/0, √/×, a TRUE/FALSE cell)."""
    if isinstance(value, bool):
        return value
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    key = _key(value)
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise CellRefusal(INVALID_CHOICE, "应为 是 或 否", column)


# ---- the city's townships and departments ---------------------------------------------------------------------------

_TOWNSHIP_SUFFIXES = ("镇", "乡", "街道", "畲族乡", "镇人民政府", "乡人民政府", "街道办事处")


def township(value: Any, column: str, townships: Mapping[str, str], city_name: str = "") -> str:
    """A township's code, from its code or its Chinese name (白琳镇, 白琳, 福鼎市白琳镇, 白琳镇党委 all give bailin)."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    key = _key(value)
    if key in townships:
        return key
    if city_name:
        key = key.removeprefix(compact(city_name))
    key = key.removesuffix("党委")
    by_name = {_key(name): code for code, name in townships.items()}
    if key in by_name:
        return by_name[key]
    for suffix in _TOWNSHIP_SUFFIXES:
        if key + suffix in by_name:
            return by_name[key + suffix]
    examples = "、".join(f"{name} 或 {code}" for code, name in list(townships.items())[:2])
    raise CellRefusal(UNKNOWN_TOWNSHIP, f"不是本市的乡镇（填乡镇名称或代码，如 {examples}）", column)


def department(value: Any, column: str, departments: Mapping[str, str], city_name: str = "") -> str:
    """A competent department's name as the city file spells it, from its name, its code or 福鼎市交通运输局."""
    if blank(value):
        raise CellRefusal(MISSING_VALUE, "必填，不能为空", column)
    key = _key(value)
    if key in departments:
        return departments[key]
    if city_name:
        key = key.removeprefix(compact(city_name))
    for name in departments.values():
        if _key(name) == key:
            return name
    raise CellRefusal(UNKNOWN_DEPARTMENT, "应为本市的项目主管部门之一：" + "、".join(departments.values()), column)
