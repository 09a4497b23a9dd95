"""Asks the views what the yearly report needs: the city, every township and every department of the city file."""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from contracts.city import City
from contracts.queries import QUERIES
from contracts.queries import SERVICE as VIEWS
from contracts.timeline import city_today
from gongdi.ops.client import GongdiClient
from gongdi.report.model import Views

# "business": what was true at the year's end by the facts' own dates (a member who arrived on 2020-12-30 counts,
# even if recorded in January); "recorded" would be what the platform showed on that day.
AS_OF_BASIS = "business"
ATTEMPTS = 3
IN_FLIGHT = 2  # queries at once: the views build two as-of answers at a time, each replaying the log


class ReportError(Exception):
    """A view refused or failed to answer: its code and message, as the service gave them."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def as_of_params(model: type[BaseModel], year: int) -> dict[str, str]:
    """What a query with parameter model `model` is asked with: the view as of the year's last day, when the
    contract takes `as_of` (and `as_of_basis`); otherwise nothing, and the report says it shows the views as they
    are now."""
    fields = model.model_fields
    if "as_of" not in fields:
        return {}
    # A year not yet over is reported up to today (the city's): before, the current year's report said it showed
    # the views as of a 31 December still to come.
    today = city_today()
    params = {"as_of": min(dt.date(year, 12, 31), today).isoformat()}
    if "as_of_basis" in fields:
        params["as_of_basis"] = AS_OF_BASIS
    return params


async def _ask(client: GongdiClient, limit: asyncio.Semaphore, name: str, year: int, **key: str
               ) -> dict[str, Any] | None:
    async with limit:
        reply = await client.query(VIEWS, name, {**key, **as_of_params(QUERIES[name].params, year)})
    if reply.get("ok"):
        return reply["data"]
    error = reply.get("error") or {}
    if error.get("code") == "TOWNSHIP_NOT_FOUND":  # a township without any site: a row of zeros
        return None
    raise ReportError(error.get("code", "UNKNOWN"), error.get("message", ""))


def _seq(view: dict[str, Any]) -> Any:
    return (view.get("snapshot") or {}).get("seq")


async def gather(client: GongdiClient, city: City, year: int) -> Views:
    """Every view the report reads, as of the year's end and as of the year before's: what happened during the year
    (talks held, disputes received, …) is the difference, while what stands (projects, members, …) is at the
    year's end. Without as-of views there is no earlier one."""
    views = await _gather(client, city, year)
    if views.params:
        return replace(views, earlier=await _gather(client, city, year - 1))
    return views


async def _gather(client: GongdiClient, city: City, year: int) -> Views:
    """Each answer is its own snapshot; while the platform records, the city is asked again at the end and
    everything once more if it moved, so the tables add up to the city's figures."""
    limit = asyncio.Semaphore(IN_FLIGHT)
    for _ in range(ATTEMPTS):
        first = await _ask(client, limit, "city", year)
        assert first is not None
        # Asked together: an as-of view replays the log for each, and the views answer several at once.
        answers = await asyncio.gather(
            *(_ask(client, limit, "township", year, township=code) for code in city.townships),
            *(_ask(client, limit, "department", year, department=code) for code in city.departments))
        townships = dict(zip(city.townships, answers[:len(city.townships)], strict=True))
        departments = dict(zip(city.departments, answers[len(city.townships):], strict=True))
        last = await _ask(client, limit, "city", year)
        assert last is not None
        if _seq(first) == _seq(last):
            break
    return Views(city=last, townships=townships,
                 departments={code: view or {} for code, view in departments.items()},
                 params=as_of_params(QUERIES["city"].params, year))
