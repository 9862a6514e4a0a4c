"""`python -m opendrs` runs the command line."""

from opendrs.cli import main

main()
