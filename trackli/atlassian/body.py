"""A task's title as plain text, from its ADF or storage-format body.

Mentions and dates are removed (they are the assignee and the due date, kept elsewhere) and
whitespace is tidied. HTML-looking text stays literal text: nothing here renders markup.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from typing import Any

from trackli.text import CONTROL

WHITESPACE = re.compile(r"\s+")
SKIP_ADF = {"mention", "date", "status_placeholder"}


def tidy(text: str) -> str:
    return WHITESPACE.sub(" ", CONTROL.sub("", text)).strip()


MAX_ADF_DEPTH = 100  # deeper nodes are not text a person wrote; they are skipped, never recursed into
MAX_ADF_NODES = 20_000


def _adf_text(root: Any, out: list[str]) -> None:
    """The text of an ADF tree, walked without recursion (an upstream body may nest without end)."""
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]  # (node, depth, closing a block)
    visited = 0
    while stack and visited < MAX_ADF_NODES:
        node, depth, closing = stack.pop()
        visited += 1
        if closing:
            out.append(" ")
            continue
        if depth > MAX_ADF_DEPTH:
            continue
        if isinstance(node, list):
            stack.extend((child, depth + 1, False) for child in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if not isinstance(kind, str):
            kind = ""
        if kind in SKIP_ADF:
            out.append(" ")
            continue
        found = node.get("attrs")
        attrs: dict[str, Any] = found if isinstance(found, dict) else {}
        if kind == "text":
            text = node.get("text", "")
            out.append(text if isinstance(text, str) else "")
        elif kind == "hardBreak":
            out.append(" ")
        elif kind == "emoji":
            out.append(_str(attrs.get("text")) or _str(attrs.get("shortName")))
        elif kind in ("inlineCard", "blockCard"):
            out.append(_str(attrs.get("url")))
        elif kind == "status":
            out.append(_str(attrs.get("text")))
        content = node.get("content")
        if content:
            if kind in ("paragraph", "heading", "listItem", "taskItem"):
                stack.append((None, depth, True))
            stack.append((content, depth + 1, False))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def title_from_adf(value: Any) -> str:
    """`value` is the ADF document, or (as the API sends it) a JSON string holding one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return tidy(value)
        except RecursionError:  # nested deeper than any document a person writes
            return ""
    out: list[str] = []
    _adf_text(value, out)
    return tidy("".join(out))


class _StorageText(HTMLParser):
    """Text of storage-format XHTML without user mentions (<ac:link><ri:user/></ac:link>) and <time/>."""

    BREAKS = {"br", "p", "div", "li", "td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.link: list[str] | None = None  # text collected inside the current <ac:link>
        self.link_is_mention = False
        self.in_time = 0

    def _emit(self, text: str) -> None:
        (self.link if self.link is not None else self.out).append(text)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "ac:link":
            self.link, self.link_is_mention = [], False
        elif tag == "ri:user" and self.link is not None:
            self.link_is_mention = True
        elif tag == "time":
            self.in_time += 1
            self._emit(" ")
        elif tag in self.BREAKS:
            self._emit(" ")

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "time":
            self.in_time -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "ac:link" and self.link is not None:
            if not self.link_is_mention:
                self.out.extend(self.link)
            self.out.append(" ")
            self.link = None
        elif tag == "time" and self.in_time:
            self.in_time -= 1

    def handle_data(self, data: str) -> None:
        if not self.in_time:
            self._emit(data)


def title_from_storage(value: str) -> str:
    parser = _StorageText()
    try:
        parser.feed(value or "")
        parser.close()
    except Exception:  # malformed markup: fall back to the tag-stripped text
        return tidy(html.unescape(re.sub(r"<[^>]*>", " ", value or "")))
    return tidy("".join(parser.out))


def title_from_body(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    adf = body.get("atlas_doc_format")
    if isinstance(adf, dict) and adf.get("value"):
        return title_from_adf(adf["value"])
    storage = body.get("storage")
    if isinstance(storage, dict) and storage.get("value"):
        return title_from_storage(storage["value"])
    return ""
