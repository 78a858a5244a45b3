"""The one store every stage reads and writes (SQLAlchemy 2, SQLite or PostgreSQL)."""

from store.db import Store, StoreError
from store.models import Base, Case, ChainHead, Check, CrawlRun, Notice, Order

__all__ = [
    "Base",
    "Case",
    "ChainHead",
    "Check",
    "CrawlRun",
    "Notice",
    "Order",
    "Store",
    "StoreError",
]
