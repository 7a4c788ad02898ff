"""SQLAlchemy 2.0 typed models. The Alembic migrations in `trackli/migrations/` create exactly these."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(constraint_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The states of each thing (see ARCHITECTURE.md); the check constraints are built from these.
CardStatus = Literal["backlog", "todo", "in_progress", "done"]
CardSource = Literal["manual", "confluence"]
SyncState = Literal["none", "synced", "waiting", "failed", "conflict"]
PendingStatus = Literal["pending", "approved", "dismissed", "gone", "snoozed"]
ConnectionKind = Literal["oauth", "api_token"]
ConnectionStatus = Literal["ok", "needs_reconnect", "error"]
OutboxState = Literal["pending", "sending", "done", "failed"]
RemoteStatus = Literal["complete", "incomplete"]
SyncTrigger = Literal["manual", "scheduled", "cli"]
SyncOutcome = Literal["running", "ok", "failed", "abandoned"]
FailureKind = Literal["reconnect", "scope", "key", "not_found", "remote"]

CARD_STATUSES: tuple[CardStatus, ...] = get_args(CardStatus)
CARD_SOURCES: tuple[CardSource, ...] = get_args(CardSource)
SYNC_STATES: tuple[SyncState, ...] = get_args(SyncState)
PENDING_STATUSES: tuple[PendingStatus, ...] = get_args(PendingStatus)
CONNECTION_KINDS: tuple[ConnectionKind, ...] = get_args(ConnectionKind)
CONNECTION_STATUSES: tuple[ConnectionStatus, ...] = get_args(ConnectionStatus)
OUTBOX_STATES: tuple[OutboxState, ...] = get_args(OutboxState)
REMOTE_STATUSES: tuple[RemoteStatus, ...] = get_args(RemoteStatus)
SYNC_TRIGGERS: tuple[SyncTrigger, ...] = get_args(SyncTrigger)


def remote_status_for(card_status: str) -> RemoteStatus:
    """What Confluence should hold for a card in `card_status`: done is complete, any other column incomplete."""
    return "complete" if card_status == "done" else "incomplete"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in Python on both dialects (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one can name nothing


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sync_request_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name; snoozes return at its midnight
    # The calendar feed: its token's SHA-256 (how a request finds the person) and the token encrypted
    # (so the URL can be shown again); no token: the feed is off.
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    feed_token_enc: Mapped[str | None] = mapped_column(Text)
    feed_include_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The last sign of an open Trackli tab (at most one write per 30 s): how often the person's
    # connections are polled (`trackli.presence`).
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    inbox_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")  # the board's inbox lane


RuleAction = Literal["project", "approve", "dismiss", "snooze"]
RULE_ACTIONS: tuple[RuleAction, ...] = get_args(RuleAction)


class Rule(Base):
    """One of a person's triage rules: conditions (all must hold) and one action, in `position` order."""

    __tablename__ = "rules"
    __table_args__ = (
        CheckConstraint(_in("action", RULE_ACTIONS), name="action"),
        Index("ix_rules_owner_id_position", "owner_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    space_key: Mapped[str | None] = mapped_column(String(255))
    title_has: Mapped[str | None] = mapped_column(String(200))
    page_has: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(128))
    has_due: Mapped[bool | None] = mapped_column(Boolean)
    due_within_days: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[RuleAction] = mapped_column(String(20))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    approve_to: Mapped[str | None] = mapped_column(String(20))
    snooze_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChangeVersion(Base):
    """A person's change counters: bumped at the commit of every unit of work that changed their board
    or queue (trackli.changes), so an open tab asks "did anything change?" with one primary-key read."""

    __tablename__ = "change_versions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    board: Mapped[int] = mapped_column(BigInteger, default=0)
    queue: Mapped[int] = mapped_column(BigInteger, default=0)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="owner_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    colour: Mapped[str] = mapped_column(String(7), default="#4C6EF5")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AtlassianConnection(Base):
    __tablename__ = "atlassian_connections"
    __table_args__ = (
        CheckConstraint(_in("kind", CONNECTION_KINDS), name="kind"),
        CheckConstraint(_in("status", CONNECTION_STATUSES), name="status"),
        # One connection per person, Atlassian site and account: connecting again updates it.
        Index("uq_atlassian_connections_user_site_account", "user_id", "cloud_id", "account_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ConnectionKind] = mapped_column(String(16))
    site_url: Mapped[str] = mapped_column(String(500))
    cloud_id: Mapped[str | None] = mapped_column(String(100))
    site_name: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(128))
    account_email: Mapped[str | None] = mapped_column(String(320))
    account_name: Mapped[str | None] = mapped_column(String(200))
    # Fernet tokens (see trackli.crypto); never plaintext.
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ConnectionStatus] = mapped_column(String(20), default="ok")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The scheduler (trackli.scheduler): when it syncs this connection next, which worker holds it and
    # until when, and how many scheduled syncs in a row failed (backoff).
    next_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    sync_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_synced_by: Mapped[str | None] = mapped_column(String(100))  # the scheduler of its last scheduled sync
    # Incremental polls: the last full sweep, and the watermark (Atlassian's clock, epoch ms, less a margin).
    last_full_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    watermark_ms: Mapped[int | None] = mapped_column(BigInteger)


class PersonName(Base):
    """The name Atlassian shows for an account (who created a task), as last looked up for a connection."""

    __tablename__ = "person_names"

    connection_id: Mapped[int] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="CASCADE"),
                                               primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255))
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ContentName(Base):
    """A page's, blog post's or space's name as a full sweep last saw it (incremental polls look up
    only ids missing here)."""

    __tablename__ = "content_names"
    __table_args__ = (CheckConstraint(_in("kind", ("pages", "blogposts", "spaces")), name="kind"),)

    connection_id: Mapped[int] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="CASCADE"),
                                               primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(500), default="", server_default="")
    space_id: Mapped[str | None] = mapped_column(String(64))
    space_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(20))
    webui: Mapped[str | None] = mapped_column(String(2000))
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SchedulerState(Base):
    """The deployment's cadence stretch: 1 normally, more when Atlassian's points pool runs near its limit."""

    __tablename__ = "scheduler_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stretch: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    reason: Mapped[str | None] = mapped_column(Text)
    since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OAuthState(Base):
    """An OAuth `state` value (stored as its SHA-256): single use, bound to a user, short lived."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Encrypted token bundle and site list, kept while the person picks one of several sites.
    pending_payload_enc: Mapped[str | None] = mapped_column(Text)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="SET NULL"))
    # PKCE: the code verifier (encrypted), sent with the code exchange; its S256 hash went to /authorize.
    code_verifier_enc: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of a random value kept in the starting browser's cookie: the callback must come from it.
    browser_hash: Mapped[str | None] = mapped_column(String(64))


class Card(Base):
    """A card on the board."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_in("status", CARD_STATUSES), name="status"),
        CheckConstraint(_in("source", CARD_SOURCES), name="source"),
        CheckConstraint(_in("sync_state", SYNC_STATES), name="sync_state"),
        CheckConstraint("length(trim(title)) > 0", name="title_not_blank"),
        UniqueConstraint("connection_id", "confluence_task_id", name="connection_confluence_task"),
        Index("ix_tasks_owner_status_position_id", "owner_id", "status", "position", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CardStatus] = mapped_column(String(20), default="todo")
    position: Mapped[int] = mapped_column(Integer, default=0)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[CardSource] = mapped_column(String(20), default="manual")
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="SET NULL"))
    confluence_task_id: Mapped[str | None] = mapped_column(String(64))
    confluence_page_id: Mapped[str | None] = mapped_column(String(64))
    confluence_page_title: Mapped[str | None] = mapped_column(String(500))
    confluence_space_key: Mapped[str | None] = mapped_column(String(255))
    confluence_space_name: Mapped[str | None] = mapped_column(String(500))
    confluence_url: Mapped[str | None] = mapped_column(String(2000))
    # Completion sync: what we last know Confluence holds, and how our last push went.
    confluence_remote_status: Mapped[RemoteStatus | None] = mapped_column(String(20))
    sync_state: Mapped[SyncState] = mapped_column(String(20), default="none")
    sync_error: Mapped[str | None] = mapped_column(Text)
    # Off the board but kept; restorable.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)  # off the board until this day (person's zone)
    returned_from_snooze_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Why the Confluence task is no longer the person's (deleted, reassigned away); None while it is.
    gone_reason: Mapped[str | None] = mapped_column(String(200))


class PendingTask(Base):
    __tablename__ = "confluence_pending_tasks"
    __table_args__ = (
        CheckConstraint(_in("status", PENDING_STATUSES), name="status"),
        UniqueConstraint("connection_id", "confluence_task_id", name="connection_task"),
        Index("ix_confluence_pending_tasks_user_status_id", "user_id", "status", "id"),
        Index("ix_confluence_pending_tasks_user_updated", "user_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="CASCADE"))
    confluence_task_id: Mapped[str] = mapped_column(String(64))
    confluence_page_id: Mapped[str | None] = mapped_column(String(64))
    confluence_blogpost_id: Mapped[str | None] = mapped_column(String(64))
    confluence_page_title: Mapped[str | None] = mapped_column(String(500))
    confluence_space_id: Mapped[str | None] = mapped_column(String(64))
    confluence_space_key: Mapped[str | None] = mapped_column(String(255))
    confluence_space_name: Mapped[str | None] = mapped_column(String(500))
    confluence_url: Mapped[str | None] = mapped_column(String(2000))
    task_title: Mapped[str] = mapped_column(String(500))
    task_description: Mapped[str] = mapped_column(Text, default="")
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[PendingStatus] = mapped_column(String(20), default="pending")
    gone_reason: Mapped[str | None] = mapped_column(String(200))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    # Fields the person edited ("title", "due_date", "project"): upstream never overwrites them.
    edited_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    remote_status: Mapped[RemoteStatus | None] = mapped_column(String(20))
    remote_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The card approving this task made; the column keeps the seed's name (`trackli_task_id`).
    card_id: Mapped[int | None] = mapped_column("trackli_task_id", ForeignKey("tasks.id", ondelete="SET NULL"))
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)  # status snoozed: back on this day (person's zone)
    returned_from_snooze_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str | None] = mapped_column(String(100))  # kept when the rule is removed
    confluence_created_by: Mapped[str | None] = mapped_column(String(128))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    __tablename__ = "integration_audit_log"
    __table_args__ = (Index("ix_integration_audit_log_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40), default="atlassian")
    event_type: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    success: Mapped[bool] = mapped_column(Boolean, default=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint(_in("trigger", SYNC_TRIGGERS), name="trigger"),
        Index("ix_sync_runs_connection_started", "connection_id", "started_at"),
        # The run row is the lock: one running sync per connection, across processes.
        Index(
            "uq_sync_runs_one_running_per_connection",
            "connection_id",
            unique=True,
            sqlite_where=text("outcome = 'running'"),
            postgresql_where=text("outcome = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[SyncTrigger] = mapped_column(String(20))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[SyncOutcome] = mapped_column(String(20), default="running")
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    rate_limit: Mapped[dict | None] = mapped_column(JSONType)
    clock_skew_s: Mapped[float | None] = mapped_column(Float)  # Atlassian's Date minus ours, when too far off to trust
    new_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    gone_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    # Atlassian's points for this run (1 a call + 1 per object read); "full" sweep or "incremental" poll.
    points: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20), default="full")
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class OutboxEntry(Base):
    """A desired Confluence status for a card's task, sent by the drain step."""

    __tablename__ = "completion_outbox"
    __table_args__ = (
        CheckConstraint(_in("desired_status", REMOTE_STATUSES), name="desired_status"),
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        Index("ix_completion_outbox_state_next", "state", "next_attempt_at"),
        # At most one unsent entry per card: a newer desire updates it instead of queueing another.
        Index(
            "uq_completion_outbox_one_pending_per_card",
            "card_id",
            unique=True,
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("atlassian_connections.id", ondelete="CASCADE"))
    confluence_task_id: Mapped[str] = mapped_column(String(64))
    desired_status: Mapped[RemoteStatus] = mapped_column(String(20))
    state: Mapped[OutboxState] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why it failed: reconnect | scope | key (sent again once the connection works) | not_found | remote
    failure_kind: Mapped[FailureKind | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# Every column that holds a secret encrypted with TRACKLI_SECRET_KEY (`trackli.crypto.Vault`), in one
# list next to the models: `trackli keys rotate` re-encrypts exactly these, and a test fails when a
# model gains an `*_enc` column that is not here.
ENCRYPTED_COLUMNS: tuple[Any, ...] = (
    AtlassianConnection.access_token_enc,
    AtlassianConnection.refresh_token_enc,
    OAuthState.pending_payload_enc,
    OAuthState.code_verifier_enc,
    User.feed_token_enc,
)
