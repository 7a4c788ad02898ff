"""Safe settings do not depend on the working directory (issue 24, item 3): a dashboard started as
`streamlit run /path/to/app.py` from another folder listens on loopback only, shows no traceback and
keeps teams mode (sign-in); without its config file it refuses every interface."""

import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.browser.conftest import ROOT
from trackli.simulator import free_port

AUTH = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "test-cookie-secret-0123456789abcdef"
client_id = "trackli-test"
client_secret = "not-a-real-secret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


def copy_site(tmp_path, *, with_config=True, with_auth=True):
    """The dashboard's files, as an install would lay them out, plus a page that fails."""
    site = tmp_path / "site"
    site.mkdir()
    for name in ("app.py", "home.py"):
        shutil.copy(ROOT / name, site / name)
    shutil.copytree(ROOT / "pages", site / "pages")
    (site / "pages" / "boom.py").write_text("raise RuntimeError('boom-internal-detail at /srv/secret/path')\n")
    (site / ".streamlit").mkdir()
    if with_config:
        shutil.copy(ROOT / ".streamlit" / "config.toml", site / ".streamlit" / "config.toml")
    if with_auth:
        (site / ".streamlit" / "secrets.toml").write_text(AUTH)
    return site


def start(site, cwd, env, port):
    cmd = [sys.executable, "-m", "streamlit", "run", str(site / "app.py"), "--server.port", str(port)]
    log = open(cwd / f"streamlit-{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def wait_healthy(port, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


def outside_address():
    """An address of this machine that is not loopback (None if it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_started_from_another_folder_it_keeps_loopback_no_tracebacks_and_sign_in(tmp_path, env, browser):
    import os

    site, elsewhere = copy_site(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    run_env = {**os.environ, **env}
    run_env.pop("TRACKLI_SECRETS_FILE", None)
    proc, log = start(site, elsewhere, run_env, port)
    try:
        assert wait_healthy(port, proc), (elsewhere / f"streamlit-{port}.log").read_text()[-2000:]
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.strip() and all("127.0.0.1:" in line for line in listening.strip().splitlines()), listening
        other = outside_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("button", name="Sign in").wait_for(timeout=30000)  # teams mode held: the gate, not the board
        page.goto(f"http://127.0.0.1:{port}/boom")
        time.sleep(4)
        text = page.inner_text("body")
        assert "boom-internal-detail" not in text and "Traceback" not in text and "/srv/secret" not in text
        page.close()
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_without_its_config_file_it_refuses_to_listen_on_every_interface(tmp_path, env):
    import os

    site, elsewhere = copy_site(tmp_path, with_config=False, with_auth=False), tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    proc, log = start(site, elsewhere, {**os.environ, **env, "HOME": str(tmp_path)}, port)
    try:
        proc.wait(60)
        assert proc.returncode not in (None, 0)
        assert "refusing to serve on every interface" in (elsewhere / f"streamlit-{port}.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    # An explicit address is a choice: it is served.
    proc, log = start(site, elsewhere, {**os.environ, **env, "HOME": str(tmp_path),
                                        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1"}, port)
    try:
        assert wait_healthy(port, proc)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
