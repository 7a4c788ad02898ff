import json

import pytest

from trackli.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_verbs(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for verb in ("db", "users", "projects", "tasks", "move"):
        assert verb in out


def test_db_upgrade_twice_is_a_no_op(ctx, capsys):
    code, out, _ = run(capsys, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["changed"] is False  # ctx already migrated


def test_projects_and_tasks_round_trip_as_json(ctx, capsys):
    code, out, _ = run(capsys, "projects", "add", "Ops", "--json")
    assert code == 0 and json.loads(out)["name"] == "Ops"
    code, out, _ = run(capsys, "add", "Write docs", "--project", "Ops", "--due", "2026-12-24", "--json")
    assert code == 0
    card = json.loads(out)
    code, out, _ = run(capsys, "tasks", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row == {
        "id": card["id"], "title": "Write docs", "status": "todo", "project": "Ops", "due_date": "2026-12-24",
        "source": "manual", "confluence_task_id": None, "sync_state": "none", "sync_error": None, "url": None,
        "note": "", "gone_reason": None, "archived": False, "returned_from_snooze": False,
    }
    code, out, _ = run(capsys, "move", str(card["id"]), "done", "--json")
    assert code == 0 and json.loads(out)["status"] == "done"


def test_user_errors_exit_1_with_one_line(ctx, capsys):
    code, out, err = run(capsys, "move", "999", "done")
    assert code == 1 and out == "" and err.strip() == "trackli: card 999 not found"
    run(capsys, "add", "x")
    code, _, err = run(capsys, "move", "1", "blocked")
    assert code == 1 and "unknown status 'blocked'" in err and len(err.strip().splitlines()) == 1


def test_users_and_the_user_flag(ctx, capsys):
    code, _, _ = run(capsys, "users", "add", "Ann@Example.com", "--name", "Ann")
    assert code == 0
    code, _, err = run(capsys, "users", "add", "ann@example.com")
    assert code == 1 and "already exists" in err
    run(capsys, "projects", "add", "Mine", "--user", "ann@example.com")
    code, out, _ = run(capsys, "projects", "list", "--json")
    assert json.loads(out) == []  # the local user sees none of Ann's projects
    code, out, _ = run(capsys, "projects", "list", "--user", "ann@example.com", "--json")
    assert [p["name"] for p in json.loads(out)] == ["Mine"]
    code, _, err = run(capsys, "tasks", "--user", "nobody@example.com")
    assert code == 1 and "no user 'nobody@example.com'" in err


def test_bad_setting_exits_1_naming_it(ctx, capsys, monkeypatch):
    monkeypatch.setenv("TRACKLI_DATABASE_URL", "mysql://nope")
    code, _, err = run(capsys, "tasks")
    assert code == 1 and "TRACKLI_DATABASE_URL" in err


def test_module_entry_point_runs(env):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "trackli", "--version"], capture_output=True, text=True, env={**__import__("os").environ, **env})
    assert result.returncode == 0 and result.stdout.startswith("trackli ")


@pytest.mark.parametrize("argv, fragment", [
    (["move", "2147483648", "done"], "is not an id"),
    (["move", "99999999999999999999", "done"], "is not an id"),
    (["dismiss", "0"], "is not an id"),
    (["audit", "--limit", "-1"], "is not a count"),
    (["audit", "--limit", "0"], "is not a count"),
    (["pending", "--state", "nope"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_a_bad_command_line_is_a_user_error_in_one_line_or_in_json(ctx, capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1 and out == "" and fragment in json.loads(err)["error"]


@pytest.mark.parametrize("name, value, fragment", [
    ("TRACKLI_HTTP_TIMEOUT_S", "nan", "TRACKLI_HTTP_TIMEOUT_S must be a number from 1 to 300"),
    ("TRACKLI_LEASE_S", "inf", "TRACKLI_LEASE_S must be a number from 1 to 86400"),
    ("TRACKLI_AUDIT_RETENTION_DAYS", "99999999999", "from 1 to 36500"),
    ("TRACKLI_DATABASE_URL", "postgresql://postgres@127.0.0.1:notaport/x", "is the port a number"),
    ("TRACKLI_DATABASE_URL", "postgresql://", "must name the database"),
    ("TRACKLI_DATA_DIR", "/proc/1/nope", "TRACKLI_DATA_DIR /proc/1/nope cannot be created"),
    ("TRACKLI_SECRET_KEY", "notakey", "TRACKLI_SECRET_KEY entry 1 is not a Fernet key"),
])
def test_bad_settings_are_named_with_their_range_and_exit_1(env, capsys, monkeypatch, name, value, fragment):
    monkeypatch.setenv(name, value)
    code, out, err = run(capsys, "tasks")
    assert code == 1 and fragment in err and "Traceback" not in err


def test_a_sqlite_file_in_a_folder_that_does_not_exist_is_refused_not_created(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKLI_DATABASE_URL", f"sqlite:///{tmp_path}/nonexistent_dir/x.db")
    code, _, err = run(capsys, "tasks")
    assert code == 1 and "does not exist" in err and not (tmp_path / "nonexistent_dir").exists()


def test_a_corrupt_sqlite_file_is_one_line_exit_2(env, capsys, monkeypatch, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("TRACKLI_DATABASE_URL", f"sqlite:///{broken}")
    code, _, err = run(capsys, "tasks")
    assert code == 2 and "cannot use the database" in err and err.count("\n") == 1


def test_a_database_at_an_unknown_newer_revision_says_to_upgrade_trackli(scratch_database_url, env, capsys, monkeypatch):
    from sqlalchemy import text

    from trackli import db

    engine = db.get_engine(scratch_database_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    monkeypatch.setenv("TRACKLI_DATABASE_URL", scratch_database_url)
    code, _, err = run(capsys, "tasks")
    assert code == 1 and "revision 9999" in err and "upgrade Trackli" in err


def test_a_database_with_foreign_tables_is_adopted_only_when_asked(scratch_database_url, env, capsys, monkeypatch):
    from sqlalchemy import inspect, text

    from trackli import db

    engine = db.get_engine(scratch_database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id integer primary key)"))
    monkeypatch.setenv("TRACKLI_DATABASE_URL", scratch_database_url)
    code, _, err = run(capsys, "tasks")
    assert code == 1 and "not Trackli's (invoices)" in err and "--adopt" in err
    assert set(inspect(engine).get_table_names()) == {"invoices"}  # nothing was created
    code, _, err = run(capsys, "db", "upgrade", "--adopt")
    assert code == 0 and "users" in set(inspect(engine).get_table_names())
