"""Facts about text that more than one room needs, in one place: what is never kept, and how long a title may be.

At the bottom of the layers (beside errors and config): the Atlassian client, the board, the queue and
the feed all read it.
"""

from __future__ import annotations

import re

# Control characters (tab, LF and CR are whitespace, handled where text is folded), and lone UTF-16
# surrogates: JSON can carry "\ud800", and no database can store it.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_TITLE = 500  # a card's or a waiting task's title, in characters


def one_line(text: str | None, limit: int | None = None) -> str:
    """`text` with control characters dropped and every run of whitespace (CR and LF too) one space."""
    folded = " ".join(CONTROL.sub("", text or "").split())
    return folded[:limit] if limit is not None else folded
