"""Due-based scheduling, incremental polls and a cache of page and space names

- `atlassian_connections.next_sync_at`: when the scheduler next syncs the connection (jittered, stretched
  near the points pool's limit, pushed back after failures); `claimed_until` / `claimed_by`: a worker's
  lease on it (claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL); `sync_failures`: consecutive failed
  scheduled syncs (exponential backoff, capped at an hour).
- `last_full_sync_at` and `watermark_ms`: incremental polls ask Atlassian only for tasks created or
  completed since the watermark (Atlassian's clock, less a margin); a full sweep runs at least every
  TRACKLI_FULL_SYNC_EVERY_S and after a (re)connect (which clears both).
- `content_names`: page, blog-post and space names per connection, written by full sweeps, read by
  incremental polls so they look up only ids they have not seen.
- `scheduler_state`: the deployment's cadence stretch (factor, reason, since) for Diagnostics.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("atlassian_connections") as batch:
        batch.add_column(sa.Column("next_sync_at", UTC, nullable=True))
        batch.add_column(sa.Column("claimed_until", UTC, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("sync_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_full_sync_at", UTC, nullable=True))
        batch.add_column(sa.Column("watermark_ms", sa.BigInteger(), nullable=True))
    op.create_index("ix_atlassian_connections_next_sync_at", "atlassian_connections", ["next_sync_at"])
    op.create_table(
        "content_names",
        sa.Column("connection_id", sa.Integer(), sa.ForeignKey(
            "atlassian_connections.id", ondelete="CASCADE", name="fk_content_names_connection_id_atlassian_connections"),
            nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("content_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False, server_default=""),
        sa.Column("space_id", sa.String(64), nullable=True),
        sa.Column("space_key", sa.String(255), nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("webui", sa.String(2000), nullable=True),
        sa.Column("refreshed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "kind", "content_id", name="pk_content_names"),
        sa.CheckConstraint("kind IN ('pages', 'blogposts', 'spaces')", name=op.f("ck_content_names_kind")),
    )
    op.create_table(
        "scheduler_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stretch", sa.Float(), nullable=False, server_default="1"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("since", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_state"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_state")
    op.drop_table("content_names")
    op.drop_index("ix_atlassian_connections_next_sync_at", table_name="atlassian_connections")
    with op.batch_alter_table("atlassian_connections") as batch:
        for name in ("watermark_ms", "last_full_sync_at", "sync_failures", "claimed_by", "claimed_until", "next_sync_at"):
            batch.drop_column(name)
