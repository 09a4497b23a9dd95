"""`python -m services.views [serve|setup|rebuild SCHEMA]`."""
from __future__ import annotations

import sys

from services.views.app import VIEWS

VIEWS.main(sys.argv[1:])
