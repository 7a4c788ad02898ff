"""Waiting longer after each failure, in one formula for every retry in Trackli: an HTTP request's next
try (the transport), a completion's next send (the outbox), a connection's next scheduled sync."""

from __future__ import annotations


def doubling(base: float, failures: int, cap: float) -> float:
    """`base` doubled once per failure so far, never more than `cap`."""
    return min(cap, base * 2 ** min(max(failures, 0), 60))
