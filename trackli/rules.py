"""Triage rules: the queue sorts itself.

A person keeps an ordered list of rules. A rule's conditions must all hold (space key, page title
contains, title contains every word, created by an Atlassian account, has / has no due date, due within
N days); its one action sets a project, approves into a column (with a project), dismisses, or snoozes
for N days. Rules run on a task when it **first enters the queue** (`route_incoming`, called by the sync in
its transaction), the first enabled matching rule wins, and a rule never touches a task the person has
touched (edited, given a project, routed, back from a snooze). `preview(rule)` says what `apply(rule)`
would do to the tasks waiting now, and `apply` does exactly that (`trackli.queue.put_back` undoes it).

A task whose space or page the person can no longer see (Confluence did not return it) cannot be
routed by a rule that names a space or a page title: such a rule does nothing to it and says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli import audit, changes, people, projects, queue, snooze
from trackli.batches import chunks
from trackli.errors import NotFound, ValidationError
from trackli.models import CARD_STATUSES, PendingTask, Project, Rule, RuleAction, utcnow
from trackli.matching import MAX_WORDS, Candidate, Routed, check, route, words_of

HIDDEN = "nothing: this task's space or page is no longer visible to you in Confluence"
COLUMN_NAMES = {"backlog": "Backlog", "todo": "To do", "in_progress": "In progress", "done": "Done"}
MAX_RULES = 200


CANDIDATE_COLUMNS = (PendingTask.id, PendingTask.confluence_task_id, PendingTask.task_title, PendingTask.due_date,
                     PendingTask.confluence_space_key, PendingTask.confluence_space_id,
                     PendingTask.confluence_page_title, PendingTask.confluence_created_by)


def _text(value: Any, limit: int, what: str) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    if len(text) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")
    return text or None


def _days(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a whole number of days") from None
    if not 0 <= days <= 3650:
        raise ValidationError(f"{what} must be from 0 to 3650 days")
    return days


def _spec(session: Session, user_id: int, rule: Rule, *, name: Any = ..., space: Any = ..., title_has: Any = ...,
          page_has: Any = ..., created_by: Any = ..., has_due: Any = ..., due_within: Any = ...,
          project: Any = ..., approve_to: Any = ..., dismiss: Any = ..., snooze_days: Any = ...,
          new_projects: list[str] | None = None) -> None:
    """Fill `rule` from the given fields (`...`: leave as it is), checked. A project named that the person
    does not have is made — or, with `new_projects` (a draft), only named there."""
    if space is not ...:
        rule.space_key = _text(space, 255, "the space key")
    if title_has is not ...:
        rule.title_has = _text(title_has, 200, "title contains")
        words = words_of(rule.title_has)
        if rule.title_has and not words:  # "%" would be described as matching "%" and match every task
            raise ValidationError(f"title contains {rule.title_has!r} has no word in it (letters or digits): "
                                  "give words the title must contain, or leave it empty")
        if len(words) > MAX_WORDS:
            raise ValidationError(f"title contains has {len(words)} words: at most {MAX_WORDS} (each must begin a "
                                  "word of the title)")
    if page_has is not ...:
        rule.page_has = _text(page_has, 200, "page title contains")
    if created_by is not ...:
        rule.created_by = _text(created_by, 128, "created by")
    if has_due is not ...:
        if has_due not in (None, True, False):
            raise ValidationError("has due date must be yes, no or either")
        rule.has_due = has_due
    if due_within is not ...:
        rule.due_within_days = _days(due_within, "due within")
    if rule.has_due is False and rule.due_within_days is not None:
        raise ValidationError("a rule cannot ask for no due date and a due date within some days")
    actions = [a for a in (dismiss not in (..., False, None) and "dismiss",
                           snooze_days not in (..., None) and "snooze",
                           approve_to not in (..., None) and "approve") if a]
    if len(actions) > 1 or (actions and actions[0] != "approve" and project not in (..., None, "")):
        raise ValidationError("a rule has one action: set a project (and maybe approve), dismiss, or snooze")
    if actions or project is not ...:
        action = actions[0] if actions else "project"
        rule.action, rule.approve_to, rule.snooze_days = cast(RuleAction, action), None, None
        if action in ("project", "approve"):
            if project in (..., None, "") and action == "project":
                raise ValidationError("say what the rule does: set a project (and maybe approve), dismiss or snooze")
            wanted = None if project is ... else project
            try:
                rule.project_id = projects.resolve_project(session, user_id, wanted, create=new_projects is None)
            except NotFound:  # a draft's new project: named, not made
                assert new_projects is not None
                rule.project_id = None
                new_projects.append(str(wanted).strip())
        else:
            rule.project_id = None
        if action == "approve":
            if approve_to not in CARD_STATUSES:
                raise ValidationError(f"approve into one of {', '.join(CARD_STATUSES)}, not {approve_to!r}")
            rule.approve_to = approve_to
        if action == "snooze":
            days = _days(snooze_days, "snooze for")
            if not days:
                raise ValidationError("snooze for at least one day")
            rule.snooze_days = days
    if not getattr(rule, "action", None):
        raise ValidationError("say what the rule does: set a project (and maybe approve), dismiss or snooze")
    if name is not ...:
        rule.name = _text(name, 100, "the name") or ""
    if not rule.name:
        rule.name = describe_conditions(rule, _creator_names(session, user_id, rule))[:100]


def add_rule(session: Session, user_id: int, **fields: Any) -> Rule:
    """A new rule, last in the person's order."""
    count = session.scalar(select(func.count()).select_from(Rule).where(Rule.owner_id == user_id)) or 0
    if count >= MAX_RULES:
        raise ValidationError(f"at most {MAX_RULES} rules")
    last = session.scalar(select(func.max(Rule.position)).where(Rule.owner_id == user_id))
    rule = Rule(owner_id=user_id, position=(last or 0) + 1, enabled=True, name="", created_at=utcnow())
    fields.setdefault("name", None)
    _spec(session, user_id, rule, **fields)
    session.add(rule)
    session.flush()
    audit.record(session, user_id, "rules.added", {"rule_id": rule.id, "rule": as_dict(session, rule)}, provider="trackli")
    return rule


def get_rule(session: Session, user_id: int, rule_id: int) -> Rule:
    rule = session.get(Rule, rule_id)
    if rule is None or rule.owner_id != user_id:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def edit_rule(session: Session, user_id: int, rule_id: int, **fields: Any) -> Rule:
    rule = get_rule(session, user_id, rule_id)
    _spec(session, user_id, rule, **fields)
    audit.record(session, user_id, "rules.edited", {"rule_id": rule.id, "rule": as_dict(session, rule)}, provider="trackli")
    return rule


def remove_rule(session: Session, user_id: int, rule_id: int) -> None:
    rule = get_rule(session, user_id, rule_id)
    audit.record(session, user_id, "rules.removed", {"rule_id": rule.id, "name": rule.name}, provider="trackli")
    session.delete(rule)
    session.flush()


def set_enabled(session: Session, user_id: int, rule_id: int, enabled: bool) -> Rule:
    rule = get_rule(session, user_id, rule_id)
    rule.enabled = bool(enabled)
    audit.record(session, user_id, "rules.enabled" if enabled else "rules.disabled", {"rule_id": rule.id},
                 provider="trackli")
    return rule


def move_rule(session: Session, user_id: int, rule_id: int, up: bool) -> None:
    """One place earlier (up) or later in the order."""
    order = list_rules(session, user_id)
    index = next(i for i, r in enumerate(order) if r.id == get_rule(session, user_id, rule_id).id)
    other = index - 1 if up else index + 1
    if 0 <= other < len(order):
        order[index].position, order[other].position = order[other].position, order[index].position
        session.flush()


def any_enabled(session: Session, user_id: int) -> bool:
    return session.scalar(select(Rule.id).where(Rule.owner_id == user_id, Rule.enabled.is_(True)).limit(1)) is not None


def list_rules(session: Session, user_id: int, *, enabled_only: bool = False) -> list[Rule]:
    stmt = select(Rule).where(Rule.owner_id == user_id)
    if enabled_only:
        stmt = stmt.where(Rule.enabled.is_(True))
    return list(session.scalars(stmt.order_by(Rule.position, Rule.id)))


# ---- words ------------------------------------------------------------------------------------

def _creator_names(session: Session, user_id: int, rule: Rule) -> dict[str, str]:
    return people.names_of(session, user_id, [rule.created_by]) if rule.created_by else {}


def describe_conditions(rule: Rule, names: dict[str, str] | None = None) -> str:
    """The rule's conditions in words; `names` (account id -> name) names the creator."""
    parts = []
    if rule.space_key:
        parts.append(f"space {rule.space_key}")
    if rule.page_has:
        parts.append(f"page title has “{rule.page_has}”")
    if rule.title_has:
        parts.append(f"title has “{rule.title_has}”")
    if rule.created_by:
        parts.append(f"created by {(names or {}).get(rule.created_by, rule.created_by)}")
    if rule.has_due is True:
        parts.append("has a due date")
    elif rule.has_due is False:
        parts.append("has no due date")
    if rule.due_within_days is not None:
        parts.append(f"due within {rule.due_within_days} days")
    return ", ".join(parts) or "every new task"


def describe_action(rule: Rule, project: str | None) -> str:
    if rule.action == "dismiss":
        return "dismiss"
    if rule.action == "snooze":
        return f"snooze for {rule.snooze_days} days"
    named = f", project {project}" if project else ""
    if rule.action == "approve":
        return f"approve into {COLUMN_NAMES.get(rule.approve_to or '', rule.approve_to)}{named}"
    return f"set project {project}" if project else "set no project"


def _project_name(session: Session, rule: Rule) -> str | None:
    return session.scalar(select(Project.name).where(Project.id == rule.project_id)) if rule.project_id else None


def as_dict(session: Session, rule: Rule) -> dict[str, Any]:
    project = _project_name(session, rule)
    return {"id": rule.id, "position": rule.position, "name": rule.name, "enabled": rule.enabled,
            "space": rule.space_key, "title_has": rule.title_has, "page_has": rule.page_has,
            "created_by": rule.created_by, "has_due": rule.has_due, "due_within": rule.due_within_days,
            "action": rule.action, "project": project, "approve_to": rule.approve_to, "snooze_days": rule.snooze_days,
            "conditions": describe_conditions(rule, _creator_names(session, rule.owner_id, rule)),
            "does": describe_action(rule, project)}


# ---- matching ---------------------------------------------------------------------------------

def waiting(session: Session, user_id: int) -> list[Candidate]:
    """Pending tasks no one has touched: not edited, no project, not routed, not back from a snooze."""
    rows = session.execute(select(*CANDIDATE_COLUMNS, PendingTask.edited_fields).where(
        PendingTask.user_id == user_id, PendingTask.status == "pending", PendingTask.project_id.is_(None),
        PendingTask.rule_id.is_(None), PendingTask.returned_from_snooze_at.is_(None)).order_by(PendingTask.id))
    return [Candidate(*r[:-1]) for r in rows if not r[-1]]


def preview(session: Session, user_id: int, rule_id: int, today: dt.date | None = None) -> list[dict[str, Any]]:
    """What `apply(rule_id)` would do to the tasks waiting now: one entry per task it routes (or says it
    cannot), as {pending_id, confluence_task_id, title, action}."""
    rule = get_rule(session, user_id, rule_id)
    return _preview(session, user_id, rule, describe_action(rule, _project_name(session, rule)), today)


def preview_draft(session: Session, user_id: int, today: dt.date | None = None, **fields: Any) -> list[dict[str, Any]]:
    """What a rule not saved yet would do to the tasks waiting now, checked as `add_rule` checks it;
    nothing is written (a project it names that does not exist yet is not made)."""
    rule = Rule(owner_id=user_id, position=0, enabled=True, name="")
    fields.setdefault("name", None)
    named: list[str] = []
    _spec(session, user_id, rule, new_projects=named, **fields)
    return _preview(session, user_id, rule, describe_action(rule, named[0] if named else _project_name(session, rule)), today)


def _preview(session: Session, user_id: int, rule: Rule, action: str, today: dt.date | None) -> list[dict[str, Any]]:
    today = today or snooze.today_for(session, user_id)
    out = []
    for task in waiting(session, user_id):
        verdict = check(rule, task, today)
        if verdict:
            out.append({"pending_id": task.id, "confluence_task_id": task.confluence_task_id, "title": task.task_title,
                        "action": action if verdict == "match" else HIDDEN})
    return out


def summary(entries: list[dict[str, Any]]) -> str:
    """In words: "would approve into To do, project Platform: 12 tasks" (and how many it must leave alone)."""
    acting = [e for e in entries if e["action"] != HIDDEN]
    hidden = len(entries) - len(acting)
    text = f"would {acting[0]['action']}: {len(acting)} task(s)" if acting else "would route none of the tasks waiting now"
    if hidden:
        text += f"; {hidden} more match but their space or page is no longer visible to you: left alone"
    return text


def apply(session: Session, user_id: int, rule_id: int, today: dt.date | None = None) -> tuple[list[int], list[queue.RowState]]:
    """Apply one rule to the tasks waiting now, exactly as `preview` said; (routed ids, their states
    before, for `queue.put_back`)."""
    rule = get_rule(session, user_id, rule_id)
    today = today or snooze.today_for(session, user_id)
    matched = [t for t in waiting(session, user_id) if check(rule, t, today) == "match"]
    before = queue.snapshot(session, user_id, [t.id for t in matched])
    _carry_out(session, user_id, rule, matched, today, trigger="applied")
    return [t.id for t in matched], before


@dataclass
class Incoming:
    """What the person's rules decided for tasks about to enter the queue (the sync writes the rows
    with these marks, so a routed row never sits unrouted; approvals follow once the rows exist)."""

    rules: dict[int, Rule] = field(default_factory=dict)
    routed: Routed = field(default_factory=Routed)
    marks: dict[str, dict[str, Any]] = field(default_factory=dict)  # confluence task id -> queue columns

    @property
    def count(self) -> int:
        return self.routed.count()


def marks_for(rule: Rule, today: dt.date) -> dict[str, Any]:
    """The queue columns a rule's action sets (an approval's card comes after)."""
    marks: dict[str, Any] = {"rule_id": rule.id, "rule_name": rule.name}
    if rule.action in ("project", "approve") and rule.project_id is not None:
        marks["project_id"] = rule.project_id
    if rule.action == "dismiss":
        marks["status"] = "dismissed"
    elif rule.action == "snooze":
        marks |= {"status": "snoozed", "snoozed_until": today + dt.timedelta(days=rule.snooze_days or 1)}
    return marks


def route_incoming(session: Session, user_id: int, tasks: dict[str, dict[str, Any]],
                   today: dt.date | None = None, tick: Callable[[], None] | None = None) -> Incoming:
    """Run the person's enabled rules over tasks entering the queue (task id -> their queue columns)."""
    out = Incoming()
    enabled = list_rules(session, user_id, enabled_only=True)
    if not enabled or not tasks:
        return out
    today = today or snooze.today_for(session, user_id)
    out.rules = {r.id: r for r in enabled}
    candidates = [Candidate(n, task_id, f.get("task_title") or "", f.get("due_date"), f.get("confluence_space_key"),
                            f.get("confluence_space_id"), f.get("confluence_page_title"), f.get("confluence_created_by"))
                  for n, (task_id, f) in enumerate(tasks.items())]
    out.routed = route(enabled, candidates, today, tick)
    for rule_id, matched in out.routed.by_rule.items():
        marks = marks_for(out.rules[rule_id], today)
        for task in matched:
            out.marks[task.confluence_task_id] = marks
    return out


def finish_incoming(session: Session, user_id: int, connection_id: int, incoming: Incoming) -> None:
    """After the routed rows are written: approvals made into cards, and each rule's work audited."""
    for rule_id, matched in incoming.routed.by_rule.items():
        rule = incoming.rules[rule_id]
        task_ids = [t.confluence_task_id for t in matched]
        pending_ids: list[int] = []  # every row an approval needs; the audit names the first 50
        for batch in chunks(task_ids if rule.action == "approve" else task_ids[:50], 1000):
            pending_ids.extend(session.scalars(select(PendingTask.id).where(
                PendingTask.connection_id == connection_id, PendingTask.confluence_task_id.in_(batch))))
        card_ids = queue.approve_ids(session, user_id, pending_ids, column=rule.approve_to or "todo",
                                     known_pending=True) if rule.action == "approve" else []
        audit.record(session, user_id, "rules.routed", {
            "rule_id": rule.id, "rule": rule.name, "trigger": "new",
            "action": describe_action(rule, _project_name(session, rule)), "count": len(task_ids),
            "pending_ids": sorted(pending_ids)[:50], "confluence_task_ids": task_ids[:50], "card_ids": card_ids[:50],
        }, provider="trackli")
    for rule_id, hidden in incoming.routed.hidden.items():
        audit.record(session, user_id, "rules.skipped", {
            "rule_id": rule_id, "rule": incoming.rules[rule_id].name, "count": len(hidden),
            "confluence_task_ids": [t.confluence_task_id for t in hidden][:50], "why": HIDDEN}, provider="trackli")


def _carry_out(session: Session, user_id: int, rule: Rule, tasks: list[Candidate], today: dt.date, trigger: str) -> None:
    ids = [t.id for t in tasks]
    if not ids:
        return
    plain = {"synchronize_session": False}
    marks = marks_for(rule, today) | {"updated_at": utcnow()}
    for batch in chunks(ids, 1000):
        session.execute(update(PendingTask).where(PendingTask.id.in_(batch)).values(**marks).execution_options(**plain))
    for obj in list(session.identity_map.values()):
        if isinstance(obj, PendingTask):
            session.expire(obj)
    card_ids: list[int] = []
    if rule.action == "approve":
        card_ids = queue.approve_ids(session, user_id, ids, column=rule.approve_to or "todo", known_pending=True)
    changes.touch(session, user_id, "queue", "board")
    audit.record(session, user_id, "rules.routed", {
        "rule_id": rule.id, "rule": rule.name, "trigger": trigger, "action": describe_action(rule, _project_name(session, rule)),
        "count": len(ids), "pending_ids": ids[:50], "confluence_task_ids": [t.confluence_task_id for t in tasks][:50],
        "card_ids": card_ids[:50]}, provider="trackli")
