"""Errors a person can act on. The UI and the CLI show `str(exc)` as is."""

from __future__ import annotations

import re


class TrackliError(Exception):
    """Base class: the message is safe to show (no secrets, no stack traces)."""


class UserError(TrackliError):
    """The request was wrong: bad input, or a rule of the product. CLI exit code 1."""


class ValidationError(UserError):
    pass


class NotFound(UserError):
    """The thing does not exist, or belongs to someone else (the two are never told apart)."""


class ConstraintViolation(UserError):
    """The database refused a row; the message says which rule."""


# constraint name -> rule a person understands
CONSTRAINT_RULES = {
    "ck_tasks_status": "a card's status must be backlog, todo, in_progress or done",
    "ck_tasks_source": "a card's source must be manual or confluence",
    "ck_tasks_sync_state": "a card's sync state must be none, synced, waiting, failed or conflict",
    "ck_tasks_title_not_blank": "a card needs a title",
    "ck_confluence_pending_tasks_status": "a pending task's status must be pending, approved, dismissed or gone",
    "uq_confluence_pending_tasks_connection_task": "this Confluence task is already in the queue for this connection",
    "uq_projects_owner_name": "you already have a project with that name",
    "uq_users_email": "a user with that email already exists",
    "uq_tasks_connection_confluence_task": "this Confluence task already has a card",
    "ck_atlassian_connections_kind": "a connection's kind must be oauth or api_token",
    "ck_atlassian_connections_status": "a connection's status must be ok, needs_reconnect or error",
    "ck_completion_outbox_desired_status": "an outbox entry must ask for complete or incomplete",
    "ck_completion_outbox_state": "an outbox entry's state must be pending, sending, done or failed",
    "ck_sync_runs_trigger": "a sync run's trigger must be manual, scheduled or cli",
    "uq_sync_runs_one_running_per_connection": "a sync of this connection is already running",
    "uq_atlassian_connections_user_site_account": "you are already connected to this site with this account",
}

# SQLite names the columns of a failed UNIQUE, not the constraint: map them back.
_SQLITE_UNIQUE = {
    "confluence_pending_tasks.connection_id, confluence_pending_tasks.confluence_task_id": "uq_confluence_pending_tasks_connection_task",
    "projects.owner_id, projects.name": "uq_projects_owner_name",
    "users.email": "uq_users_email",
    "tasks.connection_id, tasks.confluence_task_id": "uq_tasks_connection_confluence_task",
    "sync_runs.connection_id": "uq_sync_runs_one_running_per_connection",
    "atlassian_connections.user_id, atlassian_connections.cloud_id, atlassian_connections.account_id":
        "uq_atlassian_connections_user_site_account",
}


def describe_integrity_error(exc: BaseException) -> ConstraintViolation:
    text = str(getattr(exc, "orig", exc))
    for name, rule in CONSTRAINT_RULES.items():
        if re.search(rf"\b{re.escape(name)}\b", text):
            return ConstraintViolation(f"{rule} (rule {name})")
    for columns, name in _SQLITE_UNIQUE.items():
        if columns in text:
            return ConstraintViolation(f"{CONSTRAINT_RULES[name]} (rule {name})")
    first_line = text.splitlines()[0] if text else exc.__class__.__name__
    return ConstraintViolation(f"the database refused the change: {first_line[:200]}")
