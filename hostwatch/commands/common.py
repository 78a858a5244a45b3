"""What every command shares: reading the config and opening the store."""

from __future__ import annotations

from typing import Any

import click

from hostwatch.config import Config, ConfigError
from store import Store, StoreError


def load_config(ctx: click.Context, **overrides: Any) -> Config:
    """The config from the environment, with the global --db and ``overrides``."""
    root = ctx.find_root()
    db = (root.obj or {}).get("db")
    try:
        return Config.from_env(db=db, **overrides)
    except ConfigError as exc:
        raise click.ClickException(f"bad setting: {exc}") from exc


def open_store(config: Config) -> Store:
    """Open the store and bring its schema up to date; a clear error if it can't."""
    try:
        store = Store(config.db)
        store.upgrade()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    return store
