"""AppTest: the Rules and Calendar pages, and snoozing on Pending (issue 17)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.ui.test_pages import button, no_exceptions, open_page, synced, texts
from trackli import feed, projects, queue, snooze
from trackli.models import PendingTask, Rule


def test_a_rule_is_previewed_before_it_is_saved_then_applied_and_undone(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        before = {r.id: r.status for r in s.scalars(select(PendingTask))}
    at = open_page("rules")
    no_exceptions(at)
    assert "No rules yet" in texts(at)
    at.text_input(key="new_title_has").set_value("budget")
    at.selectbox(key="new_does").set_value("Dismiss").run()
    button(at, "Preview").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        matching = sum(1 for r in queue.list_pending(s, user_id) if "budget" in r.title.lower())
    assert matching and f"Would dismiss: {matching} task(s)" in texts(at)
    with ctx.session() as s:
        assert s.scalar(select(Rule.id)) is None  # a preview saves nothing
        assert {r.id: r.status for r in s.scalars(select(PendingTask))} == before

    button(at, "Save rule").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        rule = s.scalar(select(Rule))
        assert (rule.title_has, rule.action) == ("budget", "dismiss")
    assert "When title has “budget” → dismiss" in texts(at)

    button(at, "Apply to the waiting queue now").click().run()
    no_exceptions(at)
    assert f"routed {matching} task(s)" in texts(at)
    with ctx.session() as s:
        assert sum(1 for r in s.scalars(select(PendingTask)) if r.status == "dismissed") == matching
    button(at, "Undo").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        assert {r.id: r.status for r in s.scalars(select(PendingTask))} == before

    at.toggle(key=f"rule_on_{rule.id}").set_value(False).run()
    with ctx.session() as s:
        assert s.get(Rule, rule.id).enabled is False


def test_the_calendar_page_turns_the_feed_on_rotates_and_turns_it_off(ctx, user_id):
    at = open_page("calendar")
    no_exceptions(at)
    button(at, "Turn the calendar feed on").click().run()
    no_exceptions(at)
    [code] = at.code
    first = code.value
    assert first.startswith("http://localhost:8501/feeds/") and first.endswith(".ics")
    with ctx.session() as s:
        assert feed.current_url(ctx, s, user_id) == first
    button(at, "New address").click().run()
    assert at.code[0].value != first
    at.toggle(key="feed_pending").set_value(True).run()
    with ctx.session() as s:
        assert feed.includes_pending(s, user_id)
    button(at, "Turn the feed off").click().run()
    no_exceptions(at)
    assert not at.code and "turn the calendar feed on".lower() in " ".join(b.label.lower() for b in at.button)


def test_pending_snoozes_the_ticked_rows_and_the_snoozed_tab_brings_them_back(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("pending")
    rows = at.session_state["queue_ids"]
    at.session_state["queue"] = {"edited_rows": {0: {"select": True}, 1: {"select": True}}, "added_rows": [],
                                 "deleted_rows": []}
    at.run()
    at.selectbox(key="queue_snooze_preset").set_value("In 3 days").run()
    button(at, "Snooze").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        today = snooze.today_for(s, user_id)
        snoozed = {r.id: r.snoozed_until for r in s.scalars(select(PendingTask).where(PendingTask.status == "snoozed"))}
    assert snoozed == {rows[0]: today + dt.timedelta(days=3), rows[1]: today + dt.timedelta(days=3)}
    assert "2 task(s) snoozed until" in texts(at)
    at = open_page("pending")
    at.multiselect(key="wake_pick").set_value([rows[0]]).run()
    button(at, "Back to the queue").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        assert s.get(PendingTask, rows[0]).status == "pending" and s.get(PendingTask, rows[1]).status == "snoozed"


def test_upcoming_lists_cards_and_waiting_tasks_by_day(ctx, user_id, sim_env):
    import datetime as dt

    from tests.ui.test_pages import open_page, synced
    from trackli import board, board_view

    synced(ctx, user_id, sim_env)
    today = dt.datetime.now(dt.timezone.utc).date()
    with ctx.session() as s:
        board.create_card(s, user_id, "Late card", due_date=today - dt.timedelta(days=2))
        board.create_card(s, user_id, "Card for tomorrow", due_date=today + dt.timedelta(days=1))
        board.create_card(s, user_id, "Far away", due_date=today + dt.timedelta(days=40))
        done = board.create_card(s, user_id, "Done already", due_date=today)
        board.move_card(s, user_id, done.id, "done")
        items = board_view.upcoming(s, user_id, today)
    titles = [i.title for i in items]
    assert titles[0] == "Late card" and "Card for tomorrow" in titles
    assert "Far away" not in titles and "Done already" not in titles
    assert any(i.kind == "pending" for i in items)  # waiting tasks with a due date too
    assert [i.due_date for i in items] == sorted(i.due_date for i in items)
    at = open_page("upcoming")
    assert not at.exception
    headings = [h.value for h in at.subheader]
    assert headings[0] == "Overdue" and any(h.startswith("Tomorrow · ") for h in headings)
    assert any("Late card" in m.value for m in at.markdown)


def test_the_rules_form_offers_spaces_by_name_and_starts_empty_after_saving(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    at = open_page("rules")
    options = at.selectbox(key="new_space").options
    assert options and all(o.endswith(")") and "(" in o for o in options)  # "Engineering (ENG)": names, keys small
    label = options[0]
    key = label.rsplit("(", 1)[1].rstrip(")")
    at.selectbox(key="new_space").set_value(label)
    at.selectbox(key="new_does").set_value("Dismiss").run()
    button(at, "Save rule").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        assert s.scalar(select(Rule.space_key)) == key  # the key is stored, the name was shown
    assert at.selectbox(key="new_space").value is None and at.selectbox(key="new_does").value == "Set a project"


def test_the_rules_form_offers_the_creators_by_name_and_the_preview_keeps_names_case(ctx, user_id, sim_env):
    synced(ctx, user_id, sim_env)
    with ctx.session() as s:
        projects.create_project(s, user_id, "Design")
    at = open_page("rules")  # opening the page looks the creators' names up (here: in time for the first draw)
    options = at.selectbox(key="new_created_by").options
    named = {a.name for a in sim_env.state.accounts.values()}
    assert options and all(o.split(" · ")[0] in named for o in options), options  # "Kim Park · 15 tasks"
    kim = next(o for o in options if o.startswith("Kim Park · "))
    at.selectbox(key="new_created_by").set_value(kim)
    at.selectbox(key="new_does").set_value("Approve into a column").run()
    at.selectbox(key="new_project").set_value("Design").run()
    button(at, "Preview").click().run()
    no_exceptions(at)
    assert "Would approve into To do, project Design:" in texts(at)  # names keep their case
    button(at, "Save rule").click().run()
    no_exceptions(at)
    with ctx.session() as s:
        rule = s.scalar(select(Rule))
    assert rule.created_by == "sim-user-2" and "When created by Kim Park → approve into To do, project Design" in texts(at)
