"""Settings: environment variables, then `.streamlit/secrets.toml`, then defaults.

One frozen `Settings` object is the only place the rest of the code reads configuration from.
A malformed value fails at start with a `ConfigError` that names the setting.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import platformdirs

from trackli.errors import TrackliError

DEFAULT_AUTH_URL = "https://auth.atlassian.com"
DEFAULT_API_URL = "https://api.atlassian.com"
LOCAL_USER_EMAIL = "me@localhost"
LOCAL_USER_NAME = "Local user"


class ConfigError(TrackliError, ValueError):
    """A setting is malformed; the message names the setting and what is wrong."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    secret_key: str | None = field(default=None, repr=False)
    atlassian_client_id: str | None = None
    atlassian_client_secret: str | None = field(default=None, repr=False)
    atlassian_redirect_uri: str | None = None
    atlassian_auth_url: str = DEFAULT_AUTH_URL
    atlassian_api_url: str = DEFAULT_API_URL
    atlassian_names_scope: bool = False  # also ask for read:user:confluence (people's names) when connecting
    sync_min_interval_s: float = 10.0
    lease_s: float = 180.0  # a sync or a send whose process went silent this long is taken over
    audit_retention_days: int = 90
    http_timeout_s: float = 20.0
    sync_deadline_s: float = 900.0  # one sync, every request and wait included
    quota_points_per_hour: int = 65000  # Atlassian's points pool for this app (Tier 1: one pool for all tenants)
    sync_every_s: float = 300.0  # the scheduled cadence per connection (`trackli worker --every`)
    full_sync_every_s: float = 3600.0  # a scheduled full sweep at least this often; incremental polls between
    watermark_margin_s: float = 600.0  # an incremental poll asks from the last poll's Atlassian time less this
    worker_concurrency: int = 8  # connections one worker syncs at once
    worker_slots_per_user: int = 2  # of those, at most this many one person's (one slow site never fills a worker)
    max_connections_per_user: int = 20  # Atlassian connections one person may keep
    scheduled_sync_deadline_s: float = 300.0  # a scheduled sync's time limit (Sync now and the CLI keep sync_deadline_s)
    embedded_worker: str = "auto"  # the dashboard's own scheduler: auto (on) | on | off
    live_window_s: float = 120.0  # a person seen this recently has a tab open: polled at the live cadence
    live_sync_every_s: float = 45.0  # cadence for people with a tab open
    idle_sync_every_s: float = 1800.0  # cadence for people not seen for a day
    public_url: str = "http://localhost:8501"  # the dashboard's address, as people reach it (calendar feed URLs)
    demo: bool = False
    mode: str = "auto"  # teams: sign-in required ([auth] must be set up, or nothing is served); auto: teams if [auth] is

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_embedded_worker(self) -> bool:
        return self.embedded_worker != "off"

    @property
    def oauth_configured(self) -> bool:
        return bool(self.atlassian_client_id and self.atlassian_client_secret and self.atlassian_redirect_uri)

    def missing_oauth_settings(self) -> list[str]:
        names = {
            "ATLASSIAN_CLIENT_ID": self.atlassian_client_id,
            "ATLASSIAN_CLIENT_SECRET": self.atlassian_client_secret,
            "ATLASSIAN_REDIRECT_URI": self.atlassian_redirect_uri,
        }
        return [name for name, value in names.items() if not value]

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


# name -> (Settings field, parser)
def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL such as https://example.com, got {value!r}")
    return value.rstrip("/")


def _database_url(name: str, value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme in ("postgresql", "postgres"):
        # Bare postgresql:// would pick psycopg2, which is not installed: use psycopg 3.
        value, scheme = "postgresql+psycopg://" + value.split("://", 1)[1], "postgresql+psycopg"
    if scheme not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise ConfigError(
            f"{name} has an unknown database scheme {scheme or value!r}: use sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host:5432/dbname"
        )
    try:
        url = make_url(value)
        port = url.port
    except (ArgumentError, ValueError):
        raise ConfigError(f"{name} is not a database URL that can be read (is the port a number?)") from None
    if scheme.startswith("sqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigError(f"{name} must name a database file: sqlite:///path/to/file.db")
        return value
    # libpq fills anything missing from its own defaults: a typo would land in someone else's database.
    if not url.database:
        raise ConfigError(f"{name} must name the database: postgresql+psycopg://user@host:5432/dbname")
    if not url.host and "host" not in url.query:
        raise ConfigError(f"{name} must name the host (or ?host=/path/to/socket): postgresql+psycopg://user@host:5432/dbname")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{name} has port {port}: use 1 to 65535")
    return value


def _number(name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return number


def _seconds(low: float, high: float) -> Any:
    return lambda name, value: _number(name, value, low, high)


def _days(name: str, value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 36500:
        raise ConfigError(f"{name} must be a whole number of days from 1 to 36500, got {value!r}")
    return int(value)


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _choice(*choices: str) -> Any:
    def parse(name: str, value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return lowered
    return parse


def _text(name: str, value: str) -> str:
    return value


def _redirect(name: str, value: str) -> str:
    return _url(name, value) if value else value


SETTINGS: dict[str, tuple[str, Any]] = {
    "TRACKLI_DATABASE_URL": ("database_url", _database_url),
    "TRACKLI_DATA_DIR": ("data_dir", lambda n, v: Path(v).expanduser()),
    "TRACKLI_SECRET_KEY": ("secret_key", _text),
    "ATLASSIAN_CLIENT_ID": ("atlassian_client_id", _text),
    "ATLASSIAN_CLIENT_SECRET": ("atlassian_client_secret", _text),
    "ATLASSIAN_REDIRECT_URI": ("atlassian_redirect_uri", _redirect),
    "ATLASSIAN_AUTH_URL": ("atlassian_auth_url", _url),
    "ATLASSIAN_API_URL": ("atlassian_api_url", _url),
    "ATLASSIAN_NAMES_SCOPE": ("atlassian_names_scope", _bool),
    "TRACKLI_SYNC_MIN_INTERVAL_S": ("sync_min_interval_s", _seconds(0, 86400)),
    "TRACKLI_LEASE_S": ("lease_s", _seconds(1, 86400)),
    "TRACKLI_AUDIT_RETENTION_DAYS": ("audit_retention_days", _days),
    "TRACKLI_HTTP_TIMEOUT_S": ("http_timeout_s", _seconds(1, 300)),
    "TRACKLI_SYNC_DEADLINE_S": ("sync_deadline_s", _seconds(30, 86400)),
    "TRACKLI_QUOTA_POINTS_PER_HOUR": ("quota_points_per_hour", lambda n, v: int(_number(n, v, 1, 10**9))),
    "TRACKLI_SYNC_EVERY_S": ("sync_every_s", _seconds(1, 86400)),
    "TRACKLI_FULL_SYNC_EVERY_S": ("full_sync_every_s", _seconds(60, 7 * 86400)),
    "TRACKLI_WATERMARK_MARGIN_S": ("watermark_margin_s", _seconds(0, 86400)),
    "TRACKLI_WORKER_CONCURRENCY": ("worker_concurrency", lambda n, v: int(_number(n, v, 1, 64))),
    "TRACKLI_WORKER_SLOTS_PER_USER": ("worker_slots_per_user", lambda n, v: int(_number(n, v, 1, 64))),
    "TRACKLI_MAX_CONNECTIONS_PER_USER": ("max_connections_per_user", lambda n, v: int(_number(n, v, 1, 1000))),
    "TRACKLI_SCHEDULED_SYNC_DEADLINE_S": ("scheduled_sync_deadline_s", _seconds(10, 86400)),
    "TRACKLI_EMBEDDED_WORKER": ("embedded_worker", _choice("auto", "on", "off")),
    "TRACKLI_LIVE_WINDOW_S": ("live_window_s", _seconds(10, 86400)),
    "TRACKLI_LIVE_SYNC_EVERY_S": ("live_sync_every_s", _seconds(1, 86400)),
    "TRACKLI_IDLE_SYNC_EVERY_S": ("idle_sync_every_s", _seconds(1, 7 * 86400)),
    "TRACKLI_PUBLIC_URL": ("public_url", _url),
    "TRACKLI_DEMO": ("demo", _bool),
    "TRACKLI_MODE": ("mode", _choice("auto", "single", "teams")),
}


CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding app.py and .streamlit/, in a checkout


def default_secrets_file() -> Path:
    """The dashboard's `.streamlit/secrets.toml`: beside app.py (as Streamlit reads it, wherever the
    server was started from), else the working directory's (an installed package has no app.py)."""
    if (CHECKOUT / "app.py").exists():
        return CHECKOUT / ".streamlit" / "secrets.toml"
    return Path(".streamlit") / "secrets.toml"


def read_secrets_file(path: Path) -> dict[str, str]:
    """Top-level string values of a Streamlit secrets file (sections such as [auth] are skipped)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return {k: str(v) for k, v in data.items() if not isinstance(v, dict)}


def load_settings(
    env: Mapping[str, str] | None = None,
    secrets_path: Path | None = None,
) -> Settings:
    """Build settings from `env` (default: os.environ), then the secrets file, then defaults."""
    env = os.environ if env is None else env
    if secrets_path is None:
        secrets_path = Path(env["TRACKLI_SECRETS_FILE"]) if env.get("TRACKLI_SECRETS_FILE") else default_secrets_file()
    secrets = read_secrets_file(secrets_path)

    values: dict[str, Any] = {}
    for name, (attr, parse) in SETTINGS.items():
        raw = env.get(name)
        if raw is None or raw == "":
            raw = secrets.get(name)
        if raw is None or raw == "":
            continue
        values[attr] = parse(name, raw.strip())

    data_dir = values.get("data_dir") or Path(platformdirs.user_data_dir("trackli", appauthor=False))
    values["data_dir"] = data_dir
    values.setdefault("database_url", f"sqlite:///{data_dir / 'trackli.db'}")
    return Settings(**values)
