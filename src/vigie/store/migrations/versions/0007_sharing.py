"""bank sharing: published banks, their change feed, subscriptions

Written by hand.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'published_banks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bank_id', sa.Integer(), nullable=False),
        sa.Column('published_at', TS, nullable=False),
        sa.Column('published_by', sa.String(length=200), nullable=True),
        sa.Column('last_seq', BIG, nullable=False),
        sa.Column('scanned_through', TS, nullable=True),
        sa.ForeignKeyConstraint(['bank_id'], ['banks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('bank_id'),
    )
    op.create_table(
        'shared_changes',
        sa.Column('published_bank_id', sa.Integer(), nullable=False),
        sa.Column('entry_id', BIG, nullable=False),
        sa.Column('seq', BIG, nullable=False),
        sa.Column('op', sa.String(length=8), nullable=False),
        sa.Column('signal', sa.String(length=16), nullable=False),
        sa.Column('value', sa.String(length=128), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['published_bank_id'], ['published_banks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('published_bank_id', 'entry_id'),
    )
    op.create_index('ix_shared_changes_seq', 'shared_changes', ['published_bank_id', 'seq'])
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('remote_bank', sa.String(length=200), nullable=False),
        sa.Column('local_bank', sa.String(length=200), nullable=False),
        sa.Column('api_key', sa.Text(), nullable=False),
        sa.Column('publisher_key', sa.String(length=100), nullable=False),
        sa.Column('publisher', sa.String(length=200), nullable=True),
        sa.Column('cursor', BIG, nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.Column('last_sync_at', TS, nullable=True),
        sa.Column('last_error', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('subscriptions')
    op.drop_index('ix_shared_changes_seq', table_name='shared_changes')
    op.drop_table('shared_changes')
    op.drop_table('published_banks')
