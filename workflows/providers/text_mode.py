"""A provider profile's models for text-mode calls: ``simulate``, ``chat`` and ``demo``.

Text mode needs no STT, TTS or VAD, so only the profile's LLM (or fallback chain) and the agents'
``llm`` overrides are built, with exactly the checks the worker runs: a missing key is the same
:class:`~frontdesk.errors.WorkerSetupError` (``profile 'budget' llm (openai) needs
OPENAI_API_KEY``). ``offline`` is the default; ``--profile`` or ``FRONTDESK_PROFILE`` choose
another.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm

from frontdesk.agents.pipeline import Pipeline
from frontdesk.errors import WorkerSetupError
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.providers.build import (
    PROFILE_ENV,
    agent_overrides,
    build_components,
    session_conn_options,
    text_mode_profile,
)

logger = logging.getLogger(__name__)


def text_profile_name(
    workflow: Workflow, requested: str | None, *, env: Mapping[str, str] | None = None
) -> str:
    """``--profile`` if given, else ``FRONTDESK_PROFILE``, else ``offline``; checked to exist."""
    environ = os.environ if env is None else env
    from_env = environ.get(PROFILE_ENV, "").strip()
    name = (requested or "").strip() or from_env or "offline"
    profiles = workflow.config.providers.profiles
    if name not in profiles:
        where = "--profile" if requested else f"{PROFILE_ENV}={from_env!r}"
        raise WorkerSetupError(
            f"{where}: unknown provider profile '{name}' (known: {', '.join(sorted(profiles))})"
        )
    return name


@dataclass
class TextProfile:
    """The models one text-mode run uses, built once and shared by its calls."""

    name: str
    components: Pipeline
    per_agent: dict[str, Pipeline] = field(default_factory=dict)
    owned: list[Pipeline] = field(default_factory=list)
    conn_options: Any = None

    @property
    def offline(self) -> bool:
        return self.name == "offline"

    @property
    def judge(self) -> llm.LLM | None:
        """The model that judges ``expect_intent``; None under offline (nothing to judge with)."""
        return None if self.offline else self.components.llm

    def agent_components(self, name: str) -> Pipeline:
        return self.per_agent.get(name) or Pipeline()

    def start_kwargs(self) -> dict[str, Any]:
        """What :func:`~frontdesk.workflows.runtime.start_call` needs to run on this profile."""
        return {
            "components": Pipeline(llm=self.components.llm),
            "agent_components": self.agent_components if self.per_agent else None,
            "conn_options": self.conn_options,
        }

    async def aclose(self) -> None:
        for components in (*self.owned, self.components):
            try:
                await components.aclose()
            except Exception as exc:  # closing an HTTP client must not hide the run's outcome
                logger.debug("closing %s failed: %r", self.name, exc)


def build_text_profile(
    workflow: Workflow, name: str, *, env: Mapping[str, str] | None = None
) -> TextProfile:
    """The profile's LLM(s) and the agents' LLM overrides; keys checked first, as the worker does."""
    profile = text_mode_profile(workflow.config.providers.profiles[name])
    components = build_components(profile, workflow=workflow, profile_name=name, env=env)
    per_agent: dict[str, Pipeline] = {}
    owned: list[Pipeline] = []
    for agent_name, agent in agent_overrides(workflow).items():
        if agent.llm is None:
            continue
        text_only = (
            agent.model_copy(update={"stt": None, "tts": None}) if agent.stt or agent.tts else agent
        )
        own = build_components(
            profile,
            agent_override=text_only,
            workflow=workflow,
            profile_name=name,
            base=components,
            env=env,
        )
        per_agent[agent_name] = Pipeline(llm=own.llm)
        owned.append(Pipeline(llm=own.llm))
    return TextProfile(
        name=name,
        components=components,
        per_agent=per_agent,
        owned=owned,
        conn_options=session_conn_options(profile),
    )
