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
