"""The defaults of `hostwatch serve`, apart from hostwatch.serve: the command
line reads them when it starts (its options and help), and hostwatch.serve
loads Datasette, which every other command (the nightly crawl among them)
would then load for nothing (about 0.4 s of CPU at each start)."""

from __future__ import annotations

DEFAULT_PORT = 8001
USERNAME = "analyst"  # the one account of datasette-auth-passwords
REFRESH_SECONDS = 60.0  # how often the store is asked whether it changed
