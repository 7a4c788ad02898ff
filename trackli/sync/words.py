"""A sync in the words a person reads (the dashboard and the CLI both show them)."""

from __future__ import annotations

from trackli.sync.runs import SyncResult


def summary(r: SyncResult) -> str:
    """One line a person reads about one connection's sync (the dashboard and the CLI both show it)."""
    if r.outcome == "ok":
        waited = f", {r.retries} retried after {r.waited_s:.0f} s of rate limits and errors" if r.retries else ""
        return (f"Sync finished: {r.new} new · {r.updated} updated · {r.unchanged} unchanged · {r.gone} gone · "
                f"{r.completed_upstream} completed in Confluence · {r.conflicts} conflicts "
                f"({r.requests} requests{waited}, {r.duration_s:.1f} s)")
    if r.outcome == "already_running":
        return "A sync of this connection is already running; its results will appear shortly."
    return f"Sync failed: {r.error}"
