"""One connection per person, Atlassian site and account: merge the duplicates connecting twice made

Connecting the same site and account twice (by OAuth and by API token, or a demo restarted on other
ports) used to add a second connection that fetched every task again. Each group of such duplicates
becomes its oldest connection, holding the newest credentials. Nothing is lost: a queue row the
keeper lacks moves over; of two rows for one task the one the person decided on (approved, dismissed,
edited) wins; a second card for one task stays on the board as a local card; unsent completions and
sync runs move with their cards and connections. A unique index keeps it that way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
import json

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

DECIDED = {"approved": 3, "dismissed": 2, "pending": 1, "gone": 0}
CREDENTIALS = ("kind", "site_url", "site_name", "account_email", "account_name", "access_token_enc",
               "refresh_token_enc", "token_expires_at", "scopes", "status", "last_error")


def _edits(value) -> list:
    if isinstance(value, str):  # SQLite hands JSON back as text
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def _site(url: str | None) -> str:
    return (url or "").strip().rstrip("/").lower().removesuffix("/wiki")


def _groups(conns: list) -> list[list]:
    """Connections of one person and account that share a cloud id or a site address."""
    parent = {c.id: c.id for c in conns}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in conns:
        for b in conns:
            if a.id < b.id and a.user_id == b.user_id and a.account_id and a.account_id == b.account_id and (
                    (a.cloud_id and a.cloud_id == b.cloud_id) or _site(a.site_url) == _site(b.site_url)):
                parent[find(b.id)] = find(a.id)
    groups: dict[int, list] = {}
    for c in conns:
        groups.setdefault(find(c.id), []).append(c)
    return [sorted(g, key=lambda c: c.id) for g in groups.values() if len(g) > 1]


def _merge(bind, keeper, dup) -> None:
    x = bind.execute
    rows = {r.confluence_task_id: r for r in x(sa.text(
        "SELECT id, confluence_task_id, status, edited_fields, trackli_task_id FROM confluence_pending_tasks "
        "WHERE connection_id = :c"), {"c": keeper.id})}
    for row in x(sa.text("SELECT id, confluence_task_id, status, edited_fields FROM confluence_pending_tasks "
                         "WHERE connection_id = :c"), {"c": dup.id}).all():
        mine = rows.get(row.confluence_task_id)
        if mine is None:
            x(sa.text("UPDATE confluence_pending_tasks SET connection_id = :k WHERE id = :i"), {"k": keeper.id, "i": row.id})
            continue
        if DECIDED.get(row.status, 0) > DECIDED.get(mine.status, 0) or (
                DECIDED.get(row.status) == DECIDED.get(mine.status) and _edits(row.edited_fields)
                and not _edits(mine.edited_fields)):
            # The duplicate carries the person's decision or edits: it takes the keeper's place.
            x(sa.text("DELETE FROM confluence_pending_tasks WHERE id = :i"), {"i": mine.id})
            x(sa.text("UPDATE confluence_pending_tasks SET connection_id = :k WHERE id = :i"), {"k": keeper.id, "i": row.id})
        else:
            x(sa.text("DELETE FROM confluence_pending_tasks WHERE id = :i"), {"i": row.id})

    linked = set(x(sa.text("SELECT confluence_task_id FROM tasks WHERE connection_id = :c AND confluence_task_id IS NOT NULL"),
                   {"c": keeper.id}).scalars())
    for card in x(sa.text("SELECT id, confluence_task_id FROM tasks WHERE connection_id = :c"), {"c": dup.id}).all():
        if card.confluence_task_id not in linked:
            x(sa.text("UPDATE tasks SET connection_id = :k WHERE id = :i"), {"k": keeper.id, "i": card.id})
            linked.add(card.confluence_task_id)
            continue
        # A second card for the same task: it stays on the board, as a card of the person's own.
        x(sa.text("UPDATE tasks SET connection_id = NULL, confluence_task_id = NULL, source = 'manual', "
                  "sync_state = 'none', sync_error = NULL WHERE id = :i"), {"i": card.id})
        x(sa.text("UPDATE completion_outbox SET state = 'done', last_error = 'merged into the card linked to this task' "
                  "WHERE task_id = :i AND state IN ('pending', 'sending')"), {"i": card.id})
    x(sa.text("UPDATE completion_outbox SET connection_id = :k WHERE connection_id = :c"), {"k": keeper.id, "c": dup.id})
    x(sa.text("UPDATE sync_runs SET outcome = 'abandoned' WHERE connection_id = :c AND outcome = 'running'"), {"c": dup.id})
    x(sa.text("UPDATE sync_runs SET connection_id = :k WHERE connection_id = :c"), {"k": keeper.id, "c": dup.id})
    x(sa.text("UPDATE oauth_states SET connection_id = :k WHERE connection_id = :c"), {"k": keeper.id, "c": dup.id})
    x(sa.text("DELETE FROM atlassian_connections WHERE id = :c"), {"c": dup.id})


def upgrade() -> None:
    bind = op.get_bind()
    conns = bind.execute(sa.text(
        "SELECT id, user_id, account_id, cloud_id, site_url, updated_at FROM atlassian_connections ORDER BY id")).all()
    for group in _groups(list(conns)):
        keeper, newest = group[0], max(group, key=lambda c: (c.updated_at is not None, c.updated_at, c.id))
        if newest.id != keeper.id:  # the keeper takes the newest credentials
            columns = ", ".join(f"{c} = (SELECT {c} FROM atlassian_connections WHERE id = :n)" for c in CREDENTIALS)
            bind.execute(sa.text(f"UPDATE atlassian_connections SET {columns} WHERE id = :k"), {"n": newest.id, "k": keeper.id})
        cloud = next((c.cloud_id for c in group if c.cloud_id), None)
        if cloud:
            bind.execute(sa.text("UPDATE atlassian_connections SET cloud_id = :cloud WHERE id = :k"),
                         {"cloud": cloud, "k": keeper.id})
        for dup in group[1:]:
            _merge(bind, keeper, dup)
    with op.batch_alter_table('atlassian_connections', schema=None) as batch_op:
        batch_op.create_index('uq_atlassian_connections_user_site_account', ['user_id', 'cloud_id', 'account_id'],
                              unique=True)


def downgrade() -> None:
    with op.batch_alter_table('atlassian_connections', schema=None) as batch_op:
        batch_op.drop_index('uq_atlassian_connections_user_site_account')
