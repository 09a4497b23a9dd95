"""The pages' Chinese words for the platform's codes (app.js `LABELS`) cover every code the contracts have, and name
an event as the history does."""
from __future__ import annotations

import re
from pathlib import Path

from contracts import activities, liaison, membership
from contracts.activities import Grade
from contracts.history import EVENT_LABELS

APP_JS = Path(__file__).resolve().parents[2] / "services" / "gateway" / "web" / "static" / "app.js"


def labels(name: str) -> dict[str, str]:
    """One map of app.js's LABELS, read from its source: `name: { key: '文字', … }`."""
    source = APP_JS.read_text(encoding="utf-8")
    block = re.search(rf"^  {name}: \{{(.*?)\}},$", source, re.MULTILINE | re.DOTALL)
    assert block, f"LABELS.{name} not found in app.js"
    return dict(re.findall(r"(\w+): '([^']*)'", block.group(1)))


def test_every_event_type_is_named_on_the_pages_as_in_the_history():
    types = {t for c in (membership, activities, liaison) for t in c.EVENTS}
    assert set(EVENT_LABELS) == types
    assert labels("event") == EVENT_LABELS


def test_every_grade_of_an_appraisal_has_its_word():
    assert set(labels("grade")) == {g.value for g in Grade}
