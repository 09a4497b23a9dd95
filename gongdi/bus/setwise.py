"""Set-based forms of one-row statements: a group of the same INSERT or UPDATE sent as one statement over the rows
as one JSON array, for the rebuild. PostgreSQL's cost per executed statement, not per row, dominated its writes;
and one JSON text, made by orjson and taken apart by the server, costs this process a tenth of encoding every
value in binary (the server, which waits on this process during a rebuild, does that work instead)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

_INSERT = re.compile(r"INSERT INTO (?P<table>[\w.]+) \((?P<cols>[^()]*)\) VALUES \((?P<vals>[^()]*)\)(?P<rest>.*)",
                     re.IGNORECASE)
_UPDATE = re.compile(r"UPDATE (?P<table>[\w.]+) SET (?P<sets>.*?) WHERE (?P<where>.*)", re.IGNORECASE)
_PARAM = re.compile(r"\$(\d+)(::\w+)?")
_ASSIGN = re.compile(r"(\w+) = \$(\d+)(::\w+)?")
_TYPE = re.compile(r"[a-z][a-z0-9_]*")  # a builtin scalar type name, as a cast spells it


@dataclass(frozen=True)
class SetForm:
    """`sql` takes one parameter, the rows as a JSON array of arrays (`argument`). `keys`
    (an update's row-picking parameters, 0-based) must differ between the rows: PostgreSQL updates a row at most
    once per statement, where the rows one after the other would each have updated it."""

    sql: str
    keys: tuple[int, ...] = ()
    # A plain insert of bare parameters goes in by binary COPY instead: (schema, table, columns, the parameter of each
    # column, 0-based). The server spent 5.5 µs a row on the JSON form, 3.9–4.3 µs on COPY, and this process less
    # (measured: 200,000 rows of `site_member` in batches of 5,000).
    copy: tuple[str, str, tuple[str, ...], tuple[int, ...]] | None = None

    def fits(self, rows: Sequence[Sequence[Any]]) -> bool:
        if not self.keys:
            return True
        picked = {tuple(row[k] for k in self.keys) for row in rows}
        return len(picked) == len(rows)

    async def copy_into(self, conn: Any, rows: Sequence[Sequence[Any]]) -> None:
        assert self.copy is not None
        schema, table, columns, order = self.copy
        records = rows if order == tuple(range(len(order))) else [tuple(row[i] for i in order) for row in rows]
        await conn.copy_records_to_table(table, schema_name=schema, columns=list(columns), records=records)

    @staticmethod
    def argument(rows: Sequence[Sequence[Any]]) -> str:
        """The rows as the statement's one parameter: dates, times and UUIDs as their ISO texts, decimals as text."""
        return orjson.dumps(rows, default=_text).decode()


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} has no JSON form here")


def set_form(sql: str, types: Sequence[str]) -> SetForm | None:
    """The set-based form of `sql` given its parameters' type names (builtin scalar types), or None when the
    statement is not one of the shapes known to keep their meaning over many rows at once:
    `INSERT INTO t (cols) VALUES ($i, …)` with nothing but parameters (and casts) as values and no
    `ON CONFLICT … DO UPDATE` or `RETURNING`; `UPDATE t SET c = $i, … WHERE k = $j AND …` with nothing but
    parameters on the right."""
    if not types or any(not _TYPE.fullmatch(t) for t in types):
        return None
    text = " ".join(sql.split())
    fields = ", ".join(f"(r->>{n - 1})::{t} AS p{n}" for n, t in enumerate(types, 1))
    source = f"(SELECT {fields} FROM jsonb_array_elements($1::jsonb) AS r) AS a"
    if m := _INSERT.fullmatch(text):
        rest = m["rest"].upper()
        if "DO UPDATE" in rest or "RETURNING" in rest:
            return None
        values, bare = [], []
        for item in m["vals"].split(","):
            p = _PARAM.fullmatch(item.strip())
            if p is None:
                return None
            values.append(f"a.p{p[1]}{p[2] or ''}")
            bare.append(None if p[2] else int(p[1]) - 1)
        columns = tuple(c.strip() for c in m["cols"].split(","))
        copy = None
        if not m["rest"].strip() and "." in m["table"] and None not in bare and len(bare) == len(columns):
            schema, table = m["table"].split(".", 1)
            copy = (schema, table, columns, tuple(i for i in bare if i is not None))
        return SetForm(f"INSERT INTO {m['table']} ({m['cols']}) SELECT {', '.join(values)} FROM {source}{m['rest']}",
                       copy=copy)
    if m := _UPDATE.fullmatch(text):
        sets, keys = [], []
        for item in m["sets"].split(","):
            a = _ASSIGN.fullmatch(item.strip())
            if a is None:
                return None
            sets.append(f"{a[1]} = a.p{a[2]}{a[3] or ''}")
        where = []
        for item in re.split(r" AND ", m["where"], flags=re.IGNORECASE):
            a = _ASSIGN.fullmatch(item.strip())
            if a is None:
                return None
            where.append(f"t.{a[1]} = a.p{a[2]}{a[3] or ''}")
            keys.append(int(a[2]) - 1)
        return SetForm(f"UPDATE {m['table']} AS t SET {', '.join(sets)} FROM {source} WHERE {' AND '.join(where)}",
                       tuple(keys))
    return None
