"""The city an installation serves, read from its configuration file: code, name, townships, departments."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Name, Slug

# The default configuration shipped with the platform; GONGDI_CITY_FILE names another.
DEFAULT_CITY_FILE = Path(__file__).resolve().parents[1] / "deploy" / "city.yaml"


class City(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: Slug
    name: Name
    townships: Annotated[dict[Slug, Name], Field(min_length=1)]
    departments: Annotated[dict[Slug, Name], Field(min_length=1)]  # code (identities, subjects) → name

    def department_code(self, name: str) -> str | None:
        return next((code for code, n in self.departments.items() if n == name), None)

    def township_name(self, code: str) -> str:
        return self.townships.get(code, code)


def load_city(path: str | Path) -> City:
    """Read and check a city file; a broken one stops the process with the file and the field at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"city file {path}: {exc}") from exc
    try:
        return City.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"city file {path}: {exc}") from exc
