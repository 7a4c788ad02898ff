"""People by name (trackli.people): who created the person's tasks, named by Atlassian's users-bulk look-up
where the connection may ask, by account id where it may not, and never at the cost of anything else."""

import datetime as dt

from tests.conftest import oauth_connect
from trackli import people, rules, sync
from trackli.models import utcnow
from trackli.simulator import ME


def creators(sim) -> dict[str, str]:
    """The simulated site's named creators of my open tasks: account id -> name."""
    ids = {t.created_by for t in sim.state.tasks.values() if t.assigned_to == ME[0] and t.status == "incomplete"}
    return {a: sim.state.accounts[a].name for a in ids if a in sim.state.accounts}


def test_creators_are_named_once_and_the_names_are_kept(sim_ctx, user_id, token_connection, sim):
    sim.state.add_task("From someone who has left", assigned_to=ME[0], created_by="former-colleague",
                       container=next(iter(sim.state.content.values())))
    sync.sync_connection(sim_ctx, token_connection)
    with sim_ctx.session() as s:
        before = people.seen(s, user_id)
    assert before and all(p.name is None for p in before)  # synced, not yet named: shown by account id
    assert before[0].label.endswith("(name not known)")
    assert people.look_up(sim_ctx, user_id) == len(creators(sim))
    with sim_ctx.session() as s:
        after = people.seen(s, user_id)
    named = [p for p in after if p.name]
    assert {p.account_id: p.name for p in named} == creators(sim)
    assert [p.name for p in named] == sorted(p.name for p in named)  # by name, the unnamed after them
    assert after[-1].account_id == "former-colleague" and after[-1].name is None  # Atlassian does not know them
    assert sum(p.tasks for p in after) == len(sync_tasks(sim_ctx, user_id))
    [request] = sim.state.api_requests("POST users-bulk")
    assert "former-colleague" in request["body"]["accountIds"]
    assert people.look_up(sim_ctx, user_id) == 0  # everyone was asked about: nobody is asked again
    assert len(sim.state.api_requests("POST users-bulk")) == 1
    with sim_ctx.session() as s:  # a week on, the one Atlassian did not name is asked about again
        later = utcnow() + people.ASK_AGAIN_AFTER + dt.timedelta(minutes=1)
        assert people.unnamed(s, user_id, later) == {token_connection: ["former-colleague"]}


def sync_tasks(ctx, user_id):
    from trackli import queue

    with ctx.session() as s:
        return queue.list_pending(s, user_id)


def test_a_rule_on_a_creator_is_described_by_their_name(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    people.look_up(sim_ctx, user_id)
    account_id, name = sorted(creators(sim).items())[0]
    with sim_ctx.session() as s:
        rule = rules.add_rule(s, user_id, created_by=account_id, dismiss=True)
        described = rules.as_dict(s, rule)
    assert described["conditions"] == f"created by {name}" and rule.name == f"created by {name}"


def test_an_oauth_grant_without_the_names_scope_is_never_asked(sim_ctx, user_id, sim):
    connection_id = oauth_connect(sim_ctx, user_id, sim)  # the deployment did not ask for read:user:confluence
    sync.sync_connection(sim_ctx, connection_id)
    assert people.look_up(sim_ctx, user_id) == 0
    assert sim.state.api_requests("POST users-bulk") == []
    with sim_ctx.session() as s:
        assert all(p.name is None for p in people.seen(s, user_id))


def test_an_oauth_grant_asked_for_names_gets_them_through_the_gateway(sim_ctx, user_id, sim):
    sim_ctx.settings = sim_ctx.settings.with_(atlassian_names_scope=True)
    connection_id = oauth_connect(sim_ctx, user_id, sim)
    sync.sync_connection(sim_ctx, connection_id)
    assert people.look_up(sim_ctx, user_id) == len(creators(sim))
    assert "/ex/confluence/" in sim.state.api_requests("POST users-bulk")[0]["path"]


def test_a_failing_look_up_leaves_people_by_id_and_raises_nothing(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds = 1.0, ("502",)
    assert people.look_up(sim_ctx, user_id) == 0
    sim.state.knobs.fault_rate = 0.0
    with sim_ctx.session() as s:
        assert all(p.name is None for p in people.seen(s, user_id))
    assert people.look_up(sim_ctx, user_id) == len(creators(sim))  # the next visit names them
