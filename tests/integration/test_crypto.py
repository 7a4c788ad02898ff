"""Tokens at rest (trackli.crypto): the key file, bad keys explained, rotation, a wrong key marks the connection."""

import json

import pytest

from trackli import connections, diagnostics, sync
from trackli.cli import main
from trackli.config import ConfigError, load_settings
from trackli.context import Context
from trackli.crypto import Vault, generate_key, key_file
from trackli.models import AtlassianConnection
from trackli.simulator import ME, ME_API_TOKEN


def test_secret_key_file_is_created_once_owner_only(tmp_path):
    s = load_settings(env={"TRACKLI_DATA_DIR": str(tmp_path)}, secrets_path=tmp_path / "x")
    first = Vault.from_settings(s)
    token = first.encrypt("secret-value")
    assert (key_file(s).stat().st_mode & 0o777) == 0o600
    assert Vault.from_settings(s).decrypt(token) == "secret-value"  # same key read back
    assert "secret-value" not in token


def test_bad_secret_key_is_explained(tmp_path):
    s = load_settings(env={"TRACKLI_SECRET_KEY": "short", "TRACKLI_DATA_DIR": str(tmp_path)}, secrets_path=tmp_path / "x")
    with pytest.raises(ConfigError, match="TRACKLI_SECRET_KEY entry 1 is not a Fernet key"):
        Vault.from_settings(s)


def test_keys_rotate_keeps_connections_working(sim_ctx, user_id, sim, env, monkeypatch, capsys):
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("TRACKLI_SECRET_KEY", old)
    ctx_old = Context(settings=load_settings(), engine=sim_ctx.engine)
    conn = connections.connect_api_token(ctx_old, user_id, sim.url, ME[1], ME_API_TOKEN)
    monkeypatch.setenv("TRACKLI_SECRET_KEY", f"{new},{old}")
    assert main(["keys", "rotate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["connections"] == 1
    monkeypatch.setenv("TRACKLI_SECRET_KEY", new)  # the old key is gone
    ctx_new = Context(settings=load_settings(), engine=sim_ctx.engine)
    assert sync.sync_connection(ctx_new, conn).outcome == "ok"


def test_a_wrong_key_marks_the_connection_instead_of_crashing(sim_ctx, user_id, sim, monkeypatch):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    monkeypatch.setenv("TRACKLI_SECRET_KEY", generate_key())
    wrong = Context(settings=load_settings(), engine=sim_ctx.engine)
    result = sync.sync_connection(wrong, conn)
    assert result.outcome == "failed" and "TRACKLI_SECRET_KEY" in result.error
    with wrong.session() as s:
        stored = s.get(AtlassianConnection, conn)
        assert stored.status == "error" and "cannot be decrypted" in stored.last_error
    d = diagnostics.diagnose(wrong, user_id, conn)
    assert "TRACKLI_SECRET_KEY" in d.headline


def test_every_encrypted_column_is_in_the_registry():
    from trackli.models import ENCRYPTED_COLUMNS, Base

    found = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns if c.name.endswith("_enc")}
    listed = {f"{c.class_.__tablename__}.{c.key}" for c in ENCRYPTED_COLUMNS}
    assert found and found == listed


def test_after_rotating_and_dropping_the_old_key_every_secret_still_opens(sim_ctx, user_id, sim, env, monkeypatch,
                                                                         capsys):
    """Connections, a consent in flight (its PKCE verifier) and the calendar feed's URL: all re-encrypted."""
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from trackli import feed
    from tests.conftest import point_at

    old, new = generate_key(), generate_key()
    monkeypatch.setenv("TRACKLI_SECRET_KEY", old)
    ctx_old = point_at(Context(settings=load_settings(), engine=sim_ctx.engine), sim)
    conn = connections.connect_api_token(ctx_old, user_id, sim.url, ME[1], ME_API_TOKEN)
    with ctx_old.session() as s:
        feed_url = feed.turn_on(ctx_old, s, user_id)
    sim.state.knobs.auto_approve = True
    consent = connections.start_oauth(ctx_old, user_id)  # in flight while the keys rotate

    monkeypatch.setenv("TRACKLI_SECRET_KEY", f"{new},{old}")
    assert main(["keys", "rotate", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["connections"] == 1 and counts["users"] == 1 and counts["oauth_states"] == 1
    monkeypatch.setenv("TRACKLI_SECRET_KEY", new)  # the old key is gone
    ctx_new = point_at(Context(settings=load_settings(), engine=sim_ctx.engine), sim)
    assert sync.sync_connection(ctx_new, conn).outcome == "ok"
    with ctx_new.session() as s:
        assert feed.current_url(ctx_new, s, user_id) == feed_url  # the Calendar page shows it again
    assert main(["feed", "on", "--json"]) == 0 and feed_url in capsys.readouterr().out  # `trackli feed` shows it
    assert feed.answer(ctx_new, feed_url.rsplit("/", 1)[1].removesuffix(".ics"), None).status == 200
    redirect = httpx.get(consent, follow_redirects=False)
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    outcome = connections.finish_oauth(ctx_new, user_id, query["state"][0], query["code"][0])
    assert outcome.status == "connected"
