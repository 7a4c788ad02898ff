"""Engine, sessions and migrations for PostgreSQL and the embedded SQLite default."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, inspect, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trackli.batches import chunks
from trackli.errors import UserError, describe_integrity_error


class DatabaseInUse(UserError):
    """TRACKLI_DATABASE_URL points at a database Trackli must not migrate as it is."""

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - exercised via every SQLite test
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def get_engine(url: str) -> Engine:
    """One engine per URL per process (engines own the connection pool)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One session, one transaction: commit on success, roll back on error.

    An IntegrityError comes out as a ConstraintViolation that names the broken rule.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise describe_integrity_error(exc) from None
        except BaseException:
            session.rollback()
            raise


def lock_row(session: Session, model, row_id: int):
    """Take a write lock on one row until the transaction ends, and return the row, fresh.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite has no row locks: a no-op UPDATE as the
    transaction's first write takes the database write lock (others wait on busy_timeout),
    and the SELECT after it reads what the previous holder committed.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(model).where(model.id == row_id).values(id=model.id))
        return session.execute(
            select(model).where(model.id == row_id).execution_options(populate_existing=True)
        ).scalar_one_or_none()
    return session.execute(
        select(model).where(model.id == row_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    COPY moves thousands of rows in one round trip; SQLAlchemy's executemany on psycopg sends
    one statement per row (pipelined), ten times slower for a first sync of thousands of tasks.
    """
    if not rows:
        return
    driver = session.connection().connection.driver_connection
    if session.get_bind().dialect.name != "postgresql" or driver is None:
        session.execute(table.insert(), rows)
        return
    from psycopg.types.json import Jsonb

    from sqlalchemy import JSON

    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON) or "JSON" in type(table.c[c].type).__name__}
    names = ", ".join(f'"{c}"' for c in columns)
    with driver.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([Jsonb(row[c]) if c in json_columns else row[c] for c in columns])


def insert_for(session: Session) -> Any:
    """The dialect's own `insert` (PostgreSQL's or SQLite's), which has ON CONFLICT."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def upsert(session: Session, model: Any, rows: list[dict], keys: list[Any], update: list[str]) -> None:
    """Insert `rows`, or on a conflict on `keys` set the `update` columns from the row: one statement,
    compiled once, sent in batches of 1,000 (executemany)."""
    if not rows:
        return
    stmt = insert_for(session)(model)
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    for batch in chunks(rows, 1000):
        session.execute(stmt, batch)


# ---- migrations -------------------------------------------------------------------------------

def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, adopt: bool = False) -> None:
    """Apply migrations up to `revision` (running it again is a no-op).

    A database that has tables but no Trackli revision is someone else's: it is refused unless
    `adopt` says to add Trackli's tables to it. A revision this Trackli does not know (a newer
    Trackli migrated it) is refused with what to do.
    """
    current = current_revision(engine)
    if current is None and not adopt:
        others = sorted(set(inspect(engine).get_table_names()) - {"alembic_version"})
        if others:
            shown = ", ".join(others[:5]) + (" …" if len(others) > 5 else "")
            raise DatabaseInUse(
                f"the database at TRACKLI_DATABASE_URL already has tables that are not Trackli's ({shown}) and no "
                "Trackli revision: point TRACKLI_DATABASE_URL at an empty or a Trackli database, or run "
                "`trackli db upgrade --adopt` to add Trackli's tables to this one")
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    try:
        known = current is None or bool(scripts.get_revisions(current))
    except CommandError:
        known = False
    if not known:
        raise DatabaseInUse(f"the database is at revision {current}, which this Trackli does not know (its newest is "
                            f"{scripts.get_current_head()}): a newer Trackli migrated it; upgrade Trackli")
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()



def contains_words(text: str | None, *columns: Any) -> list[Any]:
    """Conditions for a search box: every word of `text` in one of `columns`, any case, in any order;
    % and _ are just characters."""
    conditions = []
    for word in (text or "").split()[:20]:
        literal = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(or_(*(column.ilike(f"%{literal}%", escape="\\") for column in columns)))
    return conditions
