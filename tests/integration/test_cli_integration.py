import json


from tests.integration.test_cli import run
from trackli.simulator import ME, ME_API_TOKEN


def j(capsys, *argv, code=0):
    got, out, err = run(capsys, *argv, "--json")
    assert got == code, err
    return json.loads(out) if out else None


def test_every_integration_verb_with_its_json_shape(ctx, sim, capsys):
    conn = j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    assert set(conn) == {"id", "site_url", "account_id", "status"} and conn["status"] == "ok"

    [result] = j(capsys, "sync")
    assert set(result) >= {"connection_id", "outcome", "new", "updated", "unchanged", "gone", "requests", "duration_s", "error"}
    assert (result["outcome"], result["new"], result["error"]) == ("ok", 30, None)

    rows = j(capsys, "pending")
    assert len(rows) == 30
    assert set(rows[0]) == {"id", "confluence_task_id", "title", "due_date", "page_title", "space_key", "space_name",
                            "url", "state", "project", "rule", "snoozed_until", "returned_from_snooze"}
    first, second, third = rows[0]["id"], rows[1]["id"], rows[2]["id"]

    j(capsys, "projects", "add", "Ops")
    edited = j(capsys, "edit", str(first), "--title", "Mine now", "--due", "none", "--project", "Ops")
    assert (edited["title"], edited["due_date"], edited["project"]) == ("Mine now", None, "Ops")

    cards = j(capsys, "approve", str(first), str(second))
    assert "Mine now" in [c["title"] for c in cards] and {c["source"] for c in cards} == {"confluence"}
    assert set(cards[0]) >= {"id", "title", "status", "project", "due_date", "source", "confluence_task_id", "sync_state"}

    assert j(capsys, "dismiss", str(third)) == {"dismissed": 1}
    assert [r["id"] for r in j(capsys, "pending", "--state", "dismissed")] == [third]
    assert j(capsys, "restore", str(third)) == {"restored": 1}

    cards.sort(key=lambda c: c["title"] != "Mine now")
    moved = j(capsys, "move", str(cards[0]["id"]), "done")
    assert moved["sync_state"] == "waiting"
    box = j(capsys, "outbox")
    assert [e["desired_status"] for e in box["entries"]] == ["complete"] and box["drained"] is None
    box = j(capsys, "outbox", "--drain")
    assert box["drained"]["sent"] == 1 and box["entries"] == []
    assert sim.state.tasks[cards[0]["confluence_task_id"]].status == "complete"

    tasks = j(capsys, "tasks")
    assert {t["sync_state"] for t in tasks} == {"synced"}
    events = [e["event_type"] for e in j(capsys, "audit", "--limit", "100")]
    assert {"connection.created", "confluence.tasks_fetched", "confluence.task_completed"} <= set(events)

    approved_all = j(capsys, "approve", "--all")
    assert len(approved_all) == 28


def test_exit_codes_user_error_1_remote_error_2(ctx, sim, capsys):
    code, out, err = run(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", "wrong", "--json")
    assert code == 2 and out == "" and "refused this email and API token" in err
    code, _, err = run(capsys, "connect", "token", "--site", "http://example.com", "--email", ME[1], "--token", "x")
    assert code == 1 and "https" in err
    code, _, err = run(capsys, "sync")
    assert code == 1 and "no Atlassian connection" in err
    code, _, err = run(capsys, "approve")
    assert code == 1 and "--all" in err
    code, _, err = run(capsys, "edit", "5")
    assert code == 1 and "nothing to change" in err
    code, _, err = run(capsys, "approve", "12345")
    assert code == 1 and "not found" in err
    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    sim.state.accounts[ME[0]].api_tokens.clear()  # token revoked upstream
    code, out, err = run(capsys, "sync", "--json")
    assert code == 2 and json.loads(out)[0]["outcome"] == "failed"


def test_worker_once_syncs_and_drains(ctx, sim, capsys):
    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    summary = j(capsys, "worker", "--once", "--every", "0")
    assert summary["synced"][0]["new"] == 30 and summary["drained"]["sent"] == 0 and summary["errors"] == []


def test_a_sync_already_running_exits_2_and_says_so(ctx, sim, capsys):
    from trackli.models import SyncRun, utcnow

    conn = j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)["id"]
    with ctx.session() as s:
        s.add(SyncRun(connection_id=conn, user_id=1, trigger="scheduled", started_at=utcnow(),
                      heartbeat_at=utcnow(), outcome="running"))
    code, out, err = run(capsys, "sync", "--json")
    assert code == 2 and json.loads(out)[0]["outcome"] == "already_running"
    assert "already running" in json.loads(err)["error"]


def test_move_takes_columns_as_people_write_them_and_now_sends_the_completion(ctx, sim, capsys):
    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    j(capsys, "sync")
    pending = j(capsys, "pending")
    [card] = j(capsys, "approve", str(pending[0]["id"]))
    for typed in ("In Progress", "in-progress", "in progress"):
        assert j(capsys, "move", str(card["id"]), typed)["status"] == "in_progress"
    code, out, err = run(capsys, "move", str(card["id"]), "done")
    assert code == 0 and "Confluence is updated by the next drain" in out
    assert sim.state.tasks[card["confluence_task_id"]].status == "incomplete"  # not yet
    moved = j(capsys, "move", str(card["id"]), "todo", "--now")
    assert (moved["status"], moved["sync_state"]) == ("todo", "synced")
    code, out, _ = run(capsys, "move", str(card["id"]), "done", "--now")
    assert code == 0 and "Confluence is updated" in out and "next drain" not in out
    assert sim.state.tasks[card["confluence_task_id"]].status == "complete"


def test_sync_dry_run_says_what_the_plan_would_do_and_writes_nothing(ctx, sim, capsys):
    from sqlalchemy import func, select

    from trackli.models import AuditEntry, Card, PendingTask, SyncRun

    def counts():
        with ctx.session() as s:
            return {m.__name__: s.scalar(select(func.count()).select_from(m)) for m in (PendingTask, Card, SyncRun, AuditEntry)}

    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    before = counts()
    [first] = j(capsys, "sync", "--dry-run")
    assert (first["new"], first["changed"], first["gone"], first["fetched"]) == (30, 0, 0, 30)
    assert counts() == before  # no row, no run, no audit entry
    j(capsys, "sync")
    j(capsys, "approve", "--all")
    assert j(capsys, "pending") == []
    with ctx.session() as s:
        card = s.scalar(select(Card).order_by(Card.id).limit(1))
    sim.state.update_task(card.confluence_task_id, status="complete")  # completed in Confluence
    task = next(iter(t for t in sim.state.tasks.values() if t.status == "incomplete" and t.id != card.confluence_task_id))
    sim.state.update_task(task.id, text="Renamed upstream")
    before = counts()
    [plan] = j(capsys, "sync", "--dry-run")
    assert (plan["cards_to_done"], plan["new"], plan["changed"]) == (1, 0, 1)  # the renamed one's row
    assert counts() == before
    code, out, _ = run(capsys, "sync", "--dry-run")
    assert code == 0 and "move 1 card(s) to Done" in out and "nothing written" in out
