"""`python -m services.liaison [serve|relay|setup]`."""
from __future__ import annotations

import sys

from contracts.liaison import SERVICE
from gongdi.service.process import writer_main
from services.liaison.app import build_app, setup
from services.liaison.repository import SCHEMA

writer_main(sys.argv[1:], SERVICE, SCHEMA, build_app, setup)
