"""Typed errors of the Atlassian client. Every message says what a person can do about it."""

from __future__ import annotations

from trackli.errors import TrackliError


class AtlassianError(TrackliError):
    """Base class. `permanent` errors are not worth retrying later without a change by a person."""

    permanent = True


class MissingScope(AtlassianError):
    def __init__(self, operation: str, missing: list[str], label: str | None = None):
        from trackli.atlassian.scopes import fix_for

        self.operation = operation
        self.missing = list(missing)
        what = label or operation
        if missing:
            message = f"Atlassian refused to {what}: the connection lacks the scope {', '.join(missing)}. Fix: {fix_for(missing)}."
        else:
            message = (
                f"Atlassian refused to {what} with 'scope does not match', though the granted scopes look "
                "complete: the request path may be malformed, or the grant changed; reconnect to refresh it."
            )
        super().__init__(message)


class ReconnectRequired(AtlassianError):
    def __init__(self, reason: str = "Atlassian no longer accepts this connection's credentials"):
        super().__init__(f"{reason}. Reconnect Atlassian to resume syncing.")
        self.reason = reason


class NotFoundOrNoPermission(AtlassianError):
    def __init__(self, what: str):
        super().__init__(
            f"{what} was not found, or you may not edit it (Confluence answers 404 for both): "
            "check the task still exists and that you can edit its page"
        )


class RateLimited(AtlassianError):
    permanent = False

    def __init__(self, retry_after: float | None):
        self.retry_after = retry_after
        wait = f" for about {retry_after:.0f} s" if retry_after else ""
        super().__init__(f"Atlassian is rate-limiting this connection{wait}; Trackli will try again later")


class RemoteError(AtlassianError):
    """Anything else: an unexpected status, a body that is not JSON, a network failure."""

    def __init__(self, message: str, status: int | None = None, excerpt: str = "", transient: bool = False):
        self.status = status
        self.excerpt = excerpt
        self.permanent = not transient
        detail = f" (HTTP {status})" if status else ""
        tail = f": {excerpt}" if excerpt else ""
        super().__init__(f"{message}{detail}{tail}")
