"""Peak memory of a sync, in a process of its own (so nothing else it did counts): prints JSON.

    python -m bench.sync_memory DATABASE_URL SIM_URL [--floor]

With --floor it only imports and connects, for the baseline: what any sync process holds before it
fetches a single task.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    url, sim_url = argv[0], argv[1]
    from trackli import memory

    memory.limit_malloc_arenas()  # as `trackli worker` and the dashboard do
    from trackli import connections, sync, users  # noqa: F401  (the imports belong to the floor)
    from trackli.config import load_settings
    from trackli.context import Context
    from trackli.simulator import ME, ME_API_TOKEN

    settings = load_settings(env={"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": tempfile.mkdtemp()},
                             secrets_path=Path("/nonexistent"))
    ctx = Context.from_settings(settings, migrate=True)
    with ctx.session() as session:
        uid = users.ensure_local(session).id
    conn = connections.connect_api_token(ctx, uid, sim_url, ME[1], ME_API_TOKEN)
    out: dict = {}
    if "--floor" not in argv:
        started = time.perf_counter()
        result = sync.sync_connection(ctx, conn)
        out = {"outcome": result.outcome, "new": result.new, "unchanged": result.unchanged,
               "requests": result.requests, "pages": result.pages_fetched, "error": result.error,
               "seconds": time.perf_counter() - started}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
