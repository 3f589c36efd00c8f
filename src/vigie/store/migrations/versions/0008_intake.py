"""intake and takedown: reports, reported URLs, providers, sightings, notices

Written by hand.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'reports',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('reference', sa.String(32), nullable=False, unique=True),
        sa.Column('received_at', TS, nullable=False),
        sa.Column('channel', sa.String(16), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('seen', sa.JSON(), nullable=False),
        sa.Column('contact', sa.Text(), nullable=True),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('closed_at', TS, nullable=True),
    )
    op.create_index('ix_reports_received_at', 'reports', ['received_at'])
    op.create_index('ix_reports_status', 'reports', ['status'])
    op.create_table(
        'reported_urls',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('url_key', sa.String(64), nullable=False, unique=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('first_reported_at', TS, nullable=False),
        sa.Column('last_reported_at', TS, nullable=False),
        sa.Column('report_count', sa.Integer(), nullable=False),
        sa.Column('crawl_state', sa.String(16), nullable=False),
        sa.Column('crawl_attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_at', TS, nullable=True),
        sa.Column('crawled_at', TS, nullable=True),
        sa.Column('outcome', sa.String(16), nullable=True),
        sa.Column('error_code', sa.String(40), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('pages_fetched', sa.Integer(), nullable=False),
        sa.Column('media_found', sa.Integer(), nullable=False),
        sa.Column('log', sa.JSON(), nullable=True),
    )
    op.create_index('ix_reported_urls_host', 'reported_urls', ['host'])
    op.create_index('ix_reported_urls_crawl_state', 'reported_urls', ['crawl_state'])
    op.create_table(
        'report_urls',
        sa.Column('report_id', BIG, sa.ForeignKey('reports.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('url_id', BIG, sa.ForeignKey('reported_urls.id', ondelete='CASCADE'), primary_key=True),
    )
    op.create_index('ix_report_urls_url_id', 'report_urls', ['url_id'])
    op.create_table(
        'providers',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False, unique=True),
        sa.Column('domains', sa.JSON(), nullable=False),
        sa.Column('networks', sa.JSON(), nullable=False),
        sa.Column('asns', sa.JSON(), nullable=False),
        sa.Column('contact_email', sa.String(320), nullable=False),
        sa.Column('country', sa.String(2), nullable=True),
        sa.Column('partner_hotline', sa.String(200), nullable=True),
        sa.Column('language', sa.String(16), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_table(
        'sightings',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('media_url', sa.Text(), nullable=False),
        sa.Column('media_url_key', sa.String(64), nullable=False, unique=True),
        sa.Column('url_id', BIG, sa.ForeignKey('reported_urls.id', ondelete='SET NULL'), nullable=True),
        sa.Column('page_url', sa.Text(), nullable=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('ip', sa.String(64), nullable=True),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('found_at', TS, nullable=False),
        sa.Column('sha256', sa.String(64), nullable=True),
        sa.Column('md5', sa.String(32), nullable=True),
        sa.Column('pdq', sa.String(64), nullable=True),
        sa.Column('media_type', sa.String(100), nullable=True),
        sa.Column('size', BIG, nullable=True),
        sa.Column('outcome', sa.String(16), nullable=False),
        sa.Column('bank', sa.String(200), nullable=True),
        sa.Column('entry_id', BIG, nullable=True),
        sa.Column('category', sa.String(100), nullable=True),
        sa.Column('labels', sa.JSON(), nullable=True),
        sa.Column('distance', sa.Integer(), nullable=True),
        sa.Column('match_detail', sa.JSON(), nullable=True),
        sa.Column('review_item_id', BIG, nullable=True),
        sa.Column('error_code', sa.String(40), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('provider_id', sa.Integer(), sa.ForeignKey('providers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('last_checked_at', TS, nullable=True),
        sa.Column('last_check_status', sa.Integer(), nullable=True),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('removed_at', TS, nullable=True),
        sa.Column('first_notice_at', TS, nullable=True),
        sa.Column('last_notice_at', TS, nullable=True),
        sa.Column('notices', sa.Integer(), nullable=False),
    )
    op.create_index('ix_sightings_url_id', 'sightings', ['url_id'])
    op.create_index('ix_sightings_host', 'sightings', ['host'])
    op.create_index('ix_sightings_found_at', 'sightings', ['found_at'])
    op.create_index('ix_sightings_sha256', 'sightings', ['sha256'])
    op.create_index('ix_sightings_due', 'sightings', ['outcome', 'state'])
    op.create_table(
        'sighting_pages',
        sa.Column('sighting_id', BIG, sa.ForeignKey('sightings.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('url_id', BIG, sa.ForeignKey('reported_urls.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('page_url', sa.Text(), nullable=True),
        sa.Column('seen_at', TS, nullable=False),
    )
    op.create_index('ix_sighting_pages_url_id', 'sighting_pages', ['url_id'])
    op.create_table(
        'notices',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('reference', sa.String(32), nullable=False, unique=True),
        sa.Column('provider_id', sa.Integer(), sa.ForeignKey('providers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('recipient', sa.String(320), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('sent_at', TS, nullable=True),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('body_json', sa.JSON(), nullable=False),
        sa.Column('message_id', sa.String(320), nullable=True),
    )
    op.create_index('ix_notices_provider_id', 'notices', ['provider_id'])
    op.create_index('ix_notices_created_at', 'notices', ['created_at'])
    op.create_table(
        'notice_items',
        sa.Column('notice_id', BIG, sa.ForeignKey('notices.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('sighting_id', BIG, sa.ForeignKey('sightings.id', ondelete='CASCADE'), primary_key=True),
    )
    op.create_index('ix_notice_items_sighting_id', 'notice_items', ['sighting_id'])


def downgrade() -> None:
    for t in ('notice_items', 'notices', 'sighting_pages', 'sightings', 'providers', 'report_urls',
              'reported_urls', 'reports'):
        op.drop_table(t)
