"""`python -m hostwatch` is the `hostwatch` command."""

from hostwatch.cli import main

main()
