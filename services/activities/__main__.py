"""`python -m services.activities [serve|relay|setup]`."""
from __future__ import annotations

import sys

from contracts.activities import SERVICE
from gongdi.service.process import writer_main
from services.activities.app import build_app, setup
from services.activities.repository import SCHEMA

writer_main(sys.argv[1:], SERVICE, SCHEMA, build_app, setup)
