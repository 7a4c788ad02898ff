"""A real `streamlit run` server and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does this)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class AppServer:
    def __init__(self, env: dict[str, str], port: int):
        self.env, self.port = env, port
        self.extra_args: list[str] = []
        self.url = f"http://localhost:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "AppServer":
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               *self.extra_args]
        Path(self.env["TRACKLI_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.log = open(self.env["TRACKLI_DATA_DIR"] + f"/streamlit-{self.port}.log", "a")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"streamlit did not start: see {self.log.name}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def restart(self) -> "AppServer":
        self.stop()
        return self.start()


@pytest.fixture
def app_server(env, sim, tmp_path):
    from trackli.simulator import free_port

    port = free_port()
    server_env = {**env, "ATLASSIAN_AUTH_URL": sim.url, "ATLASSIAN_API_URL": sim.url,
                  "ATLASSIAN_CLIENT_ID": sim.state.client_id, "ATLASSIAN_CLIENT_SECRET": sim.state.client_secret,
                  "ATLASSIAN_REDIRECT_URI": f"http://localhost:{port}/connect", "TRACKLI_SYNC_MIN_INTERVAL_S": "0"}
    server = AppServer(server_env, port).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20000)
    yield pg
    context.close()


def settle(page, pause: float = 0.4) -> None:
    """Wait until Streamlit has finished the rerun a click started (a click during a rerun is lost)."""
    time.sleep(pause)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=30000)
    time.sleep(0.2)


def shot(page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)
