"""Triage verbs: `rules`, `snooze`, `unsnooze`, `feed`."""

from __future__ import annotations

import argparse
from typing import Any

from trackli import feed, rules, snooze
from trackli.cli.base import EXIT_OK, Output, Verbs, acting_user, record_id, table
from trackli.context import Context
from trackli.errors import UserError
from trackli.models import CARD_STATUSES


def _days(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days: use 0 to 3650")
    return int(text)


def _rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="what the rule is called (default: its conditions in words)")
    parser.add_argument("--space", metavar="KEY", help="the task's space key")
    parser.add_argument("--title-has", metavar="TEXT", help="every word of TEXT is in the task's title")
    parser.add_argument("--page-has", metavar="TEXT", help="TEXT is in the page's title")
    parser.add_argument("--created-by", metavar="ACCOUNT_ID", help="the Atlassian account that wrote the task")
    due = parser.add_mutually_exclusive_group()
    due.add_argument("--has-due", action="store_const", const=True, dest="has_due", default=argparse.SUPPRESS)
    due.add_argument("--no-due", action="store_const", const=False, dest="has_due", default=argparse.SUPPRESS)
    parser.add_argument("--due-within", type=_days, metavar="DAYS", help="due within DAYS days (overdue included)")
    parser.add_argument("--project", metavar="NAME", help="set this project (created if new)")
    parser.add_argument("--approve-to", choices=list(CARD_STATUSES), help="with --project: approve into this column")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--dismiss", action="store_true", default=None)
    action.add_argument("--snooze-days", type=_days, metavar="N")


def register(verbs: Verbs) -> None:
    rule = verbs.add("rules", "triage rules: the queue sorts itself", cmd_rules)
    sub = rule.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="your rules, in the order they are tried", parents=[verbs.common])
    _rule_options(sub.add_parser("add", help="add a rule (tried after the others)", parents=[verbs.common]))
    edit = sub.add_parser("edit", help="change a rule", parents=[verbs.common])
    edit.add_argument("rule_id", type=record_id)
    _rule_options(edit)
    for name, text in (("remove", "remove a rule"), ("enable", "switch a rule on"), ("disable", "switch a rule off"),
                       ("preview", "what `apply` would do to the tasks waiting now"),
                       ("apply", "apply a rule to the tasks waiting now"), ("up", "try a rule earlier"),
                       ("down", "try a rule later")):
        sub.add_parser(name, help=text, parents=[verbs.common]).add_argument("rule_id", type=record_id)

    for name, text, handler in (("snooze", "snooze pending tasks or a card until a day", cmd_snooze),
                                ("unsnooze", "bring snoozed tasks or a card back now", cmd_unsnooze)):
        parser = verbs.add(name, text, handler)
        parser.add_argument("pending_ids", type=record_id, nargs="*")
        parser.add_argument("--card", type=record_id, metavar="CARD_ID")
        if name == "snooze":
            parser.add_argument("--until", required=True, metavar="YYYY-MM-DD",
                                help="the day it comes back (also: tomorrow, 'in 3 days', 'next monday')")

    cal = verbs.add("feed", "your private calendar feed of due dates (ICS)", cmd_feed)
    fsub = cal.add_subparsers(dest="feed_command", metavar="ACTION", required=True)
    on = fsub.add_parser("on", help="turn the feed on (or show its URL)", parents=[verbs.common])
    on.add_argument("--pending", action=argparse.BooleanOptionalAction, default=None,
                    help="list pending tasks with due dates too")
    fsub.add_parser("rotate", help="a new URL; the old one stops working", parents=[verbs.common])
    fsub.add_parser("off", help="turn the feed off", parents=[verbs.common])


FIELDS = {"name": "name", "space": "space", "title_has": "title_has", "page_has": "page_has",
          "created_by": "created_by", "has_due": "has_due", "due_within": "due_within", "project": "project",
          "approve_to": "approve_to", "dismiss": "dismiss", "snooze_days": "snooze_days"}


def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = {key: getattr(args, attr) for attr, key in FIELDS.items()
             if hasattr(args, attr) and getattr(args, attr) is not None}
    if args.approve_to is not None and args.project is None and args.rules_command == "add":
        raise UserError("--approve-to goes with --project: say which project the cards get")
    return given


def cmd_rules(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    command = args.rules_command
    with ctx.session() as session:
        if command == "list":
            data: Any = [rules.as_dict(session, r) for r in rules.list_rules(session, user_id)]
            out.emit(data, lambda r: table(r, ["id", "enabled", "name", "conditions", "does"]))
            return EXIT_OK
        if command == "add":
            made = rules.add_rule(session, user_id, **_given(args))
            data = rules.as_dict(session, made)
            out.emit(data, f"rule {made.id} added: {data['conditions']} → {data['does']}")
            return EXIT_OK
        if command == "edit":
            changed = rules.edit_rule(session, user_id, args.rule_id, **_given(args))
            data = rules.as_dict(session, changed)
            out.emit(data, f"rule {changed.id}: {data['conditions']} → {data['does']}")
            return EXIT_OK
        if command == "remove":
            rules.remove_rule(session, user_id, args.rule_id)
            out.emit({"removed": args.rule_id}, f"rule {args.rule_id} removed")
            return EXIT_OK
        if command in ("enable", "disable"):
            changed = rules.set_enabled(session, user_id, args.rule_id, command == "enable")
            out.emit(rules.as_dict(session, changed), f"rule {args.rule_id} {command}d")
            return EXIT_OK
        if command in ("up", "down"):
            rules.move_rule(session, user_id, args.rule_id, up=command == "up")
            data = [rules.as_dict(session, r) for r in rules.list_rules(session, user_id)]
            out.emit(data, lambda r: table(r, ["id", "enabled", "name", "conditions", "does"]))
            return EXIT_OK
        entries = rules.preview(session, user_id, args.rule_id)
        if command == "apply":  # the same tasks, the same way: what the preview lists is what was done
            rules.apply(session, user_id, args.rule_id)
    out.emit(entries, lambda r: table(r, ["pending_id", "title", "action"]) + "\n" + rules.summary(r).replace(
        "would ", "" if command == "apply" else "would ", 1))
    return EXIT_OK


def cmd_snooze(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    if bool(args.pending_ids) == bool(args.card):
        raise UserError("name pending task ids, or one card with --card")
    with ctx.session() as session:
        if args.card:
            card = snooze.snooze_card(session, user_id, args.card, args.until)
            data: dict[str, Any] = {"card_id": card.id, "until": card.snoozed_until}
        else:
            count = snooze.snooze_pending(session, user_id, args.pending_ids, args.until)
            until = snooze.parse_until(args.until, snooze.today_for(session, user_id)) if count else None
            data = {"snoozed": count, "pending_ids": args.pending_ids, "until": until}
    out.emit(data, f"snoozed until {data['until']}")
    return EXIT_OK


def cmd_unsnooze(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    if bool(args.pending_ids) == bool(args.card):
        raise UserError("name pending task ids, or one card with --card")
    with ctx.session() as session:
        if args.card:
            card = snooze.unsnooze_card(session, user_id, args.card)
            data: dict[str, Any] = {"card_id": card.id, "status": card.status}
        else:
            data = {"unsnoozed": snooze.unsnooze_pending(session, user_id, args.pending_ids)}
    out.emit(data, "back now")
    return EXIT_OK


def cmd_feed(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        if args.feed_command == "on":
            url: str | None = feed.turn_on(ctx, session, user_id, include_pending=args.pending)
        elif args.feed_command == "rotate":
            url = feed.rotate(ctx, session, user_id)
        else:
            feed.turn_off(session, user_id)
            url = None
    out.emit({"url": url}, url or "the calendar feed is off")
    return EXIT_OK
