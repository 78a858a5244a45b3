"""The one store every stage reads and writes (SQLAlchemy 2, SQLite or PostgreSQL)."""

from kernel.errors import StoreError
from store.db import Store
from store.models import (
    Attribution,
    Base,
    Case,
    ChainHead,
    Check,
    CrawlRun,
    Hoster,
    HosterAlias,
    Network,
    Notice,
    Order,
)

__all__ = [
    "Attribution",
    "Base",
    "Case",
    "ChainHead",
    "Check",
    "CrawlRun",
    "Hoster",
    "HosterAlias",
    "Network",
    "Notice",
    "Order",
    "Store",
    "StoreError",
]
