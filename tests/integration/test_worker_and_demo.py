"""The scheduled worker and `trackli demo` as real processes."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from trackli import connections
from trackli.models import AuditEntry, SyncRun
from trackli.simulator import ME, ME_API_TOKEN, free_port


def test_worker_syncs_keeps_going_when_a_connection_fails_and_stops_on_sigterm(sim_ctx, user_id, other_user_id, sim, env):
    good = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    bad = connections.connect_api_token(sim_ctx, other_user_id, sim.url, ME[1], ME_API_TOKEN)
    with sim_ctx.session() as s:  # this one's token no longer decrypts: it must not stop the other
        from trackli.models import AtlassianConnection

        s.get(AtlassianConnection, bad).access_token_enc = "not-a-fernet-token"
    proc = subprocess.Popen([sys.executable, "-m", "trackli", "worker", "--every", "1", "--json"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with sim_ctx.session() as s:
                finished = {r.connection_id for r in s.scalars(select(SyncRun).where(SyncRun.outcome != "running"))}
                if {good, bad} <= finished:
                    break
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with sim_ctx.session() as s:
        runs = {r.connection_id: r for r in s.scalars(select(SyncRun))}
        assert runs[good].outcome == "ok" and runs[good].trigger == "scheduled"
        assert runs[bad].outcome == "failed"
        conn = s.get(AtlassianConnection, bad)
        assert conn.status == "error" and "TRACKLI_SECRET_KEY" in conn.last_error
    assert "confluence.tasks_fetched" in {e.event_type for e in _audit(sim_ctx)}


def _audit(ctx):
    with ctx.session() as s:
        return list(s.scalars(select(AuditEntry)))


def test_worker_purges_old_audit_entries(sim_ctx, user_id):
    import datetime as dt

    from trackli import audit
    from trackli.worker import Worker

    with sim_ctx.session() as s:
        audit.record(s, user_id, "old.event").created_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=91)
        audit.record(s, user_id, "recent.event")
    summary = Worker(sim_ctx, every=0).cycle()
    assert summary["audit_purged"] == 1
    assert [e.event_type for e in _audit(sim_ctx)] == ["recent.event"]


def start_demo(demo_env, port, sim_port):
    proc = subprocess.Popen([sys.executable, "-m", "trackli", "demo", "--port", str(port), "--sim-port", str(sim_port),
                             "--tasks", "12"], env=demo_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the demo did not start"
        time.sleep(0.3)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_demo_starts_a_connected_dashboard_and_a_restart_reuses_its_connection_and_data(env, tmp_path):
    demo_env = {**os.environ, **env, "TRACKLI_DATA_DIR": str(tmp_path / "demo-data")}
    demo_env.pop("TRACKLI_DATABASE_URL")  # the demo uses its own embedded database

    def cli(*argv):
        out = subprocess.run([sys.executable, "-m", "trackli", "--demo", *argv, "--json"], capture_output=True,
                             text=True, env=demo_env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    sim_port, port = free_port(), free_port()
    proc = start_demo(demo_env, port, sim_port)
    try:
        assert httpx.get(f"http://127.0.0.1:{sim_port}/_admin/state").json()["tasks"] >= 12
        assert cli("sync")[0]["new"] == 12  # --demo: the CLI finds the demo's data by itself
    finally:
        stop(proc)
    with pytest.raises(httpx.HTTPError):  # stopped with SIGTERM: its dashboard went with it
        httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    proc = start_demo(demo_env, free_port(), free_port())  # again, on other ports, with the same data dir
    try:
        [conn] = cli("connections")
        assert conn["status"] == "ok"
        again = cli("sync")
        assert [(r["outcome"], r["new"]) for r in again] == [("ok", 0)] and len(cli("pending")) == 12
    finally:
        stop(proc)


def test_the_demo_starts_with_8765_taken_reads_like_real_work_and_names_a_taken_port(env, tmp_path):
    import re
    import socket

    demo_env = {**os.environ, **env, "TRACKLI_DATA_DIR": str(tmp_path / "demo-data")}
    demo_env.pop("TRACKLI_DATABASE_URL")
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 8765))  # the old fixed simulator port, taken (another program, a second demo)
        blocker.listen()
    except OSError:
        pass  # already taken by something else on this machine: the same situation
    try:
        taken = blocker.getsockname()[1] if blocker.getsockname()[1] else 8765
        refused = subprocess.run([sys.executable, "-m", "trackli", "demo", "--sim-port", str(taken)],
                                 env=demo_env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and f"port {taken} is taken" in refused.stderr and "--sim-port" in refused.stderr
        assert "Traceback" not in refused.stderr
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "trackli", "demo", "--port", str(port), "--tasks", "20"],
                                env=demo_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            found = re.search(r"simulated Atlassian on http://127\.0\.0\.1:(\d+)", line)
            assert found and int(found.group(1)) != 8765, line  # a free port of its own, printed
            titles = [t.get("title") or "" for t in httpx.get(f"{found.group(0).split(' on ')[1]}/_admin/tasks").json()]
            assert titles and not any("<" in t or "**" in t for t in titles)  # the demo reads like a team's work
        finally:
            stop(proc)
    finally:
        blocker.close()


def test_a_closed_pipe_ends_the_cli_quietly(env):
    proc = subprocess.Popen([sys.executable, "-m", "trackli", "audit", "--json"], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `| head` that has read enough
    err = proc.stderr.read()
    assert proc.wait(60) == 141 and err == "", err
