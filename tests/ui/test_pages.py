"""AppTest for every page: rendering, each button, empty states and error banners.

Each test runs the home page and pages/ the way a fresh server does (switch_page runs the page file
without home.py), against the test database and, where needed, the simulated Atlassian.
"""

import datetime as dt
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from tests.conftest import oauth_connect, point_at
from trackli import background, board, board_view, completion, connections, projects, queue, sync
from trackli.models import AtlassianConnection, Card, Project, SyncRun
from trackli.simulator import ME, ME_API_TOKEN

APP = str(Path(__file__).resolve().parents[2] / "home.py")
HOSTILE = "<img src=x onerror=alert(1)> must stay text"


def open_page(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if page:
        at.switch_page(f"pages/{page}.py")
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~$:])")


def shown(element) -> str:
    """An element's text as a person reads it: Markdown escapes (upstream text is shown literally) removed."""
    return MARKDOWN_ESCAPE.sub(r"\1", str(element.value)).replace("&amp;", "&")


def said(at) -> str:
    """What the page said about an action: a toast (success, which never moves the page) or a banner."""
    return "\n".join(shown(e) for e in [*at.toast, *at.success])


def texts(at) -> str:
    parts = list(at.markdown) + list(at.error) + list(at.warning) + list(at.info) + list(at.success) + list(at.caption)
    return "\n".join(shown(p) for p in parts)


def button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def space_option(at, key: str) -> str:
    """The space filter's option for a space key ("Engineering (ENG)")."""
    return next(o for o in at.selectbox(key="filter_space").options if o.endswith(f"({key})"))


def no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


def wait_for(condition, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def card_state(ctx, card_id):
    with ctx.session() as s:
        return s.get(Card, card_id).sync_state


def synced(ctx, user_id, sim) -> int:
    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(ctx, conn)
    return conn


@pytest.mark.parametrize("page, title", [(None, "Trackli"), ("pending", "Pending"), ("board", "Board"),
                                         ("connect", "Connect"), ("audit", "Audit log"), ("diagnostics", "Diagnostics")])
def test_every_page_renders_with_the_shared_header_and_navigation(ctx, page, title):
    at = open_page(page)
    no_exceptions(at)
    assert at.title[0].value == title
    links = {p.proto.page for p in at.get("page_link")}
    assert {"pending", "board", "connect", "audit", "diagnostics"} <= links


def test_empty_states_say_how_things_get_there(ctx):
    assert "Tasks land here when someone assigns you a Confluence task" in texts(open_page("pending"))
    assert "No cards yet" in texts(open_page("board"))
    assert "No Atlassian connection to diagnose" in texts(open_page("diagnostics"))
    assert "No audit entries match" in texts(open_page("audit"))


def test_missing_oauth_settings_are_explained(ctx):
    at = open_page("connect")
    no_exceptions(at)
    warning = shown(at.warning[0])
    for name in ("ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET", "ATLASSIAN_REDIRECT_URI"):
        assert name in warning


def test_a_bad_setting_is_a_banner_not_a_traceback(ctx, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_API_URL", "not-a-url")
    at = open_page("board")
    no_exceptions(at)
    assert "ATLASSIAN_API_URL" in shown(at.error[0])


def drawn_board(at) -> dict:
    """What the page handed the board component (AppTest cannot run its JavaScript; the browser tests do)."""
    import json

    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "trackli.kanban"]
    return json.loads(element.proto.json)


def drawn_cards(at) -> dict[int, dict]:
    return {c["id"]: c | {"status": col["status"]} for col in drawn_board(at)["columns"] for c in col["cards"]}


def open_card(at, card_id: int) -> AppTest:
    """Clicking a card sets this, then the page opens its details dialog."""
    at.session_state["open_card"] = card_id
    return at.run()


def finish_sync(ctx, user_id, at):
    """Sync now runs off the page's thread: wait for it, then let the page report it."""
    wait_for(lambda: background.syncs.current(ctx, user_id).done.is_set())
    return at.run()


def test_sync_now_fills_the_queue_and_reports(ctx, user_id, sim_env):
    connections.connect_api_token(ctx, user_id, sim_env.url, ME[1], ME_API_TOKEN)
    at = open_page("pending")
    button(at, "Sync now").click().run()
    no_exceptions(at)
    finish_sync(ctx, user_id, at)
    no_exceptions(at)
    assert "Sync finished: 30 new" in said(at)
    assert len(at.data_editor[0].value) == 30
    assert "Pending 30" in {p.proto.label for p in at.get("page_link")}


def test_sync_now_runs_off_the_page_so_the_page_stays_usable_while_atlassian_is_slow(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    sim_env.state.knobs.latency_ms = 400
    at = open_page("pending")
    button(at, "Sync now").click().run()
    assert background.syncs.current(ctx, user_id).done.is_set() is False  # the run returned while it syncs
    assert any("Syncing…" in shown(c) for c in at.caption)  # beside the button: nothing below it moves
    assert button(at, "Dismiss selected")  # the queue is still there to work with
    assert len(at.data_editor[0].value) == 30
    finish_sync(ctx, user_id, at)
    assert "Sync finished: 0 new" in said(at)


def test_sync_now_without_a_connection_and_too_soon(ctx, user_id, sim_env, monkeypatch):
    at = open_page("pending")
    button(at, "Sync now").click().run()
    assert "No Atlassian connection yet" in shown(at.warning[0])
    monkeypatch.setenv("TRACKLI_SYNC_MIN_INTERVAL_S", "60")
    connections.connect_api_token(ctx, user_id, sim_env.url, ME[1], ME_API_TOKEN)
    sim_env.state.knobs.latency_ms = 300  # long enough to press again while it runs
    at = open_page("pending")
    button(at, "Sync now").click().run()
    assert not background.syncs.current(ctx, user_id).done.is_set()
    button(at, "Sync now").click().run()  # while it runs: the same sync, not a second one
    finish_sync(ctx, user_id, at)
    assert "Sync finished: 30 new" in said(at)
    button(at, "Sync now").click().run()
    assert "try again in" in shown(at.warning[0])
    with ctx.session() as s:
        assert len(sync.last_runs(s, user_id)) == 1


def test_grid_edits_are_saved_and_approve_selected_makes_cards(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        projects.create_project(s, user_id, "Ops")
    at = open_page("pending")
    ids = at.session_state["queue_ids"]
    at.session_state["queue"] = {"edited_rows": {0: {"title": "Edited in the grid", "due": "2027-01-31", "project": "Ops",
                                                      "select": True},
                                                  1: {"select": True}},
                                 "added_rows": [], "deleted_rows": []}
    at.run()
    no_exceptions(at)
    with ctx.session() as s:
        [row] = [r for r in queue.list_pending(s, user_id) if r.id == ids[0]]
    assert (row.title, str(row.due_date), row.project) == ("Edited in the grid", "2027-01-31", "Ops")
    assert set(row.edited_fields) == {"title", "due_date", "project"}
    button(at, "Approve selected").click().run()
    no_exceptions(at)
    assert "2 card(s) added to the board" in texts(at)
    with ctx.session() as s:
        titles = {c.title for c in board_view.list_cards(s, user_id)}
    assert "Edited in the grid" in titles


def test_a_new_user_gives_a_task_a_project_by_typing_its_name(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)  # no project exists yet
    at = open_page("pending")
    ids = at.session_state["queue_ids"]
    at.session_state["queue"] = {"edited_rows": {0: {"project": "Brand new"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    no_exceptions(at)
    with ctx.session() as s:
        assert [p.name for p in projects.list_projects(s, user_id)] == ["Brand new"]
        assert next(r for r in queue.list_pending(s, user_id) if r.id == ids[0]).project == "Brand new"
    assert "Brand new" in at.selectbox(key="default_project").options  # the bulk picker offers it too


def test_invalid_grid_edit_shows_an_error_and_keeps_the_old_value(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    first = at.session_state["queue_ids"][0]
    at.session_state["queue"] = {"edited_rows": {0: {"title": "   "}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert "must not be empty" in shown(at.error[0])
    with ctx.session() as s:
        assert [r.title for r in queue.list_pending(s, user_id) if r.id == first][0].strip()


def test_approve_all_dismiss_and_restore(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    at.session_state["queue"] = {"edited_rows": {2: {"select": True}}, "added_rows": [], "deleted_rows": []}
    at.run()
    button(at, "Dismiss selected").click().run()
    assert "1 task(s) dismissed" in said(at)
    at.multiselect(key="restore_pick").select(at.multiselect(key="restore_pick").options[0]).run()
    button(at, "Restore").click().run()
    assert "1 task(s) back in the queue" in said(at)
    button(at, "Approve 30 shown").click().run()  # more than 25: asked first
    assert "Approve 30 tasks at once?" in shown(at.warning[0])
    with ctx.session() as s:
        assert queue.pending_count(s, user_id) == 30
    button(at, "Yes, approve 30").click().run()
    assert "30 card(s) added" in said(at)
    with ctx.session() as s:
        assert queue.pending_count(s, user_id) == 0
    button(at, "Undo").click().run()  # back exactly as they were, and the cards off the board
    assert "30 task(s) back as they were, 30 card(s) taken off the board" in said(at)
    with ctx.session() as s:
        assert queue.pending_count(s, user_id) == 30 and board_view.list_cards(s, user_id) == []


def test_bulk_actions_act_on_exactly_the_rows_shown(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    label = at.selectbox(key="filter_space").options[1]
    at.selectbox(key="filter_space").select(label).run()
    space = label.rsplit("(", 1)[1].rstrip(")")  # the space's name, its key small
    assert label.startswith(("Engineering", "Marketing", "Operations", "Design"))
    with ctx.session() as s:
        shown_ids = {r.id for r in queue.list_pending(s, user_id) if r.space_key == space}
    assert 0 < len(shown_ids) < 25
    button(at, f"Approve {len(shown_ids)} shown").click().run()  # no question below 26 rows
    no_exceptions(at)
    with ctx.session() as s:
        assert {r.id for r in queue.list_pending(s, user_id, "approved")} == shown_ids
        assert queue.pending_count(s, user_id) == 30 - len(shown_ids)


def test_select_all_ticks_every_shown_row_and_restore_stays_on_the_dismissed_tab(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    at.text_input(key="filter_text").input("the").run()
    with ctx.session() as s:
        shown_ids = [r.id for r in queue.list_pending(s, user_id, text="the", stable_order=True)]
    at.checkbox(key="select_all").check().run()
    button(at, f"Dismiss selected ({len(shown_ids)})").click().run()
    with ctx.session() as s:
        assert sorted(r.id for r in queue.list_pending(s, user_id, "dismissed")) == sorted(shown_ids)
    assert at.session_state["pending_tab"] == "Waiting"  # the page keeps track of the open tab
    at.session_state["pending_tab"] = "Dismissed"  # the person opens Dismissed
    at.multiselect(key="restore_pick").select(at.multiselect(key="restore_pick").options[0]).run()
    button(at, "Restore").click().run()
    assert at.session_state["pending_tab"] == "Dismissed"


def test_board_hands_titles_to_the_component_as_data_and_moves_sync_completion(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        queue.approve(s, user_id, all_pending=True)
        hostile = s.scalar(select(Card).where(Card.title == HOSTILE))
    at = open_page("board")
    no_exceptions(at)
    data = drawn_board(at)
    assert drawn_cards(at)[hostile.id]["title"] == HOSTILE  # data, inserted as text by the component
    element = next(e for e in at.get("bidi_component") if e.proto.component_name == "trackli.kanban")
    assert HOSTILE not in element.proto.js_content and HOSTILE not in element.proto.html_content
    assert [c["count"] for c in data["columns"]] == [0, 30, 0, 0]
    with ctx.session() as s:
        board.move_card(s, user_id, hostile.id, "done")
    completion.drain(ctx)
    at.run()
    card = drawn_cards(at)[hostile.id]
    assert (card["status"], card["sync"], card["sync_label"]) == ("done", "synced", "")  # synced is the quiet normal
    assert sim_env.state.tasks[hostile.confluence_task_id].status == "complete"


def test_card_details_edit_every_field_and_archive_restore(ctx, user_id):
    with ctx.session() as s:
        projects.create_project(s, user_id, "Platform")
        card_id = board.create_card(s, user_id, "Draft the plan").id
    at = open_card(open_page("board"), card_id)
    no_exceptions(at)
    at.text_input(key=f"detail_title_{card_id}").input("Draft the *real* plan")
    at.date_input(key=f"detail_due_{card_id}").set_value(dt.date(2026, 12, 24))
    at.selectbox(key=f"detail_project_{card_id}").select_index(1)
    at.text_area(key=f"detail_note_{card_id}").input("ask <b>Ana</b>")
    button(at, "Save").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        view = board_view.card_view(s, user_id, card_id)
    assert (view.title, view.due_date, view.project, view.note) == ("Draft the *real* plan", dt.date(2026, 12, 24),
                                                                    "Platform", "ask <b>Ana</b>")
    assert "open_card" not in at.session_state and "Card saved" in said(at)
    open_card(at, card_id)
    button(at, "Archive").click().run()
    assert "No cards yet" in texts(at)  # its only card is archived
    drawn = drawn_board(at)
    assert drawn["notice"] == "Card archived." and drawn["undo"]["token"]  # said on the board, with Undo
    assert 0 < drawn["undo"]["seconds"] <= 10
    button(at, "Restore").click().run()
    assert card_id in drawn_cards(at)
    open_card(at, card_id)
    button(at, "Delete").click().run()  # no "are you sure?": Undo instead
    no_exceptions(at)
    with ctx.session() as s:
        assert board_view.list_cards(s, user_id) == []
    assert drawn_board(at)["notice"] == "Card deleted." and drawn_board(at)["undo"]["token"]


def test_card_details_unlink_send_back_and_gone_upstream(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        a, b, c = queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:3]])
    at = open_card(open_page("board"), a.id)
    assert "Open in Confluence" in [l.label for l in at.get("link_button")]
    button(at, "Unlink from Confluence").click().run()
    no_exceptions(at)
    assert drawn_cards(at)[a.id]["sync"] == "none"
    open_card(at, b.id)
    button(at, "Send back to the queue").click().run()
    assert b.id not in drawn_cards(at)
    with ctx.session() as s:
        assert b.confluence_task_id in {r.confluence_task_id for r in queue.list_pending(s, user_id)}
    sim_env.state.delete_task(c.confluence_task_id)
    sync.sync_connection(ctx, c.connection_id)
    at.run()
    assert drawn_cards(at)[c.id]["gone"] is True
    open_card(at, c.id)
    assert "gone from Confluence" in texts(at)
    button(at, "Keep as a local card").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        assert board_view.card_view(s, user_id, c.id).source == "manual"


def test_board_new_project_quick_add_offers_it_and_project_filter(ctx, user_id):
    at = open_page("board")
    next(t for t in at.text_input if t.label == "New project").input("Marketing")
    button(at, "Create project").click().run()
    no_exceptions(at)
    assert "Project 'Marketing' created" in said(at)
    with ctx.session() as s:
        [marketing] = projects.list_projects(s, user_id)
        board.create_card(s, user_id, "Write the launch post", project_id=marketing.id)
        board.create_card(s, user_id, "Something else")
    at.run()
    # Each column's quick add (the component's "+ Add a card") offers the person's projects.
    assert drawn_board(at)["projects"] == [{"id": marketing.id, "name": "Marketing"}]
    at.selectbox(key="board_project").select("Marketing").run()
    assert [c["title"] for c in drawn_cards(at).values()] == ["Write the launch post"]


def test_failed_and_conflicting_cards_offer_their_fixes(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        cards = queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:2]])
        for c in cards:
            board.move_card(s, user_id, c.id, "done")
    failing = cards[0]
    sim_env.state.tasks[failing.confluence_task_id].editable_by = {"nobody"}
    completion.drain(ctx)
    sim_env.state.update_task(cards[1].confluence_task_id, status="incomplete")
    sync.sync_connection(ctx, cards[1].connection_id)
    at = open_page("board")
    assert drawn_cards(at)[failing.id]["sync"] == "failed" and drawn_cards(at)[cards[1].id]["sync"] == "conflict"
    open_card(at, failing.id)
    assert "may not edit" in texts(at)
    sim_env.state.tasks[failing.confluence_task_id].editable_by = None
    button(at, "Retry").click().run()
    open_card(at, cards[1].id)
    assert "in Confluence the task is **open**" in texts(at)
    button(at, "Reopen it here").click().run()
    no_exceptions(at)
    wait_for(lambda: card_state(ctx, failing.id) == "synced")
    assert sim_env.state.tasks[failing.confluence_task_id].status == "complete"
    with ctx.session() as s:
        assert s.get(Card, cards[1].id).status == "todo"


def test_oauth_callback_on_the_connect_page_and_its_replay(ctx, user_id, sim_env):
    sim_env.state.knobs.auto_approve = True
    point_at(ctx, sim_env)
    url = connections.start_oauth(ctx, user_id)
    query = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)
    at = open_page("connect", code=query["code"][0], state=query["state"][0])
    no_exceptions(at)
    assert "Connected to Atlassian" in said(at)
    assert dict(at.query_params) == {}
    replay = open_page("connect", code=query["code"][0], state=query["state"][0])
    assert "already completed" in replay.info[0].value
    forged = open_page("connect", code="x", state="forged")
    assert "not valid" in forged.error[0].value


def test_connect_button_sends_the_browser_to_atlassian(ctx, user_id, sim_env):
    at = open_page("connect")
    button(at, "Connect Atlassian").click().run()
    no_exceptions(at)
    html = at.get("html")[0].proto.body
    assert "window.location.assign" in html and f"{sim_env.url}/authorize?" in html


def test_api_token_form_and_disconnect(ctx, user_id, sim_env):
    at = open_page("connect")
    at.text_input[0].input(sim_env.url)
    at.text_input[1].input(ME[1])
    at.text_input[2].input("wrong-token")
    button(at, "Connect with token").click().run()
    assert "refused this email and API token" in shown(at.error[0])
    at.text_input[2].input(ME_API_TOKEN)
    button(at, "Connect with token").click().run()
    no_exceptions(at)
    assert "Connected with the API token" in said(at)
    button(at, "Disconnect").click().run()
    with ctx.session() as s:
        conn = s.scalar(select(AtlassianConnection))
        assert conn.status == "needs_reconnect" and conn.access_token_enc is None
    assert "Reconnect needed" in texts(at)


def test_diagnostics_names_the_missing_scopes_in_one_line(ctx, user_id, sim_env):
    sim_env.state.knobs.enabled_scopes = tuple(s for s in sim_env.state.knobs.enabled_scopes
                                               if s not in ("read:task:confluence", "write:task:confluence"))
    point_at(ctx, sim_env)
    oauth_connect(ctx, user_id, sim_env)
    at = open_page("diagnostics")
    no_exceptions(at)
    headline = shown(at.error[0])
    assert "lacks read:task:confluence and write:task:confluence" in headline
    assert "developer console" in headline and "reconnect" in headline
    button(at, "Run live probe").click().run()
    no_exceptions(at)
    probes = at.dataframe[2].value
    tasks_row = probes[probes["API"] == "tasks"].iloc[0]
    assert (bool(tasks_row["Answered"]), int(tasks_row["HTTP status"])) == (False, 401)
    assert bool(probes[probes["API"] == "pages"].iloc[0]["Answered"])


def test_diagnostics_reconnect_needed_and_healthy(ctx, user_id, sim_env):
    conn = synced(ctx, user_id, sim_env)
    at = open_page("diagnostics")
    button(at, "Run live probe").click().run()
    no_exceptions(at)
    assert "Everything works" in said(at)
    write = at.dataframe[1].value
    assert bool(write[write["API"] == "write tasks"].iloc[0]["Answered"])
    connections.disconnect(ctx, user_id, conn)
    at = open_page("diagnostics")
    assert shown(at.error[0]).startswith("Reconnect needed")


def test_diagnostics_says_when_and_why_the_schedule_is_stretched(ctx, user_id, sim_env):
    from trackli import scheduler

    point_at(ctx, sim_env)
    conn = oauth_connect(ctx, user_id, sim_env)  # the pool counts OAuth traffic
    sync.sync_connection(ctx, conn)
    with ctx.session() as s:
        spent = s.scalar(select(SyncRun.points))
    ctx.settings = ctx.settings.with_(quota_points_per_hour=max(1, int(spent / 0.95)))
    assert scheduler.cadence(ctx, 300).stretch == 4.0
    at = open_page("diagnostics")
    no_exceptions(at)
    warning = shown(at.warning[0])
    assert "4× less often than every 300 s" in warning and f"{spent:,} of the" in warning
    assert any("Next scheduled sync" in shown(m) for m in at.markdown)
    assert list(at.dataframe[-1].value["Kind"]) == ["full"]
    at = open_page("audit")
    assert "Scheduled syncs slowed (points quota)" in set(at.dataframe[0].value["What"])
    assert conn


def test_audit_page_filters_and_downloads(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    sim_env.state.accounts[ME[0]].api_tokens.clear()
    with ctx.session() as s:
        conn_id = s.scalar(select(AtlassianConnection.id))
    sync.sync_connection(ctx, conn_id)  # fails: the token was revoked
    at = open_page("audit")
    no_exceptions(at)
    frame = at.dataframe[0].value
    assert list(frame["What"])[0] == "Sync failed"  # newest first, in words (the CSV keeps the event names)
    assert {"Connected with an API token", "Tasks fetched"} <= set(frame["What"])
    at.radio(key="audit_outcome").set_value("Failed").run()
    assert set(at.dataframe[0].value["Outcome"]) == {"failed"}
    assert at.get("download_button")
    assert any("Sync failed" in e.label for e in at.expander)


def test_audit_names_the_tasks_and_cards_it_is_about(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        first, second, third = queue.list_pending(s, user_id)[:3]
        queue.edit_pending(s, user_id, first.id, due_date="2027-02-01")
        queue.dismiss(s, user_id, [first.id])
        [card] = queue.approve(s, user_id, [second.id])
        board.move_card(s, user_id, card.id, "in_progress")
        queue.dismiss(s, user_id, [third.id])
    at = open_page("audit")
    no_exceptions(at)
    about = dict(zip(at.dataframe[0].value["What"], at.dataframe[0].value["About"]))
    assert about["Card moved"] == second.title and about["Approved"] == second.title
    assert about["Edited in the queue"] == first.title
    assert third.title in set(at.dataframe[0].value["About"]) and first.title in set(at.dataframe[0].value["About"])



def test_no_secret_on_any_page_after_a_full_flow(ctx, user_id, sim_env):
    point_at(ctx, sim_env)
    conn = oauth_connect(ctx, user_id, sim_env)
    synced(ctx, user_id, sim_env)
    sync.sync_connection(ctx, conn)
    with ctx.session() as s:
        queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:3]])
    secrets = {ME_API_TOKEN, sim_env.state.client_secret} | set(sim_env.state.access_tokens) | set(sim_env.state.refresh_tokens)
    # Each page must show its real content, or a page that failed to render would pass for want of text.
    expected = {None: "Waiting for approval", "pending": "Edits to title, due date and project",
                "board": "A project groups cards", "connect": "last sync", "audit": "Details",
                "diagnostics": "Live probe"}
    for page, marker in expected.items():
        at = open_page(page)
        if page == "diagnostics":
            for b in [b for b in at.button if b.label == "Run live probe"]:
                b.click()
            at.run()
        no_exceptions(at)
        shown = (texts(at) + "".join(str(h.value) for h in at.subheader)
                 + "".join(str(m.label) for m in at.metric) + "".join(str(d.value.to_dict()) for d in at.dataframe)
                 + str(at.get("json")))
        assert marker in shown, f"{page or 'home'} did not render its content"
        for secret in secrets:
            assert secret not in shown, f"a secret is shown on {page or 'home'}"


def test_teams_mode_gates_every_page_and_scopes_data_to_the_signed_in_person(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)  # the local user's data must not show to a team member
    for page in (None, "pending", "board", "connect"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
                              "client_id": "c", "client_secret": "s",
                              "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
        if page:
            at.switch_page(f"pages/{page}.py")
        at.run()
        no_exceptions(at)
        assert [b.label for b in at.button] == ["Sign in"], page
        assert [t.value for t in at.title] == ["Trackli"], page
        assert "Sign in to see your Confluence tasks" in texts(at), page
        at.user = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann"}  # signed in
        at.run()
        no_exceptions(at)
        assert "Signed in as Ann" in texts(at)
        assert "Pending 0" in {p.proto.label for p in at.get("page_link")}
        assert [b.label for b in at.button if b.label == "Sign out"] == ["Sign out"]
    with ctx.session() as s:
        from trackli import users
        ann = users.get_by_email(s, "ann@example.com")
        assert ann is not None and queue.list_pending(s, ann.id) == []


def test_several_sites_on_the_callback_ask_the_person_to_choose(ctx, user_id, sim_env):
    sim_env.state.knobs.auto_approve = True
    sim_env.state.knobs.extra_sites = 1
    point_at(ctx, sim_env)
    url = connections.start_oauth(ctx, user_id)
    query = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)
    at = open_page("connect", code=query["code"][0], state=query["state"][0])
    no_exceptions(at)
    choice = at.radio(key="site_pick")
    assert len(choice.options) == 2
    choice.set_value(sim_env.state.cloud_id).run()
    button(at, "Use this site").click().run()
    no_exceptions(at)
    assert "Connected to Atlassian" in said(at)
    with ctx.session() as s:
        assert s.scalar(select(AtlassianConnection.cloud_id)) == sim_env.state.cloud_id


def test_queue_filters_by_space_due_date_and_text(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        everything = queue.list_pending(s, user_id)
    at = open_page("pending")
    assert len(at.data_editor[0].value) == 30
    space = sorted({r.space_key for r in everything})[0]
    at.selectbox(key="filter_space").select(space_option(at, space)).run()
    assert len(at.data_editor[0].value) == sum(r.space_key == space for r in everything)
    at.selectbox(key="filter_space").select("All spaces").run()
    cutoff = sorted(r.due_date for r in everything if r.due_date)[5]
    at.date_input(key="filter_due").set_value(cutoff).run()
    assert len(at.data_editor[0].value) == sum(bool(r.due_date and r.due_date <= cutoff) for r in everything)
    at.date_input(key="filter_due").set_value(None).run()
    at.text_input(key="filter_text").input("must stay text").run()
    assert list(at.data_editor[0].value["title"]) == [HOSTILE]
    at.text_input(key="filter_text").input("no such words anywhere").run()
    assert "No pending task matches these filters" in texts(at)


def test_url_and_upstream_text_is_shown_literally_never_as_links_or_images(ctx, user_id, sim_env):
    at = open_page("connect", error="[Click here](https://evil.example/login) ![x](http://127.0.0.1:8821/pixel.png)")
    no_exceptions(at)
    raw = at.error[0].value
    assert "\\[Click here\\]\\(https\\:" in raw and "\\!\\[x\\]" in raw  # escaped: no link, no image fetched
    sim_env.state.site_name = "[Verify your account](https://evil.example)"
    oauth_connect(point_at(ctx, sim_env), user_id, sim_env)
    at = open_page("diagnostics")
    no_exceptions(at)
    assert at.header[0].value.startswith("\\[Verify your account\\]\\(https\\:")


def test_a_database_that_cannot_be_used_gets_a_page_that_says_so_not_a_traceback(env, monkeypatch, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("TRACKLI_DATABASE_URL", f"sqlite:///{broken}")
    for page in (None, "pending"):
        at = open_page(page)
        no_exceptions(at)
        assert shown(at.error[0]).startswith("Trackli cannot start: the database cannot be used")


def test_several_sites_are_told_apart_in_the_queue_and_on_cards(ctx, user_id, sim_env):
    from trackli.simulator import Simulator

    synced(ctx, user_id, sim_env)
    with Simulator.running(tasks=4, pages=2, spaces=1, seed=5) as other:
        other.state.cloud_id, other.state.site_name = "22222222-0000-0000-0000-000000000000", "Second site"
        conn = connections.connect_api_token(ctx, user_id, other.url, ME[1], ME_API_TOKEN)
        sync.sync_connection(ctx, conn)
    with ctx.session() as s:
        sites = {r.site for r in queue.list_pending(s, user_id)}
        assert len(sites) == 2
        queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:2]]
                      + [r.id for r in queue.list_pending(s, user_id) if r.connection_id == conn][:1])
    at = open_page("pending")
    no_exceptions(at)
    assert set(at.data_editor(key="queue").value["site"]) == sites
    at = open_page("board")
    no_exceptions(at)
    assert {c["site"] for c in drawn_cards(at).values()} == sites


def test_times_are_shown_in_the_persons_time_zone_with_utc_at_hand(ctx, user_id, sim_env, monkeypatch):
    import streamlit as st

    synced(ctx, user_id, sim_env)
    monkeypatch.setattr(type(st.context), "timezone", property(lambda self: "Pacific/Auckland"))
    at = open_page()
    no_exceptions(at)
    [caption] = [c for c in at.caption if "Last sync" in c.value]
    assert "(Pacific/Auckland)" in shown(caption) and caption.proto.help.endswith("UTC")
    at = open_page("audit")
    no_exceptions(at)
    assert "When (Pacific/Auckland)" in str(at.dataframe[0].proto.columns)


def test_home_and_board_sync_too_and_home_lists_what_needs_the_person(ctx, user_id, sim_env):
    connections.connect_api_token(ctx, user_id, sim_env.url, ME[1], ME_API_TOKEN)
    for page in (None, "board"):
        at = open_page(page)
        button(at, "Sync now").click().run()
        finish_sync(ctx, user_id, at)
        no_exceptions(at)
        assert "Sync finished" in said(at), page
    with ctx.session() as s:
        a, b, c = queue.approve(s, user_id, [r.id for r in queue.list_pending(s, user_id)[:3]])
        s.get(Card, a.id).sync_state, s.get(Card, a.id).sync_error = "conflict", "Reopened in Confluence"
        s.get(Card, b.id).sync_state, s.get(Card, b.id).sync_error = "failed", "not found, or you may not edit it"
    at = open_page()
    no_exceptions(at)
    assert "Needs you · 2" in [h.value for h in at.subheader]
    assert "Conflict: Reopened in Confluence" in texts(at) and "Not sent to Confluence: not found" in texts(at)
    assert a.title in texts(at) and c.title not in texts(at)


def test_projects_are_created_renamed_recoloured_and_archived_on_the_board(ctx, user_id):
    at = open_page("board")
    no_exceptions(at)
    assert "No projects yet" in texts(at)
    form_name = next(t for t in at.text_input if t.label == "New project")
    form_name.input("Platform")
    button(at, "Create project").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        [platform] = projects.list_projects(s, user_id)
    assert platform.name == "Platform"
    at.session_state["projects_editor"] = {"edited_rows": {0: {"name": "Core platform", "colour": "#112233",
                                                              "archived": True}}, "added_rows": [], "deleted_rows": []}
    at.run()
    no_exceptions(at)
    with ctx.session() as s:
        [p] = projects.list_projects(s, user_id, include_archived=True)
        assert (p.name, p.colour, p.archived) == ("Core platform", "#112233", True)
        assert projects.list_projects(s, user_id) == []  # archived: out of the pickers and the filter
    assert at.selectbox(key="board_project").options == ["All projects"]


def test_pending_shows_a_page_of_rows_and_acts_on_the_page_shown(ctx, user_id, sim_env):
    container = next(iter(sim_env.state.content.values()))
    for n in range(220):
        sim_env.state.add_task(f"bulk {n:03d}", assigned_to=ME[0], container=container)
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    no_exceptions(at)
    grid = at.data_editor(key="queue").value
    assert len(grid) == 200 and "250 tasks match: 200 are shown on this page" in texts(at)
    at.selectbox(key="queue_page").select(2).run()
    assert len(at.data_editor(key="queue").value) == 50
    button(at, "Approve 50 shown").click().run()
    no_exceptions(at)
    button(at, "Yes, approve 50").click().run()
    with ctx.session() as s:
        assert queue.count_pending(s, user_id) == 200 and len(board_view.list_cards(s, user_id)) == 50


def test_a_bulk_approvals_project_never_carries_over_to_the_next(ctx, user_id, sim_env):
    """Filter one space, pick Marketing, approve shown; filter another space, approve shown: those cards have
    no project (before, they all became Marketing, silently)."""
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        projects.create_project(s, user_id, "Marketing")
        keys = sorted({r.space_key for r in queue.list_pending(s, user_id) if r.space_key})
    at = open_page("pending")
    at.selectbox(key="filter_space").select(space_option(at, keys[0])).run()
    at.selectbox(key="default_project").select("Marketing").run()
    next(b for b in at.button if b.label.startswith("Approve") and b.label.endswith("shown → Marketing")).click().run()
    no_exceptions(at)
    assert at.selectbox(key="default_project").value is None  # cleared after the approval
    at.selectbox(key="filter_space").select(space_option(at, keys[1])).run()
    assert not any("→" in b.label for b in at.button)
    next(b for b in at.button if b.label.startswith("Approve") and b.label.endswith("shown")).click().run()
    no_exceptions(at)
    with ctx.session() as s:
        rows = s.execute(select(Card.confluence_space_key, Project.name)
                         .outerjoin(Project, Project.id == Card.project_id)).all()
    assert {p for k, p in rows if k == keys[0]} == {"Marketing"}
    assert {p for k, p in rows if k == keys[1]} == {None}
