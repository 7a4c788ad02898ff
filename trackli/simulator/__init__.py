"""A simulated Atlassian (OAuth server + Confluence v2 subset) served on 127.0.0.1.

    with Simulator.running(tasks=50) as sim:
        sim.url          # http://127.0.0.1:PORT — use as ATLASSIAN_AUTH_URL, ATLASSIAN_API_URL and site URL
        sim.state        # the data and the knobs, for tests to change directly
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Iterator

import uvicorn

from trackli.simulator.app import build_app
from trackli.simulator.generate import ME, ME_API_TOKEN, populate
from trackli.simulator.state import SimState

__all__ = ["Simulator", "SimState", "ME", "ME_API_TOKEN", "populate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    def __init__(self, state: SimState | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.state = state or SimState()
        self.host = host
        self.port = port or free_port()
        self.state.base_url = self.url
        config = uvicorn.Config(build_app(self.state), host=host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=30,
                                date_header=False)  # the app dates its answers by the simulator's clock
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Simulator":
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self.thread = threading.Thread(target=self.server.run, name="atlassian-simulator", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread:
            self.thread.join(timeout=10)

    @classmethod
    @contextlib.contextmanager
    def running(cls, *, seed: int = 0, port: int = 0, **populate_kwargs) -> Iterator["Simulator"]:
        state = SimState(seed=seed)
        if populate_kwargs.pop("populate", True):
            populate(state, **populate_kwargs)
        sim = cls(state, port=port).start()
        try:
            yield sim
        finally:
            sim.stop()

    def serve_forever(self) -> None:
        self.server.run()
