"""The dashboard's vendored assets: a package not installed answers 404, never a 500 for every chart."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gongdi.service.settings import Settings
from services.gateway import pages
from services.gateway.sessions import Sessions


async def test_an_asset_of_a_package_not_installed_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "swagger-ui-dist").mkdir()
    (tmp_path / "swagger-ui-dist" / "package.json").write_text("{}")
    (tmp_path / "swagger-ui-dist" / "swagger-ui.css").write_text("body {}")
    monkeypatch.setattr(pages, "MODULES", tmp_path)  # echarts missing, as in a clone where npm ci did not run
    app = FastAPI()
    pages.build_pages(app, Sessions(Settings()), "{}", "<html></html>")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        assert (await client.get("/vendor/echarts/dist/echarts.min.js")).status_code == 404
        shown = await client.get("/vendor/swagger-ui-dist/swagger-ui.css")
    assert shown.status_code == 200 and shown.text == "body {}"
    assert pages.missing_assets() == ["echarts"]
