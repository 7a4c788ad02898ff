"""The runtime every function works in: settings, the database engine and the token vault."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trackli import db
from trackli.config import Settings, load_settings
from trackli.crypto import Vault


@dataclass
class Context:
    settings: Settings
    engine: Engine = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, migrate: bool = False) -> "Context":
        settings = settings or load_settings()
        ctx = cls(settings=settings, engine=db.get_engine(settings.database_url))
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
