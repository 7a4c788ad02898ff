"""The typed records the client hands back — a task, a page or blog post, a space, the account, a probe —
and the parsing of upstream values into them, which never raises: a value that is not what Atlassian
documents becomes "none" (no id, no date, empty text)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from trackli.atlassian.body import title_from_body, tidy
from trackli.text import CONTROL

MAX_FIELD = 4000  # longest upstream text kept from one field before Trackli cuts it to its column
RemoteStatus = Literal["complete", "incomplete"]


def parse_datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def due_date_of(value: Any) -> dt.date | None:
    """Confluence due dates are whole days sent as UTC date-times: take the UTC date, never shift it."""
    moment = parse_datetime(value)
    return moment.astimezone(dt.timezone.utc).date() if moment else None


def _id(value: Any) -> str | None:
    """An id from upstream: a string or a whole number, without control characters; anything else is no id."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = CONTROL.sub("", str(value)).strip()[:MAX_FIELD]
    return text or None


def clean(value: Any) -> str:
    """Upstream text as Trackli keeps it: a string, no control characters, bounded in length."""
    return tidy(value[:MAX_FIELD]) if isinstance(value, str) else ""


def _status(value: Any) -> RemoteStatus | None:
    if value == "complete":
        return "complete"
    if value == "incomplete":
        return "incomplete"
    return None


@dataclass(frozen=True)
class ConfluenceTask:
    id: str
    local_id: str | None
    space_id: str | None
    page_id: str | None
    blogpost_id: str | None
    status: RemoteStatus | None
    title: str
    due_date: dt.date | None
    assigned_to: str | None
    created_by: str | None
    completed_by: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    completed_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ConfluenceTask":
        return cls(
            id=_id(data.get("id")) or "",
            local_id=_id(data.get("localId")),
            space_id=_id(data.get("spaceId")),
            page_id=_id(data.get("pageId")),
            blogpost_id=_id(data.get("blogPostId")),
            status=_status(data.get("status")),
            title=title_from_body(data.get("body")),
            due_date=due_date_of(data.get("dueAt")),
            assigned_to=_id(data.get("assignedTo")),
            created_by=_id(data.get("createdBy")),
            completed_by=_id(data.get("completedBy")),
            created_at=parse_datetime(data.get("createdAt")),
            updated_at=parse_datetime(data.get("updatedAt")),
            completed_at=parse_datetime(data.get("completedAt")),
        )


@dataclass(frozen=True)
class ContentInfo:
    """A page or blog post, as much as Trackli needs of it."""

    id: str
    title: str
    space_id: str | None
    status: str | None
    webui: str | None


@dataclass(frozen=True)
class SpaceInfo:
    id: str
    key: str
    name: str


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str | None
    name: str | None


@dataclass
class Enrichment:
    pages: dict[str, ContentInfo] = field(default_factory=dict)
    blogposts: dict[str, ContentInfo] = field(default_factory=dict)
    spaces: dict[str, SpaceInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """One API tried by `ConfluenceClient.probe()`. `ok` is None where nothing could be tried."""

    api: str
    method: str
    ok: bool | None
    status: int | None
    latency_ms: float | None
    detail: str


def _text(value: Any) -> str | None:
    return clean(value) or None
