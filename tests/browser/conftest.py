"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download), against the
whole platform with the demo city seeded once per module, as `gongdi up --seed` does (each township's identity
writing its sites, the city committee reading). Screenshots go to the run's temporary folder."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gongdi.demo.seeder import seed_as_townships
from tests.conftest import Servers
from tests.integration.gateway import Gateway, running_gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
# The demo's site branch secretary (what `gongdi up --seed` adds), so the record form is tried by its user.
DEMO_SITE, DEMO_TOWNSHIP = "shachengwan", "shacheng"


def _install_chromium() -> str | None:
    """Debian's chromium and CJK fonts from apt, as root; None when that is not possible here."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get: install Debian's chromium (apt-get install chromium fonts-noto-cjk)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "fonts-noto-cjk"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr[-500:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium, installed with apt when missing (skips with the reason if it cannot be)."""
    if shutil.which("chromium") is None:
        problem = _install_chromium()
        if problem or shutil.which("chromium") is None:
            pytest.skip(f"no chromium for the browser tests: {problem or 'still missing after apt-get install'}")
    return shutil.which("chromium") or CHROMIUM


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: kept with the run's other temporary files (pytest keeps the last few runs)."""
    return tmp_path_factory.mktemp("screenshots")


def _caught_up(gateway: Gateway) -> bool:
    health = httpx.get(f"{gateway.url}/health", timeout=10).json()
    return bool(health.get("ok")) and health.get("lag") == 0 and health.get("dead_letters") == 0


@pytest.fixture(scope="module")
def demo(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The platform and its gateway with the demo city, seeded through the ordinary commands, caught up."""
    with running_gateway(servers, tmp_path_factory.mktemp("demo")) as gateway:
        started = time.monotonic()
        counts = asyncio.run(seed_as_townships(gateway.settings, servers.credentials.password))
        assert counts["recorded"] > 0, counts
        secretary = servers.add_secretary(DEMO_SITE, DEMO_TOWNSHIP)
        deadline = time.monotonic() + 60
        while not _caught_up(gateway) or gateway.login(secretary).status_code != 200:
            assert time.monotonic() < deadline, "the demo did not settle within 60 s"
            time.sleep(0.2)
        print(f"\ndemo seeded: {counts['recorded']} commands in {time.monotonic() - started:.1f}s")
        yield gateway


@contextlib.contextmanager
def launched(chromium: str) -> Iterator[object]:
    """Debian's chromium under Playwright, closed afterwards. Start it after the platform is up: Playwright's sync
    API keeps its own event loop while open."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser(chromium: str, demo: Gateway) -> Iterator[object]:
    """One chromium per module, on the seeded demo."""
    with launched(chromium) as b:
        yield b
