"""Outbox entries remember why they failed, so a reconnect can send them again

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('completion_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_kind', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('completion_outbox', schema=None) as batch_op:
        batch_op.drop_column('failure_kind')
