"""The triage verbs exactly as issue 17 states them: `rules`, `snooze`, `unsnooze`, `pending --state
snoozed`, `feed` (JSON like the other verbs)."""

import datetime as dt
import json
from collections import Counter

from tests.integration.test_cli import run
from tests.integration.test_cli_integration import j
from trackli.simulator import ME, ME_API_TOKEN


def test_rules_add_list_preview_apply_enable_disable_remove(ctx, sim, capsys):
    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    j(capsys, "sync")
    waiting = j(capsys, "pending")
    key, count = Counter(r["space_key"] for r in waiting if r["space_key"]).most_common(1)[0]

    made = j(capsys, "rules", "add", "--name", "Eng work", "--space", key, "--project", "Platform",
             "--approve-to", "in_progress")
    assert made["id"] and (made["name"], made["space"], made["project"], made["approve_to"]) == (
        "Eng work", key, "Platform", "in_progress")
    assert "Platform" in [p["name"] for p in j(capsys, "projects", "list")]  # created by --project
    second = j(capsys, "rules", "add", "--no-due", "--dismiss")
    third = j(capsys, "rules", "add", "--title-has", "budget", "--has-due", "--due-within", "30", "--snooze-days", "3")
    assert [r["id"] for r in j(capsys, "rules", "list")] == [made["id"], second["id"], third["id"]]

    preview = j(capsys, "rules", "preview", str(made["id"]))
    assert len(preview) == count and all(set(p) == {"pending_id", "confluence_task_id", "title", "action"} for p in preview)
    applied = j(capsys, "rules", "apply", str(made["id"]))
    assert applied == preview  # exactly what the preview said
    cards = j(capsys, "tasks", "--status", "in_progress")
    assert len(cards) == count and {c["project"] for c in cards} == {"Platform"}
    assert j(capsys, "rules", "preview", str(made["id"])) == []

    off = j(capsys, "rules", "disable", str(second["id"]))
    assert off["enabled"] is False
    assert j(capsys, "rules", "enable", str(second["id"]))["enabled"] is True
    assert j(capsys, "rules", "remove", str(third["id"])) == {"removed": third["id"]}
    assert [r["id"] for r in j(capsys, "rules", "list")] == [made["id"], second["id"]]
    edited = j(capsys, "rules", "edit", str(second["id"]), "--snooze-days", "2")
    assert (edited["action"], edited["snooze_days"]) == ("snooze", 2)

    for argv, message in ((("rules", "add", "--space", "X"), "say what the rule does"),
                          (("rules", "add", "--approve-to", "todo"), "--approve-to goes with --project"),
                          (("rules", "add", "--dismiss", "--snooze-days", "2"), "not allowed with"),
                          (("rules", "preview", "999999"), "not found")):
        code, _, err = run(capsys, *argv, "--json")
        assert code == 1 and message in json.loads(err)["error"], err


def test_snooze_unsnooze_and_the_snoozed_state(ctx, sim, capsys):
    j(capsys, "connect", "token", "--site", sim.url, "--email", ME[1], "--token", ME_API_TOKEN)
    j(capsys, "sync")
    rows = j(capsys, "pending")
    until = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    assert j(capsys, "snooze", str(rows[0]["id"]), str(rows[1]["id"]), "--until", until)["snoozed"] == 2
    snoozed = j(capsys, "pending", "--state", "snoozed")
    assert {r["id"] for r in snoozed} == {rows[0]["id"], rows[1]["id"]}
    assert {r["snoozed_until"] for r in snoozed} == {until} and {r["state"] for r in snoozed} == {"snoozed"}
    assert len(j(capsys, "pending")) == len(rows) - 2
    assert j(capsys, "unsnooze", str(rows[0]["id"]))["unsnoozed"] == 1
    assert len(j(capsys, "pending", "--state", "snoozed")) == 1

    [card] = j(capsys, "approve", str(rows[2]["id"]))
    snoozed_card = j(capsys, "snooze", "--card", str(card["id"]), "--until", until)
    assert snoozed_card == {"card_id": card["id"], "until": until}
    assert card["id"] not in [c["id"] for c in j(capsys, "tasks")]
    j(capsys, "unsnooze", "--card", str(card["id"]))
    assert card["id"] in [c["id"] for c in j(capsys, "tasks")]
    j(capsys, "snooze", str(rows[3]["id"]), "--until", dt.date.today().isoformat(), code=1)  # not after today


def test_feed_on_rotate_off(ctx, capsys):
    on = j(capsys, "feed", "on")
    assert on["url"].startswith("http://localhost:8501/feeds/") and on["url"].endswith(".ics")
    assert j(capsys, "feed", "on") == on
    rotated = j(capsys, "feed", "rotate")
    assert rotated["url"] != on["url"] and rotated["url"].startswith("http://localhost:8501/feeds/")
    assert j(capsys, "feed", "off") == {"url": None}


def test_a_rule_whose_text_has_no_word_is_refused(ctx, capsys):
    code, out, err = run(capsys, "rules", "add", "--title-has", "%", "--dismiss")
    assert code == 1 and "has no word in it" in err and "Traceback" not in err
    assert json.loads(run(capsys, "--json", "rules", "list")[1]) == []
