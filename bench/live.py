"""Live latency: from a command sent over HTTP to the pushed snapshot that shows it (what a dashboard page gets)."""
from __future__ import annotations

import asyncio
import time

import httpx
import orjson

from gongdi.demo import samples as f


async def _snapshots(client: httpx.AsyncClient, url: str, seen: asyncio.Queue) -> None:
    async with client.stream("GET", url, timeout=None) as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "snapshot":
                data = orjson.loads(line[6:])["data"]
                await seen.put((time.perf_counter(), data))


async def live_latency(base: str, password: str, n: int, site_id: str = "live-bench") -> dict:
    """`n` arrivals, one at a time, each POSTed and then awaited on the city's SSE stream; returns the seconds
    from the POST to the command's reply (`reply`) and to the first snapshot counting the arrival (`pushed`)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post("/api/login", json={"user": "city", "password": password})
        login.raise_for_status()
        body = f.register(site_id).model_dump(mode="json")
        assert (await client.post("/api/commands/membership/RegisterSite", json=body)).json()["ok"]
        seen: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(_snapshots(client, "/api/live?view=city", seen))
        _, first = await asyncio.wait_for(seen.get(), 30)
        members = first["members"]
        reply, pushed = [], []
        try:
            for i in range(n):
                command = f.arrive(site_id, f"live{i}").model_dump(mode="json")
                t0 = time.perf_counter()
                answer = await client.post("/api/commands/membership/RecordArrival", json=command)
                t1 = time.perf_counter()
                assert answer.json()["ok"], answer.text
                members += 1
                while True:
                    at, data = await asyncio.wait_for(seen.get(), 30)
                    if data["members"] >= members:
                        break
                reply.append(t1 - t0)
                pushed.append(at - t0)
        finally:
            reader.cancel()
    return {"reply": reply, "pushed": pushed}
