"""Batching ids: SQL `IN` lists and Atlassian's 250-id look-ups both go a batch at a time."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

MAX_BATCH = 250  # Atlassian's most ids per look-up (and a good size for an IN list)

T = TypeVar("T")


def chunks(ids: Iterable[T], size: int = MAX_BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in ids:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
