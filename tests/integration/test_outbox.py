"""The outbox table (trackli.outbox): one unsent entry per card, a newer desire rewrites it, a desire
Confluence already holds sends nothing, a claim is one caller's, a dead sender's lease hands it back."""

import datetime as dt

from sqlalchemy import func, select, update

from tests.syncing import approve_some
from trackli import board, outbox
from trackli.models import Card, OutboxEntry, utcnow


def test_one_unsent_entry_per_card_and_a_settled_desire_sends_nothing(sim_ctx, user_id, token_connection):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        card = s.get(Card, card_id)
        first = outbox.enqueue(s, card, "complete")
        again = outbox.enqueue(s, card, "complete")
        assert first is not None and again is not None and again.id == first.id  # rewritten, not a second one
        assert outbox.enqueue(s, card, "incomplete") is None  # what Confluence holds: the unsent desire dropped
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0 and card.sync_state == "synced"


def test_a_claim_is_one_callers_and_a_dead_senders_lease_hands_it_back(sim_ctx, user_id, token_connection):
    cards = approve_some(sim_ctx, user_id, token_connection, 3)
    with sim_ctx.session() as s:
        for card_id in cards:
            board.move_card(s, user_id, card_id, "done")
    first = outbox.claim(sim_ctx, None, 2)
    second = outbox.claim(sim_ctx, None, 10)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    assert outbox.claim(sim_ctx, None, 10) == []
    with sim_ctx.session() as s:  # the sender of `first` died: its lease runs out
        s.execute(update(OutboxEntry).where(OutboxEntry.id.in_(first)).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    assert sorted(outbox.claim(sim_ctx, None, 10)) == sorted(first)
    with sim_ctx.session() as s:
        assert outbox.unsent_card_ids(s, token_connection) == set(cards)
