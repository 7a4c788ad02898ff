import datetime as dt

import pytest

from trackli import board, board_view, fields, projects
from trackli.errors import NotFound, ValidationError
from trackli.models import OutboxEntry, Card
from sqlalchemy import select


def test_projects_create_rename_archive(ctx, user_id):
    with ctx.session() as s:
        p = projects.create_project(s, user_id, "  Website  ", "#112233")
        assert p.name == "Website"
        projects.rename_project(s, user_id, p.id, "Web")
        projects.archive_project(s, user_id, p.id)
    with ctx.session() as s:
        assert projects.list_projects(s, user_id) == []
        [archived] = projects.list_projects(s, user_id, include_archived=True)
        assert (archived.name, archived.archived) == ("Web", True)


@pytest.mark.parametrize("name, message", [("", "must not be empty"), ("x" * 101, "at most 100"), ("Dup", "already have")])
def test_project_validation(ctx, user_id, name, message):
    with ctx.session() as s:
        projects.create_project(s, user_id, "Dup")
    with pytest.raises(ValidationError, match=message):
        with ctx.session() as s:
            projects.create_project(s, user_id, name)


def test_bad_colour_is_refused(ctx, user_id):
    with pytest.raises(ValidationError, match="not a colour"):
        with ctx.session() as s:
            projects.create_project(s, user_id, "X", "red")


def test_cards_are_created_at_the_end_of_their_column(ctx, user_id):
    with ctx.session() as s:
        a = board.create_card(s, user_id, "first")
        b = board.create_card(s, user_id, "second", due_date="2026-12-01")
        c = board.create_card(s, user_id, "elsewhere", status="backlog")
    assert a.position < b.position and c.position == 0
    assert b.due_date == dt.date(2026, 12, 1)
    with ctx.session() as s:
        cols = board_view.board(s, user_id)
    assert [c.title for c in cols["todo"]] == ["first", "second"]
    assert [c.title for c in cols["backlog"]] == ["elsewhere"]
    assert cols["in_progress"] == [] and cols["done"] == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"title": ""}, "must not be empty"),
        ({"title": "\x00\x07  "}, "must not be empty"),
        ({"title": "x" * 501}, "at most 500"),
        ({"title": "ok", "status": "blocked"}, "unknown status 'blocked'"),
        ({"title": "ok", "due_date": "31/12/2026"}, "not a date"),
        ({"title": "ok", "due_date": "2026-02-30"}, "not a date"),
    ],
)
def test_card_validation(ctx, user_id, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        with ctx.session() as s:
            board.create_card(s, user_id, **kwargs)


def test_a_project_that_is_not_the_users_is_refused(ctx, user_id, other_user_id):
    with ctx.session() as s:
        theirs = projects.create_project(s, other_user_id, "Theirs")
    with pytest.raises(NotFound):
        with ctx.session() as s:
            board.create_card(s, user_id, "x", project_id=theirs.id)


def test_move_reorders_both_columns(ctx, user_id):
    with ctx.session() as s:
        ids = [board.create_card(s, user_id, f"t{i}").id for i in range(3)]
        board.create_card(s, user_id, "d0", status="done")
    with ctx.session() as s:
        moved = board.move_card(s, user_id, ids[2], "done", position=0)
        assert moved.completed_at is not None
        board.move_card(s, user_id, ids[0], "todo", position=5)  # clamp to end
    with ctx.session() as s:
        cols = board_view.board(s, user_id)
    assert [c.title for c in cols["done"]] == ["t2", "d0"]
    assert [c.title for c in cols["todo"]] == ["t1", "t0"]


def test_moving_out_of_done_clears_completed_at(ctx, user_id):
    with ctx.session() as s:
        card = board.create_card(s, user_id, "x", status="done")
        assert card.completed_at is not None
        board.move_card(s, user_id, card.id, "in_progress")
        assert card.completed_at is None


def test_move_of_manual_card_queues_nothing(ctx, user_id):
    with ctx.session() as s:
        card = board.create_card(s, user_id, "manual")
        board.move_card(s, user_id, card.id, "done")
    with ctx.session() as s:
        assert s.scalars(select(OutboxEntry)).all() == []
        assert s.get(Card, card.id).sync_state == "none"


def test_edit_and_delete(ctx, user_id):
    with ctx.session() as s:
        p = projects.create_project(s, user_id, "P")
        card = board.create_card(s, user_id, "x")
        board.edit_card(s, user_id, card.id, title="y", due_date="2027-01-02", project_id=p.id)
    with ctx.session() as s:
        [view] = board_view.list_cards(s, user_id)
        assert (view.title, view.due_date, view.project) == ("y", dt.date(2027, 1, 2), "P")
        board.delete_card(s, user_id, card.id)
    with ctx.session() as s:
        assert board_view.list_cards(s, user_id) == []


def test_another_users_card_is_not_found(ctx, user_id, other_user_id):
    with ctx.session() as s:
        card = board.create_card(s, other_user_id, "theirs")
    for action in (
        lambda s: board.move_card(s, user_id, card.id, "done"),
        lambda s: board.edit_card(s, user_id, card.id, title="mine"),
        lambda s: board.delete_card(s, user_id, card.id),
    ):
        with pytest.raises(NotFound):
            with ctx.session() as s:
                action(s)
    with ctx.session() as s:
        same = s.get(Card, card.id)
        assert (same.title, same.status) == ("theirs", "todo")


def test_overdue_is_relative_to_today_and_never_for_done(ctx, user_id):
    with ctx.session() as s:
        board.create_card(s, user_id, "late", due_date="2026-01-01")
        board.create_card(s, user_id, "late but done", due_date="2026-01-01", status="done")
    with ctx.session() as s:
        cards = {c.title: c for c in board_view.list_cards(s, user_id)}
    today = dt.date(2026, 6, 1)
    assert cards["late"].overdue(today) and not cards["late but done"].overdue(today)
    assert not cards["late"].overdue(dt.date(2025, 12, 31))


@pytest.mark.parametrize("value", ["2026-12-01junk", "2026-12-1", "01/12/2026", "tomorrow"])
def test_due_dates_are_parsed_strictly(value):
    with pytest.raises(ValidationError, match="is not a date"):
        fields.parse_due(value)


def test_due_dates_take_a_date_or_an_iso_timestamp():
    assert fields.parse_due("2026-12-01") == fields.parse_due("2026-12-01T09:30:00") == dt.date(2026, 12, 1)


def _order(ctx, user_id, status="todo"):
    with ctx.session() as s:
        return [c.title for c in board_view.list_cards(s, user_id, status=status)]


def test_a_move_writes_only_the_moved_card_and_a_full_gap_renumbers_the_column_once(ctx, user_id, migrated_engine):
    from sqlalchemy import event

    with ctx.session() as s:
        ids = [board.create_card(s, user_id, f"c{i}").id for i in range(6)]
    writes: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE TASKS"):
            writes.append(statement)

    event.listen(migrated_engine, "before_cursor_execute", count)
    try:
        with ctx.session() as s:
            board.move_card(s, user_id, ids[5], "todo", before=ids[0])  # bottom card to the top
        assert len(writes) == 1
        # Keep dropping cards between the top two: the gap halves each time, then the column is renumbered.
        for _ in range(12):
            order = _order(ctx, user_id)
            with ctx.session() as s:
                second = board_view.list_cards(s, user_id, status="todo")[1].id
                board.move_card(s, user_id, board_view.list_cards(s, user_id, status="todo")[-1].id, "todo", before=second)
            assert len(_order(ctx, user_id)) == 6 and _order(ctx, user_id)[0] == order[0]
    finally:
        event.remove(migrated_engine, "before_cursor_execute", count)
    renumbered = [w for w in writes if "row_number" in w.lower()]
    assert 1 <= len(renumbered) <= 2 and len(writes) <= 1 + 12 + len(renumbered)
    with ctx.session() as s:
        positions = [c.position for c in board_view.list_cards(s, user_id, status="todo")]
    assert positions == sorted(set(positions))


def test_a_drop_above_a_card_lands_there_and_a_stale_target_is_refused(ctx, user_id):
    with ctx.session() as s:
        a, b, c = (board.create_card(s, user_id, t).id for t in "abc")
        d = board.create_card(s, user_id, "d", status="in_progress").id
    with ctx.session() as s:
        board.move_card(s, user_id, d, "todo", before=b)
        board.move_card(s, user_id, a, "todo")  # to the end
    assert _order(ctx, user_id) == ["d", "b", "c", "a"]
    with pytest.raises(ValidationError, match="no longer in done"):
        with ctx.session() as s:
            board.move_card(s, user_id, c, "done", before=b)
    with pytest.raises(NotFound):
        with ctx.session() as s:
            board.move_card(s, user_id, c, "todo", before=999999)
    assert _order(ctx, user_id) == ["d", "b", "c", "a"]


def test_archived_cards_leave_the_board_and_come_back_at_the_end(ctx, user_id):
    with ctx.session() as s:
        a, b = (board.create_card(s, user_id, t).id for t in "ab")
        board.archive_card(s, user_id, a)
    assert _order(ctx, user_id) == ["b"]
    with ctx.session() as s:
        assert [c.title for c in board_view.list_cards(s, user_id, where=board_view.CardFilter(archived=True))] == ["a"]
    with pytest.raises(ValidationError, match="archived"):
        with ctx.session() as s:
            board.move_card(s, user_id, a, "done")
    with ctx.session() as s:
        board.archive_card(s, user_id, a, archived=False)
    assert _order(ctx, user_id) == ["b", "a"]


def test_filters_narrow_the_board_and_counts_come_from_sql(ctx, user_id):
    today = dt.date(2026, 11, 25)  # a Wednesday
    with ctx.session() as s:
        p = projects.create_project(s, user_id, "Platform")
        board.create_card(s, user_id, "late report", due_date="2026-11-20", project_id=p.id)
        board.create_card(s, user_id, "friday review", due_date="2026-11-27")
        board.create_card(s, user_id, "next month 100%_sure", due_date="2026-12-20", description="ask Ana")
        board.create_card(s, user_id, "late but done", due_date="2026-11-01", status="done")
    def titles(**kw):
        with ctx.session() as s:
            page = board_view.board_page(s, user_id, where=board_view.CardFilter(**kw), today=today)
            return sorted(c.title for col in page.columns.values() for c in col), sum(page.counts.values())
    assert titles(due="overdue") == (["late report"], 1)
    assert titles(due="week") == (["friday review", "late but done", "late report"], 3)
    assert titles(project_id=p.id)[0] == ["late report"]
    assert titles(text="ANA")[0] == ["next month 100%_sure"]  # the note is searched too
    assert titles(text="100%_")[0] == ["next month 100%_sure"] and titles(text="0_s")[1] == 0
    assert titles(sync="local")[1] == 4
    with ctx.session() as s:
        page = board_view.board_page(s, user_id, limit=1, today=today)
    assert page.counts["todo"] == 3 and len(page.columns["todo"]) == 1
    with pytest.raises(ValidationError, match="unknown due filter"):
        titles(due="soon")


def test_ids_out_of_range_are_not_found_not_errors(ctx, user_id):
    """A forged move or open with card id 10^30 (or -1) is refused like any id that names nothing."""
    from trackli.errors import NotFound
    from trackli.ui.widgets import form_id

    with ctx.session() as s:
        card = board.create_card(s, user_id, "Real")
    for forged in (10**30, -1, 0, 2**31):
        with pytest.raises(NotFound):
            with ctx.session() as s:
                board.move_card(s, user_id, forged, "done")
        with pytest.raises(ValueError):
            form_id(forged)
    for forged in ("1e400", "nan", float("inf"), True, None, [1], "12abc"):
        with pytest.raises(ValueError):
            form_id(forged)
    assert form_id(str(card.id)) == form_id(card.id) == card.id


def test_new_projects_get_distinct_colours(ctx, user_id):
    with ctx.session() as s:
        colours = [projects.create_project(s, user_id, f"P{n}").colour for n in range(4)]
        chosen = projects.create_project(s, user_id, "Mine", "#123456").colour
    assert len(set(colours)) == 4 and chosen == "#123456"
