"""The query registry: every views query is declared once, implemented once, and printable by the CLI."""
from __future__ import annotations

import pytest

from contracts.identity import Identity, Role
from contracts.queries import QUERIES, SiteQuery
from gongdi.service.process import Request
from services.views.handlers import ViewQueries, implementations, query


def test_the_registry_names_the_views_queries():
    assert list(QUERIES) == ["city", "site", "township", "department", "birthdays", "talks", "records", "status"]
    assert {q.name: q.key for q in QUERIES.values()} == {
        "city": None, "site": "site_id", "township": "township", "department": "department", "birthdays": "site_id",
        "talks": "site_id", "records": "site_id", "status": None,
    }
    assert {q.name: q.reads for q in QUERIES.values()} == {
        "city": "city", "site": "site", "township": "township", "department": "department", "birthdays": "site",
        "talks": "site", "records": "site", "status": "city",
    }
    assert QUERIES["site"].subject == "qry.views.site"
    assert all(q.title for q in QUERIES.values())


def test_every_registered_query_has_an_implementation():
    assert implementations(ViewQueries).keys() == QUERIES.keys()


def test_a_missing_implementation_is_an_error():
    class Partial:
        @query(QUERIES["site"])
        async def site(self, params: SiteQuery) -> bytes:
            return b""

    with pytest.raises(TypeError, match="no implementation of query 'city'"):
        implementations(Partial)

CITY = Identity(Role.CITY)


async def test_bad_parameters_get_the_typed_error_before_any_database_access():
    views = ViewQueries(pool=None, schema="views", js=None, streams=[], city=None)  # type: ignore[arg-type]
    assert await views.site(Request(b'{"site_id": "Not A Slug"}', "qry.views.site", CITY)) == (
        '{"ok":false,"data":null,"error":{"code":"VALIDATION_FAILED","message":"site_id: 格式不对：只能用小写字母、'
        '数字、- 和 _，以字母或数字开头，最多 63 个字符 (String should have the expected form)","field":"site_id"}}'
    ).encode()
    department = await views.department(Request(b'{"department": "No Such"}', "qry.views.department", CITY))
    assert b'"code":"VALIDATION_FAILED"' in department and b'"field":"department"' in department
    reply = await views.city(Request(b'{"month": "2020-01"}', "qry.views.city", CITY))
    assert b'"code":"VALIDATION_FAILED"' in reply and b'"field":"month"' in reply
    anonymous = await views.site(Request(b'{"site_id": "x"}', "qry.views.site", None))
    assert b'"code":"FORBIDDEN"' in anonymous and b'NO_IDENTITY' in anonymous
    assert b'"code":"VALIDATION_FAILED"' in reply and b'"field":"month"' in reply


async def test_a_department_view_is_its_departments_and_the_citys_before_any_database_access():
    views = ViewQueries(pool=None, schema="views", js=None, streams=[], city=None)  # type: ignore[arg-type]
    body = b'{"department": "jiaotong"}'
    for who in (Identity(Role.DEPARTMENT, department="shuili"), Identity(Role.TOWNSHIP, township="diantou"),
                Identity(Role.SITE, township="diantou", site="x")):
        reply = await views.department(Request(body, "qry.views.department", who))
        assert b'"code":"FORBIDDEN"' in reply and b'"field":"NOT_YOURS"' in reply, who
