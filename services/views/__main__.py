"""`python -m services.views [serve|setup|rebuild SCHEMA]`."""
from __future__ import annotations

import asyncio
import sys

from gongdi.service.settings import Settings
from services.views.app import build_app, run_rebuild, setup


def main(argv: list[str]) -> None:
    settings = Settings.from_env()
    what = argv[0] if argv else "serve"
    if what == "serve":
        asyncio.run(build_app(settings).run())
    elif what == "setup":
        for line in asyncio.run(setup(settings)):
            print(line)
    elif what == "rebuild":
        run_rebuild(settings, argv[1] if len(argv) > 1 else "views_rebuild")
    else:
        sys.exit(f"usage: python -m services.views [serve|setup|rebuild SCHEMA], not {what!r}")


main(sys.argv[1:])
