"""`python -m services.membership [serve|relay|setup]`."""
from __future__ import annotations

import sys

from contracts.membership import SERVICE
from gongdi.service.process import writer_main
from services.membership.app import build_app, setup
from services.membership.repository import SCHEMA

writer_main(sys.argv[1:], SERVICE, SCHEMA, build_app, setup)
