"""Test fixtures. PostgreSQL when TRACKLI_TEST_DATABASE_URL is set, SQLite otherwise.

Each test gets a clean database (tables emptied after it) and a Context pointing at it.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from trackli import db, users
from trackli.config import load_settings
from trackli.context import Context
from trackli.models import Base

PG_URL = os.environ.get("TRACKLI_TEST_DATABASE_URL")
DIALECT = "postgresql" if PG_URL else "sqlite"


# Which tiers run: "all" (default), or a comma-separated list of "core" (unit and integration), "browser",
# "reliability". CI runs core on both databases, and browser and reliability once, on PostgreSQL, each in the
# process where it fits the ten minutes.
TIERS = os.environ.get("TRACKLI_TEST_TIERS", "all")
SLOW_TIERS = {"browser": "tests/browser/", "reliability": "tests/reliability/"}
CHOSEN = {"core", *SLOW_TIERS} if TIERS == "all" else {t.strip() for t in TIERS.split(",") if t.strip()}


def pytest_report_header(config):
    return (f"trackli test database: {DIALECT} ({PG_URL or 'temporary SQLite file'}); "
            f"tiers: {', '.join(sorted(CHOSEN))}")


def pytest_collection_modifyitems(config, items):
    unknown = CHOSEN - {"core", *SLOW_TIERS}
    if unknown:
        raise pytest.UsageError(f"TRACKLI_TEST_TIERS: unknown tier(s) {sorted(unknown)}; "
                                "use all, or a list of core, browser, reliability")
    kept, left_out = [], []
    for item in items:
        path = item.path.as_posix()
        tier = next((name for name, folder in SLOW_TIERS.items() if folder in path), None)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
        (kept if (tier or "core") in CHOSEN else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if PG_URL:
        return str(make_url(PG_URL).set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'trackli-test.db'}"


@pytest.fixture(scope="session")
def migrated_engine(database_url):
    engine = db.get_engine(database_url)
    db.upgrade(engine)
    yield engine
    db.dispose_engines()


def _empty_all_tables(engine) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def env(tmp_path, database_url, monkeypatch) -> dict[str, str]:
    """Process environment for code that reads settings itself (CLI, worker, app)."""
    values = {
        "TRACKLI_DATABASE_URL": database_url,
        "TRACKLI_DATA_DIR": str(tmp_path / "data"),
        "TRACKLI_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
        # Tests that predate the dashboard's own scheduler drive syncs themselves; the tests of it turn it on.
        "TRACKLI_EMBEDDED_WORKER": "off",
    }
    for name in ("ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET", "ATLASSIAN_REDIRECT_URI",
                 "ATLASSIAN_AUTH_URL", "ATLASSIAN_API_URL", "TRACKLI_SECRET_KEY", "TRACKLI_DEMO"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def ctx(migrated_engine, env) -> Context:
    context = Context(settings=load_settings(), engine=migrated_engine)
    yield context
    _empty_all_tables(migrated_engine)


@pytest.fixture
def user_id(ctx) -> int:
    with ctx.session() as session:
        return users.ensure_local(session).id


@pytest.fixture
def other_user_id(ctx) -> int:
    with ctx.session() as session:
        return users.ensure(session, "other@example.com", "Other").id


@pytest.fixture
def scratch_database_url(tmp_path):
    """A brand-new empty database of the test dialect, dropped afterwards."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"trackli_scratch_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine = db._engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _sim_server():
    """One simulated Atlassian for the whole run; `sim` resets it before each test."""
    from trackli.simulator import Simulator

    with Simulator.running(populate=False) as simulator:
        yield simulator


@pytest.fixture
def sim(_sim_server):
    """The simulated Atlassian, fresh: 30 tasks on 12 pages in 3 spaces, default knobs."""
    from trackli.simulator import populate

    _sim_server.state.reset()
    populate(_sim_server.state, tasks=30, pages=12, spaces=3)
    return _sim_server


def point_at(ctx: Context, sim, redirect_uri: str = "http://localhost:8501/connect") -> Context:
    """Point the context's OAuth settings at a simulator."""
    ctx.settings = ctx.settings.with_(
        atlassian_auth_url=sim.url, atlassian_api_url=sim.url,
        atlassian_client_id=sim.state.client_id, atlassian_client_secret=sim.state.client_secret,
        atlassian_redirect_uri=redirect_uri,
    )
    return ctx


@pytest.fixture
def sim_ctx(ctx, sim) -> Context:
    """A context whose OAuth settings point at the simulator."""
    return point_at(ctx, sim)


def oauth_connect(ctx, user_id, sim) -> int:
    """Run the whole OAuth dance against the simulator (auto-approve) and return the connection id."""
    import httpx
    from urllib.parse import parse_qs, urlsplit

    from trackli import connections

    sim.state.knobs.auto_approve = True
    url = connections.start_oauth(ctx, user_id)
    redirect = httpx.get(url, follow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    outcome = connections.finish_oauth(ctx, user_id, query["state"][0], query["code"][0])
    assert outcome.status == "connected"
    return outcome.connection_id


@pytest.fixture
def token_connection(sim_ctx, user_id, sim) -> int:
    from trackli import connections
    from trackli.simulator import ME, ME_API_TOKEN

    return connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
