"""Event shapes as earlier releases wrote them, for the tests that read old events in today's shape."""
from __future__ import annotations

import datetime as dt
import uuid

from contracts.base import Event


class Release01:
    """Events as releases before TalkHeld v2 wrote them: the same type name, schema version 1, no `method`."""

    class TalkHeld(Event):
        site_id: str
        obligation_id: uuid.UUID
        member_id: str
        talked_by: str
        talked_on: dt.date
        note: str
