"""Triage rules (issue 17): order and first match, never re-applied, preview equals apply, undo, hidden
spaces; run by the sync on tasks entering the queue. Against the simulator, on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.syncing import waiting
from trackli import audit, queue, rules, sync
from trackli.errors import ValidationError
from trackli.models import Card, PendingTask
from trackli.simulator import ME

TODAY = dt.date(2026, 11, 27)


def space_of(ctx, user_id):
    """The space key of most waiting tasks, and how many waiting tasks it holds."""
    from collections import Counter

    counts = Counter(r.space_key for r in waiting(ctx, user_id) if r.space_key)
    return counts.most_common(1)[0]


def rows(ctx, ids=None):
    with ctx.session() as s:
        stmt = select(PendingTask).order_by(PendingTask.id)
        if ids is not None:
            stmt = stmt.where(PendingTask.id.in_(ids))
        return list(s.scalars(stmt))


def test_a_rule_needs_one_action_and_sane_conditions(ctx, user_id):
    for fields, message in ((dict(space="ENG"), "say what the rule does"),
                            (dict(project="P", dismiss=True), "one action"),
                            (dict(project="P", approve_to="later"), "approve into one of"),
                            (dict(snooze_days=0), "at least one day"),
                            (dict(has_due=False, due_within=3, dismiss=True), "no due date and a due date"),
                            (dict(due_within="soon", dismiss=True), "whole number")):
        with pytest.raises(ValidationError, match=message):
            with ctx.session() as s:
                rules.add_rule(s, user_id, **fields)
    with ctx.session() as s:
        rule = rules.add_rule(s, user_id, space="ENG", title_has="review", project="Platform", approve_to="todo")
        described = rules.as_dict(s, rule)
    assert described["name"] == "space ENG, title has “review”"
    assert described["does"] == "approve into To do, project Platform" and described["project"] == "Platform"


def test_preview_is_exactly_what_apply_does_and_undo_puts_everything_back(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    key, how_many = space_of(sim_ctx, user_id)
    with sim_ctx.session() as s:
        rule = rules.add_rule(s, user_id, space=key.lower(), project="Platform", approve_to="in_progress")
        preview = rules.preview(s, user_id, rule.id, TODAY)
    assert len(preview) == how_many and {p["action"] for p in preview} == {"approve into In progress, project Platform"}
    assert set(preview[0]) == {"pending_id", "confluence_task_id", "title", "action"}
    before = {r.id: (r.status, r.project_id) for r in rows(sim_ctx)}

    with sim_ctx.session() as s:
        routed, states = rules.apply(s, user_id, rule.id, TODAY)

    assert routed == [p["pending_id"] for p in preview]
    with sim_ctx.session() as s:
        cards = list(s.scalars(select(Card).where(Card.status == "in_progress")))
        assert len(cards) == how_many and {c.project_id for c in cards} == {rule.project_id}
        entry = audit.query(s, user_id, event_types=["rules.routed"])[0]
        assert entry.details["rule_id"] == rule.id and entry.details["count"] == how_many
    assert {r.rule_name for r in rows(sim_ctx, routed)} == {rule.name}
    assert {r.status for r in rows(sim_ctx, routed)} == {"approved"}
    with sim_ctx.session() as s:  # nothing waiting is untouched in that space any more
        assert rules.preview(s, user_id, rule.id, TODAY) == []

    with sim_ctx.session() as s:
        undone = queue.put_back(s, user_id, states, column="in_progress")
    assert (undone.rows, undone.cards_removed) == (how_many, how_many)
    assert {r.id: (r.status, r.project_id) for r in rows(sim_ctx)} == before
    with sim_ctx.session() as s:
        assert s.scalar(select(Card.id)) is None


def test_the_first_enabled_matching_rule_wins_on_new_tasks_and_rules_never_touch_them_again(sim_ctx, user_id, token_connection, sim):
    with sim_ctx.session() as s:
        off = rules.add_rule(s, user_id, title_has="", dismiss=True)  # matches everything, but switched off
        rules.set_enabled(s, user_id, off.id, False)
        snoozer = rules.add_rule(s, user_id, has_due=True, due_within=3650, snooze_days=3)
        rules.add_rule(s, user_id, project="Later")  # every other task: a project
    result = sync.sync_connection(sim_ctx, token_connection)

    everything = rows(sim_ctx)
    dated = [r for r in everything if r.due_date]
    undated = [r for r in everything if not r.due_date]
    assert result.routed == len(everything) and dated and undated
    assert {(r.status, r.rule_id) for r in dated} == {("snoozed", snoozer.id)}
    assert {r.snoozed_until for r in dated} == {_today(sim_ctx, user_id) + dt.timedelta(days=3)}
    assert {(r.status, r.rule_name) for r in undated} == {("pending", "every new task")}

    # The person takes one back by hand; a re-sync and a new rule leave it alone.
    with sim_ctx.session() as s:
        queue.edit_pending(s, user_id, undated[0].id, project=None)
        rules.add_rule(s, user_id, dismiss=True)
        rules.move_rule(s, user_id, rules.list_rules(s, user_id)[-1].id, up=True)
    again = sync.sync_connection(sim_ctx, token_connection)
    assert again.routed == 0
    assert {r.id: r.status for r in rows(sim_ctx)} == {r.id: r.status for r in everything}

    # A new task upstream meets the new order: the dismiss rule now comes before "Later".
    new = sim.state.add_task("Brand new", assigned_to=ME[0], container=next(iter(sim.state.content.values())))
    assert sync.sync_connection(sim_ctx, token_connection).routed == 1
    with sim_ctx.session() as s:
        row = s.scalar(select(PendingTask).where(PendingTask.confluence_task_id == new.id))
        assert (row.status, row.rule_name) == ("dismissed", "every new task")


def _today(ctx, user_id):
    from trackli import snooze

    with ctx.session() as s:
        return snooze.today_for(s, user_id)


def test_a_rule_on_a_task_whose_space_is_no_longer_visible_does_nothing_and_says_so(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    target = waiting(sim_ctx, user_id)[0]
    with sim_ctx.session() as s:
        row = s.get(PendingTask, target.id)
        key = row.confluence_space_key
        row.confluence_space_key, row.confluence_page_title = None, "page unavailable"  # as a sync leaves it
        rule = rules.add_rule(s, user_id, space=key, dismiss=True)
        preview = rules.preview(s, user_id, rule.id, TODAY)
        hidden = [p for p in preview if p["pending_id"] == target.id]
        assert hidden and hidden[0]["action"] == rules.HIDDEN
        assert "no longer visible" in rules.summary(preview)
        routed, _ = rules.apply(s, user_id, rule.id, TODAY)
    assert target.id not in routed and rows(sim_ctx, [target.id])[0].status == "pending"
    assert all(r.status == "dismissed" for r in rows(sim_ctx, routed)) and routed


def test_a_rule_with_no_word_or_too_many_words_is_refused(ctx, user_id):
    for text, message in (("%", "has no word in it"), ("  -- !! ", "has no word in it"),
                          (" ".join("abcdefghijk"), "has 11 words: at most 10")):
        with pytest.raises(ValidationError, match=message):
            with ctx.session() as s:
                rules.add_rule(s, user_id, title_has=text, dismiss=True)
    with ctx.session() as s:
        assert rules.list_rules(s, user_id) == []
        rules.add_rule(s, user_id, title_has=" ".join("abcdefghij"), dismiss=True)  # ten is fine


def test_a_draft_is_previewed_without_writing_anything(sim_ctx, user_id, token_connection):
    from sqlalchemy import func

    from trackli.models import AuditEntry, Project, Rule

    sync.sync_connection(sim_ctx, token_connection)
    key, count = space_of(sim_ctx, user_id)

    def counts():
        with sim_ctx.session() as s:
            return [s.scalar(select(func.count()).select_from(m)) for m in (Rule, Project, AuditEntry)]
    before = counts()
    with sim_ctx.session() as s:
        draft = rules.preview_draft(s, user_id, space=key, project="Brand new", approve_to="todo")
    assert len(draft) == count and {e["action"] for e in draft} == {"approve into To do, project Brand new"}
    assert counts() == before  # no rule, no project, no audit entry
    with sim_ctx.session() as s:
        saved = rules.add_rule(s, user_id, space=key, project="Brand new", approve_to="todo")
        assert rules.preview(s, user_id, saved.id) == draft  # the draft said what the saved rule does
    with pytest.raises(ValidationError, match="has no word in it"):
        with sim_ctx.session() as s:
            rules.preview_draft(s, user_id, title_has="%", dismiss=True)
