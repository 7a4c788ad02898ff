"""The approval queue (trackli.queue): edit, approve, dismiss, restore, against a synced queue."""

import pytest
from sqlalchemy import func, select

from tests.syncing import waiting
from trackli import board, queue, sync
from trackli.errors import NotFound, ValidationError
from trackli.models import Card
from trackli.simulator import ME


def test_queue_operations_validate_and_approve_is_idempotent(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    rows = waiting(sim_ctx, user_id)
    with sim_ctx.session() as s:
        p = board.create_project(s, user_id, "Inbox")
    for bad, message in ((dict(title=" "), "must not be empty"), (dict(title="x" * 501), "at most 500"),
                         (dict(due_date="2026-13-01"), "not a date"), (dict(project="Nope"), "not found")):
        with pytest.raises((ValidationError, NotFound), match=message):
            with sim_ctx.session() as s:
                queue.edit_pending(s, user_id, rows[0].id, **bad)
    with sim_ctx.session() as s:
        first = queue.approve(s, user_id, [rows[0].id, rows[1].id], project="Inbox")
    with sim_ctx.session() as s:
        again = queue.approve(s, user_id, [rows[0].id, rows[1].id])
    assert sorted(c.id for c in first) == sorted(c.id for c in again)
    with sim_ctx.session() as s:
        cards = s.scalars(select(Card)).all()
        assert len(cards) == 2
        card = cards[0]
        assert (card.source, card.project_id, card.sync_state, card.connection_id) == ("confluence", p.id, "synced", token_connection)
        assert card.confluence_task_id in {rows[0].confluence_task_id, rows[1].confluence_task_id}
        assert card.confluence_page_title and card.confluence_space_key
    with sim_ctx.session() as s:
        queue.dismiss(s, user_id, [rows[2].id])
    with pytest.raises(ValidationError, match="restore them first"):
        with sim_ctx.session() as s:
            queue.approve(s, user_id, [rows[2].id])
    with sim_ctx.session() as s:
        assert queue.restore(s, user_id, [rows[2].id]) == 1
    assert len(waiting(sim_ctx, user_id)) == 28
    sync.sync_connection(sim_ctx, token_connection)  # approved tasks are never queued again
    assert len(waiting(sim_ctx, user_id)) == 28 and len(waiting(sim_ctx, user_id, "approved")) == 2


def test_bulk_approve_of_a_thousand_rows_in_one_transaction(sim_ctx, user_id, token_connection, sim):
    container = next(iter(sim.state.content.values()))
    for n in range(970):
        sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=container)
    sync.sync_connection(sim_ctx, token_connection)
    ids = [r.id for r in waiting(sim_ctx, user_id)]
    assert len(ids) == 1000
    with sim_ctx.session() as s:
        cards = queue.approve(s, user_id, ids)
    assert len(cards) == 1000
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 1000
        positions = sorted(s.scalars(select(Card.position)))
        assert positions == list(range(1000))
    assert waiting(sim_ctx, user_id) == []


def test_other_users_ids_are_not_found_and_nothing_changes(sim_ctx, user_id, other_user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    row = waiting(sim_ctx, user_id)[0]
    for action in (lambda s: queue.edit_pending(s, other_user_id, row.id, title="hijack"),
                   lambda s: queue.approve(s, other_user_id, [row.id]),
                   lambda s: queue.dismiss(s, other_user_id, [row.id]),
                   lambda s: queue.restore(s, other_user_id, [row.id])):
        with pytest.raises(NotFound):
            with sim_ctx.session() as s:
                action(s)
    with pytest.raises(NotFound):
        sync.sync_connection(sim_ctx, token_connection, user_id=other_user_id)
    assert waiting(sim_ctx, user_id)[0] == row
