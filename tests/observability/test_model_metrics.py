"""Model errors and fallbacks reach Frontdesk's counters: a real LiveKit ``FallbackAdapter``
in front of a model that fails, inside a real call."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import prometheus_client
from livekit.agents import APIConnectionError, llm
from livekit.agents.llm import FallbackAdapter

from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.pipeline import Pipeline
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import start_call


class _Down(llm.LLM):
    """A model whose every request fails, as a provider outage does."""

    @property
    def label(self) -> str:
        return "down-model"

    def chat(self, **kwargs: Any) -> llm.LLMStream:
        return _DownStream(self, **kwargs)


class _DownStream(llm.LLMStream):
    def __init__(self, model: _Down, **kwargs: Any) -> None:
        super().__init__(
            model,
            chat_ctx=kwargs["chat_ctx"],
            tools=kwargs.get("tools") or [],
            conn_options=kwargs["conn_options"],
        )

    async def _run(self) -> None:
        raise APIConnectionError("the provider is down", retryable=False)


def _value(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_fallback_to_the_next_model_is_counted(workflow: Workflow) -> None:
    labels = {"workflow": "acme-broadband", "component": "llm", "provider": "down-model"}
    before = _value("frontdesk_model_fallbacks_total", **labels)
    adapter = FallbackAdapter([_Down(), OfflineBrain(workflow=workflow)], attempt_timeout=2.0)
    call = await start_call(workflow=workflow, components=Pipeline(llm=adapter))
    try:
        run = await call.session.run(user_input="hi, my internet is down")
        assert call.session.current_agent.id == "support", run.events  # the call went on
    finally:
        await call.aclose("caller hung up")
    assert _value("frontdesk_model_fallbacks_total", **labels) == before + 1


async def test_a_model_error_is_counted_by_component(workflow: Workflow) -> None:
    def errors() -> float:
        return sum(
            _value(
                "frontdesk_model_errors_total",
                workflow="acme-broadband",
                component="llm",
                recoverable=flag,
            )
            for flag in ("true", "false")
        )

    before = errors()
    adapter = FallbackAdapter([_Down()], attempt_timeout=2.0)
    call = await start_call(workflow=workflow, components=Pipeline(llm=adapter))
    try:
        with contextlib.suppress(Exception):  # nothing can answer: LiveKit reports an error
            await asyncio.wait_for(call.session.run(user_input="hi, my internet is down"), 30)
    finally:
        await call.aclose("caller hung up")
    assert errors() >= before + 1
