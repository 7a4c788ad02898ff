"""One word per thing: the outbox names the card it speaks for `card_id` (it was `task_id`, which in
Trackli's code means a Confluence task). The seed's own column names (`tasks`, `trackli_task_id`) stay.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    # RENAME COLUMN keeps the foreign key and the partial unique index (SQLite 3.25+ and PostgreSQL alike);
    # the plain index is named after the column, so it is made again under its new name.
    op.drop_index(f"ix_completion_outbox_{old}", table_name="completion_outbox")
    op.alter_column("completion_outbox", old, new_column_name=new)
    op.create_index(f"ix_completion_outbox_{new}", "completion_outbox", [new])
    if op.get_bind().dialect.name == "postgresql":  # the foreign key's name follows the naming convention too
        op.execute(f"ALTER TABLE completion_outbox RENAME CONSTRAINT fk_completion_outbox_{old}_tasks "
                   f"TO fk_completion_outbox_{new}_tasks")


def upgrade() -> None:
    _rename("task_id", "card_id")


def downgrade() -> None:
    _rename("card_id", "task_id")
