"""The pure rule matcher (trackli.matching): conditions, first match, the indexed routing equal to checking
each task, the heartbeat while routing. No database: fast."""

from __future__ import annotations

import datetime as dt

import pytest

from trackli import matching
from trackli.models import Rule

TODAY = dt.date(2026, 11, 27)


def test_conditions_each_narrow_the_match():
    rule = Rule(title_has="Review Q3", page_has="plan", space_key="eng", created_by="acc-1", has_due=True,
                      due_within_days=7, action="dismiss", enabled=True)
    task = matching.Candidate(1, "11", "Please review the q3 budget", TODAY + dt.timedelta(days=7), "ENG", "9",
                           "Annual Plan", "acc-1")
    assert matching.check(rule, task, TODAY) == "match"
    for change in (dict(task_title="Review the budget"), dict(due_date=TODAY + dt.timedelta(days=8)),
                   dict(due_date=None), dict(confluence_space_key="OPS"), dict(confluence_page_title="Notes"),
                   dict(confluence_created_by="acc-2")):
        assert matching.check(rule, task._replace(**change), TODAY) is None, change
    assert matching.check(rule, task._replace(confluence_space_key=None), TODAY) == "hidden"
    # "contains the words": each of the rule's words begins a word of the title, in any case
    words = Rule(title_has="review budget", action="dismiss", enabled=True)
    for title, expected in (("Reviews of the BUDGETS", "match"), ("Preview the budget", None), ("Review it", None)):
        assert matching.check(words, task._replace(task_title=title), TODAY) == expected, title


def test_routing_many_tasks_gives_what_checking_each_gives():
    """The sync's indexed routing (`route`) and the one-task check (`check`, used by preview) agree."""
    import random

    rng = random.Random(5)
    pool = [Rule(id=n, enabled=n % 7 != 3, action="dismiss", space_key=rng.choice([None, "ENG", "OPS"]),
                       title_has=rng.choice([None, "rev", "budget plan", "q3"]), page_has=rng.choice([None, "plan", "x"]),
                       has_due=rng.choice([None, True, False]), due_within_days=rng.choice([None, 3, 30]),
                       created_by=rng.choice([None, None, "acc-1"])) for n in range(40)]
    pool = [r for r in pool if not (r.has_due is False and r.due_within_days is not None)]
    tasks = [matching.Candidate(i, str(i), rng.choice(["Review the Q3 budget plan", "Plan ahead", "Revise", "q3"]),
                             rng.choice([None, TODAY, TODAY + dt.timedelta(days=10)]), rng.choice(["ENG", "OPS", None]),
                             rng.choice(["1", "2"]), rng.choice(["Annual plan", "Notes", None, "page unavailable"]),
                             rng.choice(["acc-1", "acc-2"])) for i in range(400)]
    routed = matching.route(pool, tasks, TODAY)
    got = {t.id: (rule_id, "match") for rule_id, ts in routed.by_rule.items() for t in ts}
    got |= {t.id: (rule_id, "hidden") for rule_id, ts in routed.hidden.items() for t in ts}
    expected = {}
    for task in tasks:
        for rule in pool:
            verdict = rule.enabled and matching.check(rule, task, TODAY)
            if verdict:
                expected[task.id] = (rule.id, verdict)
                break
    assert got == expected and len(got) > 100


def test_routing_tells_the_sync_it_is_alive_and_stops_at_the_deadline():
    """The worst capped rules over many tasks: the heartbeat is told as routing goes, and a deadline
    raised from it stops routing (a sync never outlives its lease while it routes)."""
    letters = "abcdefghij"
    pool = [Rule(id=n, enabled=True, action="dismiss", title_has=" ".join(letters[(n + k) % 10] for k in range(10)))
            for n in range(200)]
    tasks = [matching.Candidate(i, str(i), f"a b c d e f g h i task {i}", None, "ENG", "1", "Notes", "acc-1")
             for i in range(1001)]
    ticks = []
    routed = matching.route(pool, tasks, TODAY, tick=lambda: ticks.append(1))
    assert routed.count() == 0 and len(ticks) >= 150_000 // matching.TICK_EVERY  # no title has a word in "j"

    class PastDeadline(Exception):
        pass

    def deadline():
        raise PastDeadline
    with pytest.raises(PastDeadline):
        matching.route(pool, tasks, TODAY, tick=deadline)

