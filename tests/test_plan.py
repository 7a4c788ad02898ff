"""The pure sync plan (trackli.plan): classification of a complete fetch, without a database."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from trackli.atlassian.models import ConfluenceTask, ContentInfo, Enrichment, SpaceInfo
from trackli.plan import PAGE_UNAVAILABLE, UPSTREAM, new_rows, plan, upstream_fields

DUE = dt.date(2026, 12, 1)


def upstream(title="Write the report", due=DUE, **extra):
    fields = {name: None for name in UPSTREAM}
    fields.update(task_title=title, due_date=due, confluence_page_title="Plan", remote_status="incomplete")
    fields.update(extra)
    return fields


def row(id, task_id, status="pending", edited=(), **fields):
    return SimpleNamespace(id=id, confluence_task_id=task_id, status=status, edited_fields=list(edited),
                           **upstream(**fields))


def card(id, task_id, status="todo", remote="incomplete"):
    return SimpleNamespace(id=id, confluence_task_id=task_id, status=status, confluence_remote_status=remote,
                           gone_reason=None)


def test_an_empty_queue_gets_every_fetched_task_as_new():
    p = plan([], {"11": upstream("A"), "12": upstream("B")}, [], set())
    assert p.new == ["11", "12"]
    [rows] = new_rows(p, {"11": upstream("A"), "12": upstream("B")})
    assert [(r["confluence_task_id"], r["task_title"]) for r in rows] == [("11", "A"), ("12", "B")]
    assert (p.changed, p.unchanged, p.gone) == ({}, 0, [])
    assert p.touches_anything


def test_an_unchanged_task_is_counted_and_writes_nothing():
    p = plan([row(1, "11")], {"11": upstream()}, [], set())
    assert (p.new, p.changed, p.unchanged, p.gone) == ([], {}, 1, [])
    assert not p.touches_anything


def test_upstream_changes_reach_only_the_fields_the_person_did_not_edit():
    p = plan([row(1, "11", edited=["title"]), row(2, "12")],
             {"11": upstream("Upstream title", due=dt.date(2027, 1, 5)), "12": upstream("New words")}, [], set())
    assert p.changed == {1: {"due_date": dt.date(2027, 1, 5)}, 2: {"task_title": "New words"}}


def test_an_edited_due_date_is_kept_but_the_page_title_still_follows_upstream():
    p = plan([row(1, "11", edited=["due_date"])], {"11": upstream(due=None, confluence_page_title="Renamed")}, [], set())
    assert p.changed == {1: {"confluence_page_title": "Renamed"}}


@pytest.mark.parametrize("status", ["dismissed", "approved"])
def test_only_pending_rows_go_when_missing_from_a_complete_fetch(status):
    p = plan([row(1, "11"), row(2, "12", status=status)], {}, [], set())
    assert p.gone == [1]


def test_a_gone_task_assigned_again_comes_back_pending():
    p = plan([row(1, "11", status="gone")], {"11": upstream()}, [], set())
    assert p.changed == {1: {"status": "pending", "gone_reason": None}}


@pytest.mark.parametrize("task_id", ["", "abc", "12a", "1" * 65])
def test_ids_that_are_not_confluence_task_ids_are_refused_and_counted(task_id):
    p = plan([], {task_id: upstream(), "7": upstream()}, [], set())
    assert p.refused == 1 and p.new == ["7"]


def test_over_long_upstream_values_are_cut_and_counted():
    fetched = {"7": upstream("x" * 600, confluence_url="https://x/" + "y" * 3000)}
    p = plan([], fetched, [], set())
    [[new]] = new_rows(p, fetched)
    assert len(new["task_title"]) == 500 and new["task_title"].endswith("…")
    assert len(new["confluence_url"]) == 2000 and p.clipped == 2


def test_a_card_done_here_whose_task_is_incomplete_there_is_a_conflict():
    p = plan([], {"11": upstream(), "12": upstream()},
             [card(5, "11", status="done", remote="complete"), card(6, "12", status="done", remote="incomplete")], set())
    assert p.conflicts == [5]
    assert p.remote_incomplete == []  # card 6 is known incomplete there already: a completion is on its way or failed


def test_a_card_whose_remote_status_was_unknown_learns_it_is_incomplete():
    p = plan([], {"11": upstream()}, [card(5, "11", remote=None), card(6, "11", remote="complete")], set())
    assert (p.remote_incomplete, p.conflicts) == ([5, 6], [])


def test_a_card_whose_task_was_completed_upstream_moves_to_done():
    p = plan([], {}, [card(5, "11"), card(6, "12"), card(7, "13", remote="complete")], completed={"11", "13"})
    assert p.completed_upstream == [5]  # 12 is not known complete; 13 is already known complete


def test_cards_with_an_unsent_completion_are_left_to_it():
    p = plan([], {"11": upstream()}, [card(5, "11", status="done", remote="complete"), card(6, "12")],
             completed={"12"}, unsent={5, 6})
    assert (p.conflicts, p.remote_incomplete, p.completed_upstream) == ([], [], [])


def test_upstream_fields_link_the_page_and_name_the_space_or_say_the_page_is_unavailable():
    found = Enrichment(pages={"500": ContentInfo("500", "Roadmap", "10", "current", "/spaces/ENG/pages/500")},
                       spaces={"10": SpaceInfo("10", "ENG", "Engineering")})

    def task(page_id):
        return ConfluenceTask(id="1", local_id=None, space_id="10", page_id=page_id, blogpost_id=None, status=None,
                              title="", due_date=None, assigned_to=None, created_by=None, completed_by=None,
                              created_at=None, updated_at=None, completed_at=None)

    fields = upstream_fields(task("500"), found, "https://acme.atlassian.net")
    assert fields["confluence_url"] == "https://acme.atlassian.net/wiki/spaces/ENG/pages/500"
    assert (fields["confluence_space_key"], fields["task_title"], fields["remote_status"]) == ("ENG", "(untitled task)", "incomplete")
    trashed = upstream_fields(task("501"), found, "https://acme.atlassian.net")
    assert trashed["confluence_page_title"] == PAGE_UNAVAILABLE and trashed["confluence_url"] is None


def test_a_card_whose_task_is_neither_open_nor_complete_is_gone_and_comes_back_if_the_task_does():
    gone = SimpleNamespace(id=7, confluence_task_id="13", status="todo", confluence_remote_status="incomplete",
                           gone_reason="deleted")
    p = plan([], {"13": upstream()}, [card(5, "11"), card(6, "12", remote="complete"), gone], completed=set())
    assert p.cards_gone == [5]  # 12 was not asked about: known complete, so not missing
    assert p.cards_back == [7]
    assert plan([], {}, [gone], completed=set()).cards_gone == []  # already marked: nothing to write


def test_existing_rows_are_read_once_as_a_stream():
    def once():
        yield row(1, "11")
        yield row(2, "12")
    p = plan(once(), {"11": upstream(), "13": upstream()}, [], set())
    assert (p.unchanged, p.gone, p.new) == (1, [2], ["13"])
