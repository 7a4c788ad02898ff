"""Issue 17 in a real browser against `streamlit run app.py`: the calendar feed fetched over HTTP from the
dashboard's own server (the very first request after a start included), and a rule made on the Rules page."""

import datetime as dt

import httpx
import icalendar

from tests.browser.conftest import settle, shot
from tests.browser.test_dashboard import goto
from trackli import board, sync
from sqlalchemy import select

from trackli.models import AtlassianConnection, PendingTask


def test_the_feed_is_served_by_the_dashboard_and_polls_cheaply(ctx, user_id, app_server, page):
    app_server.env["TRACKLI_PUBLIC_URL"] = app_server.url
    app_server.restart()
    with ctx.session() as s:
        card = board.create_card(s, user_id, "Renew; the certificate", due_date="2026-12-03")
    goto(page, app_server, "/calendar", "Calendar")
    page.get_by_role("button", name="Turn the calendar feed on").click()
    settle(page)
    url = page.get_by_test_id("stCode").inner_text().strip()
    assert url.startswith(f"{app_server.url}/feeds/") and url.endswith(".ics")

    app_server.restart()  # a calendar's poll may be the first request a fresh server gets
    first = httpx.get(url, timeout=30)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/calendar")
    [event] = icalendar.Calendar.from_ical(first.content).walk("VEVENT")
    assert (str(event["uid"]), str(event["summary"])) == (f"card-{card.id}@trackli", "Renew; the certificate")
    assert event.decoded("dtstart") == dt.date(2026, 12, 3)
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(url.replace(".ics", "x.ics")).status_code == 404

    page.reload()
    page.get_by_role("heading", name="Calendar", level=1).wait_for()
    settle(page)
    page.get_by_role("button", name="New address").click()
    settle(page)
    rotated = page.get_by_test_id("stCode").inner_text().strip()
    assert rotated != url and httpx.get(url).status_code == 404 and httpx.get(rotated).status_code == 200


def test_a_rule_made_on_the_rules_page_routes_the_next_new_tasks(ctx, user_id, app_server, sim, page):
    from trackli import connections
    from trackli.simulator import ME, ME_API_TOKEN

    connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    goto(page, app_server, "/rules", "Rules")
    page.get_by_label("Title contains the words").fill("budget")
    page.get_by_label("Title contains the words").press("Enter")
    settle(page)
    page.get_by_role("button", name="Save rule").click()
    settle(page)
    page.get_by_text("say what the rule does").first.wait_for()  # no project chosen yet: nothing saved
    page.get_by_label("Project").click()
    page.keyboard.type("Finance")
    page.keyboard.press("Enter")
    settle(page)
    page.get_by_role("button", name="Save rule").click()
    settle(page)
    page.get_by_text("When title has “budget” → set project Finance").wait_for()

    with ctx.session() as s:
        conn = s.scalar(AtlassianConnection.__table__.select().with_only_columns(AtlassianConnection.id))
    result = sync.sync_connection(ctx, conn)  # the first sync: every task enters the queue
    with ctx.session() as s:
        routed = list(s.scalars(select(PendingTask).where(PendingTask.rule_id.isnot(None))))
    assert result.routed == len(routed) >= 1
    assert all("budget" in r.task_title.lower() and r.project_id is not None for r in routed)
    goto(page, app_server, "/pending", "Pending")
    assert page.get_by_text("Traceback").count() == 0


def test_pending_is_triaged_from_the_keyboard_in_its_list_view(ctx, user_id, sim, app_server, page):
    from playwright.sync_api import expect

    from trackli import connections, queue
    from trackli.simulator import ME, ME_API_TOKEN

    sync.sync_connection(ctx, connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN))
    with ctx.session() as s:
        order = [r.id for r in queue.list_pending(s, user_id, stable_order=True)]

    def status(task_id):
        with ctx.session() as s:
            return s.get(PendingTask, task_id, populate_existing=True).status

    def notice(text):  # the wide list's own (the phone's cards, hidden at this width, say it too)
        return page.locator(".st-key-pending_grid .tk-notice.shown", has_text=text)

    goto(page, app_server, "/pending", "Pending")
    page.get_by_test_id("stButtonGroup").get_by_text("List", exact=True).click()
    cards = page.locator(".st-key-pending_grid .tk-triage")
    expect(cards).to_have_count(30)
    page.locator(".st-key-pending_grid").get_by_text("Keys: j/k move").wait_for()  # the keys, said once on the page
    page.keyboard.press("?")
    expect(page.locator(".st-key-pending_grid .tk-keys")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator(".st-key-pending_grid .tk-keys")).to_be_hidden()

    shot(page, "pending-list", full_page=False)
    page.keyboard.press("j")  # the first task
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.locator(".st-key-pending_grid").get_by_text("2 ticked").wait_for()
    page.keyboard.press("a")  # approves the two ticked
    notice("2 approved into To do.").wait_for()
    page.get_by_text("Pending 28").wait_for()  # the header's count too
    assert [status(i) for i in order[:3]] == ["approved", "approved", "pending"]

    expect(page.locator(f'.st-key-pending_grid .tk-triage[data-task="{order[2]}"]')).to_be_focused()  # the next one waiting
    page.keyboard.press("d")
    notice("Dismissed").wait_for()
    assert status(order[2]) == "dismissed"
    notice("Dismissed").get_by_role("button", name="Undo").click()
    notice("Undone").wait_for()
    assert status(order[2]) == "pending"

    page.locator(f'.st-key-pending_grid .tk-triage[data-task="{order[3]}"]').focus()
    page.keyboard.press("s")  # when: the presets, in a menu; Enter takes the first (Tomorrow)
    page.get_by_role("menuitem", name="Tomorrow").wait_for()
    page.keyboard.press("Enter")
    notice("Snoozed until").wait_for()
    assert status(order[3]) == "snoozed"

    page.locator(f'.st-key-pending_grid .tk-triage[data-task="{order[4]}"]').focus()
    page.keyboard.press("e")
    page.get_by_role("dialog").get_by_label("Title").wait_for()  # the task's edit dialog
    page.keyboard.type("typed here is not a shortcut: a d x")  # keys in a field are text
    assert status(order[4]) == "pending"
