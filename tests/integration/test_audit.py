"""The audit log (trackli.audit): what is recorded, how it is scrubbed, and the queries the page and CLI make."""

import datetime as dt

from trackli import audit


def test_secrets_are_dropped_by_key_and_masked_by_value(ctx, user_id):
    with ctx.session() as s:
        audit.record(s, user_id, "oauth.token_refreshed", {
            "refresh_token": "rt-1", "nested": {"Authorization": "Bearer abc"},
            "note": "sent Bearer eyJhbGciOi.x.y to the gateway", "count": 3, "when": dt.date(2026, 1, 2),
        }, success=False, error="upstream said access_token=leaky-value")
    with ctx.session() as s:
        [entry] = audit.query(s, user_id)
    assert entry.details == {"refresh_token": "[redacted]", "nested": {"Authorization": "[redacted]"},
                             "note": "sent [redacted] to the gateway", "count": 3, "when": "2026-01-02"}
    assert entry.error_message == "upstream said [redacted]" and entry.success is False


def test_queries_filter_by_event_outcome_and_time_and_see_only_the_persons_own(ctx, user_id, other_user_id):
    now = dt.datetime.now(dt.timezone.utc)
    with ctx.session() as s:
        audit.record(s, user_id, "confluence.tasks_fetched").created_at = now - dt.timedelta(days=3)
        audit.record(s, user_id, "confluence.fetch_failed", success=False, error="boom")
        audit.record(s, user_id, "queue.approved", provider="trackli")
        audit.record(s, other_user_id, "queue.dismissed", provider="trackli")
    with ctx.session() as s:
        assert [e.event_type for e in audit.query(s, user_id)] == ["queue.approved", "confluence.fetch_failed",
                                                                   "confluence.tasks_fetched"]
        assert [e.event_type for e in audit.query(s, user_id, success=False)] == ["confluence.fetch_failed"]
        assert [e.event_type for e in audit.query(s, user_id, event_types=["queue.approved"])] == ["queue.approved"]
        recent = audit.query(s, user_id, since=now - dt.timedelta(days=1), until=now + dt.timedelta(minutes=1))
        assert "confluence.tasks_fetched" not in {e.event_type for e in recent} and len(recent) == 2
        assert len(audit.query(s, user_id, limit=1)) == 1
        assert audit.event_types(s, user_id) == ["confluence.fetch_failed", "confluence.tasks_fetched", "queue.approved"]
        assert audit.as_dict(audit.query(s, user_id, limit=1)[0])["event_type"] == "queue.approved"


def test_purge_removes_only_entries_past_the_retention(ctx, user_id):
    with ctx.session() as s:
        audit.record(s, user_id, "old").created_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)
        audit.record(s, user_id, "new")
    with ctx.session() as s:
        assert audit.purge_older_than(s, 30) == 1
    with ctx.session() as s:
        assert [e.event_type for e in audit.query(s, user_id)] == ["new"]


def test_card_events_name_their_card_even_after_it_is_deleted(ctx, user_id):
    from sqlalchemy import select

    from trackli import board
    from trackli.models import AuditEntry

    with ctx.session() as s:
        kept = board.create_card(s, user_id, "Kept card").id
        gone = board.create_card(s, user_id, "Deleted card").id
        board.archive_card(s, user_id, kept)
        board.delete_card(s, user_id, gone)
    with ctx.session() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.user_id == user_id)))
        named = {e.event_type: title for e in entries if (title := audit.subjects(s, user_id, entries).get(e.id))}
    assert named == {"board.card_archived": "Kept card", "board.card_deleted": "Deleted card"}
