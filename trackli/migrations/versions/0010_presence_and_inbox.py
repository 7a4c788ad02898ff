"""Presence and the board's inbox

- `users.last_seen_at`: the last sign of an open Trackli tab (written at most once per 30 s per
  person); it sets how often the person's connections are polled (live, seen today, idle).
- `users.inbox_open`: whether the board's inbox lane is open, kept per person.
- `atlassian_connections.last_synced_by`: which scheduler ran the connection's last scheduled sync
  (a dashboard's or a worker's), for Diagnostics.
- `sync_runs.clock_skew_s`: how far Atlassian's `Date` was from our clock when too far to trust for
  the incremental watermark (which then stays where it was).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch would rebuild `users` on SQLite (see 0009).
    op.add_column("users", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("inbox_open", sa.Boolean(create_constraint=False), nullable=False,
                                     server_default=sa.true()))
    op.add_column("atlassian_connections", sa.Column("last_synced_by", sa.String(100), nullable=True))
    op.add_column("sync_runs", sa.Column("clock_skew_s", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("sync_runs", "clock_skew_s")
    op.drop_column("atlassian_connections", "last_synced_by")
    for name in ("inbox_open", "last_seen_at"):
        op.drop_column("users", name)
