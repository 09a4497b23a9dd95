"""`python -m services.liaison [serve|relay|setup]`."""
from __future__ import annotations

import asyncio
import sys

from contracts.liaison import SERVICE
from gongdi.service import run_relay, run_until_signalled
from gongdi.settings import Settings
from services.liaison.app import build_app, setup
from services.liaison.repository import SCHEMA


def main(argv: list[str]) -> None:
    settings = Settings.from_env()
    what = argv[0] if argv else "serve"
    if what == "serve":
        asyncio.run(build_app(settings).run())
    elif what == "relay":
        run_until_signalled(lambda stop: run_relay(settings, SERVICE, SCHEMA, stop))
    elif what == "setup":
        for line in asyncio.run(setup(settings)):
            print(line)
    else:
        sys.exit(f"usage: python -m services.liaison [serve|relay|setup], not {what!r}")


main(sys.argv[1:])
