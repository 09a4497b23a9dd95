"""Set-based forms of the rebuild's one-row statements: which shapes have one, and what it says."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson

from gongdi.bus.setwise import SetForm, set_form


def test_an_insert_of_parameters_reads_every_row_from_one_json_array():
    form = set_form("INSERT INTO v.site_member (site_id, member_id, doc)\n   VALUES ($1, $2, $3::jsonb)"
                    " ON CONFLICT DO NOTHING", ["text", "text", "jsonb"])
    assert form is not None and form.keys == ()
    assert form.sql == (
        "INSERT INTO v.site_member (site_id, member_id, doc) SELECT a.p1, a.p2, a.p3::jsonb FROM"
        " (SELECT (r->>0)::text AS p1, (r->>1)::text AS p2, (r->>2)::jsonb AS p3"
        " FROM jsonb_array_elements($1::jsonb) AS r) AS a ON CONFLICT DO NOTHING")


def test_an_update_of_parameters_by_key_names_its_key():
    form = set_form("UPDATE v.site SET workforce = $2, last_position = $3 WHERE site_id = $1",
                    ["text", "int4", "int8"])
    assert form is not None and form.keys == (0,)
    assert form.sql.startswith("UPDATE v.site AS t SET workforce = a.p2, last_position = a.p3 FROM (SELECT")
    assert form.sql.endswith("AS a WHERE t.site_id = a.p1")


def test_shapes_whose_meaning_would_change_have_none():
    assert set_form("INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a", ["text"]) is None
    assert set_form("INSERT INTO t (a) VALUES ($1) RETURNING a", ["text"]) is None
    assert set_form("INSERT INTO t (a, b) VALUES ($1, now())", ["text"]) is None
    assert set_form("UPDATE t SET n = n + $2 WHERE k = $1", ["text", "int4"]) is None
    assert set_form("UPDATE t SET n = $2 WHERE k = $1 OR j = $1", ["text", "int4"]) is None
    assert set_form("DELETE FROM t WHERE k = $1", ["text"]) is None
    assert set_form("WITH x AS (DELETE FROM t WHERE k = $1) INSERT INTO u (k) VALUES ($1)", ["text"]) is None
    assert set_form("INSERT INTO t (a) VALUES ($1)", ["_text"]) is None  # an array parameter
    assert set_form("INSERT INTO t (a) VALUES ($1)", [""]) is None  # a type from outside pg_catalog


def test_an_update_fits_rows_with_distinct_keys_only():
    form = SetForm("UPDATE …", keys=(0,))
    assert form.fits([("a", 1), ("b", 1)])
    assert not form.fits([("a", 1), ("a", 2)])  # a row updated twice in one statement: only one would count
    assert SetForm("INSERT …").fits([("a",), ("a",)])


def test_the_argument_carries_dates_times_decimals_and_nulls_as_text():
    at = dt.datetime(2020, 9, 1, 8, 30, tzinfo=dt.UTC)
    rows = [("s", dt.date(2020, 9, 1), at, Decimal("9000.50"), None, 3, True)]
    assert orjson.loads(SetForm.argument(rows)) == [
        ["s", "2020-09-01", "2020-09-01T08:30:00+00:00", "9000.50", None, 3, True]]


def test_a_plain_insert_of_bare_parameters_goes_in_by_copy_with_its_columns_in_order():
    form = set_form("INSERT INTO v.site_member (member_id, site_id, n) VALUES ($2, $1, $3)", ["text", "text", "int4"])
    assert form is not None and form.copy == ("v", "site_member", ("member_id", "site_id", "n"), (1, 0, 2))
    # Not with a conflict clause, a cast (the column may not be of the cast's type) or an unqualified table.
    assert set_form("INSERT INTO v.t (a) VALUES ($1) ON CONFLICT DO NOTHING", ["text"]).copy is None
    assert set_form("INSERT INTO v.t (a, d) VALUES ($1, $2::jsonb)", ["text", "jsonb"]).copy is None
    assert set_form("INSERT INTO t (a) VALUES ($1)", ["text"]).copy is None
    assert set_form("UPDATE v.site SET workforce = $2 WHERE site_id = $1", ["text", "int4"]).copy is None
