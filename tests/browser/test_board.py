"""The board component in headless Chromium: drag, keys, the card menu at phone width, details, refusals."""

import time

from playwright.sync_api import expect

from tests.browser.conftest import settle, shot
from tests.browser.test_dashboard import GRID_DRAWN, HOSTILE, goto
from trackli import board, board_view, connections, projects, queue, sync
from trackli.models import Project
from trackli.simulator import ME, ME_API_TOKEN


LUMINANCE = """(el) => {
    const [r, g, b] = getComputedStyle(el).backgroundColor.match(/\\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


def column(page, status):
    return page.locator(f'.tk-cards[data-status="{status}"]')


def titles(page, status):
    return column(page, status).locator(".tk-title").all_inner_texts()


def saved(page, status, title):
    """The server's redraw shows the card in `status`, no longer saving."""
    column(page, status).locator(".tk-card:not(.saving)", has_text=title).wait_for()


def order_in_db(ctx, user_id, status):
    with ctx.session() as s:
        return [c.title for c in board_view.list_cards(s, user_id, status=status)]


def test_drag_between_and_within_columns_keys_and_reload_keep_the_order(ctx, user_id, app_server, page):
    with ctx.session() as s:
        for title in ("Alpha", "Bravo", "Charlie", "Delta"):
            board.create_card(s, user_id, title)
        board.create_card(s, user_id, HOSTILE, status="backlog")
    goto(page, app_server, "/board", "Board")
    column(page, "todo").locator(".tk-card").first.wait_for()
    assert page.locator("img[src='x']").count() == 0  # the title is text inside the component
    assert titles(page, "backlog") == [HOSTILE]

    # Drag Delta above Bravo (within a column), with the mouse in small steps.
    delta = column(page, "todo").locator(".tk-card", has_text="Delta")
    bravo = column(page, "todo").locator(".tk-card", has_text="Bravo").bounding_box()
    box = delta.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2 + (bravo["y"] + 5 - box["y"] - box["height"] / 2) * step / 10)
    page.mouse.up()
    assert titles(page, "todo") == ["Alpha", "Delta", "Bravo", "Charlie"]  # at once, before the server answers
    saved(page, "todo", "Delta")
    # Drag Alpha to In progress.
    column(page, "todo").locator(".tk-card", has_text="Alpha").drag_to(column(page, "in_progress"))
    saved(page, "in_progress", "Alpha")
    # Keys: Charlie up one (Shift+Up), then Bravo one column right (Shift+Right).
    column(page, "todo").locator(".tk-card", has_text="Charlie").focus()
    page.keyboard.press("Shift+ArrowUp")
    saved(page, "todo", "Charlie")
    column(page, "todo").locator(".tk-card", has_text="Bravo").focus()
    page.keyboard.press("Shift+ArrowRight")
    saved(page, "in_progress", "Bravo")
    assert order_in_db(ctx, user_id, "todo") == ["Delta", "Charlie"]
    assert order_in_db(ctx, user_id, "in_progress") == ["Alpha", "Bravo"]
    page.reload()
    column(page, "todo").locator(".tk-card").first.wait_for()
    assert titles(page, "todo") == ["Delta", "Charlie"] and titles(page, "in_progress") == ["Alpha", "Bravo"]
    shot(page, "board-kanban")


def one_approved_card(ctx, user_id, sim) -> tuple[str, str]:
    """A Confluence task approved onto the board: its title and its task id."""
    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync.sync_connection(ctx, conn)
    with ctx.session() as s:
        [card] = queue.approve(s, user_id, [queue.list_pending(s, user_id)[0].id])
        return card.title, card.confluence_task_id


def test_a_drag_to_done_completes_the_task_in_confluence(ctx, user_id, app_server, sim, page):
    title, remote = one_approved_card(ctx, user_id, sim)
    goto(page, app_server, "/board", "Board")
    column(page, "todo").locator(".tk-card", has_text=title).drag_to(column(page, "done"))
    deadline = time.monotonic() + 40  # a move into Done is sent after its 10 s Undo window
    while sim.state.tasks[remote].status != "complete":
        assert time.monotonic() < deadline, "the simulated task never became complete"
        time.sleep(0.1)
    column(page, "done").locator(".tk-card", has_text=title).locator(".s-synced").wait_for(state="attached", timeout=20000)


def test_card_details_open_on_click_and_save_every_field(ctx, user_id, app_server, page):
    with ctx.session() as s:
        projects.create_project(s, user_id, "Platform")
        card_id = board.create_card(s, user_id, "Plan the offsite").id
    goto(page, app_server, "/board", "Board")
    page.locator(".tk-card", has_text="Plan the offsite").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_label("Title").fill("Plan the <b>offsite</b>")
    dialog.get_by_label("Note").fill("book the room")
    dialog.get_by_test_id("stSelectbox").filter(has_text="Project").locator("input").click()
    page.get_by_role("option", name="Platform").click()
    dialog.get_by_role("button", name="Save").click()
    page.locator(".tk-card", has_text="Plan the <b>offsite</b>").locator(".tk-project", has_text="Platform").wait_for()
    settle(page)  # the run that drew it is over: the board of the run before is gone, not just covered
    with ctx.session() as s:
        view = board_view.card_view(s, user_id, card_id)
    assert (view.title, view.note, view.project) == ("Plan the <b>offsite</b>", "book the room", "Platform")
    page.locator(".tk-card", has_text="offsite").click()
    page.get_by_role("dialog").wait_for()
    shot(page, "board-card-details")
    page.get_by_role("dialog").get_by_role("button", name="Archive").click()
    page.get_by_text("No cards yet").wait_for()


def test_a_refused_move_puts_the_card_back_and_says_why(ctx, user_id, app_server, page):
    with ctx.session() as s:
        keep = board.create_card(s, user_id, "Stays").id
        gone = board.create_card(s, user_id, "Archived in another tab").id
    goto(page, app_server, "/board", "Board")
    column(page, "todo").locator(".tk-card").nth(1).wait_for()
    with ctx.session() as s:
        board.archive_card(s, user_id, gone)  # another tab, before this one refreshed
    column(page, "todo").locator(".tk-card", has_text="Archived in another tab").drag_to(column(page, "done"))
    page.locator(".tk-notice.shown", has_text="is archived").wait_for()
    expect(column(page, "done").locator(".tk-card")).to_have_count(0)
    assert keep and titles(page, "todo") == ["Stays"]


def test_phone_width_shows_one_column_and_moves_by_the_card_menu(ctx, user_id, app_server, browser):
    with ctx.session() as s:
        board.create_card(s, user_id, "On the go")
        board.create_card(s, user_id, "Later", status="backlog")
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(20000)
    try:
        goto(page, app_server, "/board", "Board")
        card = page.locator(".tk-card", has_text="On the go")
        card.wait_for()
        assert not page.locator(".tk-card", has_text="Later").is_visible()  # one column at a time
        assert card.bounding_box()["width"] > 250  # a column uses the phone's width
        page.locator(".tk-tabs").scroll_into_view_if_needed()
        shot(page, "board-phone", full_page=False)
        card.locator(".tk-more").tap()
        page.get_by_role("menuitem", name="Move to In progress").tap()
        page.get_by_role("tab", name="In progress · 1").tap()
        saved(page, "in_progress", "On the go")
        page.get_by_role("tab", name="Backlog · 1").tap()
        assert page.locator(".tk-card", has_text="Later").is_visible()
        assert order_in_db(ctx, user_id, "in_progress") == ["On the go"]
    finally:
        context.close()


def test_undo_puts_a_dropped_card_back_and_confluence_never_hears_of_it(ctx, user_id, app_server, sim, page):
    title, remote = one_approved_card(ctx, user_id, sim)
    goto(page, app_server, "/board", "Board")
    column(page, "todo").locator(".tk-card", has_text=title).drag_to(column(page, "done"))
    saved(page, "done", title)
    expect(page.locator(".tk-notice")).to_contain_text("sent to Confluence in 10 s unless you undo it")
    page.get_by_role("button", name="Undo").click()
    saved(page, "todo", title)
    expect(page.locator(".tk-notice")).to_contain_text("back in To do")
    time.sleep(12)  # past the window: nothing was sent
    assert sim.state.tasks[remote].status == "incomplete" and sim.state.api_requests("PUT task") == []


def test_the_board_opens_on_the_work_at_desktop_width(ctx, user_id, app_server, browser):
    """One compact toolbar row: at 1440×900 the first card starts within the top 320 px."""
    with ctx.session() as s:
        for title in ("First", "Second", "Third"):
            board.create_card(s, user_id, title)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        goto(page, app_server, "/board", "Board")
        first = column(page, "todo").locator(".tk-card").first
        first.wait_for()
        top = first.bounding_box()["y"]
        shot(page, "board-desktop", full_page=False)
        assert top <= 320, top
    finally:
        context.close()


def test_archive_delete_and_send_back_each_say_so_with_undo_that_puts_the_card_back(ctx, user_id, app_server, sim, page):
    title, remote = one_approved_card(ctx, user_id, sim)
    with ctx.session() as s:
        board.create_card(s, user_id, "Below it")
    goto(page, app_server, "/board", "Board")
    for action, says in (("Archive", "Card archived."), ("Delete", "Card deleted."),
                         ("Send back to the queue", "Sent back to the queue.")):
        column(page, "todo").locator(".tk-card", has_text=title).click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name=action).click()
        notice = page.locator(".tk-notice.shown", has_text=says)
        notice.wait_for()
        expect(column(page, "todo").locator(".tk-card", has_text=title)).to_have_count(0)
        box = notice.bounding_box()  # a snackbar at the foot of the window: the cards did not move down
        assert box["y"] > page.viewport_size["height"] / 2, box
        notice.get_by_role("button", name="Undo").click()
        saved(page, "todo", title)
        assert titles(page, "todo") == [title, "Below it"], action  # back where it sat
        settle(page)
    with ctx.session() as s:  # the same card, still linked, its task approved (not waiting again)
        [card] = [c for c in board_view.list_cards(s, user_id) if c.title == title]
        assert card.confluence_task_id == remote
        assert all(r.confluence_task_id != remote for r in queue.list_pending(s, user_id))


def test_dark_mode_follows_the_system_and_the_menu_offers_the_choice(ctx, user_id, app_server, sim, browser):
    sync.sync_connection(ctx, connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN))
    with ctx.session() as s:
        board.create_card(s, user_id, "Read in the dark", due_date=None)
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        try:
            goto(page, app_server, "/board", "Board")
            card = column(page, "todo").locator(".tk-card").first
            card.wait_for()
            shade = card.evaluate(LUMINANCE)  # the card takes the theme's background: light or dark
            assert (shade > 0.8) if scheme == "light" else (shade < 0.25), (scheme, shade)
            shot(page, f"board-{scheme}", full_page=False)
            goto(page, app_server, "/pending", "Pending")
            page.wait_for_function(GRID_DRAWN, timeout=20000)
            shot(page, f"pending-{scheme}", full_page=False)
            goto(page, app_server, "/board", "Board")
            column(page, "todo").locator(".tk-card").first.wait_for()
            if scheme == "light":  # the ⋮ menu offers System / Light / Dark; Dark turns the board dark at once
                page.get_by_test_id("stMainMenu").click()
                page.get_by_test_id("stThemeSwitcher").get_by_role("menuitemradio", name="Dark").click()
                deadline = time.monotonic() + 15
                while column(page, "todo").locator(".tk-card").first.evaluate(LUMINANCE) >= 0.25:
                    assert time.monotonic() < deadline, "the board did not turn dark"
                    time.sleep(0.2)
        finally:
            context.close()


def test_quick_add_at_a_columns_foot_adds_cards_one_after_another_and_keeps_a_refused_title(ctx, user_id, app_server, page):
    with ctx.session() as s:
        platform = projects.create_project(s, user_id, "Platform")
        board.create_card(s, user_id, "Already here", status="in_progress")
    goto(page, app_server, "/board", "Board")
    lane = page.locator('.tk-column[data-status="in_progress"]')
    lane.get_by_role("button", name="+ Add a card").click()
    box = lane.get_by_label("New card in In progress")
    box.fill("Draft the agenda")
    lane.get_by_label("Project (optional)").select_option(label="Platform")
    lane.get_by_label("Due (optional)").fill("2027-01-15")
    box.press("Enter")
    saved(page, "in_progress", "Draft the agenda")
    box = lane.get_by_label("New card in In progress")  # still open after the redraw, focused: type the next one
    expect(box).to_be_focused()
    page.keyboard.type("Book the room")
    page.keyboard.press("Enter")
    saved(page, "in_progress", "Book the room")
    assert titles(page, "in_progress") == ["Already here", "Draft the agenda", "Book the room"]
    with ctx.session() as s:
        [agenda] = [c for c in board_view.list_cards(s, user_id) if c.title == "Draft the agenda"]
        assert (agenda.project_id, str(agenda.due_date), agenda.status) == (platform.id, "2027-01-15", "in_progress")
    lane.get_by_label("New card in In progress").press("Escape")
    expect(lane.get_by_label("New card in In progress")).to_be_hidden()
    # A card that is refused (its project was deleted in another tab meanwhile) is said, and its title
    # is back in the form: nothing typed is lost.
    todo = page.locator('.tk-column[data-status="todo"]')
    todo.get_by_role("button", name="+ Add a card").click()
    todo.get_by_label("Project (optional)").select_option(label="Platform")
    with ctx.session() as s:
        s.delete(s.get(Project, platform.id))
    todo.get_by_label("New card in To do").fill("Call the venue")
    todo.get_by_label("New card in To do").press("Enter")
    page.locator(".tk-notice.shown", has_text="That card was not added").wait_for()
    expect(todo.get_by_label("New card in To do")).to_have_value("Call the venue")


def test_at_phone_width_quick_add_undo_and_the_dark_theme_work_by_touch(ctx, user_id, app_server, browser):
    with ctx.session() as s:
        board.create_card(s, user_id, "Already to do")
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                  color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(20000)
    try:
        goto(page, app_server, "/board", "Board")
        lane = page.locator('.tk-column.current[data-status="todo"]')  # one column at a time: To do
        lane.get_by_role("button", name="+ Add a card").tap()
        lane.get_by_label("New card in To do").fill("Added on the phone")
        lane.get_by_role("button", name="Add card").tap()
        saved(page, "todo", "Added on the phone")
        assert titles(page, "todo") == ["Already to do", "Added on the phone"]
        assert column(page, "todo").locator(".tk-card").first.evaluate(LUMINANCE) < 0.25  # the system's dark theme
        shot(page, "board-phone-dark", full_page=False)
        column(page, "todo").locator(".tk-card", has_text="Already to do").tap()
        page.get_by_role("dialog").get_by_role("button", name="Archive").tap()
        notice = page.locator(".tk-notice.shown", has_text="Card archived.")
        notice.wait_for()
        box = notice.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844, box  # on screen
        notice.get_by_role("button", name="Undo").tap()
        saved(page, "todo", "Already to do")
        assert titles(page, "todo") == ["Already to do", "Added on the phone"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways
    finally:
        context.close()
