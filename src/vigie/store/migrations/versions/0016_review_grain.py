"""review grain: labels and annotations per item on a decision, each item's own decided outcome

Written by hand.

Revision ID: 0016
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('review_decisions') as b:
        b.add_column(sa.Column('per_item', sa.JSON(), nullable=True))
    with op.batch_alter_table('review_items') as b:
        b.add_column(sa.Column('decision', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review_items') as b:
        b.drop_column('decision')
    with op.batch_alter_table('review_decisions') as b:
        b.drop_column('per_item')
