"""Which OAuth scopes each operation needs, and which of them a connection lacks.

The required scopes are those of each operation's `x-atlassian-oauth2-scopes` in Atlassian's
OpenAPI document (a contract test checks this table against it). Classic scopes such as
`read:confluence-content.all` do not authorise v2 calls, so they never count.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCT_SCOPES = (
    "read:task:confluence",
    "write:task:confluence",
    "read:page:confluence",
    "read:space:confluence",
    "read:me",
    "offline_access",
)


# Asked only when the deployment says so (ATLASSIAN_NAMES_SCOPE=on, after enabling it for the app in
# Atlassian's developer console: asking for a scope the app lacks makes Atlassian refuse the sign-in).
# Without it everything works; people are shown by account id.
NAMES_SCOPE = "read:user:confluence"


@dataclass(frozen=True)
class Operation:
    name: str
    label: str
    method: str
    path: str | None  # v2 path in the OpenAPI document, None for non-Confluence calls
    scopes: tuple[str, ...]
    optional: bool = False  # Trackli works without it (a missing scope here is not a problem to fix)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("list_tasks", "read tasks", "GET", "/tasks", ("read:task:confluence",)),
        Operation("update_task", "complete or reopen tasks", "PUT", "/tasks/{id}", ("write:task:confluence",)),
        Operation("list_pages", "read page titles", "GET", "/pages", ("read:page:confluence",)),
        Operation("list_blogposts", "read blog post titles", "GET", "/blogposts", ("read:page:confluence",)),
        Operation("list_spaces", "read space names", "GET", "/spaces", ("read:space:confluence",)),
        Operation("me", "identify the account", "GET", None, ("read:me",)),
        Operation("refresh", "stay connected (refresh tokens)", "POST", None, ("offline_access",)),
        Operation("get_users", "show people's names (optional)", "POST", "/users-bulk", (NAMES_SCOPE,), optional=True),
    )
}


def parse(granted: str | None) -> set[str]:
    return set((granted or "").split())


def missing_for(operation: str, granted: str | None) -> list[str]:
    have = parse(granted)
    return [s for s in OPERATIONS[operation].scopes if s not in have]


@dataclass(frozen=True)
class ScopeFinding:
    operation: Operation
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing


def diagnose(granted: str | None) -> list[ScopeFinding]:
    """For every operation the product uses: the required scopes the grant lacks."""
    return [ScopeFinding(op, tuple(missing_for(op.name, granted))) for op in OPERATIONS.values()]


def missing_product_scopes(granted: str | None) -> list[str]:
    have = parse(granted)
    return [s for s in PRODUCT_SCOPES if s not in have]


def fix_for(missing: list[str] | tuple[str, ...]) -> str:
    names = ", ".join(missing)
    return (
        f"enable {names} for the Trackli app in Atlassian's developer console "
        "(developer.atlassian.com/console/myapps → your app → Permissions → Confluence API → Configure), "
        "then reconnect in Trackli so the new scopes are granted"
    )
