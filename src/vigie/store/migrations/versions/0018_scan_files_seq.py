"""scan_files by (scan_id, seq) and by (scan_id, md5, seq): the report reads a scan's rows in scan order, and
its VICS export by MD5, in chunks

Without it every chunk of 5,000 rows sorted all the scan's rows again ("USE TEMP B-TREE FOR ORDER BY"): the
report of a scan of 50 million locations would have sorted them 10,000 times.

Written by hand.

Revision ID: 0018
Revises: 0017x
Create Date: 2026-12-07
"""
from alembic import op

revision = '0018'
down_revision = '0017x'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scan_files', schema=None) as batch_op:
        batch_op.create_index('ix_scan_files_seq', ['scan_id', 'seq'], unique=False)
        batch_op.create_index('ix_scan_files_md5', ['scan_id', 'md5', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scan_files', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_files_md5')
        batch_op.drop_index('ix_scan_files_seq')
