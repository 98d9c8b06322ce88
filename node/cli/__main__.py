"""`python -m node.cli` runs the `trustnode` command line."""

from node.cli import main

main()
