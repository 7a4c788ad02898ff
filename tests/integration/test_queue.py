"""The approval queue (trackli.queue): edit, approve, dismiss, restore, against a synced queue."""

import pytest
from sqlalchemy import func, select

from tests.syncing import waiting
from trackli import board, board_view, positions, projects, queue, sync
from trackli.errors import NotFound, ValidationError
from trackli.models import Card
from trackli.simulator import ME


def test_queue_operations_validate_and_approve_is_idempotent(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    rows = waiting(sim_ctx, user_id)
    with sim_ctx.session() as s:
        p = projects.create_project(s, user_id, "Inbox")
    for bad, message in ((dict(title=" "), "must not be empty"), (dict(title="x" * 501), "at most 500"),
                         (dict(due_date="2026-13-01"), "not a date"), (dict(project=999999), "not found")):
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
        spread = sorted(s.scalars(select(Card.position)))
        assert spread == list(range(0, 1000 * positions.GAP, positions.GAP))  # spread apart, so a move writes one row
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


def test_undo_puts_approved_dismissed_and_restored_rows_back_exactly_and_removes_untouched_cards(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    ids = [r.id for r in waiting(sim_ctx, user_id)]
    with sim_ctx.session() as s:
        queue.dismiss(s, user_id, ids[:2])
    with sim_ctx.session() as s:
        before = queue.snapshot(s, user_id, ids[:6])
        cards = queue.approve(s, user_id, ids[2:6])
    with sim_ctx.session() as s:
        board.move_card(s, user_id, cards[0].id, "in_progress")  # worked on since: it stays
        worked = next(r.id for r in queue.list_pending(s, user_id, "approved") if r.card_id == cards[0].id)
    with sim_ctx.session() as s:
        undone = queue.put_back(s, user_id, before)
    assert (undone.rows, undone.cards_removed, undone.kept) == (5, 3, [worked])
    with sim_ctx.session() as s:
        states = {r.id: r.state for r in queue.list_pending(s, user_id, "all")}
        assert [states[i] for i in ids[:2]] == ["dismissed", "dismissed"]
        assert sorted(states[i] for i in ids[2:6]) == ["approved", "pending", "pending", "pending"]
        assert states[worked] == "approved"
        assert [c.id for c in board_view.list_cards(s, user_id)] == [cards[0].id]
    with sim_ctx.session() as s:
        before = queue.snapshot(s, user_id, ids[:2])
        queue.restore(s, user_id, ids[:2])
    with sim_ctx.session() as s:
        queue.put_back(s, user_id, before)
    assert [r.id for r in waiting(sim_ctx, user_id, "dismissed")] == ids[:2]


def test_search_matches_every_word_in_any_order_and_takes_wildcards_literally(sim_ctx, user_id, token_connection, sim):
    container = next(iter(sim.state.content.values()))
    for title in ("Zebra review 100% done", "Review the zebra", "zebra_v2 draft", "zebraXv2 draft"):
        sim.state.add_task(title, assigned_to=ME[0], container=container)
    sync.sync_connection(sim_ctx, token_connection)

    def titles(text):
        with sim_ctx.session() as s:
            return sorted(r.title for r in queue.list_pending(s, user_id, text=text))

    assert titles("  review   ZEBRA ") == ["Review the zebra", "Zebra review 100% done"]
    assert titles("100%") == ["Zebra review 100% done"]
    assert titles("zebra_v2") == ["zebra_v2 draft"]
    assert titles("%") == ["Zebra review 100% done"]


def test_a_project_typed_in_the_queue_is_found_in_any_case_or_created(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    rows = waiting(sim_ctx, user_id)
    with sim_ctx.session() as s:
        ops = projects.create_project(s, user_id, "Ops")
    with sim_ctx.session() as s:
        assert queue.edit_pending(s, user_id, rows[0].id, project="ops").project_id == ops.id  # not a second "ops"
        platform = queue.edit_pending(s, user_id, rows[1].id, project="Platform").project_id
    with sim_ctx.session() as s:
        assert sorted(p.name for p in projects.list_projects(s, user_id)) == ["Ops", "Platform"]
        cards = queue.approve(s, user_id, [rows[2].id], project="Research")  # the bulk picker's new name
        assert projects.get_project(s, user_id, cards[0].project_id).name == "Research"
    with pytest.raises(ValidationError, match="already have a project"):
        with sim_ctx.session() as s:
            projects.create_project(s, user_id, "OPS")
    assert platform is not None
