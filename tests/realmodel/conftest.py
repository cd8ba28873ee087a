"""The real ``livekit-plugins-openai`` client against :mod:`tests.realmodel.loopback_llm`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.providers.text_mode import TextProfile, build_text_profile
from frontdesk.workflows.runtime import Call, Persistence, start_call

from .loopback_llm import LoopbackLLM, Responder, brain_responder

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "LOOPBACK_LLM_API_KEY"
PROFILE = "loopback"


def loopback_config(
    base_url: str | list[str],
    *,
    text: str | None = None,
    profile_keys: str = 'llm_timeout = "3s"\nllm_retries = 0',
) -> str:
    """The default config (or ``text``) plus a ``[providers.loopback]`` profile on the server(s)."""
    urls = [base_url] if isinstance(base_url, str) else base_url
    models = ", ".join(
        f'{{ provider = "openai", model = "loopback-{index}", base_url = "{url}", '
        f'api_key_env = "{KEY_ENV}" }}'
        for index, url in enumerate(urls)
    )
    llm = models if len(urls) == 1 else f"[{models}]"
    base = text if text is not None else (ROOT / "config.toml").read_text()
    return f"{base}\n\n[providers.{PROFILE}]\nllm = {llm}\n{profile_keys}\n"


def loopback_workflow(base_url: str | list[str], **kwargs: Any) -> Workflow:
    return parse_workflow(loopback_config(base_url, **kwargs), source="loopback.toml")


@pytest.fixture(autouse=True)
def _loopback_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "loopback-dummy-key")


@pytest.fixture
def serve() -> Callable[..., Any]:
    """``async with serve(responder_or_workflow, latency=0) as server``."""

    @asynccontextmanager
    async def _serve(
        responder: Responder | Workflow, *, latency: float = 0.0
    ) -> AsyncIterator[LoopbackLLM]:
        if isinstance(responder, Workflow):
            responder = brain_responder(responder)
        async with LoopbackLLM(responder, latency=latency) as server:
            yield server

    return _serve


@asynccontextmanager
async def open_call(
    workflow: Workflow,
    *,
    caller: str | None = None,
    persistence: Persistence | None = None,
    profile: TextProfile | None = None,
) -> AsyncIterator[Call]:
    """A text-mode call on the loopback profile (its real OpenAI client)."""
    own = profile is None
    text_profile = profile or build_text_profile(workflow, PROFILE)
    call = await start_call(
        workflow=workflow,
        caller_identity=caller,
        persistence=persistence,
        **text_profile.start_kwargs(),
    )
    try:
        yield call
    finally:
        await call.aclose("test finished")
        if own:
            await text_profile.aclose()


@pytest.fixture
def persistence(redis_client: Any, make_store: Callable[..., Any]) -> Persistence:
    """Session state in the test run's real redis-server (emptied for each test)."""
    from tests.conftest import TEST_CALLER_SECRET

    workflow = parse_workflow((ROOT / "config.toml").read_text(), source="config.toml")
    return Persistence(
        store=make_store(redis_client, key_prefix="frontdesk"),
        settings=workflow.config.state,
        caller_secret=TEST_CALLER_SECRET,
    )
