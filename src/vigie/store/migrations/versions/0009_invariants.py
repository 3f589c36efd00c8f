"""invariants: audit checkpoints and hash version, bank changes for re-matching, review targets, sighting
history and verdicts, enrichment of decided clusters

Written by hand.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as b:
        # Records written before this revision keep the canonical form without `note` (version 1).
        b.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.create_table(
        'audit_checkpoints',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(64), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.Column('at', TS, nullable=False),
        sa.Column('key_id', sa.String(32), nullable=False),
        sa.Column('signature', sa.String(200), nullable=False),
    )
    with op.batch_alter_table('banks') as b:
        b.add_column(sa.Column('review_target', sa.Boolean(), nullable=False, server_default=sa.false()))
    # The bank that review decisions went to by default stays open to them.
    op.execute("UPDATE banks SET review_target = TRUE WHERE name = 'review-confirmed' OR source = 'vigie review'")
    op.create_table(
        'bank_changes',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('at', TS, nullable=False),
        sa.Column('bank', sa.String(200), nullable=True),
        sa.Column('reason', sa.String(64), nullable=False),
        sa.Column('done_at', TS, nullable=True),
        sa.Column('scans_done_at', TS, nullable=True),
    )
    op.create_index('ix_bank_changes_done_at', 'bank_changes', ['done_at'])
    with op.batch_alter_table('review_clusters') as b:
        b.add_column(sa.Column('variants_at', TS, nullable=True))
    op.execute("UPDATE review_clusters SET variants_at = banked_at WHERE banked_at IS NOT NULL")
    with op.batch_alter_table('sightings') as b:
        b.add_column(sa.Column('verdict', sa.JSON(), nullable=True))
        b.add_column(sa.Column('action', sa.String(16), nullable=True))
        b.add_column(sa.Column('action_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('notices') as b:
        b.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='1'))
        b.add_column(sa.Column('last_attempt_at', TS, nullable=True))
    op.create_table(
        'sighting_events',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('sighting_id', BIG, sa.ForeignKey('sightings.id', ondelete='CASCADE'), nullable=False),
        sa.Column('at', TS, nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('outcome', sa.String(16), nullable=True),
        sa.Column('state', sa.String(16), nullable=True),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('sha256', sa.String(64), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
    )
    op.create_index('ix_sighting_events_sighting_id', 'sighting_events', ['sighting_id'])


def downgrade() -> None:
    op.drop_index('ix_sighting_events_sighting_id', table_name='sighting_events')
    op.drop_table('sighting_events')
    with op.batch_alter_table('notices') as b:
        b.drop_column('last_attempt_at')
        b.drop_column('attempts')
    with op.batch_alter_table('sightings') as b:
        b.drop_column('action_reason')
        b.drop_column('action')
        b.drop_column('verdict')
    with op.batch_alter_table('review_clusters') as b:
        b.drop_column('variants_at')
    op.drop_index('ix_bank_changes_done_at', table_name='bank_changes')
    op.drop_table('bank_changes')
    with op.batch_alter_table('banks') as b:
        b.drop_column('review_target')
    op.drop_table('audit_checkpoints')
    with op.batch_alter_table('audit_log') as b:
        b.drop_column('version')
