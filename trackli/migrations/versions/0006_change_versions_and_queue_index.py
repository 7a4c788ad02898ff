"""Per-person change versions; an index that serves the queue's pages

- `change_versions(user_id, board, queue)`: bumped at commit by every unit of work that changes a
  person's cards, queue rows, projects or connections (trackli.changes). An open tab polls one row by
  primary key instead of counting the person's rows.
- `confluence_pending_tasks (user_id, status, id)` replaces `(user_id, status)`: the queue's pages are
  read in id order, and counted, from the index; `(user_id, updated_at)` answers "how many rows changed
  since this tab drew them" without reading the person's whole queue; the board reads a column's first
  cards in (position, id) order straight from `tasks (owner_id, status, position, id)`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_versions",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE",
                                                         name="fk_change_versions_user_id_users"), nullable=False),
        sa.Column("board", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("queue", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("user_id", name="pk_change_versions"),
    )
    op.drop_index("ix_confluence_pending_tasks_user_status", table_name="confluence_pending_tasks")
    op.create_index("ix_confluence_pending_tasks_user_status_id", "confluence_pending_tasks", ["user_id", "status", "id"])
    op.create_index("ix_confluence_pending_tasks_user_updated", "confluence_pending_tasks", ["user_id", "updated_at"])
    op.drop_index("ix_tasks_owner_status_position", table_name="tasks")
    op.create_index("ix_tasks_owner_status_position_id", "tasks", ["owner_id", "status", "position", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_status_position_id", table_name="tasks")
    op.create_index("ix_tasks_owner_status_position", "tasks", ["owner_id", "status", "position"])
    op.drop_index("ix_confluence_pending_tasks_user_updated", table_name="confluence_pending_tasks")
    op.drop_index("ix_confluence_pending_tasks_user_status_id", table_name="confluence_pending_tasks")
    op.create_index("ix_confluence_pending_tasks_user_status", "confluence_pending_tasks", ["user_id", "status"])
    op.drop_table("change_versions")
