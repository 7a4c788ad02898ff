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
