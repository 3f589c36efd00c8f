"""The store: SQLAlchemy models, sessions and Alembic migrations (SQLite by default, PostgreSQL by URL)."""

from vigie.store.db import Store

__all__ = ["Store"]
