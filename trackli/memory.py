"""Process memory settings for long-running Trackli processes (the worker, the CLI, the dashboard).

glibc gives threads that allocate their own malloc arenas; a sync's paging and look-up threads then leave
freed memory spread over several arenas that are never given back, which on a 50,000-task re-sync added
about 30 MB of resident memory that Python no longer used. Two arenas keep it close to what Python holds
(the same as setting MALLOC_ARENA_MAX=2, which, if set, wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Limit glibc's malloc arenas for this process; False where that does not apply (or is set already)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to do
        return False
