"""Snooze (a task or a card leaves and comes back on the person's day) and the calendar feed (issue 17),
on both databases."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from sqlalchemy import select

from tests.syncing import approve_some, waiting
from trackli import board, board_view, feed, projects, queue, snooze, sync
from trackli.errors import ValidationError
from trackli.models import Card, PendingTask, User
from trackli.simulator import ME

UTC = dt.timezone.utc


def test_return_days_are_read_in_words_and_must_be_after_today():
    today = dt.date(2026, 11, 27)  # a Friday
    assert snooze.parse_until("2026-12-03", today) == dt.date(2026, 12, 3)
    assert snooze.parse_until("tomorrow", today) == dt.date(2026, 11, 28)
    assert snooze.parse_until("in 3 days", today) == dt.date(2026, 11, 30)
    assert snooze.parse_until("In 2 weeks", today) == dt.date(2026, 12, 11)
    assert snooze.parse_until("next monday", today) == dt.date(2026, 11, 30)
    assert snooze.parse_until("friday", today) == dt.date(2026, 12, 4)  # today is Friday: the next one
    for bad, message in (("2026-11-27", "not after today"), ("yesterday", "not a day"), ("", "say until when"),
                         ("2040-01-01", "ten years")):
        with pytest.raises(ValidationError, match=message):
            snooze.parse_until(bad, today)


def test_a_snoozed_task_returns_at_midnight_in_the_persons_time_zone_at_the_top(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    last = waiting(sim_ctx, user_id)[-1]
    with sim_ctx.session() as s:
        s.get(User, user_id).time_zone = "Asia/Tokyo"  # UTC+9, no daylight saving
    with sim_ctx.session() as s:
        today = snooze.today_for(s, user_id)
        assert snooze.snooze_pending(s, user_id, [last.id], today + dt.timedelta(days=1)) == 1
    assert last.id not in {r.id for r in waiting(sim_ctx, user_id)}
    assert [r.id for r in waiting(sim_ctx, user_id, "snoozed")] == [last.id]

    tokyo_midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.timezone(dt.timedelta(hours=9)))
    with sim_ctx.session() as s:  # 23:59 in Tokyo (14:59 UTC): still asleep
        assert snooze.wake(s, now=tokyo_midnight.astimezone(UTC) - dt.timedelta(minutes=1)) == 0
    with sim_ctx.session() as s:  # 00:00 in Tokyo, 15:00 UTC the day before: back
        assert snooze.wake(s, now=tokyo_midnight.astimezone(UTC)) == 1

    with sim_ctx.session() as s:
        first = queue.list_pending(s, user_id, stable_order=True, limit=5)[0]
        assert (first.id, first.returned_from_snooze) == (last.id, True)
        queue.edit_pending(s, user_id, last.id, title="Seen it")  # the person has it in hand: the mark goes
    with sim_ctx.session() as s:
        assert s.get(PendingTask, last.id).returned_from_snooze_at is None


def test_a_snoozed_card_leaves_its_column_and_comes_back_on_top(sim_ctx, user_id, token_connection):
    cards = approve_some(sim_ctx, user_id, token_connection, 3)
    with sim_ctx.session() as s:
        snooze.snooze_card(s, user_id, cards[2], "in 2 days")
        assert [c.id for c in board_view.board(s, user_id)["todo"]] == cards[:2]
        assert board_view.column_counts(s, user_id)["todo"] == 2
        assert [(r.kind, r.id) for r in snooze.snoozed(s, user_id)] == [("card", cards[2])]
        board.move_card(s, user_id, cards[0], "done")
        with pytest.raises(ValidationError, match="this card is done"):
            snooze.snooze_card(s, user_id, cards[0], "tomorrow")
    with sim_ctx.session() as s:
        later = dt.datetime.now(UTC) + dt.timedelta(days=3)
        assert snooze.wake(s, user_id, now=later) == 1
    with sim_ctx.session() as s:
        todo = board_view.board(s, user_id)["todo"]
        assert todo[0].id == cards[2] and todo[0].returned_from_snooze


def test_a_snoozed_task_completed_or_removed_upstream_follows_the_sync_rules(sim_ctx, user_id, token_connection, sim):
    card_id = approve_some(sim_ctx, user_id, token_connection, 3)[-1]
    rows = waiting(sim_ctx, user_id)[:2]
    with sim_ctx.session() as s:
        snooze.snooze_pending(s, user_id, [r.id for r in rows], "tomorrow")
        snooze.snooze_card(s, user_id, card_id, "tomorrow")
        card_task = s.get(Card, card_id).confluence_task_id
    sim.state.delete_task(rows[0].confluence_task_id)
    sim.state.update_task(rows[1].confluence_task_id, status="complete")
    sim.state.update_task(card_task, status="complete")
    sync.sync_connection(sim_ctx, token_connection)
    with sim_ctx.session() as s:
        assert {s.get(PendingTask, r.id).status for r in rows} == {"gone"}
        card = s.get(Card, card_id)
        assert (card.status, card.snoozed_until) == ("done", None)


def test_the_feed_lists_open_dated_cards_as_all_day_events_with_stable_uids(ctx, user_id):
    with ctx.session() as s:
        project = projects.create_project(s, user_id, "Platform")
        keep = board.create_card(s, user_id, "Ship; it, now", due_date="2026-12-03", project_id=project.id,
                                 confluence_task_id="77", confluence_url="https://acme.atlassian.net/wiki/x")
        done = board.create_card(s, user_id, "Already done", due_date="2026-12-04")
        board.move_card(s, user_id, done.id, "done")
        board.create_card(s, user_id, "No date")
        url = feed.turn_on(ctx, s, user_id)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert url.startswith("http://localhost:8501/feeds/") and len(token) == 43

    first = feed.answer(ctx, token, None)
    cal = icalendar.Calendar.from_ical(first.body)
    events = cal.walk("VEVENT")
    assert [str(e["uid"]) for e in events] == [f"card-{keep.id}@trackli"]
    event = events[0]
    assert str(event["summary"]) == "Ship; it, now"
    assert event.decoded("dtstart") == dt.date(2026, 12, 3) and event.decoded("dtend") == dt.date(2026, 12, 4)
    assert "Project: Platform" in str(event["description"]) and "https://acme.atlassian.net/wiki/x" in str(event["description"])
    assert feed.answer(ctx, token, first.etag).status == 304  # nothing changed: no body
    assert feed.answer(ctx, token, first.etag).body == b""
    with ctx.session() as s:
        board.edit_card(s, user_id, keep.id, title="Renamed")
    again = feed.answer(ctx, token, first.etag)
    assert again.status == 200 and again.etag != first.etag
    assert [str(e["uid"]) for e in icalendar.Calendar.from_ical(again.body).walk("VEVENT")] == [f"card-{keep.id}@trackli"]


def test_rotating_or_revoking_the_feed_closes_the_old_url(ctx, user_id):
    with ctx.session() as s:
        old = feed.turn_on(ctx, s, user_id, include_pending=True)
        assert feed.turn_on(ctx, s, user_id) == old  # on again: the same URL
        new = feed.rotate(ctx, s, user_id)
    token = lambda u: u.rsplit("/", 1)[1].removesuffix(".ics")  # noqa: E731
    assert new != old
    assert feed.answer(ctx, token(old), None).status == 404
    assert feed.answer(ctx, token(new), None).status == 200
    for wrong in ("", "x" * 43, token(new)[:-1], token(new) + "A", "../" + token(new)):
        assert feed.answer(ctx, wrong, None).status == 404
    with ctx.session() as s:
        feed.turn_off(s, user_id)
        assert feed.current_url(ctx, s, user_id) is None
    assert feed.answer(ctx, token(new), None).status == 404


def test_the_feed_can_list_waiting_tasks_too(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    dated = [r for r in waiting(sim_ctx, user_id) if r.due_date]
    with sim_ctx.session() as s:
        url = feed.turn_on(sim_ctx, s, user_id, include_pending=True)
    answer = feed.answer(sim_ctx, url.rsplit("/", 1)[1].removesuffix(".ics"), None)
    uids = {str(e["uid"]) for e in icalendar.Calendar.from_ical(answer.body).walk("VEVENT")}
    assert uids == {f"pending-{r.id}@trackli" for r in dated}
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    with sim_ctx.session() as s:  # neither stored column holds the token itself
        stored = s.execute(select(User.feed_token_enc, User.feed_token_hash).where(User.id == user_id)).one()
    assert all(value and token not in value for value in stored)


def test_a_browser_time_zone_that_is_a_folder_or_a_path_is_ignored(ctx, user_id):
    for bad in ("America", "Europe", "../../etc/passwd", "posix", "UTC/..", "\x00"):
        assert snooze.valid_zone(bad) is None, bad
        assert snooze.zone(bad).key == "UTC"
        with ctx.session() as s:
            snooze.remember_zone(s, user_id, bad)  # a page load with it: no error
    with ctx.session() as s:
        snooze.remember_zone(s, user_id, "America/New_York")
        assert s.get(User, user_id).time_zone == "America/New_York"


def test_a_lone_surrogate_in_an_upstream_title_never_stops_a_sync(sim_ctx, user_id, token_connection, sim):
    page = next(iter(sim.state.content.values()))
    sim.state.add_task("Broken \ud800 title @me", assigned_to=ME[0], container=page)
    first = sync.sync_connection(sim_ctx, token_connection)
    assert first.outcome == "ok", first.error
    [row] = [r for r in waiting(sim_ctx, user_id) if r.title.startswith("Broken")]
    assert "\ud800" not in row.title and row.title.startswith("Broken title")
    assert sync.sync_connection(sim_ctx, token_connection).outcome == "ok"  # and every later sync


def test_the_feed_is_safe_to_poll_opaque_uncached_rendered_once_and_rate_limited(ctx, user_id, monkeypatch):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    with ctx.session() as s:
        s.get(User, user_id).display_name = "Ann\r\nX-Injected: yes\rBob"
        board.create_card(s, user_id, "Dated", due_date="2026-12-03")
        url = feed.turn_on(ctx, s, user_id)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    renders = []
    real = feed.render
    monkeypatch.setattr(feed, "render", lambda *a: renders.append(1) or real(*a))
    monkeypatch.setattr(feed, "rate_limit", feed.RateLimit(per_minute=4))
    client = TestClient(Starlette(routes=[feed.route(lambda: ctx)]))
    first = client.get(f"/feeds/{token}.ics")
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    name = icalendar.Calendar.from_ical(first.content)["x-wr-calname"]
    assert str(name) == "Trackli — Ann X-Injected: yes Bob" and b"\r\nX-Injected" not in first.content
    tag = first.headers["etag"]
    assert tag.startswith('"') and str(user_id) + "-" not in tag and len(tag) == 34  # nothing internal in it
    assert client.head(f"/feeds/{token}.ics").status_code == 200 and client.get(f"/feeds/{token}.ics").status_code == 200
    assert renders == [1]  # three answers of one version: rendered once
    assert client.get(f"/feeds/{token}.ics", headers={"If-None-Match": tag}).status_code == 304
    limited = client.get(f"/feeds/{token}.ics")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    assert feed.RateLimit(per_minute=5).allow(token)  # another token's (or a fresh process's) budget is its own
