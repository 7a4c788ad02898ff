"""Sync runs record Atlassian's points and their kind

Since March 2026 Atlassian charges OAuth apps by points (1 a product API call, plus 1 per object a read
returns; one pool of 65,000 an hour per Tier-1 app). Each run now records the points it spent, and
whether it was a full sweep or an incremental poll, so Diagnostics can show the last hour's use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("points", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="full"))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("kind")
        batch.drop_column("points")
