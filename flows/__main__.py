"""`python -m flows` runs the fleet command line (as the `fleet` command does)."""

from flows.cli.app import main

main()
