"""`python -m services.gateway [serve]`."""
import sys

from services.gateway.app import main

main(sys.argv[1:])
