"""The names of the people who create the person's tasks (Atlassian's users-bulk look-up), per connection:
rules and the queue name them instead of showing an account id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_names",
        sa.Column("connection_id", sa.Integer(), sa.ForeignKey(
            "atlassian_connections.id", ondelete="CASCADE", name="fk_person_names_connection_id_atlassian_connections"),
            nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "account_id", name="pk_person_names"),
    )


def downgrade() -> None:
    op.drop_table("person_names")
