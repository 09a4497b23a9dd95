"""Every request gets a typed answer, whatever it carries; a request that fails writes nothing."""
from __future__ import annotations

import json

import asyncpg
import orjson
import pytest

from contracts.membership import SERVICE
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient

pytestmark = pytest.mark.usefixtures("platform")


async def recorded(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM membership.events")


async def test_what_the_database_cannot_store_gets_a_typed_internal_reply_and_writes_nothing(
        client: GongdiClient, pool: asyncpg.Pool):
    assert (await client.send(SERVICE, f.register("answers")))["ok"]
    before = await recorded(pool)
    nul = orjson.loads(f.arrive("answers", "m-nul").model_dump_json())
    nul["member"]["home_org"] = "某村\u0000党支部"  # jsonb has no NUL character
    huge = orjson.loads(f.workforce("answers", 1).model_dump_json())
    huge["headcount"] = 2**70  # beyond any integer column
    for name, body in (("RecordArrival", nul), ("ReportWorkforce", huge)):
        reply = await client.send_raw(SERVICE, name, json.dumps(body, ensure_ascii=False).encode())
        assert reply["ok"] is False and reply["error"]["code"] in ("INTERNAL", "VALIDATION_FAILED"), reply
        assert "某村" not in reply["error"]["message"]
    assert await recorded(pool) == before
    assert (await client.send(SERVICE, f.workforce("answers", 12)))["ok"], "the service is unharmed"


async def test_an_oversized_request_is_refused_unread(client: GongdiClient, pool: asyncpg.Pool):
    body = orjson.loads(f.arrive("answers", "m-big").model_dump_json())
    body["member"]["home_org"] = "党" * 200_000
    reply = await client.send_raw(SERVICE, "RecordArrival", orjson.dumps(body))
    assert reply["error"]["code"] == "REQUEST_TOO_LARGE"
    assert await recorded(pool) == 0
    query = await client.request("qry.views.site", b'{"site_id": "' + b"x" * 300_000 + b'"}')
    assert query["error"]["code"] == "REQUEST_TOO_LARGE"


async def test_a_command_id_reused_for_another_command_is_refused(client: GongdiClient, pool: asyncpg.Pool):
    """Release 0.1 answered `ok, duplicate` with the other command's events and dropped the arrival."""
    assert (await client.send(SERVICE, f.register("reuse")))["ok"]
    workforce = f.workforce("reuse", 30)
    assert (await client.send(SERVICE, workforce))["ok"]
    arrival = f.arrive("reuse", "m-reuse").model_copy(update={"command_id": workforce.command_id})
    reply = await client.send(SERVICE, arrival)
    assert reply["error"]["code"] == "COMMAND_ID_REUSED" and reply["error"]["field"] == "command_id"
    again = await client.send(SERVICE, workforce)
    assert again["ok"] and again["duplicate"]
    assert await pool.fetchval("SELECT count(*) FROM membership.events WHERE event_type = 'MemberArrived'") == 0


async def test_a_full_disk_is_said_and_the_same_command_goes_through_once_there_is_room(
        client: GongdiClient, pool: asyncpg.Pool):
    """Before, a full disk answered INTERNAL, which nobody retries. A trigger raises PostgreSQL's own disk_full."""
    assert (await client.send(SERVICE, f.register("full")))["ok"]
    await pool.execute("CREATE FUNCTION public.no_room() RETURNS trigger LANGUAGE plpgsql AS"
                       " $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$")
    await pool.execute("CREATE TRIGGER no_room BEFORE INSERT ON membership.events"
                       " FOR EACH ROW EXECUTE FUNCTION public.no_room()")
    before = await recorded(pool)
    command = f.workforce("full", 40)
    try:
        reply = await client.send(SERVICE, command)
        assert reply["ok"] is False and reply["error"]["code"] == "UNAVAILABLE", reply
        assert "数据库磁盘已满，未记录任何内容" in reply["error"]["message"]
        assert await recorded(pool) == before
    finally:
        await pool.execute("DROP TRIGGER no_room ON membership.events")
        await pool.execute("DROP FUNCTION public.no_room()")
    again = await client.send(SERVICE, command)  # the same command id, once there is room
    assert again["ok"], again
    assert await recorded(pool) == before + 1
