"""Triage rules, snooze and a calendar feed

- `rules`: a person's ordered triage rules (conditions on space, page title, title words, creator, due
  date; one action: set a project, approve into a column, dismiss or snooze), each switchable off.
- `confluence_pending_tasks`: the `snoozed` state with `snoozed_until` (a date in the person's time
  zone), `returned_from_snooze_at`, the rule that routed the row (`rule_id`, and its name kept), and
  the task's creator (`confluence_created_by`, for the "created by" condition).
- `tasks` (cards): `snoozed_until` and `returned_from_snooze_at`.
- `users`: `time_zone` (snoozes return at the person's midnight), and the calendar feed's token
  (its SHA-256 to find the person, encrypted to show the URL again) and whether it lists pending tasks.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_rules_owner_id_users"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("space_key", sa.String(255), nullable=True),
        sa.Column("title_has", sa.String(200), nullable=True),
        sa.Column("page_has", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("has_due", sa.Boolean(), nullable=True),
        sa.Column("due_within_days", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="SET NULL",
                                                            name="fk_rules_project_id_projects"), nullable=True),
        sa.Column("approve_to", sa.String(20), nullable=True),
        sa.Column("snooze_days", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.CheckConstraint("action IN ('project', 'approve', 'dismiss', 'snooze')", name=op.f("ck_rules_action")),
    )
    op.create_index("ix_rules_owner_id_position", "rules", ["owner_id", "position"])
    with op.batch_alter_table("confluence_pending_tasks") as batch:
        batch.drop_constraint(op.f("ck_confluence_pending_tasks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_confluence_pending_tasks_status"),
                                      "status IN ('pending', 'approved', 'dismissed', 'gone', 'snoozed')")
        batch.add_column(sa.Column("snoozed_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("returned_from_snooze_at", UTC, nullable=True))
        batch.add_column(sa.Column("rule_id", sa.Integer(), sa.ForeignKey(
            "rules.id", ondelete="SET NULL", name="fk_confluence_pending_tasks_rule_id_rules"), nullable=True))
        batch.add_column(sa.Column("rule_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("confluence_created_by", sa.String(128), nullable=True))
    # Plain ADD COLUMNs: a batch would rebuild `users` on SQLite, and dropping the old table with foreign
    # keys on would cascade to every connection and card.
    op.add_column("tasks", sa.Column("snoozed_until", sa.Date(), nullable=True))
    op.add_column("tasks", sa.Column("returned_from_snooze_at", UTC, nullable=True))
    op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("feed_token_hash", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("feed_token_enc", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("feed_include_pending", sa.Boolean(create_constraint=False), nullable=False,
                                     server_default=sa.false()))
    op.create_index("ix_users_feed_token_hash", "users", ["feed_token_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_feed_token_hash", table_name="users")
    for name in ("feed_include_pending", "feed_token_enc", "feed_token_hash", "time_zone"):
        op.drop_column("users", name)  # ALTER TABLE … DROP COLUMN (SQLite 3.35+), no rebuild
    op.drop_column("tasks", "returned_from_snooze_at")
    op.drop_column("tasks", "snoozed_until")
    op.execute("UPDATE confluence_pending_tasks SET status = 'pending' WHERE status = 'snoozed'")
    with op.batch_alter_table("confluence_pending_tasks") as batch:
        for name in ("confluence_created_by", "rule_name", "rule_id", "returned_from_snooze_at", "snoozed_until"):
            batch.drop_column(name)
        batch.drop_constraint(op.f("ck_confluence_pending_tasks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_confluence_pending_tasks_status"),
                                      "status IN ('pending', 'approved', 'dismissed', 'gone')")
    op.drop_index("ix_rules_owner_id_position", table_name="rules")
    op.drop_table("rules")
