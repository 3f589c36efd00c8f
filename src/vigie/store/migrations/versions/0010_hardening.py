"""hardening: growing lockouts, expiring one-time passwords, rate counters shared by all server processes

Written by hand.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = '0005'  # the users table: 0005 is a branch of its own beside 0006-0008

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('users') as b:
        b.add_column(sa.Column('lock_count', sa.Integer(), nullable=False, server_default='0'))
        b.add_column(sa.Column('otp_expires_at', TS, nullable=True))
    users = sa.table('users', sa.column('must_change_password', sa.Boolean()), sa.column('otp_expires_at', TS))
    # one-time passwords handed out before this version: 24 hours from the upgrade, then they expire
    op.get_bind().execute(users.update().where(users.c.must_change_password.is_(True))
                          .values(otp_expires_at=datetime.now(UTC) + timedelta(hours=24)))
    op.create_table(
        'rate_counters',
        sa.Column('key', sa.String(128), primary_key=True),
        sa.Column('window_start', sa.BigInteger(), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('rate_counters')
    with op.batch_alter_table('users') as b:
        b.drop_column('otp_expires_at')
        b.drop_column('lock_count')
