
import pytest

from trackli.config import ConfigError, load_settings


def test_defaults_use_embedded_sqlite_in_data_dir(tmp_path):
    s = load_settings(env={"TRACKLI_DATA_DIR": str(tmp_path)}, secrets_path=tmp_path / "none.toml")
    assert s.database_url == f"sqlite:///{tmp_path / 'trackli.db'}"
    assert s.atlassian_auth_url == "https://auth.atlassian.com"
    assert s.atlassian_api_url == "https://api.atlassian.com"
    assert s.atlassian_client_id is None and not s.oauth_configured
    assert s.missing_oauth_settings() == ["ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET", "ATLASSIAN_REDIRECT_URI"]


def test_environment_beats_secrets_file_beats_defaults(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        'ATLASSIAN_CLIENT_ID = "from-file"\nATLASSIAN_API_URL = "http://127.0.0.1:9999"\n'
        '[auth]\nredirect_uri = "ignored section"\n'
    )
    env = {"TRACKLI_DATA_DIR": str(tmp_path), "ATLASSIAN_CLIENT_ID": "from-env"}
    s = load_settings(env=env, secrets_path=secrets)
    assert s.atlassian_client_id == "from-env"
    assert s.atlassian_api_url == "http://127.0.0.1:9999"
    assert s.atlassian_auth_url == "https://auth.atlassian.com"


def test_postgres_url_gets_the_psycopg3_driver(tmp_path):
    s = load_settings(env={"TRACKLI_DATABASE_URL": "postgresql://u@h/db"}, secrets_path=tmp_path / "x")
    assert s.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("TRACKLI_DATABASE_URL", "mysql://x/y", "unknown database scheme"),
        ("ATLASSIAN_API_URL", "ftp://api", "must be an http(s) URL"),
        ("ATLASSIAN_AUTH_URL", "not a url", "must be an http(s) URL"),
        ("ATLASSIAN_REDIRECT_URI", "callback", "must be an http(s) URL"),
        ("TRACKLI_SYNC_MIN_INTERVAL_S", "soon", "must be a number from 0 to 86400"),
        ("TRACKLI_AUDIT_RETENTION_DAYS", "0", "from 1 to 36500"),
        ("TRACKLI_AUDIT_RETENTION_DAYS", "99999999999", "from 1 to 36500"),
        ("TRACKLI_DEMO", "maybe", "true or false"),
        # Values that once reached the code as nan, inf or zero and ended in a traceback.
        ("TRACKLI_HTTP_TIMEOUT_S", "nan", "from 1 to 300"),
        ("TRACKLI_HTTP_TIMEOUT_S", "1e400", "from 1 to 300"),
        ("TRACKLI_LEASE_S", "0", "from 1 to 86400"),
        ("TRACKLI_LEASE_S", "inf", "from 1 to 86400"),
        ("TRACKLI_SYNC_DEADLINE_S", "-5", "from 30 to 86400"),
        # A database URL that libpq would complete from its defaults, silently landing elsewhere.
        ("TRACKLI_DATABASE_URL", "postgresql://", "must name the database"),
        ("TRACKLI_DATABASE_URL", "postgresql://postgres@/trackli", "must name the host"),
        ("TRACKLI_DATABASE_URL", "postgresql://postgres@127.0.0.1:notaport/x", "is the port a number"),
        ("TRACKLI_DATABASE_URL", "sqlite://", "must name a database file"),
    ],
)
def test_malformed_values_fail_with_the_setting_named(tmp_path, name, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(env={name: value, "TRACKLI_DATA_DIR": str(tmp_path)}, secrets_path=tmp_path / "x")
    assert name in str(err.value) and fragment in str(err.value)


def test_broken_secrets_file_is_named(tmp_path):
    bad = tmp_path / "secrets.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="secrets.toml is not valid TOML"):
        load_settings(env={}, secrets_path=bad)


def test_malloc_arenas_are_limited_unless_the_environment_says_otherwise(monkeypatch):
    import platform

    from trackli import memory

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert memory.limit_malloc_arenas() is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
