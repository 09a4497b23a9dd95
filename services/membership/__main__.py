"""`python -m services.membership [serve|relay|setup]`."""
from __future__ import annotations

import sys

from services.membership.app import MEMBERSHIP

MEMBERSHIP.main(sys.argv[1:])
