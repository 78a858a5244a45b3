"""How much the command line says: its log level and Python's warnings.

The default level, WARNING, shows problems only: no Scrapy banner, settings
dump or component lists (INFO records) and no Python warnings (deprecations
in the libraries hostwatch uses are for its developers, not for the person
running the nightly job). INFO (``-v``) shows those too, DEBUG (``-vv``)
every request. An explicit ``python -W`` or PYTHONWARNINGS is obeyed as given.
"""

from __future__ import annotations

import logging
import sys
import warnings

DEFAULT_LEVEL = "WARNING"


def level_of_verbose(count: int) -> str | None:
    """The log level ``-v`` given ``count`` times asks for (None: not given)."""
    if count <= 0:
        return None
    return "INFO" if count == 1 else "DEBUG"


def shows_warnings(level: str) -> bool:
    """Whether Python's warnings are shown at ``level`` (INFO and below)."""
    number = logging.getLevelName(level.upper())
    return isinstance(number, int) and number <= logging.INFO


def quiet_warnings(level: str) -> None:
    """Hide Python's warnings from here on unless ``level`` shows them, and
    unless the user chose a warnings filter (``-W``, PYTHONWARNINGS)."""
    if sys.warnoptions or shows_warnings(level):
        return
    warnings.simplefilter("ignore")
