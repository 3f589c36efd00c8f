"""nothing in clear: partners' API keys and reporters' contacts sealed with the media key; match keys
that named no bank narrowed to the hotline's own banks

Written by hand. No schema change: the values are rewritten in place (`vigie.sealed`), when a media
key is configured (the store's settings or VIGIE_MEDIA_KEY); without one they stay as they were and
`vigie.sealed.seal_existing` seals them later.

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import context, op

revision = '0014'
down_revision = '0009'
branch_labels = None
depends_on = '0005'  # api_keys: 0005 is a branch of its own beside 0006-0009


def upgrade() -> None:
    from vigie.accounts import default_bank_scopes
    from vigie.sealed import seal_existing

    conn = op.get_bind()
    seal_existing(conn, context.config.attributes.get("settings"))
    keys = sa.table('api_keys', sa.column('id', sa.Integer), sa.column('scopes', sa.JSON))
    for kid, scopes in conn.execute(sa.select(keys.c.id, keys.c.scopes)).all():
        narrowed = default_bank_scopes(conn, list(scopes or []))
        if narrowed != list(scopes or []):
            conn.execute(keys.update().where(keys.c.id == kid).values(scopes=narrowed))


def downgrade() -> None:
    pass  # sealed values stay sealed (they read back the same); narrowed keys stay narrowed
