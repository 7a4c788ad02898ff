"""The one way Trackli sends HTTP to Atlassian: one `httpx.Client`, timeouts, retries, counters.

`ConfluenceClient` and the OAuth calls both send through a `Transport`, so a token refresh gets
the same timeouts, backoff and `Retry-After` handling as a task listing. This module knows
nothing of scopes or credentials: it retries what is transient and hands back every other
response for the caller to read.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Literal

import httpx

from trackli.atlassian.body import tidy
from trackli.backoff import doubling
from trackli.atlassian.errors import RateLimited, RemoteError

Method = Literal["GET", "POST", "PUT"]

RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-NearLimit",
    "RateLimit-Reason", "Retry-After",
    # The points quota announces itself with these before it bites (API-FACTS: rate limits).
    "Beta-Retry-After", "X-Beta-RateLimit-NearLimit", "X-Beta-RateLimit-Reason", "X-Beta-RateLimit-Reset",
    "Beta-RateLimit-Policy",
)
MAX_HEADER_CHARS = 200  # a rate-limit header is kept (and shown) no longer than this
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # a page of 250 tasks with bodies is well under 1 MB
RESPONSE_DEADLINE_S = 60.0  # one response, headers to last byte (the timeout alone is per read)
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
        return doubling(self.base_delay, attempt - 1, self.max_delay) * self.jitter()


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    task_pages: int = 0
    points: int = 0  # Atlassian's 2026 measure: 1 a product API call, plus 1 per object a read returns
    rate_limit: dict[str, str] = field(default_factory=dict)
    near_limit: bool = False  # any response said the quota is near (or spent)
    # Atlassian's clock: the `Date` of the first answer (an incremental poll's watermark comes from it).
    server_date: dt.datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


class Transport:
    """An `httpx.Client` (injected, or owned and closed here) with Trackli's retry policy and bounds.

    Every response is read as a stream and cut off past `max_bytes` or `response_deadline_s`; a
    `deadline` (a `time.monotonic()` value) bounds all the work of one job, waits included; and
    `on_activity` is called before every try and every wait (a sync's heartbeat).
    """

    def __init__(self, http: httpx.Client | None = None, *, retry: RetryPolicy | None = None, timeout: float = 20.0,
                 max_bytes: int = MAX_RESPONSE_BYTES, response_deadline_s: float = RESPONSE_DEADLINE_S):
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.owns_http = http is None
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.response_deadline_s = response_deadline_s
        self.deadline: float | None = None
        self.on_activity: Callable[[], None] | None = None
        self.stats = TransportStats()
        self.secrets: set[str] = set()  # credentials sent through here: never repeated in an error message

    def keep_secret(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 4:
                self.secrets.add(value)

    def _keep_authorization(self, header: str) -> None:
        scheme, _, value = header.partition(" ")
        self.keep_secret(value)
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(value, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return
            self.keep_secret(pair, pair.partition(":")[2])

    def redact(self, text: str) -> str:
        """`text` with every credential this transport sent replaced, by value (not only by pattern)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    def excerpt(self, response: httpx.Response) -> str:
        return excerpt(response, redact=self.redact)

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
            self._check_deadline()
            if self.on_activity:
                self.on_activity()
            sent_headers = {"Accept": "application/json", **(headers or {}), **(header_source() if header_source else {})}
            if "Authorization" in sent_headers:
                self._keep_authorization(sent_headers["Authorization"])
            try:
                response = self._bounded(method, url, params, json_body, sent_headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self.stats.add(requests=1)
                if attempt < policy.tries:
                    self.wait(policy.backoff(attempt))
                    continue
                raise RemoteError(f"could not reach {origin(url)}: {self.why(exc)}", transient=True) from None
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
                raise RemoteError("Atlassian is unavailable", status, self.excerpt(response), transient=True)
            if status in (500, 502, 504):
                if attempt < policy.tries:
                    self.wait(policy.backoff(attempt))
                    continue
                raise RemoteError("Atlassian kept failing", status, self.excerpt(response), transient=True)
            return response

    def _bounded(self, method: Method, url: str, params: dict[str, Any] | None, json_body: Any,
                 headers: dict[str, str]) -> httpx.Response:
        """The response, read in full but no further than `max_bytes` and `response_deadline_s`."""
        started = time.monotonic()
        with self.http.stream(method, url, params=params, json=json_body, headers=headers,
                              timeout=self.timeout) as streamed:
            body = bytearray()
            for chunk in streamed.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise RemoteError(f"Atlassian sent a response larger than {self.max_bytes // (1024 * 1024)} MB; "
                                      "it was cut off and not used", streamed.status_code)
                if time.monotonic() - started > self.response_deadline_s:
                    raise RemoteError(f"Atlassian took longer than {self.response_deadline_s:.0f} s to send one "
                                      "response; it was cut off", streamed.status_code, transient=True)
        # The body is decoded already: the rebuilt response must not decode it again.
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(streamed.status_code, headers=kept, content=bytes(body), request=streamed.request)

    def why(self, exc: Exception) -> str:
        """A network failure in words a person can act on."""
        text = str(exc).lower()
        if isinstance(exc, httpx.ConnectTimeout):
            return f"it did not answer within {self.timeout:g} s"
        if isinstance(exc, httpx.TimeoutException):
            return f"it stopped answering for {self.timeout:g} s"
        if isinstance(exc, httpx.ConnectError):
            if "refused" in text:
                return "the connection was refused (is the address right, and is the service running?)"
            if any(k in text for k in ("name or service", "nodename", "getaddrinfo", "name resolution", "no address")):
                return "that name does not resolve (check the address for typos)"
            if "certificate" in text or "ssl" in text:
                return "its TLS certificate could not be verified"
            return "the connection could not be made"
        if isinstance(exc, httpx.RemoteProtocolError):
            return "it closed the connection without answering"
        return f"the network failed ({type(exc).__name__})"

    def bound(self, seconds: float, on_activity: Callable[[], None] | None = None) -> None:
        """From now on all the work of this job — requests, waits, `alive()` — ends within `seconds`, and
        `on_activity` (a heartbeat) is called before every try and every wait."""
        self.deadline = time.monotonic() + seconds
        self.on_activity = on_activity

    def alive(self, heartbeat: bool = True) -> None:
        """Long local work of the job this transport serves (routing a big sync): past the deadline it
        stops as a request would; otherwise the job's heartbeat is told."""
        self._check_deadline()
        if heartbeat and self.on_activity:
            self.on_activity()

    def _check_deadline(self, wait: float = 0.0) -> None:
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            raise RemoteError("the work ran past its time limit and was stopped; it is tried again at the next sync",
                              transient=True)

    def wait(self, seconds: float) -> None:
        self._check_deadline(seconds)
        if self.on_activity:
            self.on_activity()
        self.stats.add(retries=1, waited_s=seconds)
        self.retry.sleep(seconds)

    def _note_rate_limit(self, response: httpx.Response) -> None:
        seen = {h: response.headers[h][:MAX_HEADER_CHARS] for h in RATE_LIMIT_HEADERS if h in response.headers}
        date = None if self.stats.server_date else http_date(response.headers.get("Date"))
        with self.stats.lock:
            if seen:
                self.stats.rate_limit = seen
                self.stats.near_limit = self.stats.near_limit or near_limit(seen, response.status_code)
            if date is not None and self.stats.server_date is None:
                self.stats.server_date = date


def origin(url: str) -> str:
    """`scheme://host:port` of a URL: where a request went, without its path, query or credentials."""
    try:
        parts = httpx.URL(url)
        return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")
    except Exception:
        return "Atlassian"


def http_date(value: str | None) -> dt.datetime | None:
    """An HTTP `Date` header as an aware UTC datetime; None if absent or unreadable (never raises)."""
    if not value or len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        # A date at the edge of the representable range (year 9999 west of UTC) overflows here.
        return when.astimezone(dt.timezone.utc)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def near_limit(headers: dict[str, str], status: int = 200) -> bool:
    """Do these rate-limit headers say the quota is near its limit (or spent)?"""
    if status == 429 or "Beta-Retry-After" in headers:
        return True
    for name in ("X-RateLimit-NearLimit", "X-Beta-RateLimit-NearLimit"):
        if headers.get(name, "").strip().lower() == "true":
            return True
    left = remaining_share(headers)
    return left is not None and left < 0.2


def remaining_share(headers: dict[str, str]) -> float | None:
    """X-RateLimit-Remaining / X-RateLimit-Limit, when both are sane numbers."""
    try:
        limit, remaining = float(headers["X-RateLimit-Limit"]), float(headers["X-RateLimit-Remaining"])
    except (KeyError, ValueError):
        return None
    if not (math.isfinite(limit) and math.isfinite(remaining)) or limit <= 0 or remaining < 0:
        return None
    return min(1.0, remaining / limit)


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = http_date(value)
        if when is None:
            return None
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_of(response: httpx.Response, redact: Callable[[str], str] | None = None) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise RemoteError("Atlassian sent a response that is not JSON", response.status_code,
                          excerpt(response, redact=redact)) from None
    except RecursionError:
        raise RemoteError("Atlassian sent JSON nested too deeply to read", response.status_code) from None


def excerpt(response: httpx.Response, limit: int = 200, redact: Callable[[str], str] | None = None) -> str:
    """A short, safe description of an error body (JSON errors, or text with tags stripped)."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
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
    text = SECRETISH.sub("[redacted]", redact(text) if redact else text)
    return text[:limit]
