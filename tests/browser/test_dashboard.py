"""The dashboard in headless Chromium against `streamlit run` and the simulated Atlassian."""

import re
import time

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import settle, shot
from trackli import queue, sync
from trackli.models import AtlassianConnection, PendingTask, Card

HOSTILE = "<img src=x onerror=alert(1)> must stay text"
ROW = 35  # data editor header and row height in px
GRID_DRAWN = """() => {
    const canvas = document.querySelector('[data-testid="stDataFrame"] canvas');
    if (!canvas || !canvas.width || !canvas.height) return false;
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, Math.min(canvas.height, 120)).data;
    for (let i = 4; i < pixels.length; i += 4) {
        if (pixels[i] !== pixels[0] || pixels[i + 1] !== pixels[1] || pixels[i + 2] !== pixels[2]) return true;
    }
    return false;
}"""


def goto(page, server, path, heading):
    page.goto(server.url + path)
    page.get_by_role("heading", name=heading, level=1).wait_for()
    settle(page)


def click_until(page, button, shows, tries: int = 4) -> None:
    """Click `button` until `shows` appears: a click that lands while a rerun is still running is lost
    (Streamlit drops it), so the test waits on the state it needs, not on one click's luck."""
    for _ in range(tries):
        button.click()
        try:
            shows.wait_for(timeout=8000)
            return
        except Exception:  # the click was swallowed by a rerun: let it finish, then again
            settle(page)
    shows.wait_for(timeout=8000)


def grid_top(page) -> float:
    return page.get_by_test_id("stDataFrame").first.bounding_box()["y"]


def cell(page, column_x, row):
    grid = page.get_by_test_id("stDataFrame").first.bounding_box()
    return grid["x"] + column_x, grid["y"] + ROW * row + ROW / 2


def test_connect_sync_edit_approve_complete_audit(ctx, user_id, app_server, sim, page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Connect through the full OAuth redirect: Trackli → simulated Atlassian consent → back to /connect.
    goto(page, app_server, "/connect", "Connect")
    shot(page, "connect")
    page.get_by_role("button", name="Connect Atlassian").click()
    page.wait_for_url(re.compile(r".*/authorize\?.*"))
    assert "read%3Atask%3Aconfluence" in page.url and "prompt=consent" in page.url
    page.get_by_role("button", name="Accept").click()
    page.get_by_text("Connected to Atlassian").wait_for()
    assert "code=" not in page.url  # cleared from the address bar
    with ctx.session() as s:
        conn = s.scalar(select(AtlassianConnection))
        assert (conn.kind, conn.account_id, conn.status) == ("oauth", "sim-user-1", "ok")

    # Sync.
    goto(page, app_server, "/pending", "Pending")
    page.get_by_role("button", name="Sync now").click()
    page.get_by_text("Sync finished: 30 new").wait_for()
    settle(page)
    page.get_by_text("Pending 30").wait_for()
    # Edit a title and a due date in the grid (rows in discovery order: the first pending task first).
    with ctx.session() as s:
        first, second = s.scalars(select(PendingTask).order_by(PendingTask.id).limit(2)).all()
    # The grid is a canvas: wait until it has drawn text (pixels of more than one colour) before the picture.
    page.wait_for_function(GRID_DRAWN, timeout=20000)
    shot(page, "pending")
    top = grid_top(page)
    assert top <= 320, top  # one toolbar row above the grid: the rows start high
    x, y = cell(page, 140, 1)
    page.mouse.dblclick(x, y)
    editor = page.locator("textarea").last
    editor.wait_for()
    editor.fill("Edited in the browser")
    page.keyboard.press("Enter")
    settle(page)
    x, y = cell(page, 277, 1)
    page.mouse.dblclick(x, y)
    date_input = page.locator("input[type=date]").last
    date_input.wait_for()
    date_input.fill("2027-01-31")
    page.keyboard.press("Enter")
    settle(page)
    with ctx.session() as s:
        row = s.get(PendingTask, first.id, populate_existing=True)
        assert (row.task_title, str(row.due_date)) == ("Edited in the browser", "2027-01-31")

    # Approve in bulk: tick two rows, Approve selected.
    for r in (1, 2):
        x, y = cell(page, 20, r)
        page.mouse.click(x, y)
        settle(page)
    page.get_by_role("button", name="Approve selected (2)").click()
    page.get_by_text("2 card(s) added to the board").wait_for()  # below the grid, by its Undo
    page.wait_for_function(GRID_DRAWN, timeout=20000)
    assert abs(grid_top(page) - top) < 2, (grid_top(page), top)  # nothing pushed the rows down
    with ctx.session() as s:
        assert {c.title for c in s.scalars(select(Card))} == {"Edited in the browser", second.task_title}

    # The rest, then the board: titles are text, never markup.
    settle(page)
    click_until(page, page.get_by_role("button", name="Approve 28 shown"),
                page.get_by_role("button", name="Yes, approve 28"))  # more than 25 rows: asked first
    page.get_by_role("button", name="Yes, approve 28").click()
    page.get_by_text("28 card(s) added to the board").wait_for()
    goto(page, app_server, "/board", "Board")
    page.get_by_text(HOSTILE).first.wait_for()
    assert page.locator("img[src='x']").count() == 0 and not dialogs
    shot(page, "board")

    # Move a card to done: the simulated task becomes complete and the card says so.
    with ctx.session() as s:
        card = s.scalar(select(Card).where(Card.title == "Edited in the browser"))
    page.locator(".tk-card", has_text="Edited in the browser").drag_to(page.locator('.tk-cards[data-status="done"]'))
    page.locator('.tk-cards[data-status="done"] .tk-card', has_text="Edited in the browser").wait_for()
    deadline = time.monotonic() + 40  # a move into Done is sent after its 10 s Undo window
    while sim.state.tasks[card.confluence_task_id].status != "complete":
        assert time.monotonic() < deadline, "the simulated task never became complete"
        time.sleep(0.1)
    # The page's watcher picks up the drained state: no card is left waiting.
    expect(page.get_by_text("Waiting to sync")).to_have_count(0, timeout=20000)
    done = page.locator('.tk-cards[data-status="done"] .tk-card', has_text="Edited in the browser")
    done.locator(".s-synced").wait_for(state="attached")  # synced: no pill (only states that need you show)
    assert done.locator(".tk-state").inner_text() == ""
    settle(page)
    with ctx.session() as s:
        assert s.get(Card, card.id, populate_existing=True).sync_state == "synced"
    shot(page, "board-after-move")

    # Audit entries.
    goto(page, app_server, "/audit", "Audit log")
    for event in ("Connected with OAuth", "Tasks fetched", "Completed in Confluence"):
        page.get_by_test_id("stExpander").filter(has_text=event).first.wait_for()  # the grid is a canvas
    shot(page, "audit")
    goto(page, app_server, "/diagnostics", "Diagnostics")
    page.get_by_role("button", name="Run live probe").click()
    page.get_by_text("Everything works").wait_for()
    shot(page, "diagnostics")
    goto(page, app_server, "/", "Trackli")
    page.get_by_text("Waiting for approval").wait_for()
    shot(page, "home")


def test_diagnostics_names_a_missing_scope(ctx, user_id, app_server, sim, page):
    sim.state.knobs.enabled_scopes = tuple(s for s in sim.state.knobs.enabled_scopes if s != "write:task:confluence")
    sim.state.knobs.auto_approve = True
    goto(page, app_server, "/connect", "Connect")
    page.get_by_role("button", name="Connect Atlassian").click()
    page.get_by_text("Atlassian did not grant write:task:confluence").wait_for()  # said at once, not a green "Connected"
    goto(page, app_server, "/diagnostics", "Diagnostics")
    page.get_by_text("the connection lacks write:task:confluence").wait_for()
    page.get_by_text("developer console").first.wait_for()
    shot(page, "diagnostics-missing-scope")


def test_deep_links_on_a_fresh_server_get_the_set_up_and_header(ctx, user_id, app_server, sim, page):
    sim.state.knobs.auto_approve = True
    app_server.restart()
    headers = httpx.get(app_server.url + "/board").headers  # the very first request to this server
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
    assert headers["content-security-policy"] == "frame-ancestors 'none'" and headers["referrer-policy"] == "same-origin"
    page.goto(app_server.url + "/board")
    page.get_by_role("heading", name="Board", level=1).wait_for()
    page.get_by_text("Pending 0").wait_for()  # the header
    page.get_by_role("link", name="Diagnostics").wait_for()  # the navigation

    # The OAuth callback URL as the very first request after a restart.
    from trackli import connections

    from tests.conftest import point_at

    point_at(ctx, sim, f"{app_server.url}/connect")
    url = connections.start_oauth(ctx, user_id)
    location = httpx.get(url).headers["location"]
    app_server.restart()
    page.goto(location)
    page.get_by_text("Connected to Atlassian").wait_for()
    page.get_by_text("Pending 0").wait_for()
    page.get_by_role("link", name="Board").wait_for()
    page.go_back()  # replaying the callback is harmless
    page.get_by_role("heading", name="Connect", level=1).wait_for()
    settle(page)
    assert page.get_by_text("Traceback").count() == 0


def test_teams_mode_sign_in_gates_a_deep_link_on_a_fresh_server(ctx, app_server, sim, page, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "{app_server.url}/oauth2callback"\n'
        'cookie_secret = "a-long-random-cookie-secret-for-tests"\n'
        'client_id = "trackli-dashboard"\n'
        'client_secret = "oidc-secret"\n'
        f'server_metadata_url = "{sim.url}/oidc/.well-known/openid-configuration"\n'
    )
    app_server.extra_args = ["--secrets.files", str(secrets)]
    app_server.restart()
    page.goto(app_server.url + "/board")  # the very first request: the gate, not the board
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_role("heading", name="Board").count() == 0
    shot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as Sam Example").wait_for()
    page.goto(app_server.url + "/board")
    page.get_by_role("heading", name="Board", level=1).wait_for()
    page.get_by_text("Signed in as Sam Example").wait_for()
    with ctx.session() as s:
        from trackli import users

        assert users.get_by_email(s, "you@example.com") is not None
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()


def test_changes_from_another_tab_reach_the_board_and_wait_politely_on_pending(ctx, user_id, app_server, sim, page):
    from trackli import connections
    from trackli.simulator import ME, ME_API_TOKEN

    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(ctx, conn)
    goto(page, app_server, "/board", "Board")
    page.get_by_text("Pending 30").wait_for()
    with ctx.session() as s:  # another tab (or the worker) approves three tasks
        queue.approve(s, user_id, [p.id for p in queue.list_pending(s, user_id)[:3]])
    started = time.monotonic()
    page.get_by_text("Pending 27").wait_for(timeout=10000)  # the board has nothing to type in: it reruns
    assert time.monotonic() - started < 10

    goto(page, app_server, "/pending", "Pending")
    with ctx.session() as s:
        queue.approve(s, user_id, [p.id for p in queue.list_pending(s, user_id)[:2]])
    started = time.monotonic()
    page.get_by_text("2 change(s) made elsewhere are waiting").wait_for(timeout=10000)
    assert time.monotonic() - started < 10
    page.get_by_role("button", name="Refresh").click()
    page.get_by_text("Pending 25").wait_for()


def test_a_change_elsewhere_never_discards_what_a_person_is_typing_or_has_ticked(ctx, user_id, app_server, sim, browser):
    """Tab B ticks two rows and types into a title cell without committing; tab A approves a task."""
    from trackli import connections
    from trackli.simulator import ME, ME_API_TOKEN

    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(ctx, conn)
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    tab_a, tab_b = (c.new_page() for c in contexts)
    try:
        for tab in (tab_a, tab_b):
            tab.set_default_timeout(20000)
            goto(tab, app_server, "/pending", "Pending")
            tab.wait_for_function(GRID_DRAWN, timeout=20000)
        for row in (1, 2):
            x, y = cell(tab_b, 20, row)
            tab_b.mouse.click(x, y)
            settle(tab_b)
        tab_b.get_by_role("button", name="Approve selected (2)").wait_for()
        x, y = cell(tab_b, 140, 4)
        tab_b.mouse.dblclick(x, y)
        typing = tab_b.locator("textarea").last
        typing.wait_for()
        typing.fill("Half-typed, not yet committed")

        # Tab A approves the fifth row, through its own grid.
        x, y = cell(tab_a, 20, 5)
        tab_a.mouse.click(x, y)
        settle(tab_a)
        tab_a.get_by_role("button", name="Approve selected (1)").click()
        tab_a.get_by_text("1 card(s) added to the board").wait_for()

        tab_b.get_by_text("1 change(s) made elsewhere are waiting").wait_for(timeout=15000)
        assert typing.is_visible() and typing.input_value() == "Half-typed, not yet committed"
        assert tab_b.get_by_role("button", name="Approve selected (2)").is_visible()
        typing.press("Enter")  # committing it saves it, and the page catches up with tab A
        settle(tab_b)
        tab_b.get_by_text("Pending 29").wait_for()
        tab_b.get_by_role("button", name="Approve selected (2)").wait_for()  # still ticked, by task id
        with ctx.session() as s:
            titles = {p.title for p in queue.list_pending(s, user_id)}
        assert "Half-typed, not yet committed" in titles
    finally:
        for c in contexts:
            c.close()
