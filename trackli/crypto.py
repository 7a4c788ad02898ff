"""Tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) from the `cryptography` package.

`TRACKLI_SECRET_KEY` holds one Fernet key, or several separated by commas while a key is being
rotated (the first encrypts, all decrypt). Without it, a key is generated once and kept in
`<data dir>/secret.key`, readable only by its owner.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from trackli.config import ConfigError, Settings
from trackli.errors import TrackliError


class SecretKeyError(TrackliError):
    """A stored secret cannot be decrypted with the configured key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "secret.key"


def _read_or_create_key_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def configured_keys(settings: Settings) -> list[str]:
    raw = settings.secret_key or _read_or_create_key_file(key_file(settings))
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ConfigError("TRACKLI_SECRET_KEY is empty: generate one with `trackli keys generate`")
    return keys


class Vault:
    def __init__(self, keys: list[str]):
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                raise ConfigError(
                    f"TRACKLI_SECRET_KEY entry {index + 1} is not a Fernet key (32 url-safe base64 bytes); "
                    "generate one with `trackli keys generate`"
                ) from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Vault":
        return cls(configured_keys(settings))

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None, what: str = "a stored token") -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"{what} cannot be decrypted with the configured TRACKLI_SECRET_KEY: set the key that was "
                "in use when it was saved (old keys may follow the new one, comma-separated), or reconnect"
            ) from None

    def rotate(self, token: str | None) -> str | None:
        """Re-encrypt `token` with the first (current) key."""
        if token is None:
            return None
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError("a stored token cannot be decrypted with any configured key") from None


def rotate_all(ctx) -> dict[str, int]:
    """Re-encrypt every stored secret (every column of `models.ENCRYPTED_COLUMNS`) with the current
    (first) key, in one transaction: after it, the old keys can be dropped. Counts rows per table."""
    from sqlalchemy import or_, select

    from trackli import audit
    from trackli.models import ENCRYPTED_COLUMNS, AtlassianConnection

    vault = ctx.vault
    by_model: dict[Any, list[str]] = {}
    for column in ENCRYPTED_COLUMNS:
        by_model.setdefault(column.class_, []).append(column.key)
    counts: dict[str, int] = {}
    with ctx.session() as session:
        for model, names in by_model.items():
            table = model.__tablename__
            counts[table] = 0
            rows = session.scalars(select(model).where(or_(*[getattr(model, n).isnot(None) for n in names])))
            for row in rows:
                for name in names:
                    setattr(row, name, vault.rotate(getattr(row, name)))
                counts[table] += 1
                if isinstance(row, AtlassianConnection):
                    if row.status == "error" and row.last_error and "TRACKLI_SECRET_KEY" in row.last_error:
                        row.status, row.last_error = "ok", None
                    audit.record(session, row.user_id, "keys.rotated", {"connection_id": row.id}, provider="trackli")
    # The names the CLI has always printed, kept for scripts that read them.
    counts["connections"] = counts.get("atlassian_connections", 0)
    return counts
