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
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Protocol

from trackli.text import MAX_TITLE
from trackli.atlassian.models import ConfluenceTask, Enrichment

GONE_REASON = "no longer an incomplete task assigned to you in Confluence (completed, reassigned or deleted)"
PAGE_UNAVAILABLE = "page unavailable"

# The queue's columns that come from Confluence, and how long Trackli keeps each text.
UPSTREAM = ("task_title", "due_date", "confluence_page_id", "confluence_blogpost_id", "confluence_page_title",
            "confluence_space_id", "confluence_space_key", "confluence_space_name", "confluence_url", "remote_status",
            "remote_updated_at", "confluence_created_by")
LIMITS = {"task_title": MAX_TITLE, "confluence_page_title": MAX_TITLE, "confluence_space_key": 255,
          "confluence_space_name": 500, "confluence_url": 2000, "confluence_page_id": 64,
          "confluence_blogpost_id": 64, "confluence_space_id": 64, "confluence_created_by": 128}
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
    new: list[str] = field(default_factory=list)  # task ids to add to the queue (their fields: `new_rows`)
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


class FetchedTask(NamedTuple):
    """What a sync keeps of each fetched task until it is applied: a plain tuple, a few hundred bytes,
    so 50,000 tasks fit in a few tens of megabytes."""

    id: str
    space_id: str | None
    page_id: str | None
    blogpost_id: str | None
    status: str | None
    title: str
    due_date: Any
    updated_at: Any
    created_by: str | None = None

    @classmethod
    def of(cls, task: ConfluenceTask, shared: dict[Any, Any]) -> "FetchedTask":
        """Compact: ids, statuses and dates repeated across tasks are kept once (`shared`)."""
        def one(value: Any) -> Any:
            return value if value is None else shared.setdefault(value, value)
        return cls(task.id, one(task.space_id), one(task.page_id), one(task.blogpost_id), one(task.status),
                   task.title, one(task.due_date), task.updated_at, one(task.created_by))


class Upstream(Mapping[str, dict[str, Any]]):
    """task id -> `upstream_fields`, computed when asked for (never all at once)."""

    def __init__(self, tasks: Mapping[str, Any], found: Enrichment, site_url: str):
        self.tasks, self.found, self.site_url = tasks, found, site_url
        self.urls: dict[str, str | None] = {}  # one link string per page, shared by its tasks

    def __getitem__(self, task_id: str) -> dict[str, Any]:
        return upstream_fields(self.tasks[task_id], self.found, self.site_url, self.urls)

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks


def new_rows(plan_: "SyncPlan", fetched: Mapping[str, dict[str, Any]], size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """The plan's new queue rows, `size` at a time, each cut to fit its columns."""
    for start in range(0, len(plan_.new), size):
        batch = []
        for task_id in plan_.new[start:start + size]:
            fields = dict(fetched[task_id])
            fit(fields)
            batch.append(fields | {"confluence_task_id": task_id})
        yield batch


def upstream_fields(task: Any, found: Enrichment, site_url: str,
                    urls: dict[str, str | None] | None = None) -> dict[str, Any]:
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
        "confluence_url": _url(container, site_url, urls),
        "remote_status": task.status or "incomplete",
        "remote_updated_at": task.updated_at,
        "confluence_created_by": getattr(task, "created_by", None),
    }


def _url(container: Any, site_url: str, urls: dict[str, str | None] | None) -> str | None:
    if not container or not container.webui:
        return None
    if urls is None:
        return f"{site_url}/wiki{container.webui}"
    if container.id not in urls:
        urls[container.id] = f"{site_url}/wiki{container.webui}"
    return urls[container.id]


def changes_for(current: Any, edited: Iterable[str] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream values that differ from `current`, leaving out the fields the person edited."""
    mine = set(edited or ())
    return {name: value for name, value in fields.items()
            if OWNED_BY_EDITS.get(name) not in mine and getattr(current, name) != value}


def is_task_id(task_id: str) -> bool:
    return 0 < len(task_id) <= MAX_TASK_ID and task_id.isdigit()


def plan(
    existing: Iterable[QueueRow], fetched: Mapping[str, dict[str, Any]], cards: Iterable[CardRow],
    completed: AbstractSet[str], unsent: AbstractSet[int] = frozenset(), *, complete: bool = True,
) -> SyncPlan:
    """Classify a complete fetch.

    existing: the connection's queue rows (read once, in any order: a stream is fine); fetched: task id
    -> `upstream_fields` of every incomplete task the fetch returned (an `Upstream` computes them when asked); cards: the connection's cards linked to a Confluence task; completed: task
    ids Confluence says are complete (asked for the cards' tasks missing from the fetch); unsent: ids
    of cards with a completion still waiting in the outbox.
    """
    out = SyncPlan()
    seen: set[str] = set()
    for row in existing:  # streamed: one queue row at a time, none kept
        task_id = row.confluence_task_id
        if task_id not in fetched:
            if row.status in ("pending", "snoozed") and complete:  # a snoozed task follows the same rules
                out.gone.append(row.id)
            continue
        seen.add(task_id)
        fields = dict(fetched[task_id])
        out.clipped += fit(fields)
        changes = changes_for(row, row.edited_fields, fields)
        if row.status == "gone":  # assigned to you again
            changes |= {"status": "pending", "gone_reason": None}
        if changes:
            out.changed[row.id] = changes
        else:
            out.unchanged += 1
    for task_id in fetched:
        if task_id in seen:
            continue
        if not is_task_id(task_id):
            out.refused += 1
            continue
        seen.add(task_id)
        out.clipped += fit(dict(fetched[task_id]))  # counted here; `new_rows` cuts them when they are written
        out.new.append(task_id)

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
        elif complete and remote != "complete" and not card.gone_reason:  # asked about: neither open nor complete
            out.cards_gone.append(card.id)
    return out
