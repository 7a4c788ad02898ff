"""The heart of a sync, as a pure function: what a complete fetch means for the queue and the cards.

`plan(existing, fetched, cards, completed)` classifies, without touching the database:
- a fetched task not in the queue is **new**;
- a queue row whose upstream values differ is **changed**, in the fields the person did not edit
  (what they edited stays theirs); a `gone` row that is assigned again comes back as pending;
- a pending row the complete fetch no longer returned is **gone** (dismissed and approved rows stay);
- a card whose task is still incomplete upstream but was done here and known complete there is a
  **conflict** (reopened in Confluence); otherwise its known remote status becomes incomplete;
- a card whose task vanished from the incomplete list and that Confluence says is complete is
  **completed upstream** (the card moves to done without calling Confluence back);
- a card whose task is neither in the incomplete list nor complete (deleted, or reassigned away) is
  **gone upstream**: it says so and sends nothing more; it comes **back** if the task does.
Cards with an unsent completion in the outbox are left alone: the person's move is on its way.

`trackli.sync` runs the fetch, calls `plan` and executes the result in one transaction.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from trackli.atlassian.client import ConfluenceTask, Enrichment

GONE_REASON = "no longer an incomplete task assigned to you in Confluence (completed, reassigned or deleted)"
PAGE_UNAVAILABLE = "page unavailable"

# The queue's columns that come from Confluence, and how long Trackli keeps each text.
UPSTREAM = ("task_title", "due_date", "confluence_page_id", "confluence_blogpost_id", "confluence_page_title",
            "confluence_space_id", "confluence_space_key", "confluence_space_name", "confluence_url", "remote_status",
            "remote_updated_at")
LIMITS = {"task_title": 500, "confluence_page_title": 500, "confluence_space_key": 255,
          "confluence_space_name": 500, "confluence_url": 2000, "confluence_page_id": 64,
          "confluence_blogpost_id": 64, "confluence_space_id": 64}
OWNED_BY_EDITS = {"task_title": "title", "due_date": "due_date"}  # upstream field -> the edit that claims it
MAX_TASK_ID = 64


class QueueRow(Protocol):
    """An existing queue row as the plan reads it (a database row, or anything with these attributes)."""

    id: int
    confluence_task_id: str
    status: str
    edited_fields: list[str] | None

    def __getattr__(self, upstream_field: str) -> Any: ...


class CardRow(Protocol):
    id: int
    confluence_task_id: str | None
    status: str
    confluence_remote_status: str | None
    gone_reason: str | None


@dataclass
class SyncPlan:
    new: list[dict[str, Any]] = field(default_factory=list)  # upstream fields + confluence_task_id
    changed: dict[int, dict[str, Any]] = field(default_factory=dict)  # queue row id -> changed columns
    unchanged: int = 0
    gone: list[int] = field(default_factory=list)  # queue row ids
    refused: int = 0  # fetched ids that are not Confluence task ids
    clipped: int = 0  # upstream values cut to fit their column
    conflicts: list[int] = field(default_factory=list)  # card ids
    remote_incomplete: list[int] = field(default_factory=list)  # card ids whose known remote status is now incomplete
    completed_upstream: list[int] = field(default_factory=list)  # card ids
    cards_gone: list[int] = field(default_factory=list)  # card ids whose task is no longer the account's
    cards_back: list[int] = field(default_factory=list)  # card ids marked gone whose task is the account's again

    @property
    def touches_anything(self) -> bool:
        return bool(self.new or self.changed or self.gone or self.conflicts or self.completed_upstream
                    or self.cards_gone or self.cards_back)


def clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(fields: dict[str, Any]) -> int:
    """Cut values longer than their column, in place; return how many were cut."""
    cut = 0
    for name, limit in LIMITS.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > limit:
            fields[name] = clip(value, limit)
            cut += 1
    return cut


def upstream_fields(task: ConfluenceTask, found: Enrichment, site_url: str) -> dict[str, Any]:
    """The queue columns Confluence decides for one task, with its page and space looked up."""
    container = found.pages.get(task.page_id or "") or found.blogposts.get(task.blogpost_id or "")
    space = found.spaces.get(task.space_id or "")
    return {
        "task_title": task.title or "(untitled task)",
        "due_date": task.due_date,
        "confluence_page_id": task.page_id,
        "confluence_blogpost_id": task.blogpost_id,
        "confluence_page_title": container.title if container else PAGE_UNAVAILABLE,
        "confluence_space_id": task.space_id,
        "confluence_space_key": space.key if space else None,
        "confluence_space_name": space.name if space else None,
        "confluence_url": f"{site_url}/wiki{container.webui}" if container and container.webui else None,
        "remote_status": task.status or "incomplete",
        "remote_updated_at": task.updated_at,
    }


def changes_for(current: Any, edited: Iterable[str] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream values that differ from `current`, leaving out the fields the person edited."""
    mine = set(edited or ())
    return {name: value for name, value in fields.items()
            if OWNED_BY_EDITS.get(name) not in mine and getattr(current, name) != value}


def is_task_id(task_id: str) -> bool:
    return 0 < len(task_id) <= MAX_TASK_ID and task_id.isdigit()


def plan(
    existing: Iterable[QueueRow], fetched: Mapping[str, dict[str, Any]], cards: Iterable[CardRow],
    completed: AbstractSet[str], unsent: AbstractSet[int] = frozenset(),
) -> SyncPlan:
    """Classify a complete fetch.

    existing: the connection's queue rows; fetched: task id -> `upstream_fields` of every incomplete
    task the fetch returned; cards: the connection's cards linked to a Confluence task; completed: task
    ids Confluence says are complete (asked for the cards' tasks missing from the fetch); unsent: ids
    of cards with a completion still waiting in the outbox.
    """
    out = SyncPlan()
    rows = {r.confluence_task_id: r for r in existing}
    seen: set[str] = set()
    for task_id, upstream in fetched.items():
        if not is_task_id(task_id):
            out.refused += 1
            continue
        seen.add(task_id)
        fields = dict(upstream)
        out.clipped += fit(fields)
        row = rows.get(task_id)
        if row is None:
            out.new.append(fields | {"confluence_task_id": task_id})
            continue
        changes = changes_for(row, row.edited_fields, fields)
        if row.status == "gone":  # assigned to you again
            changes |= {"status": "pending", "gone_reason": None}
        if changes:
            out.changed[row.id] = changes
        else:
            out.unchanged += 1
    out.gone = [r.id for r in rows.values() if r.status == "pending" and r.confluence_task_id not in seen]

    for card in cards:
        if card.id in unsent or not card.confluence_task_id:
            continue
        remote = card.confluence_remote_status
        if card.confluence_task_id in seen and card.gone_reason:
            out.cards_back.append(card.id)
        if card.confluence_task_id in seen:
            if card.status == "done" and remote == "complete":
                out.conflicts.append(card.id)
            elif remote != "incomplete":
                out.remote_incomplete.append(card.id)
        elif card.confluence_task_id in completed:
            if remote != "complete":
                out.completed_upstream.append(card.id)
            if card.gone_reason:
                out.cards_back.append(card.id)
        elif remote != "complete" and not card.gone_reason:  # asked about, and neither open nor complete
            out.cards_gone.append(card.id)
    return out
