"""The end of a flow in a real redis-server: a final agent ends the session, a call back starts
fresh (the finished call stays stored for its transcript), and a resumed caller who has not
verified never hears a sensitive value filled into a line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Persistence, ScenarioRunner, load_scenario
from frontdesk.workflows.runtime.simulate import parse_scenario
from tests.conftest import TEST_CALLER_SECRET
from tests.flows.conftest import CLINIC
from tests.flows.support import closed, eventually, open_call, said, say
from tests.security.support import ACCOUNT, persistence

ROOT = CLINIC.parents[2]
CALLER = "+15551230077"
GOODBYE = "You're booked on the basic plan, Chad. Goodbye!"


def _persistence(store: RedisSessionStore, workflow: Workflow) -> Persistence:
    return Persistence(
        store=store, settings=workflow.config.state, caller_secret=TEST_CALLER_SECRET
    )


async def test_a_finished_call_is_ended_and_the_caller_calling_back_starts_fresh(
    clinic: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    store = make_store(redis_client, key_prefix="flows-final")
    p = _persistence(store, clinic)
    call, _ = await open_call(clinic, caller=CALLER, persistence=p)
    ended = closed(call)
    for line in ("Chad", "1983-01-01", "yes", "basic"):
        await say(call, line)
    run = await say(call, "that's all")
    assert said(run) == [GOODBYE]
    await eventually(ended.is_set)
    # the line drops as a drop would (not a hang-up): the flow's end still ends the session
    report = await call.aclose("caller dropped")
    assert report.saved
    stored = await store.load(call.session_id)
    assert stored.ended
    assert stored.current_agent == "done"

    again, _ = await open_call(clinic, caller=CALLER, persistence=p)
    try:
        assert again.plan is not None and again.plan.kind == "fresh"
        assert again.session_id != call.session_id
        assert said(again.opening) == ["Welcome to the clinic. What's your first name?"]
        assert again.userdata.fields == {}
    finally:
        await again.aclose("test over")
    # the finished call is still there, with its history, for the transcript
    earlier = await store.load(call.session_id)
    texts = [
        part
        for item in earlier.items
        if item.get("type") == "message"
        for part in item.get("content", [])
        if isinstance(part, str)
    ]
    assert GOODBYE in texts
    assert [record.reason for record in earlier.calls] == ["caller dropped"]


async def test_a_call_dropped_before_the_final_agent_still_resumes(
    clinic: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    store = make_store(redis_client, key_prefix="flows-drop")
    p = _persistence(store, clinic)
    call, _ = await open_call(clinic, caller=CALLER, persistence=p)
    await say(call, "Chad")
    await call.aclose("caller dropped")
    assert not (await store.load(call.session_id)).ended
    back, _ = await open_call(clinic, caller=CALLER, persistence=p)
    try:
        assert back.resumed and back.session_id == call.session_id
    finally:
        await back.aclose("test over")


def _sensitive_with_a_default() -> Workflow:
    """The default workflow, the account number sensitive, support's resume line with a default."""
    text = (ROOT / "config.toml").read_text()
    text = text.replace('example = "AC-48213"\n', 'example = "AC-00000"\nsensitive = true\n', 1)
    line = "for account {account_number}."
    assert line in text
    return parse_workflow(
        text.replace(line, "for {account_number|your account}.", 1), source="sensitive.toml"
    )


async def test_an_unverified_resumed_caller_hears_the_default_not_the_sensitive_value(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = _sensitive_with_a_default()
    p = persistence(store, redis_client, workflow)  # phone callers: caller_id+verify
    first, _ = await open_call(workflow, caller=CALLER, persistence=p)
    await say(first, "hi, my internet is down")
    run = await say(first, f"sure, it's {ACCOUNT}")
    assert ACCOUNT in " ".join(said(run))
    await first.aclose("caller dropped")

    back, _ = await open_call(workflow, caller=CALLER, persistence=p)
    try:
        assert back.resumed and back.gate is not None and not back.gate.verified
        opening = said(back.opening)
        assert opening[0] == "Welcome back. We were checking your line for your account."
        assert not any(ACCOUNT in line for line in opening)
        assert ACCOUNT not in back.session.current_agent.instructions
    finally:
        await back.aclose("test over")


async def test_the_clinic_scenario_ends_on_the_final_agent_and_a_call_back_is_fresh(
    clinic: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    scenario = load_scenario(CLINIC.with_name("clinic_scenario.toml"))
    p = _persistence(make_store(redis_client, key_prefix="flows-scenario"), clinic)
    results = await ScenarioRunner(workflow=clinic, persistence=p).run(scenario)
    assert [r.failures for r in results] == [[]] * len(results)
    assert results[-1].resumed is False


async def test_a_turn_after_the_final_agent_fails_with_the_reason(
    clinic: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    text = CLINIC.with_name("clinic_scenario.toml").read_text()
    ending = text.index('[[turn]]\nevent = "reconnect"')
    scenario = parse_scenario(
        text[:ending] + '[[turn]]\nsay = "hello?"\n', source=CLINIC.with_name("x.toml")
    )
    p = _persistence(make_store(redis_client, key_prefix="flows-after"), clinic)
    results = await ScenarioRunner(workflow=clinic, persistence=p).run(scenario)
    assert results[-1].failures == ["the call has ended (final agent 'done')"]
    assert all(r.ok for r in results[:-1])


async def test_the_default_workflow_ends_on_its_final_agent_after_the_demo_call(
    redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    """The demo's call, then "that's all": sales' guarded route to the final goodbye agent."""
    from frontdesk.workflows.definition import load_workflow
    from frontdesk.workflows.runtime import DEMO_SCENARIO

    workflow = load_workflow(ROOT / "config.toml")
    text = DEMO_SCENARIO.read_text() + (
        '\n[[turn]]\nsay = "great, that\'s all"\nexpect_agent = "goodbye"\n'
        'expect_reply_contains = ["Thanks for calling Acme Broadband. Goodbye!"]\n'
    )
    store = make_store(redis_client, key_prefix="flows-default")
    p = _persistence(store, workflow)
    runner = ScenarioRunner(workflow=workflow, persistence=p)
    results = await runner.run(parse_scenario(text, source=DEMO_SCENARIO))
    assert [r.failures for r in results] == [[]] * len(results)
    (summary,) = await store.list_sessions()
    assert (summary.agent, summary.ended) == ("goodbye", True)
