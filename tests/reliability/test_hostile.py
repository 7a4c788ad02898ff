"""A hostile upstream: a server answering as Atlassian that lies, loops, floods, trickles and echoes.
Credentials never leave the site, one bad connection never stops the others, work is bounded, and
a malformed answer never counts as a complete fetch."""

import base64
import json
import math
import time

import pytest
from sqlalchemy import select

from tests.reliability.hostile import EMAIL, TOKEN, Server, page, site, task
from trackli import connections, queue, sync
from trackli.atlassian.client import RetryPolicy
from trackli.cli import main
from trackli.models import AuditEntry, PendingTask, SyncRun
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker

ONE = RetryPolicy(tries=1)
SECRET_PAGE = b"<html>INTERNAL-ADMIN-PAGE token=bystander-secret</html>"


@pytest.fixture
def hostile():
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def bystander():
    """Another service on this machine: nothing Trackli does may ever reach it."""
    server = Server(routes={"*": lambda h: h.raw(200, SECRET_PAGE, {"Content-Type": "text/html"})}).start()
    yield server
    server.stop()


def connect(ctx, user_id, hostile, tasks) -> int:
    hostile.routes.update(site(tasks))
    return connections.connect_api_token(ctx, user_id, hostile.url, EMAIL, TOKEN)


def pending_ids(ctx, user_id):
    with ctx.session() as s:
        return sorted(r.confluence_task_id for r in queue.list_pending(s, user_id))


def audit_text(ctx) -> str:
    with ctx.session() as s:
        return "\n".join(f"{e.event_type} {e.error_message} {json.dumps(e.details)}" for e in s.scalars(select(AuditEntry)))


@pytest.mark.parametrize("where", ["body", "header", "protocol-relative", "userinfo"])
def test_a_next_link_off_the_site_is_never_followed_and_nothing_goes(ctx, user_id, hostile, bystander, where, capsys):
    conn = connect(ctx, user_id, hostile, page([task(1), task(2)]))
    assert sync.sync_connection(ctx, conn, retry=ONE).outcome == "ok" and pending_ids(ctx, user_id) == ["1", "2"]

    port = bystander.url.rsplit(":", 1)[1]
    target = {"body": f"{bystander.url}/wiki/api/v2/tasks?cursor=1", "header": f"{bystander.url}/wiki/api/v2/tasks?c=1",
              "protocol-relative": f"//127.0.0.1:{port}/wiki/api/v2/tasks?cursor=1",
              "userinfo": f"{hostile.url}@127.0.0.1:{port}/wiki/api/v2/tasks"}[where]
    if where == "header":
        hostile.routes["/wiki/api/v2/tasks"] = lambda h: h.json(200, {"results": [task(1)]},
                                                                {"Link": f'<{target}>; rel="next"'})
    else:
        hostile.routes["/wiki/api/v2/tasks"] = page([task(1)], next=target)

    result = sync.sync_connection(ctx, conn, retry=ONE)
    assert result.outcome == "failed" and "outside this connection's site" in result.error
    assert bystander.seen == []  # not a byte, not a credential
    assert pending_ids(ctx, user_id) == ["1", "2"]  # the fetch was not complete: task 2 is not gone
    assert "outside this connection's site" in audit_text(ctx)

    assert main(["sync"]) == 2
    printed = capsys.readouterr()
    assert bystander.seen == [] and "INTERNAL-ADMIN-PAGE" not in printed.out + printed.err + audit_text(ctx)


HOSTILE_PAGES = {
    "next is a number": (page([task(1)], next=123), "failed"),
    "_links is a list": (lambda h: h.json(200, {"results": [task(1)], "_links": ["next"]}), "failed"),
    "results is text": (lambda h: h.json(200, {"results": "xxxxxxxxxx"}), "failed"),
    "a redirect with {}": (lambda h: h.json(307, {}, {"Location": "/wiki/api/v2/tasks"}), "failed"),
    "not JSON": (lambda h: h.raw(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}), "failed"),
    "ADF nested 100,000 deep": (page([task(1, body={"atlas_doc_format": {
        "value": '{"type":"doc","content":' + "[" * 100_000 + "]" * 100_000 + "}"}})]), "ok"),
    "ids and keys with NUL": (page([task(1, spaceId="9\u0000", pageId={"x": 1})]), "ok"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_PAGES))
def test_one_hostile_connection_never_stops_the_worker_for_the_others(ctx, user_id, other_user_id, hostile, sim, kind):
    answer, outcome = HOSTILE_PAGES[kind]
    hostile.routes.update(site(answer))
    hostile.routes["/wiki/api/v2/spaces"] = lambda h: h.json(200, {"results": [{"id": "9", "key": "K\u0000EY", "name": "N\x07"}]})
    bad = connections.connect_api_token(ctx, user_id, hostile.url, EMAIL, TOKEN)
    good = connections.connect_api_token(ctx.__class__(settings=ctx.settings.with_(atlassian_api_url=sim.url),
                                                       engine=ctx.engine), other_user_id, sim.url, ME[1], ME_API_TOKEN)
    summary = Worker(ctx, every=0, retry=ONE).cycle()  # returns: no exception escapes one connection
    results = {r["connection_id"]: r for r in summary["synced"]}
    assert results[good]["outcome"] == "ok" and results[good]["new"] > 0
    assert results[bad]["outcome"] == outcome, results[bad]
    if outcome == "failed":
        assert results[bad]["error"] and "Traceback" not in results[bad]["error"]
    else:
        with ctx.session() as s:
            row = s.scalar(select(PendingTask).where(PendingTask.connection_id == bad))
        assert "\x00" not in (row.confluence_space_key or "") + (row.confluence_space_id or "")
        assert row.task_title == ("(untitled task)" if "ADF" in kind else "Hostile task 1")


def test_an_endless_body_is_cut_off_at_the_byte_cap(ctx, user_id, hostile):
    def endless(h):
        h.chunked(iter(lambda: b'{"results": [' + b" " * 65536, None))
    conn = connect(ctx, user_id, hostile, endless)
    started = time.monotonic()
    result = sync.sync_connection(ctx, conn, retry=ONE)
    assert result.outcome == "failed" and "larger than 10 MB" in result.error
    assert time.monotonic() - started < 30


def test_a_trickling_body_is_cut_off_at_the_response_deadline(ctx, user_id, hostile):
    ctx.settings = ctx.settings.with_(http_timeout_s=1.0)  # each read succeeds; the whole answer may take 3 s
    conn = connect(ctx, user_id, hostile, lambda h: h.chunked(iter(lambda: b" ", None), delay=0.2))
    started = time.monotonic()
    result = sync.sync_connection(ctx, conn, retry=ONE)
    assert result.outcome == "failed" and "took longer than 3 s" in result.error
    assert time.monotonic() - started < 10


def test_endless_distinct_cursors_stop_at_the_page_cap(ctx, user_id, hostile):
    counter = iter(range(10**9))
    conn = connect(ctx, user_id, hostile, lambda h: h.json(200, {"results": [], "_links": {
        "next": f"/wiki/api/v2/tasks?cursor={next(counter)}"}}))
    result = sync.sync_connection(ctx, conn, retry=ONE)
    assert result.outcome == "failed" and "past 2000" in result.error
    assert len([s for s in hostile.seen if s.path.startswith("/wiki/api/v2/tasks")]) == 2000


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "-5", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"])
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(ctx, user_id, hostile, value):
    conn = connect(ctx, user_id, hostile, lambda h: h.json(429, {"message": "slow down"}, {"Retry-After": value}))
    waits = []
    result = sync.sync_connection(ctx, conn, retry=RetryPolicy(tries=3, sleep=waits.append, jitter=lambda: 1.0))
    assert result.outcome == "failed" and len(waits) == 2
    assert all(math.isfinite(w) and 0 <= w <= 60 for w in waits), waits
    assert "inf" not in result.error and "nan" not in result.error


def test_a_sync_past_its_deadline_stops_instead_of_outliving_its_lease(ctx, user_id, hostile):
    conn = connect(ctx, user_id, hostile, lambda h: h.json(429, {}, {"Retry-After": "60"}))
    ctx.settings = ctx.settings.with_(sync_deadline_s=30.0)
    waits = []
    result = sync.sync_connection(ctx, conn, retry=RetryPolicy(tries=10, sleep=waits.append, jitter=lambda: 1.0))
    assert result.outcome == "failed" and "time limit" in result.error and waits == []  # a 60 s wait would pass it


def test_echoed_credentials_are_redacted_by_value_everywhere_they_are_kept(ctx, user_id, hostile):
    def echo(h):
        raw = h.headers["Authorization"].split(" ", 1)[1]
        h.json(400, {"message": f"bad request from {base64.b64decode(raw).decode()} with {raw}"})
    conn = connect(ctx, user_id, hostile, echo)
    result = sync.sync_connection(ctx, conn, retry=ONE)
    assert result.outcome == "failed" and "[redacted]" in result.error
    with ctx.session() as s:
        kept = [result.error, s.scalar(select(SyncRun.error)), audit_text(ctx)]
    b64 = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    for text in kept:
        assert TOKEN not in text and b64 not in text


def test_a_site_url_with_credentials_in_it_is_refused(ctx, user_id, hostile):
    from trackli.errors import ValidationError

    host = hostile.url.split("://", 1)[1]
    with pytest.raises(ValidationError, match="must not contain a user name or password"):
        connections.connect_api_token(ctx, user_id, f"http://admin:pw@{host}", EMAIL, TOKEN)
    assert hostile.seen == []


POISONED_SENDS = {
    "a task update answered with a list": lambda h: h.json(200, []),
    "a Retry-After past the representable dates": lambda h: h.json(503, {}, {"Retry-After": "Fri, 31 Dec 9999 23:59:59 -0100"}),
    "a task update answered with a string": lambda h: h.json(200, "ok"),
}


@pytest.mark.parametrize("kind", list(POISONED_SENDS))
def test_one_poisoned_completion_never_stops_the_others_sends(ctx, user_id, other_user_id, hostile, sim, kind):
    from trackli import board, completion
    from trackli.models import Card, OutboxEntry
    from tests.syncing import approve_some

    bad = connect(ctx, user_id, hostile, page([task(1)]))
    hostile.routes["/wiki/api/v2/tasks/1"] = POISONED_SENDS[kind]
    good = connections.connect_api_token(ctx, other_user_id, sim.url, ME[1], ME_API_TOKEN)
    [bad_card] = approve_some(ctx, user_id, bad, 1)
    good_cards = approve_some(ctx, other_user_id, good, 3)
    with ctx.session() as s:  # the poisoned entry is claimed first, the others' after it in the same chunk
        board.move_card(s, user_id, bad_card, "done")
        remote = [board.move_card(s, other_user_id, c, "done").confluence_task_id for c in good_cards]
    result = completion.drain(ctx, retry=ONE)
    assert result.sent == 3 and result.retrying == 1, result
    assert all(sim.state.tasks[r].status == "complete" for r in remote)
    with ctx.session() as s:
        entry = s.scalar(select(OutboxEntry).where(OutboxEntry.card_id == bad_card))
        assert (entry.state, entry.attempts) == ("pending", 1)  # settled, not left `sending` for ever
        assert "Traceback" not in (entry.last_error or "") and entry.last_error
        assert s.get(Card, bad_card).sync_error.startswith("Retrying")
        assert s.scalar(select(OutboxEntry.state).where(OutboxEntry.card_id == good_cards[0])) == "done"
