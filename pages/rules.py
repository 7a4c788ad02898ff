"""Rules: the queue sorts itself. Each new task meets your rules in order; the first that matches acts."""

import time

import pandas as pd
import streamlit as st

from trackli import background, changes, people, projects, queue, rules
from trackli.models import CARD_STATUSES
from trackli.ui import setup, triage, widgets
from trackli.ui.widgets import STATUS_LABELS

pc = setup.page("Rules", ":material/rule:")


def show_preview(entries: list[dict]) -> None:
    """What a rule would do to the tasks waiting now: in words, then row by row."""
    words = rules.summary(entries)
    st.write(words[:1].upper() + words[1:])  # names keep their case: "…into To do, project Design"
    if entries:
        st.dataframe(pd.DataFrame(entries)[["title", "action"]], hide_index=True, width="stretch")


ctx, uid = pc.ctx, pc.user_id
widgets.flash()

st.caption("Rules run on a task when it first enters the queue, never on one you have touched. They are tried "
           "in order; the first one that matches acts. Switch one off to skip it.")

# -- your rules, in order --------------------------------------------------------------------------
with ctx.session() as session:
    mine = [rules.as_dict(session, r) for r in rules.list_rules(session, uid)]

if not mine:
    st.info("No rules yet. Add one below: for example, approve everything from a space into a project.",
            icon=":material/rule:")
for index, rule in enumerate(mine):
    with st.container(border=True):
        left, right = st.columns([4, 2], vertical_alignment="center")
        left.markdown(f"**{index + 1}. {widgets.literal(rule['name'])}**  \n"
                      f"When {widgets.literal(rule['conditions'])} → {widgets.literal(rule['does'])}")
        on = right.toggle("On", value=rule["enabled"], key=f"rule_on_{rule['id']}")
        if on != rule["enabled"]:
            widgets.act(lambda: pc.run(rules.set_enabled, rule["id"], on), later=True)
            st.rerun()
        # One row that wraps, each button as wide as its words ("Apply to the waiting queue now" in full).
        row = st.container(horizontal=True, gap="small")
        if row.button("Up", key=f"rule_up_{rule['id']}", icon=":material/arrow_upward:", disabled=index == 0):
            widgets.act(lambda: pc.run(rules.move_rule, rule["id"], True), later=True)
            st.rerun()
        if row.button("Down", key=f"rule_down_{rule['id']}", icon=":material/arrow_downward:",
                      disabled=index == len(mine) - 1):
            widgets.act(lambda: pc.run(rules.move_rule, rule["id"], False), later=True)
            st.rerun()
        if row.button("Preview", key=f"rule_preview_{rule['id']}", icon=":material/visibility:"):
            st.session_state["rule_preview"] = rule["id"]
        if row.button("Apply to the waiting queue now", key=f"rule_apply_{rule['id']}", icon=":material/play_arrow:"):
            ok, done = widgets.act(lambda: pc.run(rules.apply, rule["id"]), later=True)
            if ok and done:
                routed, before = done
                st.session_state["undo"] = (f"Rule “{rule['name']}” routed {len(routed)} task(s).", before,
                                            time.monotonic())
                st.session_state["undo_column"] = rule["approve_to"] or "todo"
                st.session_state["undo_rule"] = rule["id"]  # its Undo shows under this rule, where the click was
            st.rerun()
        if row.button("Remove", key=f"rule_remove_{rule['id']}", icon=":material/delete:"):
            widgets.act(lambda: pc.run(rules.remove_rule, rule["id"]), done="Rule removed", later=True)
            st.rerun()
        if st.session_state.get("undo_rule") == rule["id"]:
            triage.undo_banner(pc)
        if st.session_state.get("rule_preview") == rule["id"]:
            with ctx.session() as session:
                show_preview(rules.preview(session, uid, rule["id"]))

# -- a new rule, previewed before it is saved ------------------------------------------------------
st.subheader("Add a rule")
if st.session_state.pop("_rule_saved", False):  # a saved rule's form starts empty again
    for key in [k for k in st.session_state if str(k).startswith("new_")]:
        del st.session_state[key]
with ctx.session() as session:
    project_names = [p.name for p in projects.list_projects(session, uid)]
    spaces_seen = queue.space_names(session, uid, "all")  # the spaces of the person's tasks, by name
c1, c2, c3 = st.columns(3)
space_labels = {f"{name} ({key})": key for key, name in sorted(spaces_seen.items(), key=lambda kv: kv[1].casefold())}
picked = c1.selectbox("Space", list(space_labels), index=None, key="new_space", accept_new_options=True,
                      placeholder="any space — or type a space key")
space = space_labels.get(picked, picked) if picked else None
title_has = c2.text_input("Title contains the words", key="new_title_has")
page_has = c3.text_input("Page title contains", key="new_page_has")
c4, c5, c6 = st.columns(3)
has_due = c4.selectbox("Due date", ["Either", "Has one", "Has none"], key="new_has_due")
due_within = c5.number_input("Due within (days)", min_value=0, max_value=3650, value=None, key="new_due_within")
with ctx.session() as session:  # the people below by name: looked up once per change of the queue, not per click
    widgets.per_version("names_looked_up", changes.queue_version(session, uid),
                        lambda: background.look_up_names(ctx, uid))
with ctx.session() as session:
    creators = {f"{p.label} · {p.tasks} task{'s' if p.tasks != 1 else ''}": p.account_id
                for p in people.seen(session, uid)}  # the people who created the person's tasks
picked_by = c6.selectbox("Created by", list(creators), index=None, key="new_created_by", accept_new_options=True,
                         placeholder="anyone — or paste an account id")
created_by = creators.get(picked_by, picked_by) if picked_by else None
a1, a2, a3 = st.columns(3)
does = a1.selectbox("Then", ["Set a project", "Approve into a column", "Dismiss", "Snooze"], key="new_does")
fields: dict = {"space": space or None, "title_has": title_has or None, "page_has": page_has or None,
                "created_by": created_by or None, "due_within": due_within,
                "has_due": {"Either": None, "Has one": True, "Has none": False}[has_due]}
if does in ("Set a project", "Approve into a column"):
    fields["project"] = a2.selectbox("Project", project_names, index=None, key="new_project", accept_new_options=True,
                                     placeholder="a project, or type a new one")
if does == "Approve into a column":
    fields["approve_to"] = a3.selectbox("Column", list(CARD_STATUSES), index=1, format_func=STATUS_LABELS.get,
                                        key="new_column")
elif does == "Dismiss":
    fields["dismiss"] = True
elif does == "Snooze":
    fields["snooze_days"] = a2.number_input("For (days)", min_value=1, max_value=3650, value=3, key="new_snooze_days")
name = st.text_input("Name (optional)", key="new_name", placeholder="its conditions, in words")


actions = st.container(horizontal=True, gap="small")
previewing = actions.button("Preview", key="new_preview", icon=":material/visibility:")
saving = actions.button("Save rule", key="new_save", type="primary", icon=":material/save:")
if previewing:
    ok, entries = widgets.act(lambda: pc.run(rules.preview_draft, name=name or None, **fields))
    if ok and entries is not None:
        show_preview(entries)
if saving:
    ok, _ = widgets.act(lambda: pc.run(rules.add_rule, name=name or None, **fields))  # a refusal shows here
    if ok:
        widgets.flash("Rule saved: it runs on new tasks from the next sync. Apply it to the waiting queue above "
                      "if you want.")
        st.session_state["_rule_saved"] = True
        st.rerun()
