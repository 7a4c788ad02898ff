"""Completion sync (trackli.completion): a move reaches Confluence once, through the outbox, whatever fails."""

import threading

from sqlalchemy import func, select

from tests.syncing import approve_some
from trackli import board, completion, sync
from trackli.models import AuditEntry, Card, OutboxEntry


def test_completion_round_trip_and_upstream_completion(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 3)
    with sim_ctx.session() as s:
        moved = board.move_card(s, user_id, cards[0], "done")
        assert moved.sync_state == "waiting"
        remote = moved.confluence_task_id
    result = completion.drain(sim_ctx)
    assert (result.sent, result.failed) == (1, 0)
    assert sim.state.tasks[remote].status == "complete"
    with sim_ctx.session() as s:
        assert s.get(Card, cards[0]).sync_state == "synced"
        board.move_card(s, user_id, cards[0], "in_progress")
    completion.drain(sim_ctx)
    assert sim.state.tasks[remote].status == "incomplete"

    # Completed in Confluence: the card moves to done without a PUT back.
    other = None
    with sim_ctx.session() as s:
        other = s.get(Card, cards[1])
    sim.state.update_task(other.confluence_task_id, status="complete")
    sim.state.reset_log()
    result = sync.sync_connection(sim_ctx, token_connection)
    assert result.completed_upstream == 1
    assert sim.state.api_requests("PUT task") == []
    with sim_ctx.session() as s:
        card = s.get(Card, cards[1])
        assert (card.status, card.sync_state) == ("done", "synced")
    assert completion.drain(sim_ctx).sent == 0


def test_reopened_upstream_after_done_here_is_a_conflict(sim_ctx, user_id, token_connection, sim):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    completion.drain(sim_ctx)
    sim.state.update_task(remote, status="incomplete")
    assert sync.sync_connection(sim_ctx, token_connection).conflicts == 1
    with sim_ctx.session() as s:
        card = s.get(Card, card_id)
        assert (card.status, card.sync_state) == ("done", "conflict")
        completion.resolve_conflict(s, user_id, card_id, "here")
    completion.drain(sim_ctx)
    assert sim.state.tasks[remote].status == "complete"
    with sim_ctx.session() as s:
        assert s.get(Card, card_id).sync_state == "synced"


def test_flapping_sends_one_request_per_settled_change(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 2)
    with sim_ctx.session() as s:
        for status in ("done", "todo", "done", "in_progress", "done"):
            board.move_card(s, user_id, cards[0], status)
        for status in ("done", "todo"):  # back where it started: nothing to send
            board.move_card(s, user_id, cards[1], status)
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 1
        assert s.get(Card, cards[1]).sync_state == "synced"
    sim.state.reset_log()
    completion.drain(sim_ctx)
    puts = sim.state.api_requests("PUT task")
    assert len(puts) == 1
    with sim_ctx.session() as s:
        assert sim.state.tasks[s.get(Card, cards[0]).confluence_task_id].status == "complete"


def test_three_concurrent_drainers_send_each_change_once(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 20)
    with sim_ctx.session() as s:
        for card_id in cards:
            board.move_card(s, user_id, card_id, "done")
    sim.state.knobs.latency_ms = 20
    sim.state.reset_log()
    totals = []
    threads = [threading.Thread(target=lambda: totals.append(completion.drain(sim_ctx).sent)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 20
    assert len(sim.state.api_requests("PUT task")) == 20
    with sim_ctx.session() as s:
        assert set(s.scalars(select(Card.sync_state))) == {"synced"}


def test_a_completion_survives_a_crash_between_move_and_send(sim_ctx, user_id, token_connection, sim, env, tmp_path):
    import subprocess, sys, os

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    # This process "crashes" here; a new process delivers the change.
    out = subprocess.run([sys.executable, "-m", "trackli", "outbox", "--drain", "--json"],
                         env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert sim.state.tasks[remote].status == "complete"


def test_an_interrupted_send_is_reclaimed_after_its_lease(sim_ctx, user_id, token_connection, sim):
    import datetime as dt

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")
        entry = s.scalar(select(OutboxEntry))
        entry.state, entry.lease_until = "sending", dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert completion.drain(sim_ctx).sent == 1


def test_permanent_failures_are_shown_and_can_be_retried(sim_ctx, user_id, token_connection, sim):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    sim.state.tasks[remote].editable_by = {"nobody"}
    result = completion.drain(sim_ctx)
    assert result.failed == 1
    with sim_ctx.session() as s:
        card = s.get(Card, card_id)
        assert card.sync_state == "failed" and "may not edit" in card.sync_error
        assert s.scalar(select(AuditEntry).where(AuditEntry.event_type == "confluence.task_update_failed"))
    sim.state.tasks[remote].editable_by = None
    with sim_ctx.session() as s:
        completion.retry_card(s, user_id, card_id)
    assert completion.drain(sim_ctx).sent == 1
    assert sim.state.tasks[remote].status == "complete"


def test_transient_failures_back_off_and_keep_the_change(sim_ctx, user_id, token_connection, sim):
    from trackli.atlassian.client import RetryPolicy

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")
    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds = 1.0, ("502",)
    result = completion.drain(sim_ctx, retry=RetryPolicy(tries=2, base_delay=0.001))
    assert result.retrying == 1
    with sim_ctx.session() as s:
        entry = s.scalar(select(OutboxEntry))
        card = s.get(Card, card_id)
        assert entry.state == "pending" and entry.attempts == 1 and entry.next_attempt_at > entry.updated_at
        assert card.sync_state == "waiting" and card.sync_error.startswith("Retrying")


def test_a_move_into_done_waits_out_its_undo_window_and_an_undone_drop_sends_nothing(sim_ctx, user_id,
                                                                                    token_connection, sim):
    import time

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done", send_after_s=10).confluence_task_id
    sim.state.reset_log()
    assert completion.drain(sim_ctx).sent == 0  # inside the window: not claimed
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "todo")  # Undo: back before the window ended
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0
        assert s.get(Card, card_id).sync_state == "synced"
    assert completion.drain(sim_ctx).sent == 0 and sim.state.api_requests("PUT task") == []
    assert sim.state.tasks[remote].status == "incomplete"  # the accidental drop never reached Confluence
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done", send_after_s=0.3)
    time.sleep(0.4)
    assert completion.drain(sim_ctx).sent == 1 and sim.state.tasks[remote].status == "complete"
