import json
import os
import subprocess
import sys

import pytest

from tests import contract
from trackli.atlassian import scopes
from trackli.atlassian.body import title_from_adf, title_from_body, title_from_storage
from trackli.atlassian.models import due_date_of


def test_adf_value_is_a_json_string_with_mentions_and_dates_removed():
    doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": "Review "},
        {"type": "mention", "attrs": {"id": "abc", "text": "@Sam"}},
        {"type": "text", "text": "  the   <b>spec</b>\n"},
        {"type": "date", "attrs": {"timestamp": "1767225600000"}},
        {"type": "hardBreak"},
        {"type": "text", "text": "today"},
    ]}]}
    body = {"atlas_doc_format": {"representation": "atlas_doc_format", "value": json.dumps(doc)}}
    assert title_from_body(body) == "Review the <b>spec</b> today"


def test_storage_body_drops_user_links_and_time_but_keeps_other_links():
    value = ('Call <ac:link><ri:user ri:account-id="557058:abc" /></ac:link> about &lt;script&gt; '
             '<ac:link><ri:page ri:content-title="Plan" /><ac:plain-text-link-body>the plan</ac:plain-text-link-body></ac:link>'
             ' by <time datetime="2026-05-01" />')
    assert title_from_storage(value) == "Call about <script> the plan by"


def test_garbage_bodies_never_crash():
    assert title_from_adf("{not json") == "{not json"
    assert title_from_adf({"type": "doc", "content": "oops"}) == ""
    assert title_from_body(None) == "" and title_from_body({"storage": None}) == ""
    assert title_from_storage("<p>unclosed <b>tag") == "unclosed tag"


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Etc/GMT+12", "UTC"])
def test_due_date_is_the_utc_day_whatever_the_local_timezone(tz):
    code = ("from trackli.atlassian.models import due_date_of;"
            "print(due_date_of('2026-03-15T00:00:00.000Z'), due_date_of('2026-03-15T23:59:59.000Z'))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TZ": tz}, capture_output=True, text=True)
    assert out.stdout.split() == ["2026-03-15", "2026-03-15"], out.stderr
    assert due_date_of("garbage") is None and due_date_of(None) is None


def test_the_openapi_document_is_here():
    """The one place a missing document is reported: every contract check depends on it."""
    if not contract.available():
        pytest.skip(contract.MISSING)
    assert contract.spec()["paths"]


def test_scope_table_matches_the_openapi_document():
    if not contract.available():
        pytest.skip(contract.MISSING)
    with_paths = [op for op in scopes.OPERATIONS.values() if op.path]
    assert len(with_paths) >= 5  # the check below runs on something
    for op in with_paths:
        assert list(op.scopes) == contract.required_scopes(op.method, op.path), op.name


def test_first_versions_grant_is_diagnosed_as_two_missing_scopes():
    granted = ("read:me read:jira-work write:jira-work read:confluence-content.all write:confluence-content "
               "read:confluence-user offline_access read:page:confluence read:space:confluence")
    missing = {f.operation.name: f.missing for f in scopes.diagnose(granted) if not f.ok}
    assert missing == {"list_tasks": ("read:task:confluence",), "update_task": ("write:task:confluence",),
                       "get_users": ("read:user:confluence",)}  # names of people: optional, not a problem
    assert [op.name for op in scopes.OPERATIONS.values() if op.optional] == ["get_users"]
    assert scopes.missing_product_scopes(granted) == ["read:task:confluence", "write:task:confluence"]
