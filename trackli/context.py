"""The runtime every function works in: settings, the database engine and the token vault."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Iterator

import httpx
from sqlalchemy.engine import make_url

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trackli import changes, db
from trackli.config import ConfigError, Settings, load_settings
from trackli.crypto import Vault

SESSION_HOOKS = (changes,)  # imported for its session hooks: they keep the per-person change versions


@dataclass
class Context:
    settings: Settings
    engine: Engine = field(repr=False)
    # The HTTP client (connection pool, TLS context) every request of this process's jobs shares: a worker
    # sets it once, and every sync and send below it uses it without passing it along. None: each job
    # opens its own.
    http: httpx.Client | None = field(default=None, repr=False, compare=False)

    def with_http(self, http: httpx.Client) -> "Context":
        """This context, its jobs sending through `http`."""
        return replace(self, http=http)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, migrate: bool = False) -> "Context":
        """A context whose settings were checked against the machine: the data directory can be
        made, a SQLite file's folder exists (or is made inside the data directory), the key reads."""
        settings = settings or load_settings()
        _prepare_storage(settings)
        ctx = cls(settings=settings, engine=db.get_engine(settings.database_url))
        ctx.vault  # a malformed TRACKLI_SECRET_KEY is reported now, not at the first sync
        if migrate:
            db.upgrade(ctx.engine)
        return ctx

    @cached_property
    def vault(self) -> Vault:
        return Vault.from_settings(self.settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on error."""
        with db.unit_of_work(self.engine) as session:
            yield session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _prepare_storage(settings: Settings) -> None:
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"TRACKLI_DATA_DIR {data_dir} cannot be created ({exc.strerror or exc}): "
                          "set it to a folder this user can write") from None
    if not settings.is_sqlite:
        return
    path = Path(make_url(settings.database_url).database or "").expanduser()
    folder = path.parent.resolve()
    if folder.is_dir():
        return
    if folder.is_relative_to(data_dir.resolve()):
        folder.mkdir(parents=True, exist_ok=True)
        return
    raise ConfigError(f"TRACKLI_DATABASE_URL names a SQLite file in {folder}, which does not exist: "
                      "create the folder, or fix the path (Trackli makes folders only inside TRACKLI_DATA_DIR)")
