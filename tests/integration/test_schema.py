import datetime as dt

import pytest
from sqlalchemy import inspect

from trackli import db
from trackli.errors import ConstraintViolation
from trackli.models import AtlassianConnection, PendingTask, Project, Card, User

TABLES = {
    "users", "projects", "tasks", "atlassian_connections", "confluence_pending_tasks",
    "integration_audit_log", "sync_runs", "completion_outbox", "oauth_states",
}


def test_migrations_upgrade_an_empty_database_and_downgrade_again(scratch_database_url):
    engine = db.get_engine(scratch_database_url)
    db.upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert db.current_revision(engine) == db.head_revision(engine)
    db.upgrade(engine)  # second run is a no-op
    assert db.current_revision(engine) == db.head_revision(engine)
    db.downgrade(engine, "base")
    assert not (TABLES & set(inspect(engine).get_table_names()))
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())


def test_pending_tasks_have_first_version_columns(migrated_engine):
    cols = {c["name"] for c in inspect(migrated_engine).get_columns("confluence_pending_tasks")}
    assert {
        "user_id", "connection_id", "confluence_task_id", "confluence_page_id", "confluence_page_title",
        "confluence_space_key", "confluence_space_name", "task_title", "task_description", "due_date",
        "status", "trackli_task_id", "project_id", "edited_fields", "remote_status", "first_seen_at",
        "last_seen_at", "created_at", "updated_at",
    } <= cols


def _seed(session):
    user = User(email="a@example.com", display_name="A")
    session.add(user)
    session.flush()
    conn = AtlassianConnection(user_id=user.id, kind="api_token", site_url="https://x.atlassian.net")
    session.add(conn)
    session.flush()
    return user, conn


@pytest.mark.parametrize(
    "make, rule",
    [
        (lambda u, c: Card(owner_id=u.id, title="t", status="blocked"), "ck_tasks_status"),
        (lambda u, c: Card(owner_id=u.id, title="t", source="jira"), "ck_tasks_source"),
        (lambda u, c: Card(owner_id=u.id, title="   "), "ck_tasks_title_not_blank"),
        (lambda u, c: PendingTask(user_id=u.id, connection_id=c.id, confluence_task_id="1", task_title="t", status="maybe"),
         "ck_confluence_pending_tasks_status"),
        (lambda u, c: AtlassianConnection(user_id=u.id, kind="password", site_url="x"), "ck_atlassian_connections_kind"),
    ],
)
def test_constraints_reject_impossible_rows_naming_the_rule(ctx, make, rule):
    with ctx.session() as session:
        user, conn = _seed(session)
    with pytest.raises(ConstraintViolation, match=rule):
        with ctx.session() as session:
            session.add(make(user, conn))


def test_duplicate_pending_task_is_refused_naming_the_rule(ctx):
    with ctx.session() as session:
        user, conn = _seed(session)
        session.add(PendingTask(user_id=user.id, connection_id=conn.id, confluence_task_id="42", task_title="t"))
    with pytest.raises(ConstraintViolation, match="already in the queue.*uq_confluence_pending_tasks_connection_task"):
        with ctx.session() as session:
            session.add(PendingTask(user_id=user.id, connection_id=conn.id, confluence_task_id="42", task_title="t2"))


def test_duplicate_project_name_per_owner_is_refused_but_other_owners_may_reuse_it(ctx):
    with ctx.session() as session:
        user, _ = _seed(session)
        other = User(email="b@example.com")
        session.add(other)
        session.flush()
        session.add(Project(owner_id=user.id, name="Ops"))
        session.add(Project(owner_id=other.id, name="Ops"))
    with pytest.raises(ConstraintViolation, match="uq_projects_owner_name"):
        with ctx.session() as session:
            session.add(Project(owner_id=user.id, name="Ops"))


def test_datetimes_come_back_timezone_aware_utc(ctx):
    moment = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with ctx.session() as session:
        user = User(email="tz@example.com", created_at=moment)
        session.add(user)
    with ctx.session() as session:
        back = session.get(User, user.id, populate_existing=True)
        assert back.created_at == moment
        assert back.created_at.utcoffset() == dt.timedelta(0)


def test_foreign_keys_are_enforced(ctx):
    with pytest.raises(ConstraintViolation):
        with ctx.session() as session:
            session.add(Project(owner_id=999999, name="orphan"))
            session.flush()


def test_duplicate_connections_are_merged_without_losing_an_edit_a_card_or_an_unsent_completion(scratch_database_url):
    """The state connecting one site twice left behind (issue: 'Pending 76', duplicate cards), at revision
    0003, upgraded: one connection, every decision and edit kept, no card lost, the unsent completion kept."""
    from sqlalchemy import text

    engine = db.get_engine(scratch_database_url)
    db.upgrade(engine, "0003")
    now = "2026-11-01 10:00:00"
    with engine.begin() as c:
        c.execute(text("INSERT INTO users (id, email, display_name, created_at) VALUES (1, 'me@x', 'Me', :n)"), {"n": now})

        def conn(cid, kind, cloud, updated):
            c.execute(text(
                "INSERT INTO atlassian_connections (id, user_id, kind, site_url, cloud_id, account_id, scopes, status, "
                "access_token_enc, created_at, updated_at) VALUES (:i, 1, :k, 'https://acme.atlassian.net', :cl, "
                "'acc-1', '', 'ok', :tok, :n, :u)"), {"i": cid, "k": kind, "cl": cloud, "tok": f"token-{cid}", "n": now,
                                                    "u": updated})

        def row(rid, cid, task, status, edits="[]", title="t", card=None):
            c.execute(text(
                "INSERT INTO confluence_pending_tasks (id, user_id, connection_id, confluence_task_id, task_title, "
                "task_description, status, edited_fields, trackli_task_id, first_seen_at, last_seen_at, created_at, "
                "updated_at) VALUES (:i, 1, :c, :t, :title, '', :s, :e, :card, :n, :n, :n, :n)"),
                {"i": rid, "c": cid, "t": task, "title": title, "s": status, "e": edits, "card": card, "n": now})

        def card(kid, cid, task, status="todo", position=0):
            c.execute(text(
                "INSERT INTO tasks (id, owner_id, title, description, status, position, source, connection_id, "
                "confluence_task_id, sync_state, created_at, updated_at) VALUES (:i, 1, 'c', '', :s, :p, 'confluence', "
                ":c, :t, 'synced', :n, :n)"), {"i": kid, "s": status, "p": position, "c": cid, "t": task, "n": now})

        conn(1, "api_token", None, "2026-11-01 10:00:00")
        conn(2, "oauth", "cloud-1", "2026-11-02 10:00:00")  # the same site and account, connected again by OAuth
        card(10, 1, "100")
        card(20, 2, "100", status="done", position=0)  # a duplicate card, with an unsent completion
        card(21, 2, "300")
        c.execute(text("INSERT INTO completion_outbox (task_id, user_id, connection_id, confluence_task_id, "
                       "desired_status, state, attempts, next_attempt_at, created_at, updated_at) VALUES "
                       "(21, 1, 2, '300', 'complete', 'pending', 0, :n, :n, :n)"), {"n": now})
        row(1, 1, "100", "approved", card=10)
        row(2, 1, "200", "pending")
        row(3, 2, "100", "pending")  # the same task again: the approval wins
        row(4, 2, "200", "dismissed")  # dismissed in the duplicate: the decision wins
        row(5, 2, "300", "approved", card=21)
        row(6, 2, "400", "pending", edits='["title"]', title="My words")  # only in the duplicate: moves over
    db.upgrade(engine)
    with engine.connect() as c:
        [(cid, kind, cloud, token)] = c.execute(text(
            "SELECT id, kind, cloud_id, access_token_enc FROM atlassian_connections")).all()
        assert (cid, kind, cloud, token) == (1, "oauth", "cloud-1", "token-2")  # oldest id, newest credentials
        rows = {r.confluence_task_id: (r.connection_id, r.status, r.task_title) for r in c.execute(text(
            "SELECT confluence_task_id, connection_id, status, task_title FROM confluence_pending_tasks"))}
        assert rows == {"100": (1, "approved", "t"), "200": (1, "dismissed", "t"), "300": (1, "approved", "t"),
                        "400": (1, "pending", "My words")}
        cards = {r.id: (r.connection_id, r.confluence_task_id, r.source) for r in c.execute(text(
            "SELECT id, connection_id, confluence_task_id, source FROM tasks"))}
        assert cards == {10: (1, "100", "confluence"), 20: (None, None, "manual"), 21: (1, "300", "confluence")}
        [(card_id, state, conn_id)] = c.execute(text("SELECT card_id, state, connection_id FROM completion_outbox")).all()
        assert (card_id, state, conn_id) == (21, "pending", 1)
