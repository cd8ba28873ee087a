"""Helpers of the security tests: a workflow with sensitive data, a model that records requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from livekit.agents import llm
from livekit.agents.llm import ChatContext

from frontdesk.agents.offline_brain import OfflineBrain, OfflineBrainStream
from frontdesk.agents.pipeline import Pipeline
from frontdesk.state.attempts import RedisAttemptCounter
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Persistence

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "AC-48213"
SECRET = b"security-test-secret-0123456789abcdef"


def sensitive_workflow(extra_state: str = "", account_extra: str = "") -> Workflow:
    """The default workflow (its account number is sensitive), with extra account keys."""
    text = (ROOT / "config.toml").read_text()
    assert "sensitive = true\n" in text, "the default workflow marks the account number sensitive"
    text = text.replace("sensitive = true\n", f"sensitive = true\n{account_extra}", 1)
    if extra_state:
        text = text.replace("[worker]\n", f"[state.resume]\n{extra_state}\n\n[worker]\n", 1)
    return parse_workflow(text, source="sensitive.toml")


class SpyBrain(OfflineBrain):
    """The offline brain, keeping every request it was sent (instructions, history, tools)."""

    def __init__(self, *, workflow: Workflow) -> None:
        super().__init__(workflow=workflow)
        self.requests: list[str] = []

    def chat(
        self, *, chat_ctx: ChatContext, tools: list[llm.Tool] | None = None, **kwargs: Any
    ) -> OfflineBrainStream:
        schemas = [getattr(tool, "id", "") for tool in tools or []]
        dumped = chat_ctx.to_dict(exclude_timestamp=True)
        self.requests.append(json.dumps({"ctx": dumped, "tools": schemas}))
        return super().chat(chat_ctx=chat_ctx, tools=tools, **kwargs)


def persistence(store: Any, client: Any, workflow: Workflow, **state: Any) -> Persistence:
    settings = workflow.config.state.model_copy(update=state)
    return Persistence(
        store=store,
        settings=settings,
        caller_secret=SECRET,
        attempts=RedisAttemptCounter(client, key_prefix=store.key_prefix),
    )


def pipeline(brain: OfflineBrain) -> Pipeline:
    return Pipeline(llm=brain)


def said(run: Any) -> str:
    events = run.events if run is not None else []
    return " ".join(
        e.item.text_content or ""
        for e in events
        if e.type == "message" and e.item.role == "assistant"
    )
