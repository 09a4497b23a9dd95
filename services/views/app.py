"""Views composition root: the service as a declaration; the kit wires consumers, queries, setup and rebuild."""
from __future__ import annotations

from contracts.queries import QUERIES, SERVICE
from gongdi.bus.consumer import checkpoint_sql, stream_heads_sql
from gongdi.bus.deadletters import retries_sql
from gongdi.service.kit import ReadingService
from gongdi.store.migrations import Migration, numbered
from services.views import activities, development, liaison, membership, mobility
from services.views.handlers import LivePublisher, ViewQueries, implementations


def release_0_1_tables(schema: str) -> str:
    """Every read-model table as release 0.1 created it; membership's first, as it creates the schema."""
    return (membership.tables_sql(schema) + activities.tables_sql(schema) + liaison.tables_sql(schema)
            + checkpoint_sql(schema))


MIGRATIONS = numbered(
    [Migration(1, "read models of release 0.1, consumer checkpoint and dead letters", release_0_1_tables),
     Migration(3, "consumers keep the head of every event stream they applied", stream_heads_sql),
     Migration(5, "dead letters record their retries; applied ones move to retried_letters", retries_sql)],
    membership.MIGRATIONS, activities.MIGRATIONS, liaison.MIGRATIONS, mobility.MIGRATIONS, development.MIGRATIONS,
)

VIEWS = ReadingService(
    name=SERVICE,
    projections=lambda schema: [membership.MembershipProjection(schema), activities.ActivitiesProjection(schema),
                                liaison.LiaisonProjection(schema)],
    queries=QUERIES,
    handlers=ViewQueries,
    implementations=implementations,
    migrations=MIGRATIONS,
    after_commit=lambda nc, city: LivePublisher(nc, city).changed,
    # The projections' code version: a new one makes `gongdi up` rebuild the views from the logs in a shadow schema
    # and swap it in (gongdi.bus.shadow). Raise it whenever a projection changes what it writes.
    # 2: members present keep gender and home organisation (migration 11).
    # 3: dispute cases keep their description (migration 12).
    # 4: departures keep their reason (migration 13), points the id of their award (14).
    # 5: violations and personal changes their id and words, posts, zones and teams their day, points their reason
    #    (15).
    version="5",
)
rebuild = VIEWS.rebuild
