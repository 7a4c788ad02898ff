"""Cards can be archived and can know their task is gone upstream; positions get gaps

- `tasks.archived_at`: an archived card leaves the board but is kept (and can be restored).
- `tasks.gone_reason`: set by a complete sync when a card's Confluence task is neither open nor
  complete for the account any more (deleted, or reassigned away); the card says so and offers to
  keep it as a local card or delete it. Cleared if the task comes back.
- Positions are spread `GAP` apart, so a move writes one row (the midpoint between its new
  neighbours) instead of renumbering a column; a column is renumbered only when a gap runs out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

GAP = 1024


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("gone_reason", sa.String(200), nullable=True))
    op.execute(f"UPDATE tasks SET position = position * {GAP}")


def downgrade() -> None:
    op.execute(f"UPDATE tasks SET position = position / {GAP}")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("gone_reason")
        batch.drop_column("archived_at")
