"""Helpers shared by the tests that sync against the simulated Atlassian."""

from trackli import queue, sync


def waiting(ctx, user_id, state="pending"):
    """The person's queue rows in `state`."""
    with ctx.session() as s:
        return queue.list_pending(s, user_id, state)


def approve_some(ctx, user_id, connection, n):
    """Sync, then approve the first `n` pending tasks; the new cards' ids."""
    sync.sync_connection(ctx, connection)
    with ctx.session() as s:
        return [c.id for c in queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:n]])]
