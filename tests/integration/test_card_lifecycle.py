"""After approval: a card can be unlinked, sent back to the queue, archived or deleted, and says when
its Confluence task is gone upstream (trackli.board, trackli.queue, trackli.sync)."""

import pytest
from sqlalchemy import select

from tests.syncing import approve_some, waiting
from trackli import board, board_view, completion, projects, queue, sync
from trackli.errors import NotFound, ValidationError
from trackli.models import Card, OutboxEntry, PendingTask


def _card(ctx, card_id):
    with ctx.session() as s:
        return board_view.card_view(s, s.get_one(Card, card_id).owner_id, card_id)


def test_a_task_deleted_or_reassigned_upstream_marks_its_card_gone_and_back_if_reassigned_again(
        sim_ctx, user_id, token_connection, sim):
    deleted, moved_away, kept = approve_some(sim_ctx, user_id, token_connection, 3)
    remote = {i: _card(sim_ctx, i).confluence_task_id for i in (deleted, moved_away, kept)}
    sim.state.delete_task(remote[deleted])
    mine = sim.state.tasks[remote[moved_away]].assigned_to
    sim.state.update_task(remote[moved_away], assigned_to="someone-else")
    assert sync.sync_connection(sim_ctx, token_connection).outcome == "ok"
    assert _card(sim_ctx, deleted).gone_reason and _card(sim_ctx, moved_away).gone_reason
    assert _card(sim_ctx, kept).gone_reason is None
    # A move of a gone card stays local: there is nothing upstream to tell.
    with sim_ctx.session() as s:
        board.move_card(s, user_id, deleted, "done")
        assert s.scalar(select(OutboxEntry.id).where(OutboxEntry.card_id == deleted)) is None
    with pytest.raises(ValidationError, match="gone from Confluence"):
        with sim_ctx.session() as s:
            completion.retry_card(s, user_id, deleted)
    sim.state.update_task(remote[moved_away], assigned_to=mine)
    sync.sync_connection(sim_ctx, token_connection)
    assert _card(sim_ctx, moved_away).gone_reason is None


def test_unlink_keeps_a_local_card_that_sends_nothing_more(sim_ctx, user_id, token_connection, sim):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    remote = _card(sim_ctx, card_id).confluence_task_id
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")  # a completion waits in the outbox
        board.unlink_card(s, user_id, card_id)
    completion.drain(sim_ctx, user_id=user_id)
    assert sim.state.tasks[remote].status == "incomplete"
    card = _card(sim_ctx, card_id)
    assert (card.source, card.confluence_task_id, card.sync_state, card.status) == ("manual", None, "none", "done")
    assert card.confluence_url  # the link stays, for reference
    sim.state.delete_task(remote)
    sync.sync_connection(sim_ctx, token_connection)  # neither re-queued nor marked gone
    assert _card(sim_ctx, card_id).gone_reason is None
    assert all(r.confluence_task_id != remote for r in waiting(sim_ctx, user_id))
    with pytest.raises(ValidationError, match="not linked"):
        with sim_ctx.session() as s:
            board.unlink_card(s, user_id, card_id)


def test_send_back_returns_the_task_to_the_queue_with_the_cards_edits(sim_ctx, user_id, token_connection):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        project = projects.create_project(s, user_id, "Platform")
        board.edit_card(s, user_id, card_id, title="Renamed here", project_id=project.id)
        row = queue.send_back(s, user_id, card_id)
        row_id = row.id
    with sim_ctx.session() as s:
        assert s.get(Card, card_id) is None
        row = s.get_one(PendingTask, row_id)
        assert (row.status, row.task_title, row.project_id) == ("pending", "Renamed here", project.id)
        assert "title" in row.edited_fields
    sync.sync_connection(sim_ctx, token_connection)  # upstream does not undo the person's title
    with sim_ctx.session() as s:
        assert s.get_one(PendingTask, row_id).task_title == "Renamed here"
    with sim_ctx.session() as s:
        manual = board.create_card(s, user_id, "mine").id
    with pytest.raises(ValidationError, match="only a card approved"):
        with sim_ctx.session() as s:
            queue.send_back(s, user_id, manual)


def test_a_done_card_is_not_sent_back_until_it_is_reopened(sim_ctx, user_id, token_connection):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")
    with pytest.raises(ValidationError, match="move it out of Done first"):
        with sim_ctx.session() as s:
            queue.send_back(s, user_id, card_id)


def test_delete_is_audited_and_the_task_does_not_come_back(sim_ctx, user_id, token_connection):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    before = len(waiting(sim_ctx, user_id))
    with sim_ctx.session() as s:
        board.delete_card(s, user_id, card_id)
    sync.sync_connection(sim_ctx, token_connection)
    assert len(waiting(sim_ctx, user_id)) == before


# ---- Undo on the board: archive, delete and send back put everything back ---------------------------

def test_undo_of_a_delete_brings_the_card_back_with_its_id_place_link_and_unsent_completion(
        sim_ctx, user_id, token_connection, sim):
    first, middle, last = approve_some(sim_ctx, user_id, token_connection, 3)
    remote = _card(sim_ctx, middle).confluence_task_id
    with sim_ctx.session() as s:
        board.move_card(s, user_id, middle, "done", send_after_s=60)  # its completion waits (an Undo window)
        board.move_card(s, user_id, middle, "in_progress")
        board.move_card(s, user_id, middle, "done", send_after_s=60)
        place = board.place_of(s, user_id, middle)
        kept = board.delete_card(s, user_id, middle)
    with sim_ctx.session() as s:
        assert s.get(Card, middle) is None
        assert s.scalar(select(OutboxEntry.id).where(OutboxEntry.card_id == middle)) is None  # went with it
    sync.sync_connection(sim_ctx, token_connection)  # the task stays approved: it does not come back
    assert all(r.confluence_task_id != remote for r in waiting(sim_ctx, user_id))
    with sim_ctx.session() as s:
        card = board.undelete_card(s, user_id, kept)
        assert card.id == middle
    with sim_ctx.session() as s:
        assert board.place_of(s, user_id, middle) == place
        row = s.scalar(select(PendingTask).where(PendingTask.confluence_task_id == remote))
        assert (row.status, row.card_id) == ("approved", middle)  # linked again: a sync updates this card
        assert s.get_one(Card, middle).sync_state == "waiting"
    completion.drain(sim_ctx, user_id=user_id)  # its completion, lost with the delete, is sent after all
    assert sim.state.tasks[remote].status == "complete"
    with pytest.raises(ValidationError, match="already back"):
        with sim_ctx.session() as s:
            board.undelete_card(s, user_id, kept)


def test_undo_of_a_delete_is_only_the_owners(ctx, user_id, other_user_id):
    with ctx.session() as s:
        kept = board.delete_card(s, user_id, board.create_card(s, user_id, "mine").id)
    with pytest.raises(NotFound):
        with ctx.session() as s:
            board.undelete_card(s, other_user_id, kept)


def test_undo_of_an_archive_puts_the_card_back_where_it_sat(ctx, user_id):
    with ctx.session() as s:
        a, b, c = (board.create_card(s, user_id, t).id for t in ("a", "b", "c"))
        place = board.place_of(s, user_id, b)
        board.archive_card(s, user_id, b)
    with ctx.session() as s:
        board.unarchive_to(s, user_id, b, place)
    with ctx.session() as s:
        assert [card.id for card in board_view.list_cards(s, user_id)] == [a, b, c]
        place = board.place_of(s, user_id, b)
        board.archive_card(s, user_id, b)
        board.delete_card(s, user_id, c)  # the card it sat above is gone: back at its column's end
        board.unarchive_to(s, user_id, b, place)
        assert [card.id for card in board_view.list_cards(s, user_id)] == [a, b]


def test_undo_of_a_send_back_restores_the_card_and_its_approval(sim_ctx, user_id, token_connection):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.edit_card(s, user_id, card_id, description="my note")
        sent = queue.send_back_undoable(s, user_id, card_id)
    assert card_id not in {c.id for c in _cards(sim_ctx, user_id)}
    with sim_ctx.session() as s:
        queue.undo_send_back(s, user_id, sent)
    card = _card(sim_ctx, card_id)
    assert (card.note, card.status) == ("my note", "todo")
    with sim_ctx.session() as s:
        row = s.get_one(PendingTask, sent.row.pending_id)
        assert (row.status, row.card_id) == ("approved", card_id)
    # Sent back, then dismissed by the person: Undo of the send back leaves that choice alone.
    with sim_ctx.session() as s:
        sent = queue.send_back_undoable(s, user_id, card_id)
        queue.dismiss(s, user_id, [sent.row.pending_id])
    with pytest.raises(ValidationError, match="since it was sent back"):
        with sim_ctx.session() as s:
            queue.undo_send_back(s, user_id, sent)


def _cards(ctx, user_id):
    with ctx.session() as s:
        return board_view.list_cards(s, user_id)
