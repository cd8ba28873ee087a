"""Real LiveKit ``AgentSession``s in text mode, driven by the offline brain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.agents.voice.run_result import RunResult

from frontdesk.agents.flow_agent import AgentFactory
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import Workflow, load_workflow, parse_workflow

ROOT = Path(__file__).resolve().parents[2]

OpenSession = Callable[
    ..., AbstractAsyncContextManager[tuple[AgentSession[CallerData], RunResult[Any]]]
]


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


def with_changes(base: Path, old: str, new: str) -> Workflow:
    """The default config with one textual change (tests that need a variant)."""
    text = base.read_text()
    assert old in text, f"{old!r} is not in {base}"
    return parse_workflow(text.replace(old, new, 1), source="variant.toml")


@pytest.fixture
def open_session() -> OpenSession:
    @asynccontextmanager
    async def _open(
        workflow: Workflow, *, start: str | None = None, data: CallerData | None = None
    ) -> AsyncIterator[tuple[AgentSession[CallerData], RunResult[Any]]]:
        userdata = data or CallerData(session_id="test-session")
        factory = AgentFactory(workflow=workflow)
        async with AgentSession[CallerData](
            userdata=userdata,
            llm=OfflineBrain(workflow=workflow),
            vad=None,
            turn_handling={"turn_detection": None},
        ) as session:
            opening = await session.start(
                factory.build(start or workflow.start, caller_data=userdata), capture_run=True
            )
            yield session, opening

    return _open
