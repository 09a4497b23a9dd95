"""`python -m services.activities [serve|relay|setup]`."""
from __future__ import annotations

import sys

from services.activities.app import ACTIVITIES

ACTIVITIES.main(sys.argv[1:])
