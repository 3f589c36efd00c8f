"""review queue: items, clusters, decisions, encrypted media, exposure, sessions, policies

Written by hand. It revises 0004 (as the accounts migration 0005 does); the store upgrades
to every head.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'review_clusters',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('source_rank', sa.Integer(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('ai_likely', sa.Boolean(), nullable=False),
        sa.Column('priority_override', sa.Integer(), nullable=True),
        sa.Column('priority_set_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('decided_at', TS, nullable=True),
        sa.Column('decided_by', sa.JSON(), nullable=True),
        sa.Column('category', sa.String(length=40), nullable=True),
        sa.Column('verdict', sa.JSON(), nullable=True),
        sa.Column('bank', sa.String(length=200), nullable=True),
        sa.Column('banked_at', TS, nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_review_clusters_state', 'review_clusters', ['state'])
    op.create_table(
        'review_items',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('md5', sa.String(length=32), nullable=True),
        sa.Column('sha1', sa.String(length=40), nullable=True),
        sa.Column('pdq', sa.String(length=64), nullable=True),
        sa.Column('pdq_quality', sa.Integer(), nullable=True),
        sa.Column('media_type', sa.String(length=100), nullable=True),
        sa.Column('size', BIG, nullable=True),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('source_rank', sa.Integer(), nullable=False),
        sa.Column('source_refs', sa.JSON(), nullable=False),
        sa.Column('ai_likely', sa.Boolean(), nullable=False),
        sa.Column('flags', sa.JSON(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('cluster_id', BIG, nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['cluster_id'], ['review_clusters.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sha256'),
    )
    op.create_index('ix_review_items_cluster', 'review_items', ['cluster_id'])
    op.create_table(
        'review_decisions',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('cluster_id', BIG, nullable=False),
        sa.Column('user', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=40), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('bank', sa.String(length=200), nullable=True),
        sa.Column('at', TS, nullable=False),
        sa.Column('superseded', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['cluster_id'], ['review_clusters.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_review_decisions_cluster', 'review_decisions', ['cluster_id'])
    op.create_table(
        'media_blobs',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('path', sa.String(length=300), nullable=False),
        sa.Column('nonce', sa.String(length=24), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('size', BIG, nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('purged_at', TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sha256', 'kind', name='uq_media_blob_sha_kind'),
    )
    op.create_table(
        'exposure_events',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('user', sa.String(length=200), nullable=False),
        sa.Column('item_id', BIG, nullable=True),
        sa.Column('cluster_id', BIG, nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('started_at', TS, nullable=False),
        sa.Column('last_seen_at', TS, nullable=False),
        sa.Column('ended_at', TS, nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['item_id'], ['review_items.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_exposure_user_started', 'exposure_events', ['user', 'started_at'])
    op.create_table(
        'review_sessions',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('user', sa.String(length=200), nullable=False),
        sa.Column('started_at', TS, nullable=False),
        sa.Column('last_activity_at', TS, nullable=False),
        sa.Column('ended_at', TS, nullable=True),
        sa.Column('locked_until', TS, nullable=True),
        sa.Column('lock_reason', sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_review_sessions_user', 'review_sessions', ['user', 'started_at'])
    op.create_table(
        'review_policies',
        sa.Column('key', sa.String(length=220), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=True),
        sa.Column('updated_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('review_policies')
    op.drop_index('ix_review_sessions_user', table_name='review_sessions')
    op.drop_table('review_sessions')
    op.drop_index('ix_exposure_user_started', table_name='exposure_events')
    op.drop_table('exposure_events')
    op.drop_table('media_blobs')
    op.drop_index('ix_review_decisions_cluster', table_name='review_decisions')
    op.drop_table('review_decisions')
    op.drop_index('ix_review_items_cluster', table_name='review_items')
    op.drop_table('review_items')
    op.drop_index('ix_review_clusters_state', table_name='review_clusters')
    op.drop_table('review_clusters')
