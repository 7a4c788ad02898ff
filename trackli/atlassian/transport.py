"""The one way Trackli sends HTTP to Atlassian: one `httpx.Client`, timeouts, retries, counters.

`ConfluenceClient` and the OAuth calls both send through a `Transport`, so a token refresh gets
the same timeouts, backoff and `Retry-After` handling as a task listing. This module knows
nothing of scopes or credentials: it retries what is transient and hands back every other
response for the caller to read.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Literal

import httpx

from trackli.atlassian.body import tidy
from trackli.atlassian.errors import RateLimited, RemoteError

Method = Literal["GET", "POST", "PUT"]

RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-NearLimit",
    "RateLimit-Reason", "Retry-After",
)
TAGS = re.compile(r"<[^>]+>")
SECRETISH = re.compile(r"(Bearer|Basic)\s+\S+|\b[A-Za-z0-9_\-]{40,}\b")


def _jitter() -> float:
    return random.uniform(0.7, 1.3)


@dataclass
class RetryPolicy:
    tries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = _jitter

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * self.jitter()


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    task_pages: int = 0
    rate_limit: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


class Transport:
    """An `httpx.Client` (injected, or owned and closed here) with Trackli's retry policy."""

    def __init__(self, http: httpx.Client | None = None, *, retry: RetryPolicy | None = None, timeout: float = 20.0):
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.owns_http = http is None
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.stats = TransportStats()

    def close(self) -> None:
        if self.owns_http:
            self.http.close()

    def send(
        self, method: Method, url: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
        headers: dict[str, str] | None = None, header_source: Callable[[], dict[str, str]] | None = None,
    ) -> httpx.Response:
        """Send, retrying network failures, 5xx and 429 (honouring a capped `Retry-After`).

        Returns the response of the first try that is not transient (any status), or raises
        `RateLimited` / a transient `RemoteError` once the tries are spent. `header_source` is
        asked before every try (a credential may change between them).
        """
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            sent_headers = {"Accept": "application/json", **(headers or {}), **(header_source() if header_source else {})}
            try:
                response = self.http.request(method, url, params=params, json=json_body, headers=sent_headers,
                                             timeout=self.timeout)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self.stats.add(requests=1)
                if attempt < policy.tries:
                    self.wait(policy.backoff(attempt))
                    continue
                raise RemoteError(f"could not reach Atlassian ({exc.__class__.__name__})", transient=True) from None
            self.stats.add(requests=1)
            self._note_rate_limit(response)
            status = response.status_code
            if status in (429, 503):
                retry_after = retry_after_s(response)
                if attempt < policy.tries:
                    self.wait(policy.backoff(attempt) if retry_after is None else min(retry_after, policy.max_retry_after))
                    continue
                if status == 429:
                    raise RateLimited(retry_after)
                raise RemoteError("Atlassian is unavailable", status, excerpt(response), transient=True)
            if status in (500, 502, 504):
                if attempt < policy.tries:
                    self.wait(policy.backoff(attempt))
                    continue
                raise RemoteError("Atlassian kept failing", status, excerpt(response), transient=True)
            return response

    def wait(self, seconds: float) -> None:
        self.stats.add(retries=1, waited_s=seconds)
        self.retry.sleep(seconds)

    def _note_rate_limit(self, response: httpx.Response) -> None:
        seen = {h: response.headers[h] for h in RATE_LIMIT_HEADERS if h in response.headers}
        if seen:
            with self.stats.lock:
                self.stats.rate_limit = seen


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise RemoteError("Atlassian sent a response that is not JSON", response.status_code, excerpt(response)) from None


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """A short, safe description of an error body (JSON errors, or text with tags stripped)."""
    try:
        data = response.json()
    except Exception:
        data = None
    text = ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            text = " ".join(str(first.get(k)) for k in ("code", "title", "detail") if first.get(k))
        text = text or str(data.get("message") or data.get("error_description") or data.get("error") or "")
    if not text:
        text = tidy(TAGS.sub(" ", response.text or ""))
    text = SECRETISH.sub("[redacted]", text)
    return text[:limit]
