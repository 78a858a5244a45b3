"""What every command shares: reading the config and opening the store
(a `hostwatch.api.Hostwatch` handle, whose methods do the work)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import click

from hostwatch.api import Hostwatch
from kernel.config import Config
from kernel.errors import ConfigError
from store import StoreError
from store.hosters import HosterAmbiguous, HosterLookupError

# Exit status of every command with a --hoster option when the value names no
# hoster (2, as for any bad option) or more than one (6: give the key).
EXIT_UNKNOWN_HOSTER = 2
EXIT_AMBIGUOUS_HOSTER = 6  # 5 is a suspect crawl run: one meaning per status


def load_config(ctx: click.Context, **overrides: Any) -> Config:
    """The config from the environment, with the global --db and -v, and ``overrides``."""
    root = ctx.find_root()
    db = (root.obj or {}).get("db")
    # -v/-vv win over HOSTWATCH_LOG_LEVEL (hostwatch.cli).
    overrides.setdefault("log_level", (root.obj or {}).get("log_level"))
    try:
        return Config.from_env(db=db, **overrides)
    except ConfigError as exc:
        raise click.ClickException(f"bad setting: {exc}") from exc


def open_store(config: Config) -> Hostwatch:
    """Open the store and bring its schema up to date; a clear error if it can't."""
    try:
        return Hostwatch(config)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


class UnknownHosterError(click.ClickException):
    exit_code = EXIT_UNKNOWN_HOSTER


class AmbiguousHosterError(click.ClickException):
    exit_code = EXIT_AMBIGUOUS_HOSTER


def hoster_error(exc: HosterLookupError) -> click.ClickException:
    """The error every --hoster option gives: one message and exit status per kind."""
    if isinstance(exc, HosterAmbiguous):
        return AmbiguousHosterError(str(exc))
    return UnknownHosterError(str(exc))


def when_option(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Click callback: a date (its midnight, UTC) or an ISO 8601 time with a zone."""
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a date (2026-01-31) or a time with zone: {value!r}",
                                 param=param) from None
    if parsed.utcoffset() is None:
        raise click.BadParameter(f"a time needs a zone (Z or +01:00): {value!r}", param=param)
    return parsed.astimezone(UTC)
