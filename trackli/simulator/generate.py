"""Realistic simulated sites: spaces, pages, blog posts and tasks of every awkward kind."""

from __future__ import annotations

import datetime as dt
import random

from trackli.simulator.state import SimState

ME = ("sim-user-1", "you@example.com", "Sam Example")
ME_API_TOKEN = "sim-api-token"
OTHERS = [("sim-user-2", "kim@example.com", "Kim Park"), ("sim-user-3", "lee@example.com", "Lee Chen")]

VERBS = ["Review", "Update", "Draft", "Check", "Approve", "Send", "Fix", "Plan", "Write", "Test"]
THINGS = ["the release notes", "Q3 budget", "onboarding guide", "API changelog", "security review",
          "incident report", "roadmap", "hiring plan", "design spec", "customer feedback"]
AWKWARD = [
    "<img src=x onerror=alert(1)> must stay text",
    "Use <b>bold</b> & **markdown** [link](http://x) literally",
    "レビューをお願いします — 日本語のタスク",
    "Проверить отчёт до пятницы",
    "مراجعة الخطة السنوية",
    "Emoji-free but ünïcødé ✓ title",
    "Tab\tand   many    spaces\nnewline",
]
SPACE_WORDS = ["Engineering", "Marketing", "Operations", "Design", "Sales", "Finance", "Support", "Legal",
               "People", "Research"]


def populate(
    state: SimState,
    *,
    tasks: int = 60,
    pages: int = 20,
    spaces: int = 4,
    blogposts: int = 3,
    mine_share: float = 0.7,
    seed: int = 7,
    today: dt.date | None = None,
    awkward: bool = True,
) -> None:
    """Fill `state` with a site; `tasks` counts the incomplete, non-blank tasks assigned to ME. With
    `awkward` (tests), every 17th title is hostile or unusual; without (the demo), they all read like a
    real team's work."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    me = state.add_account(*ME, api_token=ME_API_TOKEN)
    others = [state.add_account(*o, api_token=f"token-{o[0]}") for o in OTHERS]
    space_objs = []
    for n in range(spaces):
        word = SPACE_WORDS[n % len(SPACE_WORDS)]
        suffix = "" if n < len(SPACE_WORDS) else str(n // len(SPACE_WORDS) + 1)
        space_objs.append(state.add_space(f"{word[:3].upper()}{suffix}", f"{word}{(' ' + suffix) if suffix else ''}"))
    page_objs = []
    for n in range(pages):
        space = space_objs[n % len(space_objs)]
        status = "archived" if n % 23 == 5 else "current"
        page_objs.append(state.add_content("page", f"{rng.choice(THINGS).capitalize()} — page {n + 1}", space.id, status))
    if pages >= 4:  # one page sits in the trash: its tasks still show up, as "page unavailable"
        page_objs[3].status = "trashed"
    blog_objs = [state.add_content("blogpost", f"Weekly update {n + 1}", space_objs[n % len(space_objs)].id)
                 for n in range(blogposts)]
    containers = page_objs + blog_objs
    ages = random.Random(seed + 1)  # a site's tasks were written over the last weeks, not all this second

    def aged(task) -> None:
        when = state.now_dt() - dt.timedelta(days=ages.uniform(1, 60))
        task.created_at = task.updated_at = when
        if task.completed_at is not None:
            task.completed_at = when + dt.timedelta(hours=1)

    made = 0
    while made < tasks:
        container = containers[made % len(containers)] if made < len(containers) else rng.choice(containers)
        if awkward and made % 17 == 3:
            text = AWKWARD[(made // 17) % len(AWKWARD)]
        else:
            text = f"{rng.choice(VERBS)} {rng.choice(THINGS)} #{made + 1}"
        due = None if made % 3 == 0 else today + dt.timedelta(days=rng.randint(-5, 30))
        author = others[made % len(others)].account_id  # tasks come from more than one colleague
        aged(state.add_task(text, assigned_to=me.account_id, container=container, due=due, created_by=author))
        made += 1
    # Noise the product must filter out: other people's tasks, completed ones, blank ones.
    extra = max(3, int(tasks * (1 - mine_share) / max(mine_share, 0.01)))
    for n in range(extra):
        container = rng.choice(containers)
        kind = n % 3
        if kind == 0:
            aged(state.add_task(f"Someone else's task {n}", assigned_to=rng.choice(others).account_id, container=container))
        elif kind == 1:
            aged(state.add_task(f"Already done {n}", assigned_to=me.account_id, container=container, status="complete"))
        else:
            aged(state.add_task("", assigned_to=me.account_id, container=container))
