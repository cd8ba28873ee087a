"""A tool's stored result picks the route: the outage lookup (run by Frontdesk, ``auto``) stores
``outage_status``; one route opens when there is an outage, the other when there is none.

Real LiveKit sessions driven by the offline brain, against the loopback outage API. The caller
says the same words in both calls ("what now?", an example of both routes): only the route whose
``if`` holds on the tool's result is offered, so it is the one taken.
"""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk.workflows.definition import Workflow

from .conftest import OpenSession
from .support import FakeAcmeApi, tools_workflow


def support_routes(*routes: tuple[str, str, str, str, str]) -> str:
    """TOML giving support one guarded route per ``(to, when, if, instructions, greeting)``,
    each target agent, and the same offline example ("what now") for every route; it ends on
    ``[offline.agents.support]``, the line of the example config it replaces."""
    text = ""
    for to, when, condition, _, _ in routes:
        text += f'\n[[agents.support.handoffs]]\nto = "{to}"\nwhen = "{when}"\nif = "{condition}"\n'
    for to, _, _, instructions, greeting in routes:
        text += f'\n[agents.{to}]\ninstructions = "{instructions}"\ngreeting = "{greeting}"\n'
    text += "\n[offline.agents.support.examples]\n"
    text += "".join(f'{to} = ["what now"]\n' for to, *_ in routes)
    return text + "\n[offline.agents.support]"


ROUTES = support_routes(
    (
        "outage_desk",
        "There is an outage in the caller's area",
        "outage_status != 'none'",
        "Tell the caller about the outage in their area.",
        "This is the outage desk.",
    ),
    (
        "engineer",
        "There is no outage: the fault is at the caller's home",
        "outage_status == 'none'",
        "Book an engineer visit.",
        "This is engineering.",
    ),
)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TOKEN", "branching-token")


def _workflow(base_url: str) -> Workflow:
    return tools_workflow(base_url, replace=(("\n[offline.agents.support]", ROUTES),))


def _offered(session: Any) -> set[str]:
    """The agent routes offered now (``transfer_to_human`` is the example's person, not a route)."""
    return {
        tool.id
        for tool in session.current_agent.tools
        if tool.id.startswith("transfer_to_") and tool.id != "transfer_to_human"
    }


@pytest.mark.parametrize(
    ("outages", "expected"),
    [({"AC-48213": "fibre cut on Elm Street"}, "outage_desk"), ({}, "engineer")],
    ids=["an outage", "no outage"],
)
async def test_the_lookups_result_opens_exactly_one_route(
    open_session: OpenSession, outages: dict[str, str], expected: str
) -> None:
    async with FakeAcmeApi(outages=outages) as api:
        workflow = _workflow(api.base_url)
        async with open_session(workflow) as (session, _):
            assert _offered(session) == set()  # no result yet: neither condition holds
            await session.run(user_input="My internet is down. Account AC-48213.")
            assert len(api.seen) == 1  # the lookup ran (auto), and its result is stored
            assert (session.userdata.fields["outage_status"] == "none") is (expected == "engineer")
            assert _offered(session) == {f"transfer_to_{expected}"}
            await session.run(user_input="ok, what now?")
            assert session.current_agent.id == expected


AVAILABILITY_ROUTES = support_routes(
    (
        "booking",
        "An engineer is free on the day asked about",
        "available == 'true'",
        "Book the engineer visit.",
        "Let's book that visit.",
    ),
    (
        "alternatives",
        "No engineer is free on the day asked about",
        "available == 'false'",
        "Offer the caller other days.",
        "Let's find another day.",
    ),
)


@pytest.mark.parametrize(("day", "expected"), [("monday", "booking"), ("thursday", "alternatives")])
async def test_the_availability_checks_result_picks_the_booking_or_the_alternatives_route(
    open_session: OpenSession, day: str, expected: str
) -> None:
    async with FakeAcmeApi() as api:
        replace = (("\n[offline.agents.support]", AVAILABILITY_ROUTES),)
        async with open_session(tools_workflow(api.base_url, replace=replace)) as (session, _):
            await session.run(user_input="Account AC-48213.")
            assert _offered(session) == set()  # nothing checked yet
            result = await session.run(user_input=f"Is anyone free on {day}?")
            result.expect.contains_function_call(name="check_availability", arguments={"day": day})
            assert _offered(session) == {f"transfer_to_{expected}"}
            await session.run(user_input="ok, what now?")
            assert session.current_agent.id == expected


def test_the_tools_examples_scenario_passes_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``examples/tools/scenario.toml`` as README runs it: the auto lookup's API is down (its
    failure line, the call goes on), the availability check and the booking by the model."""
    from frontdesk.workflows.cli import commands as cli
    from frontdesk.workflows.cli import main

    from .support import EXAMPLE

    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)
    monkeypatch.delenv("FRONTDESK_REDIS_URL", raising=False)
    code = main(["simulate", str(EXAMPLE / "scenario.toml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "I can't check the outage map right now" in out
    assert "the outage status is: not known right now" in out
    assert "✓ 3 turns passed, 0 failed" in out
