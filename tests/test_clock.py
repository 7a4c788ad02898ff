"""Time as a person sees it (trackli.clock): zones checked, today where they are, due dates in words."""

from __future__ import annotations

import datetime as dt

from trackli import clock


def test_due_dates_read_as_words_with_a_kind_for_colour():
    today = dt.date(2026, 12, 3)  # a Thursday
    day = lambda n: today + dt.timedelta(days=n)  # noqa: E731
    assert clock.due_words(None, today) == ("", "none")  # an empty due is empty, never "None"
    assert clock.due_words(day(-1), today) == ("due yesterday", "overdue")
    assert clock.due_words(day(-10), today) == ("overdue · 23 Nov", "overdue")
    assert clock.due_words(today, today) == ("due today", "today")
    assert clock.due_words(day(1), today) == ("due tomorrow", "week")
    assert clock.due_words(day(3), today) == ("due Sunday", "week")
    assert clock.due_words(day(14), today) == ("due 17 Dec", "later")
    assert clock.due_words(day(40), today) == ("due 12 Jan 2027", "later")


def test_today_is_the_persons_and_a_zone_is_never_opened_from_input():
    late = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.timezone.utc)
    assert clock.today_in("Asia/Tokyo", late) == dt.date(2026, 12, 4)
    assert clock.today_in("America/Los_Angeles", late) == dt.date(2026, 12, 3)
    for bad in ("America", "../../etc/passwd", "", None):
        assert clock.today_in(bad, late) == dt.date(2026, 12, 3) and clock.zone(bad).key == "UTC"
