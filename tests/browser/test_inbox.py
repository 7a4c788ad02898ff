"""New work comes to the person (issue 22), in headless Chromium against a real `streamlit run`: a task
created upstream reaches an open Board tab with no click and no worker process; the inbox lane
approves by drag; a drop low in an empty column lands; a phone triages from a bottom sheet by touch."""

import time

from playwright.sync_api import expect

from tests.browser.conftest import AppServer, settle, shot
from tests.browser.test_dashboard import goto
from trackli import board_view, connections, queue, sync
from trackli.simulator import ME, ME_API_TOKEN


def connected(ctx, user_id, sim, synced=True):
    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    if synced:
        sync.sync_connection(ctx, conn)
    return conn


def waiting(ctx, user_id):
    with ctx.session() as s:
        return {r.title: r for r in queue.list_pending(s, user_id)}


def lane(page, status):
    return page.locator(f'.tk-column[data-status="{status}"]')


def drag(page, source, target_x, target_y):
    box = source.bounding_box()
    x0, y0 = box["x"] + 20, box["y"] + min(20, box["height"] / 2)
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(x0 + (target_x - x0) * step / 12, y0 + (target_y - y0) * step / 12)
        time.sleep(0.02)
    page.mouse.up()


def test_a_task_created_upstream_appears_in_an_open_board_tab_without_a_click(ctx, user_id, sim, env, page):
    from trackli.simulator import free_port

    connected(ctx, user_id, sim)
    port = free_port()
    server = AppServer({**env, "ATLASSIAN_API_URL": sim.url, "ATLASSIAN_AUTH_URL": sim.url,
                        "TRACKLI_EMBEDDED_WORKER": "on",  # the dashboard's own scheduler; no worker process runs
                        "TRACKLI_LIVE_SYNC_EVERY_S": "3"}, port).start()
    try:
        goto(page, server, "/board", "Board")
        page.locator(".tk-inbox .tk-task").first.wait_for()
        before = page.locator(".tk-inbox .tk-count").inner_text()
        container = next(iter(sim.state.content.values()))
        sim.state.add_task("Brand new from Confluence @me", assigned_to=ME[0], container=container)
        arrived = page.locator(".tk-inbox .tk-task", has_text="Brand new from Confluence")
        arrived.wait_for(timeout=45000)  # a live poll (3 s here) plus the tab's 5 s look for changes
        assert int(page.locator(".tk-inbox .tk-count").inner_text()) == int(before) + 1
        expect(page).to_have_title(f"({int(before) + 1}) Board · Trackli")
        page.get_by_text("1 new task from Confluence").wait_for()  # the toast
    finally:
        server.stop()


def test_dragging_an_inbox_task_approves_it_where_it_lands_and_undo_puts_it_back(ctx, user_id, sim, app_server, page):
    connected(ctx, user_id, sim)
    goto(page, app_server, "/board", "Board")
    shot(page, "board-inbox", full_page=False)
    task = page.locator(".tk-inbox .tk-task").first
    title = task.locator(".tk-title").inner_text()
    # Low in the empty In progress lane, far below its "Nothing in progress" box: it still lands there.
    target = lane(page, "in_progress").bounding_box()
    drag(page, task, target["x"] + target["width"] / 2, target["y"] + min(target["height"] - 10, 320))
    lane(page, "in_progress").locator(".tk-card:not(.saving)", has_text=title).wait_for()
    with ctx.session() as s:
        [row] = [r for r in queue.list_pending(s, user_id, "approved") if r.title == title]
    assert row.card_id is not None
    assert title not in waiting(ctx, user_id)
    page.get_by_role("button", name="Undo").click()
    page.locator(".tk-inbox .tk-task", has_text=title).wait_for()
    assert title in waiting(ctx, user_id)
    assert lane(page, "in_progress").locator(".tk-card").count() == 0


def test_a_card_dropped_low_in_an_empty_column_lands_there(ctx, user_id, app_server, page):
    from trackli import board

    with ctx.session() as s:
        board.create_card(s, user_id, "Move me")
    goto(page, app_server, "/board", "Board")
    card = page.locator(".tk-card", has_text="Move me")
    target = lane(page, "done").bounding_box()
    drag(page, card, target["x"] + target["width"] / 2, target["y"] + min(target["height"] - 10, 320))
    lane(page, "done").locator(".tk-card:not(.saving)", has_text="Move me").wait_for()
    with ctx.session() as s:
        assert [c.title for c in board_view.list_cards(s, user_id, status="done")] == ["Move me"]


def test_an_inbox_task_is_approved_by_keys_and_its_menu_and_a_stale_one_comes_back_with_the_reason(ctx, user_id, sim,
                                                                                                  app_server, page):
    connected(ctx, user_id, sim)
    goto(page, app_server, "/board", "Board")
    first = page.locator(".tk-inbox .tk-task").first
    title = first.locator(".tk-title").inner_text()
    first.focus()
    page.keyboard.press("Shift+ArrowRight")  # approve into To do
    lane(page, "todo").locator(".tk-card:not(.saving)", has_text=title).wait_for()
    settle(page)
    # Dismissed in another tab meanwhile: Approve to… is refused, and says why.
    second = page.locator(".tk-inbox .tk-task").first
    other = second.locator(".tk-title").inner_text()
    with ctx.session() as s:
        queue.dismiss(s, user_id, [waiting(ctx, user_id)[other].id])
    second.locator(".tk-more").click()
    page.get_by_role("menuitem", name="Approve to Backlog").click()
    expect(page.locator(".tk-notice")).to_contain_text("was not approved: it was dismissed meanwhile")
    assert lane(page, "backlog").locator(".tk-card", has_text=other).count() == 0


def test_phone_triage_from_the_bottom_sheet_and_pending_cards_by_touch(ctx, user_id, sim, app_server, browser):
    connected(ctx, user_id, sim)
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(20000)
    try:
        goto(page, app_server, "/board", "Board")
        count = len(waiting(ctx, user_id))
        opener = page.locator(".tk-sheet-open")
        expect(opener).to_have_text(f"Inbox ({count})")
        box = opener.bounding_box()
        assert box["y"] + box["height"] <= 844, box  # the work is on the first screen of a phone
        opener.tap()
        sheet = page.locator(".tk-sheet.open")
        sheet.locator(".tk-triage").first.wait_for()
        shot(page, "phone-inbox-sheet", full_page=False)
        first = sheet.locator(".tk-triage").first
        title = first.locator(".tk-title").inner_text()
        first.get_by_role("button", name="Approve").tap()
        expect(page.locator(".tk-sheet-open")).to_have_text(f"Inbox ({count - 1})")
        assert title not in waiting(ctx, user_id)
        second = page.locator(".tk-sheet.open .tk-triage").first
        gone = second.locator(".tk-title").inner_text()
        second.get_by_role("button", name="Dismiss").tap()
        expect(page.locator(".tk-sheet-open")).to_have_text(f"Inbox ({count - 2})")
        assert gone not in waiting(ctx, user_id)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways

        goto(page, app_server, "/pending", "Pending")
        cards = page.locator(".st-key-pending_cards .tk-triage")
        cards.first.wait_for()
        shot(page, "pending-phone", full_page=False)
        assert cards.first.bounding_box()["y"] < 844 / 2  # the first task is high on the first screen
        assert not page.get_by_test_id("stDataFrame").first.is_visible()  # the wide grid is not shown
        third = cards.first.locator(".tk-title").inner_text()
        cards.first.get_by_role("button", name="Snooze").tap()
        page.get_by_role("menuitem", name="Tomorrow").tap()
        page.locator(".st-key-pending_cards .tk-notice", has_text="Snoozed until").wait_for()
        with ctx.session() as s:
            assert third in {r.title for r in queue.list_pending(s, user_id, "snoozed")}
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
