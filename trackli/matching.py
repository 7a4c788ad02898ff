"""The pure rule matcher: does a rule route a task, and which rule routes each of many tasks. No database,
no I/O — built like `trackli.plan`, with fast unit tests of its own (tests/test_matching.py).

A rule's conditions must all hold: title contains every word (each word begins a word of the title,
any case), created by an account, has / has no due date, due within N days, space key, page title
contains. A task whose space or page is not visible cannot be routed by a rule naming one: "hidden".
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, NamedTuple

from trackli.models import Rule
from trackli.plan import PAGE_UNAVAILABLE

WORD = re.compile(r"\w+")
MAX_WORDS = 10  # words in one rule's "title contains": a rule's cost per task stays small
TICK_EVERY = 256  # checks between heartbeats (and deadline checks) while routing


class Candidate(NamedTuple):
    """What a rule looks at in a queue row."""

    id: int
    confluence_task_id: str
    task_title: str
    due_date: dt.date | None
    confluence_space_key: str | None
    confluence_space_id: str | None
    confluence_page_title: str | None
    confluence_created_by: str | None


Verdict = Literal["match", "hidden"] | None


def check(rule: Rule, task: Candidate, today: dt.date) -> Verdict:
    """Does `rule` route `task`? "hidden": it would, but the task's space or page is not visible."""
    return _verdict(_Test.of(rule, today), _seen(task))


@dataclass
class Routed:
    """What rules did (or, in a preview, would do) to a set of tasks."""

    by_rule: dict[int, list[Candidate]] = field(default_factory=dict)
    hidden: dict[int, list[Candidate]] = field(default_factory=dict)

    def count(self) -> int:
        return sum(len(v) for v in self.by_rule.values())


def words_of(text: str | None) -> list[str]:
    """The words of a text, lowered: a rule's "title contains the words" asks that each of its words
    begins a word of the title ("review" finds "Review" and "reviews", not "preview")."""
    return WORD.findall((text or "").casefold())


class _Seen(NamedTuple):
    """A task's fields as rules compare them, lowered once."""

    task: Candidate
    title: tuple[str, ...]  # the title's words, lowered, sorted: a word is found by bisection
    page: str
    space: str
    space_hidden: bool
    page_hidden: bool


def _seen(task: Candidate) -> _Seen:
    return _Seen(task, tuple(sorted(set(words_of(task.task_title)))), (task.confluence_page_title or "").casefold(),
                 (task.confluence_space_key or "").casefold(),
                 task.confluence_space_id is not None and not task.confluence_space_key,
                 task.confluence_page_title in (None, PAGE_UNAVAILABLE))


class _Test(NamedTuple):
    """A rule's conditions as plain values, read from the rule once (not per task)."""

    words: list[str]
    page_has: str
    space: str
    created_by: str | None
    has_due: bool | None
    latest: dt.date | None

    @classmethod
    def of(cls, rule: Rule, today: dt.date) -> "_Test":
        latest = today + dt.timedelta(days=rule.due_within_days) if rule.due_within_days is not None else None
        return cls(words_of(rule.title_has), (rule.page_has or "").casefold(), (rule.space_key or "").casefold(),
                   rule.created_by or None, rule.has_due, latest)


def _begins_a_word(sorted_words: tuple[str, ...], prefix: str) -> bool:
    """Does `prefix` begin one of the (sorted) words? The first word not below it is the only candidate."""
    at = bisect.bisect_left(sorted_words, prefix)
    return at < len(sorted_words) and sorted_words[at].startswith(prefix)


def _verdict(test: _Test, seen: _Seen) -> Verdict:
    """`check`, on fields lowered once: the sync runs every rule over every new task."""
    task = seen.task
    if test.words and not all(_begins_a_word(seen.title, word) for word in test.words):
        return None
    if test.created_by and task.confluence_created_by != test.created_by:
        return None
    if test.has_due is not None and (task.due_date is not None) != test.has_due:
        return None
    if test.latest is not None and (task.due_date is None or task.due_date > test.latest):
        return None
    if test.space and not seen.space_hidden and seen.space != test.space:
        return None  # a visible space that is not the rule's: no match, whatever the page
    if test.page_has and not seen.page_hidden and test.page_has not in seen.page:
        return None
    if (test.space and seen.space_hidden) or (test.page_has and seen.page_hidden):
        return "hidden"  # it would route the task, but cannot see where the task is
    return "match"


def route(rules: list[Rule], tasks: Iterable[Candidate], today: dt.date, tick: Callable[[], None] | None = None) -> Routed:
    """The first enabled matching rule for each task (a hidden match stops there too: it does nothing).

    Rule by rule, in order, over the tasks no earlier rule took. A rule looks only at the tasks an
    index built once offers it: those of its space, of its creator, on the pages whose title holds its
    text, or with a title word that begins with its first word (found by bisecting the sorted words).
    `tick` is called every few hundred checks (a sync's heartbeat and deadline: routing never holds a
    lease past its time)."""
    out = Routed()
    tests = [(rule.id, _Test.of(rule, today)) for rule in rules if rule.enabled]
    left: dict[int, _Seen] = {t.id: _seen(t) for t in tasks}
    by_space: dict[str, list[int]] = {}
    by_creator: dict[str | None, list[int]] = {}
    by_page: dict[str, list[int]] = {}
    by_word: dict[str, list[int]] = {}
    need_pages = any(t.page_has and not (t.space or t.created_by) for _, t in tests)
    need_words = any(t.words and not (t.space or t.created_by or t.page_has) for _, t in tests)
    for task_id, seen in left.items():
        by_space.setdefault(seen.space, []).append(task_id)
        by_creator.setdefault(seen.task.confluence_created_by, []).append(task_id)
        if need_pages:
            by_page.setdefault(seen.page, []).append(task_id)
        if need_words:
            for word in seen.title:
                by_word.setdefault(word, []).append(task_id)
    vocabulary = sorted(by_word)
    checks = 0
    hidden_space = [i for i, seen in left.items() if seen.space_hidden]
    hidden_page = [i for i, seen in left.items() if seen.page_hidden]
    for rule_id, test in tests:
        if not left:
            break
        if test.space:
            ids: Iterable[int] = sorted(by_space.get(test.space, []) + hidden_space)
        elif test.created_by:
            ids = by_creator.get(test.created_by, [])
        elif test.page_has:  # a page title is compared once, not once per task on the page
            ids = sorted([i for page, on_page in by_page.items() if test.page_has in page for i in on_page] + hidden_page)
        elif test.words:
            first, found = test.words[0], set()
            for at in range(bisect.bisect_left(vocabulary, first), len(vocabulary)):
                if not vocabulary[at].startswith(first):
                    break
                found.update(by_word[vocabulary[at]])
            ids = sorted(found)
        else:
            ids = list(left)
        for task_id in ids:
            candidate = left.get(task_id)
            if candidate is None:
                continue
            checks += 1
            if tick is not None and checks % TICK_EVERY == 0:
                tick()
            verdict = _verdict(test, candidate)
            if verdict:
                (out.by_rule if verdict == "match" else out.hidden).setdefault(rule_id, []).append(candidate.task)
                del left[task_id]
    for found_tasks in (*out.by_rule.values(), *out.hidden.values()):
        found_tasks.sort(key=lambda t: t.id)
    return out
