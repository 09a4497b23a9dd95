"""`python -m services.liaison [serve|relay|setup]`."""
from __future__ import annotations

import sys

from services.liaison.app import LIAISON

LIAISON.main(sys.argv[1:])
