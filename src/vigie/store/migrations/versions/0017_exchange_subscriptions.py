"""exchange subscriptions: hash exchanges read through python-threatexchange, with their checkpoints

Written by hand.

Revision ID: 0017x
Revises: 0016
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0017x'
down_revision = '0016'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'exchange_subscriptions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False, unique=True),
        sa.Column('api', sa.String(40), nullable=False),
        sa.Column('local_bank', sa.String(200), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('base_url', sa.String(500), nullable=True),
        sa.Column('credentials', sa.Text(), nullable=False),
        sa.Column('checkpoint', sa.JSON(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('created_by', sa.String(200), nullable=True),
        sa.Column('last_fetch_at', TS, nullable=True),
        sa.Column('last_error', sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('exchange_subscriptions')
