"""A site's stamp (`last_position`, `updated_at`: the latest event that changed what the views show of it)."""
from __future__ import annotations

import functools

import asyncpg

from contracts.envelope import Envelope


class SiteStamps:
    """Mixed into the membership projection and its parts (which have `schema`).

    A rebuild's batched connection (`gongdi.bus.shadow.Batcher`) offers `stamp`: there a site is stamped once per
    batch, with the latest of its events, instead of once per event (one update of the site row per arrival was
    the rebuild's largest cost). The stamp only ever moves forward, so a site's own statements that set
    `last_position` directly (a workforce report) and the batch's stamp give the same row in either order."""

    schema: str

    @functools.cached_property
    def _batched_stamp(self) -> str:
        """The set-based stamp, made once: it is asked for by every event of a rebuild."""
        return (f"UPDATE {self.schema}.site AS s SET last_position = a.position, updated_at = a.at"
                " FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS a(site_id, position, at)"
                " WHERE s.site_id = a.site_id AND s.last_position < a.position")

    async def stamp_site(self, conn: asyncpg.Connection, env: Envelope, site_id: str) -> None:
        stamp = getattr(conn, "stamp", None)
        if stamp is not None:
            stamp(self._batched_stamp, site_id, env.position, env.recorded_at)
            return
        await conn.execute(f"UPDATE {self.schema}.site SET last_position = $2, updated_at = $3 WHERE site_id = $1",
                           site_id, env.position, env.recorded_at)

    async def with_stamp(self, conn: asyncpg.Connection, env: Envelope, sql: str, *args: object, ctes: str = "",
                         site_id: str | None = None) -> None:
        """Run `sql` (which must not write the site row itself), after the data-changing `ctes` it may read, and
        stamp the site (the event's unless `site_id` is given): one statement live, the batch's stamp in a rebuild
        (a data-changing WITH cannot be nested in another, so the stamp joins the same WITH)."""
        site = env.site_id if site_id is None else site_id
        stamp = getattr(conn, "stamp", None)
        if stamp is not None:
            await conn.execute(f"WITH {ctes} {sql}" if ctes else sql, *args)
            stamp(self._batched_stamp, site, env.position, env.recorded_at)
            return
        n = len(args)
        await conn.execute(
            f"WITH {ctes + ', ' if ctes else ''}change AS ({sql}) UPDATE {self.schema}.site"
            f" SET last_position = ${n + 1}, updated_at = ${n + 2} WHERE site_id = ${n + 3}",
            *args, env.position, env.recorded_at, site,
        )
