"""Change versions (trackli.changes): every write that matters bumps the person's counter once, at
commit; reads, rollbacks and other people's writes do not."""

import pytest

from tests.syncing import waiting
from trackli import board, board_view, changes, projects, queue, sync
from trackli.errors import ValidationError


def versions(ctx, user_id):
    with ctx.session() as s:
        return changes.board_version(s, user_id), changes.queue_version(s, user_id)


def test_board_writes_bump_the_board_and_projects_bump_both(ctx, user_id, other_user_id):
    assert versions(ctx, user_id) == (0, 0)
    with ctx.session() as s:
        card = board.create_card(s, user_id, "one")
        board.move_card(s, user_id, card.id, "done")  # one unit of work: one bump
    assert versions(ctx, user_id) == (1, 0)
    with ctx.session() as s:
        board_view.list_cards(s, user_id)  # reading changes nothing
    assert versions(ctx, user_id) == (1, 0)
    with ctx.session() as s:
        projects.create_project(s, user_id, "Ops")
    assert versions(ctx, user_id) == (2, 1)
    with ctx.session() as s:
        board.create_card(s, other_user_id, "theirs")
    assert versions(ctx, user_id) == (2, 1) and versions(ctx, other_user_id) == (1, 0)


def test_a_rolled_back_change_does_not_bump(ctx, user_id):
    with pytest.raises(ValidationError):
        with ctx.session() as s:
            board.create_card(s, user_id, "kept?")
            board.create_card(s, user_id, "")  # refused: the whole unit rolls back
    assert versions(ctx, user_id) == (0, 0)


def test_sync_and_queue_actions_bump_the_queue_and_the_board(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    after_sync = versions(sim_ctx, user_id)
    assert after_sync[1] >= 1  # the bulk-inserted queue rows count
    sync.sync_connection(sim_ctx, token_connection)  # nothing changed upstream: nothing to show
    assert versions(sim_ctx, user_id) == after_sync
    row = waiting(sim_ctx, user_id)[0]
    with sim_ctx.session() as s:
        queue.edit_pending(s, user_id, row.id, title="Mine now")
    assert versions(sim_ctx, user_id)[1] == after_sync[1] + 1
    with sim_ctx.session() as s:
        queue.approve(s, user_id, [row.id])
    assert versions(sim_ctx, user_id) == (after_sync[0] + 1, after_sync[1] + 2)
