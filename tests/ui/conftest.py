"""Fixtures shared by the AppTest page tests."""

import pytest


@pytest.fixture
def sim_env(sim, monkeypatch, env):
    values = {"ATLASSIAN_AUTH_URL": sim.url, "ATLASSIAN_API_URL": sim.url, "ATLASSIAN_CLIENT_ID": sim.state.client_id,
              "ATLASSIAN_CLIENT_SECRET": sim.state.client_secret, "ATLASSIAN_REDIRECT_URI": "http://localhost:8501/connect",
              "TRACKLI_SYNC_MIN_INTERVAL_S": "0"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return sim
