"""crawl plans: rendering asked per reported URL, and the part of a crawl carried to the next round

Written by hand.

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0009'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'crawl_plans',
        sa.Column('url_id', BIG, sa.ForeignKey('reported_urls.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('render', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('carry', sa.JSON(), nullable=True),
        sa.Column('rounds', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('outcome', sa.String(16), nullable=True),
        sa.Column('updated_at', TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table('crawl_plans')
