"""Small compositions of the client's public methods, for tests and benchmarks."""

from __future__ import annotations

from typing import Any

from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.models import ConfluenceTask, Enrichment


def all_tasks(client: ConfluenceClient, **params: Any) -> list[ConfluenceTask]:
    """Every task of every page `iter_task_pages(**params)` yields."""
    return [task for page in client.iter_task_pages(**params) for task in page]


def enrich(client: ConfluenceClient, tasks: list[ConfluenceTask]) -> Enrichment:
    """Pages, blog posts and spaces of `tasks`, looked up as a sync does."""
    lookups = client.lookups()
    try:
        lookups.add(tasks)
        return lookups.result()
    finally:
        lookups.close()
