"""Isolation between people, no secret in clear anywhere, hostile upstream values."""

import dataclasses
import json

import pytest
from sqlalchemy import select, text

from tests.conftest import oauth_connect
from trackli import audit, board, board_view, completion, connections, diagnostics, outbox, projects, queue, sync
from trackli.cli import main
from trackli.errors import NotFound
from trackli.models import Base, PendingTask
from trackli.simulator import ME, ME_API_TOKEN
from trackli.simulator.generate import OTHERS


def snapshot(ctx) -> dict:
    """Every row of every table, as text: what 'nothing changed' is checked against."""
    with ctx.session() as s:
        return {t.name: sorted(str(tuple(r)) for r in s.execute(t.select())) for t in Base.metadata.sorted_tables}


def test_another_users_ids_are_not_found_for_every_operation_and_nothing_changes(sim_ctx, user_id, other_user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(sim_ctx, conn)
    with sim_ctx.session() as s:
        project = projects.create_project(s, user_id, "Mine")
        pending = queue.list_pending(s, user_id)
        cards = queue.approve(s, user_id, [p.id for p in pending[:2]], project="Mine")
        board.move_card(s, user_id, cards[1].id, "done")
        queue.dismiss(s, user_id, [pending[2].id])
    completion.drain(sim_ctx)
    with sim_ctx.session() as s:
        projects.create_project(s, other_user_id, "Theirs")  # the intruder has a life of their own
    before = snapshot(sim_ctx)
    intruder = other_user_id
    attempts = {
        "edit pending": lambda s: queue.edit_pending(s, intruder, pending[3].id, title="mine now"),
        "approve": lambda s: queue.approve(s, intruder, [pending[3].id]),
        "dismiss": lambda s: queue.dismiss(s, intruder, [pending[3].id]),
        "restore": lambda s: queue.restore(s, intruder, [pending[2].id]),
        "move": lambda s: board.move_card(s, intruder, cards[0].id, "done"),
        "complete": lambda s: board.move_card(s, intruder, cards[0].id, "done"),
        "reopen": lambda s: board.move_card(s, intruder, cards[1].id, "todo"),
        "edit card": lambda s: board.edit_card(s, intruder, cards[0].id, title="x"),
        "delete card": lambda s: board.delete_card(s, intruder, cards[0].id),
        "retry sync": lambda s: completion.retry_card(s, intruder, cards[1].id),
        "rename project": lambda s: projects.rename_project(s, intruder, project.id, "x"),
        "use project": lambda s: board.create_card(s, intruder, "x", project_id=project.id),
        "get connection": lambda s: connections.get_connection(s, intruder, conn),
    }
    for name, attempt in attempts.items():
        try:
            with sim_ctx.session() as s:
                attempt(s)
        except NotFound:
            continue
        pytest.fail(f"{name}: reached another person's data")
    with pytest.raises(NotFound):
        connections.disconnect(sim_ctx, intruder, conn)
    with pytest.raises(NotFound):
        diagnostics.diagnose(sim_ctx, intruder, conn, live=True)
    with pytest.raises(NotFound):
        sync.sync_connection(sim_ctx, conn, user_id=intruder)
    assert snapshot(sim_ctx) == before
    with sim_ctx.session() as s:  # and nothing of the owner's shows up in the intruder's lists
        assert queue.list_pending(s, intruder, "all") == []
        assert board_view.list_cards(s, intruder) == []
        assert [p.name for p in projects.list_projects(s, intruder)] == ["Theirs"]
        assert connections.list_connections(s, intruder) == []
        assert sync.last_runs(s, intruder) == [] and outbox.entries(s, intruder, ("done",)) == []
        assert audit.query(s, intruder) == []
    assert completion.drain(sim_ctx, user_id=intruder).sent == 0


def test_the_cli_user_flag_obeys_the_same_rule(sim_ctx, user_id, other_user_id, sim, capsys):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(sim_ctx, conn)
    with sim_ctx.session() as s:
        [card] = queue.approve(s, user_id, [queue.list_pending(s, user_id)[0].id])
        pending_id = queue.list_pending(s, user_id)[0].id
    before = snapshot(sim_ctx)
    for argv in (["move", str(card.id), "done"], ["approve", str(pending_id)], ["dismiss", str(pending_id)],
                 ["edit", str(pending_id), "--title", "x"]):
        assert main([*argv, "--user", "other@example.com"]) == 1
        assert "not found" in capsys.readouterr().err
    assert main(["pending", "--user", "other@example.com", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert snapshot(sim_ctx) == before


def test_no_token_is_stored_or_logged_in_clear_after_a_full_flow(sim_ctx, user_id, sim, caplog):
    caplog.set_level("DEBUG")
    oauth_id = oauth_connect(sim_ctx, user_id, sim)
    # The same account by token would update the OAuth connection: a second account gets its own.
    other_token = "sim-api-token-of-kim"
    sim.state.accounts[OTHERS[0][0]].api_tokens.add(other_token)
    token_id = connections.connect_api_token(sim_ctx, user_id, sim.url, OTHERS[0][1], other_token)
    assert token_id != oauth_id
    sim.state.expire_access_tokens()
    for conn in (oauth_id, token_id):
        sync.sync_connection(sim_ctx, conn)
    with sim_ctx.session() as s:
        queue.approve(s, user_id, all_pending=True)
        for card in board_view.list_cards(s, user_id)[:3]:
            board.move_card(s, user_id, card.id, "done")
    completion.drain(sim_ctx)
    sim.state.revoke_all_refresh_tokens()
    sim.state.expire_access_tokens()
    failed = sync.sync_connection(sim_ctx, oauth_id)
    assert failed.outcome == "failed"
    d = diagnostics.diagnose(sim_ctx, user_id, oauth_id, live=True)

    secrets = {ME_API_TOKEN, other_token, sim.state.client_secret} | set(sim.state.access_tokens) | set(sim.state.refresh_tokens)
    assert len(secrets) > 4
    with sim_ctx.session() as s:
        dump = "\n".join(str(tuple(r)) for t in Base.metadata.sorted_tables for r in s.execute(t.select()))
    haystacks = {"database": dump, "log": caplog.text, "sync error": failed.error or "",
                 "diagnosis": json.dumps(dataclasses.asdict(d), default=str)}
    for where, text_ in haystacks.items():
        for secret in secrets:
            assert secret not in text_, f"a secret leaked into the {where}"


def test_over_long_and_malformed_upstream_values_are_cut_or_refused_with_a_record(sim_ctx, user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    container = next(iter(sim.state.content.values()))
    long = sim.state.add_task("x" * 10_000, assigned_to=ME[0], container=container)
    sim.state.add_task("Robert'); DROP TABLE tasks;-- \x00\x07 <script>alert(1)</script>", assigned_to=ME[0],
                       container=container)
    container.title = "T" * 3000
    result = sync.sync_connection(sim_ctx, conn)
    assert result.outcome == "ok" and result.clipped >= 2
    with sim_ctx.session() as s:
        row = s.scalar(select(PendingTask).where(PendingTask.confluence_task_id == long.id))
        assert len(row.task_title) == 500 and row.task_title.endswith("…")
        assert len(row.confluence_page_title) == 500
        hostile = s.scalar(select(PendingTask).where(PendingTask.task_title.like("Robert%")))
        assert hostile.task_title == "Robert'); DROP TABLE tasks;-- <script>alert(1)</script>"
        assert s.execute(text("SELECT count(*) FROM tasks")).scalar() == 0  # the table is still there
        entry = [e for e in audit.query(s, user_id) if e.event_type == "confluence.queue_updated"][0]
        assert entry.details["values_cut_to_fit"] >= 2
