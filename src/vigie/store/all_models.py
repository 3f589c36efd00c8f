"""Imports every module that defines tables, so Alembic and create-all see them all."""

import vigie.sharing.exchange_models  # noqa: F401
import vigie.store.account_models  # noqa: F401
import vigie.store.audit_models  # noqa: F401
import vigie.store.crawl_models  # noqa: F401
import vigie.store.intake_models  # noqa: F401
import vigie.store.models  # noqa: F401
import vigie.store.review_models  # noqa: F401
import vigie.store.sharing_models  # noqa: F401
