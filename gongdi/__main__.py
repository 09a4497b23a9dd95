"""`python -m gongdi` is the `gongdi` command."""
from gongdi.cli import main

main()
