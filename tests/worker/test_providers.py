"""Provider profiles → official LiveKit plugins, with placeholder keys and no network.

Constructing a plugin opens no connection (they connect on first use), so every profile of
config.toml is built for real here; what cannot be tested is a provider answering.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from livekit.agents import vad as lk_vad
from livekit.plugins import cartesia, deepgram, openai, silero
from rich.console import Console

from frontdesk.agents.pipeline import Pipeline
from frontdesk.errors import ConfigError, WorkerSetupError
from frontdesk.workflows.cli.render import print_providers
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.providers import (
    EnvRequirement,
    active_profile_name,
    build_components,
    ensure_env,
    required_env,
)

from .conftest import variant, with_extra

ANOTHER_CARTESIA_VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091"


def profile_of(workflow: Workflow, name: str) -> object:
    return workflow.config.providers.profiles[name]


async def build(workflow: Workflow, name: str, **kwargs: object) -> Pipeline:
    components = build_components(
        workflow.config.providers.profiles[name],
        workflow=workflow,
        **kwargs,  # type: ignore[arg-type]
    )
    assert components.profile == name
    return components


# --------------------------------------------------------------------------- every profile builds


async def test_budget_profile_builds(workflow: Workflow, placeholder_keys: dict[str, str]) -> None:
    components = await build(workflow, "budget")
    try:
        assert isinstance(components.stt, deepgram.STT)
        assert components.stt.model == "nova-3"
        assert isinstance(components.llm, openai.LLM)
        assert components.llm.model == "gpt-4o-mini"
        assert isinstance(components.tts, deepgram.TTS)
        assert components.tts.model == "aura-2-andromeda-en"
        assert isinstance(components.vad, silero.VAD)
    finally:
        await components.aclose()


async def test_quality_profile_builds(workflow: Workflow, placeholder_keys: dict[str, str]) -> None:
    components = await build(workflow, "quality")
    try:
        assert isinstance(components.stt, deepgram.STT)
        assert isinstance(components.llm, openai.LLM)
        assert components.llm.model == "gpt-4o"
        assert isinstance(components.tts, cartesia.TTS)
        assert components.tts.model == "sonic-2"
        assert components.tts._opts.voice == "f786b574-daa5-4673-aa0c-cbe3e8534c02"
        assert isinstance(components.vad, silero.VAD)
    finally:
        await components.aclose()


async def test_local_profile_points_the_openai_plugins_at_local_servers(
    workflow: Workflow, placeholder_keys: dict[str, str]
) -> None:
    components = await build(workflow, "local")
    try:
        assert isinstance(components.llm, openai.LLM)
        assert components.llm.model == "llama3.1"
        assert components.llm.provider == "localhost:11434"  # the Ollama endpoint
        assert components.llm._client.api_key == "ollama"  # from LOCAL_LLM_API_KEY
        assert isinstance(components.stt, openai.STT)
        assert str(components.stt._client.base_url) == "http://localhost:8000/v1/"
        assert isinstance(components.tts, openai.TTS)
        assert components.tts._opts.voice == "alloy"
        assert str(components.tts._client.base_url) == "http://localhost:8880/v1/"
    finally:
        await components.aclose()


async def test_offline_profile_is_the_offline_brain_and_text_only(workflow: Workflow) -> None:
    from frontdesk.agents.offline_brain import OfflineBrain

    components = await build(workflow, "offline")
    assert isinstance(components.llm, OfflineBrain)
    assert components.text_only
    assert components.vad is None
    assert required_env(workflow.config.providers.profiles["offline"]) == []


def test_offline_llm_without_workflow_is_a_setup_error(workflow: Workflow) -> None:
    with pytest.raises(WorkerSetupError, match="needs the workflow"):
        build_components(workflow.config.providers.profiles["offline"], profile_name="offline")


async def test_a_prewarmed_vad_is_reused(
    workflow: Workflow, placeholder_keys: dict[str, str]
) -> None:
    loaded = silero.VAD.load()
    components = await build(workflow, "budget", prewarmed_vad=loaded)
    assert components.vad is loaded
    await components.aclose()


# --------------------------------------------------------------------------- keys


def all_requirements(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(profile, variable, component) for every key of every profile of config.toml."""
    return [
        (name, req.name, req.component)
        for name, profile in workflow.config.providers.profiles.items()
        for req in required_env(profile, profile_name=name)
    ]


def test_required_env_of_the_default_profiles(workflow: Workflow) -> None:
    found = {(p, v, c) for p, v, c in all_requirements(workflow)}
    assert found == {
        ("budget", "DEEPGRAM_API_KEY", "stt (deepgram)"),
        ("budget", "OPENAI_API_KEY", "llm (openai)"),
        ("budget", "DEEPGRAM_API_KEY", "tts (deepgram)"),
        ("quality", "DEEPGRAM_API_KEY", "stt (deepgram)"),
        ("quality", "OPENAI_API_KEY", "llm (openai)"),
        ("quality", "CARTESIA_API_KEY", "tts (cartesia)"),
        ("local", "LOCAL_STT_API_KEY", "stt (openai)"),
        ("local", "LOCAL_LLM_API_KEY", "llm (openai)"),
        ("local", "LOCAL_TTS_API_KEY", "tts (openai)"),
    }


def test_required_env_says_whether_set_and_never_the_value(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "   ")  # blank counts as unset
    found = required_env(workflow.config.providers.profiles["budget"])
    assert EnvRequirement("DEEPGRAM_API_KEY", "stt (deepgram)", True) in found
    assert EnvRequirement("OPENAI_API_KEY", "llm (openai)", False) in found
    assert "dg-secret" not in repr(found)


@pytest.mark.parametrize(
    ("profile", "variable", "component"),
    [
        ("budget", "DEEPGRAM_API_KEY", "stt (deepgram)"),
        ("budget", "OPENAI_API_KEY", "llm (openai)"),
        ("quality", "CARTESIA_API_KEY", "tts (cartesia)"),
        ("quality", "DEEPGRAM_API_KEY", "stt (deepgram)"),
        ("quality", "OPENAI_API_KEY", "llm (openai)"),
        ("local", "LOCAL_STT_API_KEY", "stt (openai)"),
        ("local", "LOCAL_LLM_API_KEY", "llm (openai)"),
        ("local", "LOCAL_TTS_API_KEY", "tts (openai)"),
    ],
)
def test_each_missing_key_is_named_with_profile_and_component(
    workflow: Workflow,
    placeholder_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    variable: str,
    component: str,
) -> None:
    monkeypatch.delenv(variable)
    expected = f"profile '{profile}' {component} needs {variable}"
    with pytest.raises(WorkerSetupError) as raised:
        build_components(workflow.config.providers.profiles[profile], workflow=workflow)
    assert expected in str(raised.value)
    with pytest.raises(WorkerSetupError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        ensure_env(workflow.config.providers.profiles[profile], workflow=workflow)


def test_every_missing_key_is_listed_at_once(workflow: Workflow) -> None:
    with pytest.raises(WorkerSetupError) as raised:
        ensure_env(workflow.config.providers.profiles["quality"], workflow=workflow)
    assert str(raised.value).splitlines() == [
        "profile 'quality' stt (deepgram) needs DEEPGRAM_API_KEY",
        "profile 'quality' llm (openai) needs OPENAI_API_KEY",
        "profile 'quality' tts (cartesia) needs CARTESIA_API_KEY",
    ]


def test_missing_key_is_found_before_any_plugin_is_built(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the TTS key is missing: nothing may be constructed (and so nothing leaked)."""
    built: list[str] = []

    def recording(name: str) -> Callable[..., object]:
        def construct(*_args: object, **_kwargs: object) -> object:
            built.append(name)
            raise AssertionError(f"{name} constructed")

        return construct

    for module, name in ((deepgram, "STT"), (openai, "LLM"), (silero.VAD, "load")):
        monkeypatch.setattr(module, name, recording(name))
    monkeypatch.setenv("DEEPGRAM_API_KEY", "x")
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    with pytest.raises(WorkerSetupError, match="CARTESIA_API_KEY"):
        build_components(workflow.config.providers.profiles["quality"], workflow=workflow)
    assert built == []


def test_api_key_env_replaces_the_plugins_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    custom = variant(
        'llm = { provider = "openai", model = "gpt-4o-mini" }',
        'llm = { provider = "openai", model = "gpt-4o-mini", api_key_env = "TEAM_OPENAI_KEY" }',
    )
    monkeypatch.setenv("OPENAI_API_KEY", "not-this-one")
    names = [req.name for req in required_env(custom.config.providers.profiles["budget"])]
    assert "TEAM_OPENAI_KEY" in names
    assert "OPENAI_API_KEY" not in names


# --------------------------------------------------------------------------- per-agent overrides


async def test_per_agent_tts_override_changes_the_voice(placeholder_keys: dict[str, str]) -> None:
    workflow = with_extra(f'[agents.support.tts]\nvoice = "{ANOTHER_CARTESIA_VOICE}"\n')
    profile = workflow.config.providers.profiles["quality"]
    call = build_components(profile, workflow=workflow)
    support = build_components(
        profile, agent_override=workflow.agent("support"), workflow=workflow, base=call
    )
    try:
        assert isinstance(call.tts, cartesia.TTS)
        assert isinstance(support.tts, cartesia.TTS)
        assert call.tts._opts.voice == "f786b574-daa5-4673-aa0c-cbe3e8534c02"
        assert support.tts._opts.voice == ANOTHER_CARTESIA_VOICE
        assert support.tts.model == "sonic-2"  # the profile's model is kept
        assert support.stt is call.stt and support.llm is call.llm  # not overridden: shared
        # without a base, every component is built afresh
        alone = build_components(
            profile, agent_override=workflow.agent("support"), workflow=workflow
        )
        assert alone.stt is not call.stt
        await alone.aclose()
    finally:
        await call.aclose()
        if support.tts is not None:
            await support.tts.aclose()


async def test_deepgram_voice_override_selects_the_aura_model(
    placeholder_keys: dict[str, str],
) -> None:
    workflow = with_extra('[agents.sales.tts]\nvoice = "aura-2-helios-en"\n')
    profile = workflow.config.providers.profiles["budget"]
    sales = build_components(profile, agent_override=workflow.agent("sales"), workflow=workflow)
    assert isinstance(sales.tts, deepgram.TTS)
    assert sales.tts.model == "aura-2-helios-en"
    await sales.aclose()


async def test_override_to_another_provider_starts_from_that_providers_defaults(
    placeholder_keys: dict[str, str],
) -> None:
    """budget's TTS model is a Deepgram Aura voice: it must not reach Cartesia."""
    overriding = with_extra(
        f'[agents.sales.tts]\nprovider = "cartesia"\nvoice = "{ANOTHER_CARTESIA_VOICE}"\n'
    )
    budget = overriding.config.providers.profiles["budget"]
    sales = build_components(budget, agent_override=overriding.agent("sales"), workflow=overriding)
    assert isinstance(sales.tts, cartesia.TTS)
    assert sales.tts.model != "aura-2-andromeda-en"
    assert sales.tts._opts.voice == ANOTHER_CARTESIA_VOICE
    await sales.aclose()


def test_override_to_another_provider_needs_its_key(workflow: Workflow) -> None:
    overriding = with_extra(
        f'[agents.sales.tts]\nprovider = "cartesia"\nvoice = "{ANOTHER_CARTESIA_VOICE}"\n'
    )
    budget = overriding.config.providers.profiles["budget"]
    requirements = required_env(budget, profile_name="budget", workflow=overriding)
    assert EnvRequirement("CARTESIA_API_KEY", "agent 'sales' tts (cartesia)", False) in requirements
    with pytest.raises(WorkerSetupError, match="profile 'budget' agent 'sales' tts \\(cartesia\\)"):
        build_components(budget, agent_override=overriding.agent("sales"), workflow=overriding)


def test_a_voice_override_is_moot_under_a_profile_without_tts() -> None:
    """The same config runs offline (text only) and with voice; a voice tweak needs no TTS."""
    overriding = with_extra('[agents.sales.tts]\nvoice = "alloy"\n')
    offline = overriding.config.providers.profiles["offline"]
    sales = build_components(offline, agent_override=overriding.agent("sales"), workflow=overriding)
    assert sales.tts is None
    assert required_env(offline, profile_name="offline", workflow=overriding) == []


def test_an_override_naming_a_provider_adds_the_component() -> None:
    overriding = with_extra('[agents.sales.tts]\nprovider = "openai"\nvoice = "alloy"\n')
    offline = overriding.config.providers.profiles["offline"]
    assert required_env(offline, profile_name="offline", workflow=overriding) == [
        EnvRequirement("OPENAI_API_KEY", "agent 'sales' tts (openai)", False)
    ]


# --------------------------------------------------------------------------- config mistakes


def test_a_provider_that_cannot_fill_the_component_is_a_config_error(
    placeholder_keys: dict[str, str],
) -> None:
    wrong = variant(
        'stt = { provider = "deepgram", model = "nova-3", language = "en" }',
        'stt = { provider = "cartesia", model = "nova-3" }',
    )
    with pytest.raises(ConfigError, match=r"providers.budget.stt.provider: 'cartesia' cannot be"):
        build_components(wrong.config.providers.profiles["budget"], workflow=wrong)


def test_a_setting_the_plugin_does_not_have_is_a_config_error(
    placeholder_keys: dict[str, str],
) -> None:
    wrong = variant(
        'llm = { provider = "openai", model = "gpt-4o-mini" }',
        'llm = { provider = "openai", model = "gpt-4o-mini", voice = "alloy" }',
    )
    with pytest.raises(
        ConfigError, match=re.escape("providers.budget.llm.voice: the openai llm has no")
    ):
        build_components(wrong.config.providers.profiles["budget"], workflow=wrong)


def test_options_the_plugin_rejects_are_a_config_error(placeholder_keys: dict[str, str]) -> None:
    wrong = variant(
        'llm = { provider = "openai", model = "gpt-4o-mini" }',
        'llm = { provider = "openai", model = "gpt-4o-mini", options = { temprature = 0.2 } }',
    )
    with pytest.raises(
        ConfigError, match=re.escape("providers.budget.llm: the openai llm rejected")
    ):
        build_components(wrong.config.providers.profiles["budget"], workflow=wrong)


async def test_options_reach_the_plugin(placeholder_keys: dict[str, str]) -> None:
    tuned = variant(
        'vad = { provider = "silero" }',
        'vad = { provider = "silero", options = { min_silence_duration = 0.3 } }',
    )
    components = build_components(tuned.config.providers.profiles["budget"], workflow=tuned)
    assert isinstance(components.vad, lk_vad.VAD)
    assert components.vad._opts.min_silence_duration == 0.3  # type: ignore[attr-defined]
    await components.aclose()


# --------------------------------------------------------------------------- active profile


def test_active_profile_comes_from_config(workflow: Workflow) -> None:
    assert active_profile_name(workflow) == "offline"


def test_frontdesk_profile_overrides_the_config(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_PROFILE", "quality")
    assert active_profile_name(workflow) == "quality"
    assert active_profile_name(workflow, env={"FRONTDESK_PROFILE": " budget "}) == "budget"
    assert active_profile_name(workflow, env={"FRONTDESK_PROFILE": ""}) == "offline"


def test_unknown_profile_lists_the_known_ones(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_PROFILE", "qualty")
    with pytest.raises(WorkerSetupError) as raised:
        active_profile_name(workflow)
    assert str(raised.value) == (
        "FRONTDESK_PROFILE='qualty': unknown provider profile 'qualty' "
        "(known: budget, local, offline, quality)"
    )


def test_unknown_active_profile_in_config_is_named() -> None:
    wrong = variant('active = "offline"', 'active = "premium"')
    with pytest.raises(
        WorkerSetupError, match=re.escape("providers.active: unknown provider profile 'premium'")
    ):
        active_profile_name(wrong)


# --------------------------------------------------------------------------- `frontdesk providers`


def render(workflow: Workflow) -> tuple[int, str]:
    console = Console(record=True, width=200, color_system=None, file=io.StringIO())
    code = print_providers(workflow, console)
    return code, console.export_text()


def test_providers_table_shows_profiles_keys_and_the_active_one(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-very-secret-value")
    monkeypatch.setenv("FRONTDESK_PROFILE", "budget")
    code, text = render(workflow)
    assert code == 0
    for name in ("offline", "budget", "quality", "local"):
        assert name in text
    assert "budget (active)" in text
    assert "active profile: budget (from FRONTDESK_PROFILE)" in text
    assert "✓ DEEPGRAM_API_KEY (stt, tts)" in text
    assert "✗ OPENAI_API_KEY (llm) (missing)" in text
    assert "✗ CARTESIA_API_KEY (tts) (missing)" in text
    assert "cartesia sonic-2" in text
    assert "dg-very-secret-value" not in text


def test_providers_with_an_unknown_profile_prints_the_table_and_fails(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_PROFILE", "nope")
    code, text = render(workflow)
    assert code == WorkerSetupError.exit_code
    assert "quality" in text
    assert "unknown provider profile 'nope'" in text


def test_providers_shows_a_configured_cost_estimate() -> None:
    costed = variant(
        'description = "Deepgram nova-3 STT, OpenAI gpt-4o-mini, Deepgram Aura TTS"',
        'description = "Deepgram nova-3 STT, OpenAI gpt-4o-mini, Deepgram Aura TTS"\n'
        "cost_per_minute_usd = 0.021",
    )
    _, text = render(costed)
    assert "≈ $0.021 per call minute" in text


def test_providers_lists_per_agent_overrides() -> None:
    overriding = with_extra(f'[agents.support.tts]\nvoice = "{ANOTHER_CARTESIA_VOICE}"\n')
    _, text = render(overriding)
    assert "Per-agent overrides" in text
    assert f"voice={ANOTHER_CARTESIA_VOICE}" in text
