"""The store: SQLAlchemy models, sessions and Alembic migrations (SQLite by default, PostgreSQL by URL).

`Store` is imported on first use, not with the package: a scan's hashing workers import `vigie.store.lookup`
alone, without SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from vigie.store.db import Store

__all__ = ["Store"]


def __getattr__(name: str):
    if name == "Store":
        from vigie.store.db import Store

        return Store
    raise AttributeError(f"module 'vigie.store' has no attribute {name!r}")
