"""The sync: fetch (`fetch`), plan (pure, `trackli.plan`), apply in one transaction (`apply`), with
its run record, heartbeat and watermark (`runs`) and its words (`words`); `engine` puts them together.
Everything the rest of Trackli calls is here."""

from trackli.sync.engine import choose_kind, dry_run, sync_connection, sync_user
from trackli.sync.runs import CLOCK_TOLERANCE_S, NEAR_LIMIT, Heartbeat, SyncKind, SyncOutcome, SyncResult, last_runs
from trackli.sync.words import summary

__all__ = ["CLOCK_TOLERANCE_S", "NEAR_LIMIT", "Heartbeat", "SyncKind", "SyncOutcome", "SyncResult", "choose_kind",
           "dry_run", "last_runs", "summary", "sync_connection", "sync_user"]
