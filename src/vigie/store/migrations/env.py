"""Alembic environment: run against the engine the store hands over (no alembic.ini needed)."""

from alembic import context

import vigie.store.all_models  # noqa: F401 - every table registered on Base
from vigie.store.models import Base

engine = context.config.attributes["connection_engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
