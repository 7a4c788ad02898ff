"""Where links from upstream may lead: inside the connection's root (same scheme, host, port and path
prefix), never anywhere else. Every link Trackli follows or shows passes through here."""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

from trackli.atlassian.models import MAX_FIELD
from trackli.text import CONTROL


def site_path(value: Any) -> str | None:
    """A site-relative path from upstream (`_links.webui`), or None if it could lead anywhere else."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or len(value) > MAX_FIELD:
        return None
    if CONTROL.search(value) or any(c in value for c in "\\\t\n\r") or ".." in unquote(value).split("?")[0]:
        return None
    return value


def _port(parts: Any) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return -1


def inside_root(root: str, link: str) -> str | None:
    """`link` (site-relative, or absolute) as an absolute URL under `root` (same scheme, host, port and
    path prefix), or None when it would leave the connection's site."""
    root = root.rstrip("/")
    if not isinstance(link, str) or len(link) > MAX_FIELD or CONTROL.search(link) or any(c in link for c in "\\\t\n\r"):
        return None
    url = root + link if link.startswith("/") and not link.startswith("//") else link
    base, target = urlsplit(root), urlsplit(url)
    if (target.scheme, (target.hostname or "").lower(), _port(target)) != (base.scheme, (base.hostname or "").lower(), _port(base)):
        return None
    if target.username or target.password or "%2e" in target.path.lower():
        return None
    path, prefix = posixpath.normpath(unquote(target.path) or "/"), base.path.rstrip("/")
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        return None
    return url
