"""The simulated Atlassian's data: accounts, an OAuth app, spaces, pages, blog posts and tasks.

Everything is in memory behind one lock. Tests drive it directly (`SimState` methods); the demo
and browser tests drive it over HTTP (`/_admin/...`, see app.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import random
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ALL_SCOPES = (
    "read:task:confluence", "write:task:confluence", "read:page:confluence", "read:space:confluence",
    "read:me", "offline_access", "read:user:confluence",
)
ACCESS_TTL = 3600
REUSE_LEEWAY = 600


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SimAccount:
    account_id: str
    email: str
    name: str
    api_tokens: set[str] = field(default_factory=set)


@dataclass
class SimSpace:
    id: str
    key: str
    name: str


@dataclass
class SimContent:
    id: str
    kind: str  # "page" | "blogpost"
    title: str
    space_id: str
    status: str = "current"  # current | archived | trashed


@dataclass
class SimTask:
    id: str
    local_id: str
    space_id: str
    page_id: str | None
    blogpost_id: str | None
    text: str
    assigned_to: str | None
    created_by: str
    status: str = "incomplete"
    due: dt.date | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    updated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    completed_at: dt.datetime | None = None
    completed_by: str | None = None
    editable_by: set[str] | None = None  # None: everyone may edit
    rendered: dict = field(default_factory=dict, repr=False, compare=False)  # body format -> JSON dict

    @property
    def blank(self) -> bool:
        return not self.text.strip()

    def storage(self) -> str:
        parts = [html.escape(self.text, quote=False)]
        if self.assigned_to:
            parts.append(f'<ac:link><ri:user ri:account-id="{self.assigned_to}" /></ac:link>')
        if self.due:
            parts.append(f'<time datetime="{self.due.isoformat()}" />')
        return " ".join(parts)

    def adf(self) -> str:
        content: list[dict[str, Any]] = []
        if self.text:
            content.append({"type": "text", "text": self.text + " "})
        if self.assigned_to:
            content.append({"type": "mention", "attrs": {"id": self.assigned_to, "text": "@someone"}})
        if self.due:
            millis = int(dt.datetime.combine(self.due, dt.time(), dt.timezone.utc).timestamp() * 1000)
            content.append({"type": "text", "text": " "})
            content.append({"type": "date", "attrs": {"timestamp": str(millis)}})
        return json.dumps({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": content}]})

    def due_at(self) -> str | None:
        return iso(dt.datetime.combine(self.due, dt.time(), dt.timezone.utc)) if self.due else None

    def to_json(self, body_format: str | None) -> dict[str, Any]:
        cached = self.rendered.get(body_format)
        if cached is None:
            cached = self.rendered[body_format] = self._render(body_format)
        return cached

    def _render(self, body_format: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "localId": self.local_id, "spaceId": self.space_id, "status": self.status,
            "createdBy": self.created_by, "createdAt": iso(self.created_at), "updatedAt": iso(self.updated_at),
        }
        if self.page_id:
            data["pageId"] = self.page_id
        if self.blogpost_id:
            data["blogPostId"] = self.blogpost_id
        if self.assigned_to:
            data["assignedTo"] = self.assigned_to
        if self.due:
            data["dueAt"] = self.due_at()
        if self.completed_at:
            data["completedAt"] = iso(self.completed_at)
        if self.completed_by:
            data["completedBy"] = self.completed_by
        if body_format == "storage":
            data["body"] = {"storage": {"representation": "storage", "value": self.storage()}}
        elif body_format == "atlas_doc_format":
            data["body"] = {"atlas_doc_format": {"representation": "atlas_doc_format", "value": self.adf()}}
        return data


@dataclass
class RefreshRecord:
    family: str
    account_id: str
    scopes: tuple[str, ...]
    superseded_at: float | None = None


@dataclass
class Knobs:
    latency_ms: float = 0.0
    fault_rate: float = 0.0  # share of API requests (not admin, not OAuth) that fail
    fault_kinds: tuple[str, ...] = ("429", "502", "503")  # also "timeout", "drop", "504"
    retry_after_s: float = 1.0
    timeout_s: float = 30.0  # how long a "timeout" fault stalls
    seed: int = 0
    auto_approve: bool = False
    enabled_scopes: tuple[str, ...] = ALL_SCOPES
    extra_sites: int = 0  # more sites in accessible-resources, to make the person choose
    # Atlassian's points pool for OAuth apps (0: none): 1 a call + 1 per object read, per hour window;
    # spent, the gateway answers 429; below near_limit_share left, its headers say the limit is near.
    points_per_hour: int = 0
    near_limit_share: float = 0.2


class SimState:
    def __init__(self, *, seed: int = 0, site_name: str = "Simulated Confluence"):
        self.lock = threading.RLock()
        self.knobs = Knobs(seed=seed)
        self.rng = random.Random(seed)
        self.cloud_id = "11111111-2222-3333-4444-555555555555"
        self.site_name = site_name
        self.base_url = "http://127.0.0.1"  # set by the server once it knows its port
        self.client_id = "trackli-sim"
        self.client_secret = "trackli-sim-secret"
        self.redirect_uris: set[str] = set()  # empty: any redirect URI is accepted
        self.accounts: dict[str, SimAccount] = {}
        self.spaces: dict[str, SimSpace] = {}
        self.content: dict[str, SimContent] = {}
        self.tasks: dict[str, SimTask] = {}
        # Task listings are served from an index by assignee and cached until a task changes, so the
        # simulator's cost per page stays flat as the store grows (it stands in for Atlassian in benchmarks).
        self.by_assignee: dict[str | None, dict[str, SimTask]] = {}
        self.listings: dict[tuple, list[SimTask]] = {}
        self.codes: dict[str, tuple[str, tuple[str, ...], str, float]] = {}
        self.code_challenges: dict[str, str] = {}  # code -> its PKCE S256 challenge, when one was sent
        self.access_tokens: dict[str, tuple[str, tuple[str, ...], float]] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.revoked_families: set[str] = set()
        self.clock_offset = 0.0
        self.points_window_start = 0.0
        self.points_used = 0
        self.requests: list[dict[str, Any]] = []
        self.counters: Counter[str] = Counter()
        self._next_id = 100000

    def reset(self, *, seed: int = 0) -> None:
        """Forget everything, as a new simulator would (the server and its address stay)."""
        base_url, site_name = self.base_url, self.site_name
        with self.lock:
            SimState.__init__(self, seed=seed, site_name=site_name)
            self.base_url = base_url

    # -- clock and ids --

    def now(self) -> float:
        import time

        return time.time() + self.clock_offset

    def now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)

    def charge_points(self, points: int) -> None:
        with self.lock:
            self.points_window()
            self.points_used += points
            self.counters["points"] += points

    def points_window(self) -> float:
        """The current hour window's end (a new window starts when the last one is over)."""
        with self.lock:
            now = self.now()
            if now >= self.points_window_start + 3600:
                self.points_window_start, self.points_used = now, 0
            return self.points_window_start + 3600

    def next_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    # -- directory --

    def add_account(self, account_id: str, email: str, name: str, api_token: str | None = None) -> SimAccount:
        with self.lock:
            account = self.accounts.setdefault(account_id, SimAccount(account_id, email, name))
            if api_token:
                account.api_tokens.add(api_token)
            return account

    def add_space(self, key: str, name: str) -> SimSpace:
        space = SimSpace(self.next_id(), key, name)
        self.spaces[space.id] = space
        return space

    def add_content(self, kind: str, title: str, space_id: str, status: str = "current") -> SimContent:
        item = SimContent(self.next_id(), kind, title, space_id, status)
        self.content[item.id] = item
        return item

    def add_task(
        self, text: str, *, assigned_to: str | None, container: SimContent, due: dt.date | None = None,
        created_by: str = "sim-author", status: str = "incomplete",
    ) -> SimTask:
        with self.lock:
            now = self.now_dt()
            task = SimTask(
                id=self.next_id(), local_id=secrets.token_hex(8), space_id=container.space_id,
                page_id=container.id if container.kind == "page" else None,
                blogpost_id=container.id if container.kind == "blogpost" else None,
                text=text, assigned_to=assigned_to, created_by=created_by, status=status, due=due,
                created_at=now, updated_at=now,
                completed_at=now if status == "complete" else None,
            )
            self.tasks[task.id] = task
            self.by_assignee.setdefault(assigned_to, {})[task.id] = task
            self.listings.clear()
            return task

    def webui(self, item: SimContent) -> str:
        space = self.spaces.get(item.space_id)
        key = space.key if space else "X"
        if item.kind == "blogpost":
            return f"/spaces/{key}/blog/{item.id}"
        return f"/spaces/{key}/pages/{item.id}"

    # -- upstream changes (admin) --

    def update_task(self, task_id: str, *, status: str | None = None, assigned_to: Any = ..., text: str | None = None,
                    due: Any = ..., by: str | None = None) -> SimTask:
        with self.lock:
            task = self.tasks[task_id]
            now = self.now_dt()
            if status is not None and status != task.status:
                task.status = status
                task.completed_at = now if status == "complete" else None
                task.completed_by = (by or task.assigned_to) if status == "complete" else None
            if assigned_to is not ... and assigned_to != task.assigned_to:
                self.by_assignee.get(task.assigned_to, {}).pop(task.id, None)
                self.by_assignee.setdefault(assigned_to, {})[task.id] = task
                task.assigned_to = assigned_to
            if text is not None:
                task.text = text
            if due is not ...:
                task.due = due
            task.updated_at = now
            task.rendered.clear()
            self.listings.clear()
            return task

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            task = self.tasks.pop(task_id, None)
            if task is not None:
                self.by_assignee.get(task.assigned_to, {}).pop(task_id, None)
            self.listings.clear()

    def log(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)
            self.counters[entry.get("operation") or "other"] += 1
            self.counters["total"] += 1
            if len(self.requests) > 50_000:
                del self.requests[:10_000]

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()
            self.counters.clear()

    def api_requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if operation is None or r.get("operation") == operation]

    # -- OAuth --

    def issue_code(self, account_id: str, scopes: tuple[str, ...], redirect_uri: str,
                   code_challenge: str | None = None) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = (account_id, scopes, redirect_uri, self.now() + 300)
            if code_challenge:
                self.code_challenges[code] = code_challenge
        return code

    def _issue_tokens(self, account_id: str, scopes: tuple[str, ...], family: str | None) -> dict[str, Any]:
        access = "sim-at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (account_id, scopes, self.now() + ACCESS_TTL)
        body: dict[str, Any] = {"access_token": access, "expires_in": ACCESS_TTL, "token_type": "Bearer",
                                "scope": " ".join(scopes)}
        if "offline_access" in scopes:
            refresh = "sim-rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = RefreshRecord(family or secrets.token_hex(8), account_id, scopes)
            body["refresh_token"] = refresh
        return body

    def exchange_code(self, code: str, redirect_uri: str | None, code_verifier: str | None = None) -> dict[str, Any] | None:
        """Tokens for a code, once. A code issued with a PKCE challenge needs the verifier that hashes to it."""
        with self.lock:
            entry = self.codes.pop(code, None)
            challenge = self.code_challenges.pop(code, None)
            if entry is None or entry[3] < self.now() or (redirect_uri and redirect_uri != entry[2]):
                return None
            if challenge is not None and (not code_verifier or s256(code_verifier) != challenge):
                self.counters["pkce_refused"] += 1
                return None
            return self._issue_tokens(entry[0], entry[1], None)

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """Rotate: a superseded token may be reused within the leeway; later reuse kills the family."""
        with self.lock:
            record = self.refresh_tokens.get(refresh_token)
            if record is None or record.family in self.revoked_families:
                return None
            now = self.now()
            if record.superseded_at is not None and now - record.superseded_at > REUSE_LEEWAY:
                self.revoked_families.add(record.family)
                return None
            if record.superseded_at is None:
                record.superseded_at = now
            self.counters["token_refreshes"] += 1
            return self._issue_tokens(record.account_id, record.scopes, record.family)

    def revoke_all_refresh_tokens(self) -> None:
        with self.lock:
            self.revoked_families.update(r.family for r in self.refresh_tokens.values())

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token, (account, scopes, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (account, scopes, self.now() - 1)

    def bearer(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        with self.lock:
            entry = self.access_tokens.get(token)
            if entry is None or entry[2] < self.now():
                return None
            return entry[0], entry[1]

    def basic(self, email: str, token: str) -> SimAccount | None:
        with self.lock:
            for account in self.accounts.values():
                if account.email.lower() == email.lower() and token in account.api_tokens:
                    return account
        return None

    def sites(self) -> list[dict[str, Any]]:
        granted = list(self.knobs.enabled_scopes)
        sites = [{"id": self.cloud_id, "name": self.site_name, "url": self.base_url, "scopes": granted,
                  "avatarUrl": f"{self.base_url}/avatar.png"}]
        for n in range(self.knobs.extra_sites):
            sites.append({"id": f"{self.cloud_id[:-4]}{n + 1:04d}", "name": f"{self.site_name} {n + 2}",
                          "url": self.base_url, "scopes": granted, "avatarUrl": f"{self.base_url}/avatar.png"})
        return sites
