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
