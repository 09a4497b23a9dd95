"""The views queries as wire contract: each query's name, parameter model and title, declared once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from contracts.base import Slug
from contracts.subjects import query_subject

SERVICE = "views"


class NoParams(BaseModel):
    """A query that takes nothing; any field sent is a VALIDATION_FAILED."""

    model_config = ConfigDict(extra="forbid")


class SiteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: Slug


class TownshipQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township: Slug


class BirthdayQuery(SiteQuery):
    month: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] | None = None  # YYYY-MM


@dataclass(frozen=True)
class Query:
    """One query of the views service: request `params` as JSON on `subject`, get `{"ok": ..., "data"|"error"}`."""

    name: str
    params: type[BaseModel]
    title: str
    reads: str = "city"  # whose data it shows, for the rights check: "city" (anyone), "township" or "site"

    @property
    def subject(self) -> str:
        return query_subject(SERVICE, self.name)

    @property
    def key(self) -> str | None:
        """The required parameter naming what is viewed (`site_id`, `township`), or None for city-wide queries."""
        required = [name for name, field in self.params.model_fields.items() if field.is_required()]
        if len(required) > 1:
            raise TypeError(f"query {self.name} has more than one required parameter: {required}")
        return required[0] if required else None


QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        Query("city", NoParams, "全市视图"),
        Query("site", SiteQuery, "工地视图", reads="site"),
        Query("township", TownshipQuery, "乡镇视图", reads="township"),
        Query("birthdays", BirthdayQuery, "政治生日", reads="site"),
        Query("talks", SiteQuery, "待谈话", reads="site"),
        Query("status", NoParams, "视图进度"),
    )
}
