"""Simulated Atlassian verbs: `simulator` (serve it) and `demo` (it, plus a connected dashboard)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from trackli import connections, users
from trackli.cli.base import EXIT_OK, Output, Verbs
from trackli.context import Context
from trackli.errors import UserError


def register(verbs: Verbs) -> None:
    sim = verbs.add("simulator", "serve the simulated Atlassian on 127.0.0.1", cmd_simulator, migrate=False)
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--tasks", type=int, default=60)
    sim.add_argument("--pages", type=int, default=20)
    sim.add_argument("--spaces", type=int, default=4)
    sim.add_argument("--blogposts", type=int, default=3)
    sim.add_argument("--auto-approve", action="store_true")

    demo = verbs.add("demo", "start the simulated Atlassian and the dashboard, already connected", cmd_demo,
                     migrate=False)
    demo.add_argument("--port", type=int, default=8501, help="the dashboard's port (default 8501)")
    demo.add_argument("--sim-port", type=int, default=None,
                      help="the simulated Atlassian's port (default: a free one, printed at start)")
    demo.add_argument("--tasks", type=int, default=40,
                      help="how many open Confluence tasks the simulated site assigns to you (default 40)")
    demo.add_argument("--awkward-titles", action="store_true",
                      help="mix in the hostile and unusual titles the tests use (markup, scripts, RTL, control characters)")


def cmd_simulator(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli.simulator import Simulator, SimState, populate

    state = SimState()
    populate(state, tasks=args.tasks, pages=args.pages, spaces=args.spaces, blogposts=args.blogposts)
    state.knobs.auto_approve = args.auto_approve
    sim = Simulator(state, port=args.port)
    print(f"simulated Atlassian on {sim.url} (client id {state.client_id}, secret {state.client_secret})", file=sys.stderr)
    sim.serve_forever()
    return EXIT_OK


def port_free(port: int) -> bool:
    """Can a server listen on 127.0.0.1:`port` now? (As servers do, SO_REUSEADDR: the connections of a
    demo stopped a moment ago, still in TIME_WAIT, do not make its port look taken; a listener does.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_data(data_dir: Path) -> dict[str, str]:
    """Where `trackli demo` keeps its data, under the normal data directory; `trackli --demo VERB` reads it."""
    demo_dir = data_dir / "demo"
    return {"TRACKLI_DATA_DIR": str(demo_dir),
            "TRACKLI_DATABASE_URL": os.environ.get("TRACKLI_DATABASE_URL") or f"sqlite:///{demo_dir / 'trackli-demo.db'}"}


def demo_environment(sim_url: str, port: int, data_dir: Path) -> dict[str, str]:
    from trackli.simulator.state import SimState

    defaults = SimState()
    return demo_data(data_dir) | {
        "TRACKLI_DEMO": "1",
        "ATLASSIAN_AUTH_URL": sim_url,
        "ATLASSIAN_API_URL": sim_url,
        "ATLASSIAN_CLIENT_ID": defaults.client_id,
        "ATLASSIAN_CLIENT_SECRET": defaults.client_secret,
        "ATLASSIAN_REDIRECT_URI": f"http://localhost:{port}/connect",
    }


def cmd_demo(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    """Simulator + dashboard, with an API-token connection to the simulated site already made."""
    from trackli.config import load_settings
    from trackli.simulator import ME, ME_API_TOKEN, Simulator

    app = Path(__file__).resolve().parents[2] / "app.py"
    if not app.exists():
        raise UserError(f"cannot find the dashboard at {app}: run `trackli demo` from a checkout of Trackli")
    for port, flag in ((args.port, "--port"), (args.sim_port, "--sim-port")):
        if port is not None and not port_free(port):
            raise UserError(f"port {port} is taken (another program, or another demo): choose another with {flag}"
                            + ("" if flag == "--port" else ", or leave --sim-port out to use a free one"))
    with Simulator.running(port=args.sim_port or 0, tasks=args.tasks, pages=max(8, args.tasks // 3),
                           awkward=args.awkward_titles) as sim:
        env = demo_environment(sim.url, args.port, ctx.settings.data_dir)
        demo_ctx = Context.from_settings(load_settings(env={**os.environ, **env}), migrate=True)
        with demo_ctx.session() as session:
            user_id = users.ensure_local(session).id
        connections.connect_api_token(demo_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
        print(f"simulated Atlassian on {sim.url}; dashboard on http://localhost:{args.port}\n"
              f"the CLI on the demo's data: trackli --demo pending (or TRACKLI_DATA_DIR={env['TRACKLI_DATA_DIR']} "
              f"TRACKLI_DATABASE_URL={env['TRACKLI_DATABASE_URL']} trackli pending)", file=sys.stderr)
        command_line = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                        "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        dashboard = subprocess.Popen(command_line, env={**os.environ, **env}, cwd=str(app.parent))
        # Stopped (SIGTERM from a service manager, Ctrl-C): the dashboard stops with it, never left behind.
        signal.signal(signal.SIGTERM, lambda *_: dashboard.terminate())
        try:
            return dashboard.wait()
        except KeyboardInterrupt:
            return EXIT_OK
        finally:
            if dashboard.poll() is None:
                dashboard.terminate()
                try:
                    dashboard.wait(15)
                except subprocess.TimeoutExpired:
                    dashboard.kill()
