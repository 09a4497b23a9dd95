"""A part's process of a split rebuild (`gongdi.bus.parts`): one part read, checked and projected into the shadow."""
from __future__ import annotations

import asyncio
import os
import pickle
import sys
from typing import Any, TextIO

import asyncpg

from gongdi.bus.hashcheck import end_with_parent
from gongdi.bus.parts import READER_SETTINGS, Part
from gongdi.bus.shadow import ShadowRebuild


async def rebuild_part(request: dict[str, Any], out: TextIO) -> None:
    part: Part = request["part"]
    pool = await asyncpg.create_pool(request["dsn"], min_size=2, max_size=3)
    reader = await asyncpg.connect(request["dsn"], server_settings=READER_SETTINGS)
    try:
        # One process per part: a process left by a killed rebuild (where its parent's death does not end it) is
        # waited for, so that two never write the same part.
        await reader.execute("SELECT pg_advisory_lock(hashtext($1))",
                             f"gongdi-rebuild-{request['shadow']}-{part.stream}-{part.part}")
        rebuild: ShadowRebuild

        def report(done: int, _total: int) -> None:
            out.write(f"{done} {rebuild.outcome.applied} {rebuild.outcome.dead_letters}\n")
            out.flush()

        rebuild = ShadowRebuild(pool, request["live"], request["durable"], request["version"], (),
                                [request["feed"]], batch=request["batch"], progress=report,
                                shadow=request["shadow"], part=part, reader=reader)
        await rebuild.run_part()
        report(rebuild.done, 0)
    finally:
        await reader.close()
        await pool.close()


def main() -> None:
    request = pickle.loads(sys.stdin.buffer.read())  # from the rebuild that started this process, on a pipe
    end_with_parent(request["parent"])
    # The counts go on the pipe the rebuild reads; anything else written to standard output (a log line) goes
    # where the rebuild's own errors go.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(rebuild_part(request, out))


if __name__ == "__main__":
    main()
