"""The voice pipeline of a provider profile, built with LiveKit's official plugins only.

A profile (``[providers.<name>]`` in config.toml) names one provider per component. This module
turns it into plugin instances: ``deepgram`` → :class:`livekit.plugins.deepgram.STT` / ``TTS``,
``openai`` → ``openai.LLM`` / ``STT`` / ``TTS`` (``base_url`` points them at Ollama or any other
OpenAI-compatible server), ``cartesia`` → ``cartesia.TTS``, ``silero`` → ``silero.VAD.load()``
(its model ships in the wheel, so it loads offline) and ``offline`` → the offline brain, the
scripted LLM that needs neither key nor network.

Every key is checked *before* anything is constructed, and so before anything connects: a call
that would fail on its first word because ``CARTESIA_API_KEY`` is unset fails at worker start
instead, with a message naming the variable, the profile and the component. The plugins are
imported lazily, so ``frontdesk providers`` and config checks stay fast; the worker imports them
at module level, because LiveKit requires plugins to register on the main thread.

Which config keys each plugin takes (anything else is a :class:`ConfigError`, since a key that
would be silently ignored is a mistake waiting to be found on a live call):

=========  ==========  ===========================================================
component  provider    keys
=========  ==========  ===========================================================
stt        deepgram    model, language, base_url, api_key_env, options
stt        openai      model, language, base_url, api_key_env, options
llm        openai      model, base_url, api_key_env, options
llm        offline     (none)
tts        deepgram    model or voice (an Aura model *is* a voice; voice wins), base_url, ...
tts        openai      model, voice, base_url, api_key_env, options
tts        cartesia    model, voice, language, base_url, api_key_env, options
vad        silero      options (passed to ``silero.VAD.load``)
=========  ==========  ===========================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from frontdesk.errors import ConfigError, WorkerSetupError
from frontdesk.workflows.config import (
    AgentConfig,
    ComponentConfig,
    ComponentOverride,
    ProviderProfile,
    Workflow,
)

if TYPE_CHECKING:
    from livekit.agents import llm, stt, tts, vad
    from livekit.agents.voice.agent_session import SessionConnectOptions
    from rich.console import Console

logger = logging.getLogger("frontdesk.providers")

Slot = Literal["stt", "llm", "tts", "vad"]
SLOTS: tuple[Slot, ...] = ("stt", "llm", "tts", "vad")
OVERRIDABLE_SLOTS: tuple[Literal["stt", "llm", "tts"], ...] = ("stt", "llm", "tts")
"""Components an agent may override (``[agents.<name>.tts]``); the VAD is per call."""

PROFILE_ENV = "FRONTDESK_PROFILE"
"""Environment variable that picks the active profile, over ``[providers] active``."""

DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "deepgram": "DEEPGRAM_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
}
"""The variable each plugin reads on its own when no ``api_key_env`` is configured."""

_SETTING_KEYS = ("model", "voice", "language", "base_url", "api_key_env")
_APPLICABLE: dict[tuple[Slot, str], frozenset[str]] = {
    ("stt", "deepgram"): frozenset({"model", "language", "base_url", "api_key_env"}),
    ("stt", "openai"): frozenset({"model", "language", "base_url", "api_key_env"}),
    ("llm", "openai"): frozenset({"model", "base_url", "api_key_env"}),
    ("llm", "offline"): frozenset(),
    ("tts", "deepgram"): frozenset({"model", "voice", "base_url", "api_key_env"}),
    ("tts", "openai"): frozenset({"model", "voice", "base_url", "api_key_env"}),
    ("tts", "cartesia"): frozenset({"model", "voice", "language", "base_url", "api_key_env"}),
    ("vad", "silero"): frozenset(),
}
"""Which settings each (component, provider) pair understands; also the supported pairs."""


@dataclass(frozen=True)
class EnvRequirement:
    """One environment variable a profile needs, and whether it is set (never its value)."""

    name: str
    component: str
    """Who needs it, e.g. ``"tts (cartesia)"`` or ``"agent 'sales' tts (cartesia)"``."""
    is_set: bool


@dataclass(frozen=True)
class Components:
    """The plugin instances of one call (or of one agent, with its overrides laid on top).

    Each may be ``None``: the offline profile is text only (no STT, TTS or VAD).
    """

    stt: stt.STT | None = None
    llm: llm.LLM | None = None
    tts: tts.TTS | None = None
    vad: vad.VAD | None = None
    profile: str = field(default="", compare=False)
    """The profile these came from, for log lines."""

    @property
    def text_only(self) -> bool:
        return self.stt is None and self.tts is None

    async def aclose(self) -> None:
        """Close the plugins' HTTP clients; AgentSession does not close what it was given."""
        for component in (self.stt, self.llm, self.tts):
            if component is not None:
                await component.aclose()


# --------------------------------------------------------------------------- profile choice


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def active_profile_name(workflow: Workflow, *, env: Mapping[str, str] | None = None) -> str:
    """The profile a worker runs: ``FRONTDESK_PROFILE`` if set, else ``[providers] active``.

    An unknown name is a :class:`WorkerSetupError` listing the known ones, so a typo in a
    deployment's environment stops the worker instead of silently running another pipeline.
    """
    profiles = workflow.config.providers.profiles
    from_env = _environ(env).get(PROFILE_ENV, "").strip()
    name = from_env or workflow.config.providers.active
    if name not in profiles:
        where = f"{PROFILE_ENV}={from_env!r}" if from_env else "providers.active"
        known = ", ".join(sorted(profiles))
        raise WorkerSetupError(f"{where}: unknown provider profile '{name}' (known: {known})")
    return name


def active_profile(
    workflow: Workflow, *, env: Mapping[str, str] | None = None
) -> tuple[str, ProviderProfile]:
    """The active profile's name and table."""
    name = active_profile_name(workflow, env=env)
    return name, workflow.config.providers.profiles[name]


def _profile_label(
    profile: ProviderProfile, profile_name: str | None, workflow: Workflow | None
) -> str:
    if profile_name:
        return profile_name
    if workflow is not None:
        for name, candidate in workflow.config.providers.profiles.items():
            if candidate is profile:
                return name
        for name, candidate in workflow.config.providers.profiles.items():
            if candidate == profile:
                return name
    return "(unnamed)"


def _agent_label(agent: AgentConfig, workflow: Workflow | None) -> str:
    if workflow is not None:
        for name, candidate in workflow.config.agents.items():
            if candidate is agent:
                return name
        for name, candidate in workflow.config.agents.items():
            if candidate == agent:
                return name
    return "(unnamed)"


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class _Resolved:
    """One component after overrides, with where it was configured (for messages)."""

    slot: Slot
    config: ComponentConfig
    path: str
    """Config key path, e.g. ``providers.quality.tts`` or ``agents.sales.tts``."""
    who: str
    """``profile 'quality'`` or ``profile 'quality' agent 'sales'``."""
    overridden: bool

    @property
    def label(self) -> str:
        return f"{self.slot} ({self.config.provider})"


def key_env(component: ComponentConfig) -> str | None:
    """The variable holding ``component``'s API key, or ``None`` when it needs none."""
    if component.api_key_env:
        return component.api_key_env
    return DEFAULT_KEY_ENV.get(component.provider)


def _resolve(
    profile: ProviderProfile,
    *,
    profile_label: str,
    agent_override: AgentConfig | None,
    agent_label: str | None,
) -> list[_Resolved]:
    """The components of ``profile`` with ``agent_override``'s overrides laid on top."""
    resolved: list[_Resolved] = []
    for slot in SLOTS:
        if slot == "llm":
            resolved += _resolve_llm_chain(profile, profile_label, agent_override, agent_label)
            continue
        base: ComponentConfig | None = getattr(profile, slot)
        config, path, overridden = base, f"providers.{profile_label}.{slot}", False
        override: ComponentOverride | None = (
            getattr(agent_override, slot) if agent_override and slot != "vad" else None
        )
        if override is not None and base is None and override.provider is None:
            # a tweak (voice, model) of a component this profile does not have, e.g. a TTS
            # voice under the text-only offline profile: nothing to tweak, so nothing to build
            override = None
        if override is not None:
            path = f"agents.{agent_label}.{slot}"
            config = _apply_override(override, base, path)
            overridden = True
        if config is None:
            continue
        who = f"profile '{profile_label}'"
        if overridden:
            who += f" agent '{agent_label}'"
        resolved.append(_Resolved(slot, config, path, who, overridden))
    return resolved


def _apply_override(
    override: ComponentOverride, base: ComponentConfig | None, path: str
) -> ComponentConfig:
    # another provider starts from scratch: the profile's model, voice or base_url belong to
    # its own provider (an Aura model means nothing to Cartesia)
    switches = base is not None and override.provider not in (None, base.provider)
    try:
        return override.apply(None if switches else base)
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None


def _resolve_llm_chain(
    profile: ProviderProfile,
    profile_label: str,
    agent_override: AgentConfig | None,
    agent_label: str | None,
) -> list[_Resolved]:
    """The profile's language models in fallback order (``llm[i]`` paths for a list).

    An agent's ``llm`` override applies to the first model; the chain's others stay its
    fallbacks (rebuilt for that agent, so its adapter is its own).
    """
    chain = profile.llm_chain
    listed = len(chain) > 1
    override = agent_override.llm if agent_override is not None else None
    who = f"profile '{profile_label}'" + (f" agent '{agent_label}'" if override else "")
    resolved: list[_Resolved] = []
    for index, config in enumerate(chain):
        path = f"providers.{profile_label}.llm" + (f"[{index}]" if listed else "")
        if override is not None and index == 0:
            path = f"agents.{agent_label}.llm"
            config = _apply_override(override, config, path)
        resolved.append(_Resolved("llm", config, path, who, override is not None))
    return resolved


def _check_supported(item: _Resolved) -> None:
    """A :class:`ConfigError` for a provider that cannot fill the slot or a key it ignores."""
    applicable = _APPLICABLE.get((item.slot, item.config.provider))
    if applicable is None:
        choices = sorted(provider for slot, provider in _APPLICABLE if slot == item.slot)
        raise ConfigError(
            [
                f"{item.path}.provider: '{item.config.provider}' cannot be the {item.slot} "
                f"(use one of: {', '.join(choices)})"
            ]
        )
    for key in _SETTING_KEYS:
        if getattr(item.config, key) is not None and key not in applicable:
            raise ConfigError(
                [
                    f"{item.path}.{key}: the {item.config.provider} {item.slot} has no {key!r} setting"
                ]
            )
    if item.config.options and item.config.provider == "offline":
        raise ConfigError([f"{item.path}.options: the offline brain takes no options"])


def _requirements(items: list[_Resolved], env: Mapping[str, str]) -> list[EnvRequirement]:
    found: list[EnvRequirement] = []
    for item in items:
        name = key_env(item.config)
        if name is not None:
            found.append(EnvRequirement(name, item.label, bool(env.get(name, "").strip())))
    return found


def required_env(
    profile: ProviderProfile,
    *,
    profile_name: str | None = None,
    workflow: Workflow | None = None,
    env: Mapping[str, str] | None = None,
) -> list[EnvRequirement]:
    """Every variable ``profile`` needs, in component order.

    With ``workflow``, the per-agent overrides' variables come too (component
    ``"agent 'sales' tts (cartesia)"``), since an override can name a provider the profile lacks.
    """
    environ = _environ(env)
    label = _profile_label(profile, profile_name, workflow)
    found = _requirements(
        _resolve(profile, profile_label=label, agent_override=None, agent_label=None),
        environ,
    )
    if workflow is not None:
        for agent_name, agent in workflow.config.agents.items():
            items = _resolve(
                profile, profile_label=label, agent_override=agent, agent_label=agent_name
            )
            for requirement in _requirements([item for item in items if item.overridden], environ):
                found.append(
                    EnvRequirement(
                        requirement.name,
                        f"agent '{agent_name}' {requirement.component}",
                        requirement.is_set,
                    )
                )
    return found


def _missing_key_error(items: list[_Resolved], env: Mapping[str, str]) -> WorkerSetupError | None:
    lines = [
        f"{item.who} {item.label} needs {key_env(item.config)}"
        for item in items
        if (name := key_env(item.config)) is not None and not env.get(name, "").strip()
    ]
    return WorkerSetupError("\n".join(lines)) if lines else None


def ensure_env(
    profile: ProviderProfile,
    *,
    profile_name: str | None = None,
    workflow: Workflow | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Check every key of ``profile`` (and of the agents' overrides, given ``workflow``).

    Raises one :class:`WorkerSetupError` naming every missing variable, e.g.
    ``profile 'quality' tts (cartesia) needs CARTESIA_API_KEY``; the worker calls this before
    it registers with LiveKit, so no job is ever accepted by a worker that cannot serve it.
    """
    environ = _environ(env)
    label = _profile_label(profile, profile_name, workflow)
    items = _resolve(profile, profile_label=label, agent_override=None, agent_label=None)
    if workflow is not None:
        for agent_name, agent in workflow.config.agents.items():
            items += [
                item
                for item in _resolve(
                    profile, profile_label=label, agent_override=agent, agent_label=agent_name
                )
                if item.overridden
            ]
    for item in items:
        _check_supported(item)
    if (error := _missing_key_error(items, environ)) is not None:
        raise error


# --------------------------------------------------------------------------- construction


def _kwargs(item: _Resolved, api_key: str | None, **settings: Any) -> dict[str, Any]:
    """Explicit settings (unset ones left to the plugin's defaults), then ``options`` as is."""
    kwargs = {key: value for key, value in settings.items() if value is not None}
    if api_key is not None:
        kwargs["api_key"] = api_key
    kwargs.update(item.config.options)
    return kwargs


def _construct(item: _Resolved, factory: Any, kwargs: dict[str, Any]) -> Any:
    """Call a plugin constructor; its complaints about settings become a :class:`ConfigError`."""
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            [f"{item.path}: the {item.config.provider} {item.slot} rejected its settings: {exc}"]
        ) from None


def load_vad(component: ComponentConfig, *, path: str = "vad") -> vad.VAD:
    """Load Silero's VAD (blocking, ~50 ms; the model ships in the wheel, no network).

    The worker calls this once per process in ``prewarm_fnc`` and hands the result to
    :func:`build_components`, so no call waits for a model load.
    """
    from livekit.plugins import silero

    item = _Resolved("vad", component, path, "", False)
    _check_supported(item)
    vad_model: vad.VAD = _construct(item, silero.VAD.load, dict(component.options))
    return vad_model


def _build_one(
    item: _Resolved,
    *,
    env: Mapping[str, str],
    workflow: Workflow | None,
    prewarmed_vad: vad.VAD | None,
) -> Any:
    config = item.config
    name = key_env(config)
    api_key = env.get(name) if name else None
    provider, slot = config.provider, item.slot

    if slot == "vad":
        return prewarmed_vad if prewarmed_vad is not None else load_vad(config, path=item.path)

    if slot == "llm" and provider == "offline":
        if workflow is None:
            raise WorkerSetupError(
                f"{item.who} llm (offline): the offline brain needs the workflow"
            )
        try:
            from frontdesk.agents.offline_brain import make_offline_llm
        except ImportError as exc:
            raise WorkerSetupError(
                f"{item.who} llm (offline): the offline brain is not available ({exc})"
            ) from None
        return make_offline_llm(workflow)

    if provider == "deepgram":
        from livekit.plugins import deepgram

        if slot == "stt":
            kwargs = _kwargs(
                item,
                api_key,
                model=config.model,
                language=config.language,
                base_url=config.base_url,
            )
            return _construct(item, deepgram.STT, kwargs)
        kwargs = _kwargs(
            item, api_key, model=config.voice or config.model, base_url=config.base_url
        )
        return _construct(item, deepgram.TTS, kwargs)

    if provider == "openai":
        from livekit.plugins import openai

        common = {"model": config.model, "base_url": config.base_url}
        if slot == "llm":
            kwargs = _kwargs(item, api_key, **common)
            # one tool call per response unless the profile asks otherwise: two transfers in
            # one response can only be half honoured
            kwargs.setdefault("parallel_tool_calls", False)
            return _construct(item, openai.LLM, kwargs)
        if slot == "stt":
            kwargs = _kwargs(item, api_key, language=config.language, **common)
            return _construct(item, openai.STT, kwargs)
        kwargs = _kwargs(item, api_key, voice=config.voice, **common)
        return _construct(item, openai.TTS, kwargs)

    if provider == "cartesia":
        from livekit.plugins import cartesia

        kwargs = _kwargs(
            item,
            api_key,
            model=config.model,
            voice=config.voice,
            language=config.language,
            base_url=config.base_url,
        )
        return _construct(item, cartesia.TTS, kwargs)

    raise AssertionError(f"unhandled provider {provider!r} for {slot}")  # _check_supported ran


def build_components(
    profile: ProviderProfile,
    *,
    agent_override: AgentConfig | None = None,
    workflow: Workflow | None = None,
    profile_name: str | None = None,
    base: Components | None = None,
    prewarmed_vad: vad.VAD | None = None,
    env: Mapping[str, str] | None = None,
) -> Components:
    """The plugin instances of ``profile``, with ``agent_override``'s STT/LLM/TTS overrides.

    Everything is checked before the first plugin is constructed: provider/component pairs and
    settings (:class:`ConfigError`), then every key (:class:`WorkerSetupError` naming each
    missing variable). Constructing connects to nothing; the plugins open their connections on
    first use.

    Args:
        profile: the provider profile.
        agent_override: an agent's config; its ``stt``/``llm``/``tts`` tables replace the
            profile's keys they set (:meth:`ComponentOverride.apply`).
        workflow: needed by the offline brain, and to name the profile/agent in messages.
        profile_name: the profile's name, when ``workflow`` cannot tell it.
        base: the call's components; slots the agent does not override reuse these instances
            instead of opening a second connection to the same provider.
        prewarmed_vad: a VAD loaded by the worker's ``prewarm_fnc``; reused rather than reloaded.
        env: where keys are read (default ``os.environ``).
    """
    environ = _environ(env)
    label = _profile_label(profile, profile_name, workflow)
    agent_label = _agent_label(agent_override, workflow) if agent_override is not None else None
    items = _resolve(
        profile, profile_label=label, agent_override=agent_override, agent_label=agent_label
    )
    if base is not None:
        items = [item for item in items if item.overridden or getattr(base, item.slot) is None]
    for item in items:
        _check_supported(item)
    if (error := _missing_key_error(items, environ)) is not None:
        raise error

    built: dict[str, Any] = {slot: getattr(base, slot) if base else None for slot in SLOTS}
    models: list[Any] = []
    for item in items:
        instance = _build_one(item, env=environ, workflow=workflow, prewarmed_vad=prewarmed_vad)
        if item.slot == "llm":
            models.append(instance)
        else:
            built[item.slot] = instance
    if len(models) == 1:
        built["llm"] = models[0]
    elif models:
        from livekit.agents.llm import FallbackAdapter

        # each model is tried once per request, for at most llm_timeout; the session's
        # llm_retries retry the whole chain
        built["llm"] = FallbackAdapter(
            models, attempt_timeout=profile.llm_timeout, max_retry_per_llm=0
        )
    logger.debug(
        "built components",
        extra={"profile": label, "agent": agent_label, "slots": [item.slot for item in items]},
    )
    return Components(
        stt=built["stt"], llm=built["llm"], tts=built["tts"], vad=built["vad"], profile=label
    )


def agent_overrides(workflow: Workflow) -> dict[str, AgentConfig]:
    """Agents that override a component; the others simply use the call's components."""
    return {
        name: agent
        for name, agent in workflow.config.agents.items()
        if any(getattr(agent, slot) is not None for slot in OVERRIDABLE_SLOTS)
    }


def text_mode_profile(profile: ProviderProfile) -> ProviderProfile:
    """``profile`` for a text-mode call (simulate, chat, demo): its LLM(s) only, no audio."""
    return profile.model_copy(update={"stt": None, "tts": None, "vad": None})


def session_conn_options(profile: ProviderProfile) -> SessionConnectOptions:
    """LiveKit's session options for the profile's model timeout and retries."""
    from livekit.agents.types import APIConnectOptions
    from livekit.agents.voice.agent_session import SessionConnectOptions

    return SessionConnectOptions(
        llm_conn_options=APIConnectOptions(
            max_retry=profile.llm_retries, timeout=profile.llm_timeout
        )
    )


# --------------------------------------------------------------------------- descriptions


def describe_component(component: ComponentConfig | None) -> str:
    """``deepgram nova-3 (en)``, ``openai tts-1 voice=alloy @ http://…``; ``—`` when absent."""
    if component is None:
        return "—"
    parts: list[str] = [component.provider]
    if component.model:
        parts.append(component.model)
    if component.voice:
        parts.append(f"voice={component.voice}")
    if component.language:
        parts.append(f"({component.language})")
    if component.base_url:
        parts.append(f"@ {component.base_url}")
    return " ".join(parts)


def cmd_providers(workflow: Workflow, console: Console) -> int:
    """``frontdesk providers``: every profile, its components, the keys it needs, which is active.

    Only whether a variable is set is shown, never its value. Exit code 0, or
    :attr:`WorkerSetupError.exit_code` when ``FRONTDESK_PROFILE`` names an unknown profile (the
    table is still printed, so the known names are in front of the user).
    """
    from rich.markup import escape
    from rich.table import Table

    profiles = workflow.config.providers.profiles
    try:
        active: str | None = active_profile_name(workflow)
        problem = None
    except WorkerSetupError as exc:
        active, problem = None, exc

    table = Table(title=f"Provider profiles of {workflow.name}", title_justify="left")
    for column in ("profile", "stt", "llm", "tts", "vad", "needs"):
        table.add_column(column, overflow="fold")
    for name, profile in profiles.items():
        needs = [
            f"[green]✓[/] {var}" if is_set else f"[red]✗[/] {var} [dim](missing)[/]"
            for var, is_set in _by_name(required_env(profile, profile_name=name, workflow=workflow))
        ]
        label = f"[bold]{name}[/] [cyan](active)[/]" if name == active else name
        if profile.description:
            label += f"\n[dim]{profile.description}[/]"
        if profile.cost_per_minute_usd is not None:
            label += f"\n[dim]≈ ${profile.cost_per_minute_usd:.3f} per call minute[/]"
        table.add_row(
            label,
            describe_component(profile.stt),
            " → ".join(describe_component(model) for model in profile.llm_chain),
            describe_component(profile.tts),
            describe_component(profile.vad),
            "\n".join(needs) or "[dim]nothing[/]",
        )
    console.print(table)

    overrides = agent_overrides(workflow)
    if overrides:
        agents = Table(title="Per-agent overrides", title_justify="left")
        for column in ("agent", "component", "override"):
            agents.add_column(column)
        for agent_name, agent in overrides.items():
            for slot in OVERRIDABLE_SLOTS:
                override: ComponentOverride | None = getattr(agent, slot)
                if override is not None:
                    shown = ", ".join(
                        f"{k}={v}" for k, v in override.model_dump(exclude_none=True).items()
                    )
                    agents.add_row(agent_name, slot, shown)
        console.print(agents)

    source = PROFILE_ENV if os.environ.get(PROFILE_ENV, "").strip() else "providers.active"
    if problem is not None:
        console.print(f"[red]error:[/] {escape(str(problem))}")
        return problem.exit_code
    console.print(f"active profile: [bold]{active}[/] (from {source})")
    return 0


def _without_provider(component: str) -> str:
    """``tts (cartesia)`` → ``tts``: the table's columns already name the provider."""
    head, _, _ = component.rpartition(" (")
    return head or component


def _by_name(requirements: list[EnvRequirement]) -> list[tuple[str, bool]]:
    """Each variable once, with the components needing it: ``OPENAI_API_KEY (llm, tts)``."""
    grouped: dict[str, list[EnvRequirement]] = {}
    for requirement in requirements:
        grouped.setdefault(requirement.name, []).append(requirement)
    return [
        (
            f"{var} [dim]({', '.join(_without_provider(req.component) for req in reqs)})[/]",
            reqs[0].is_set,
        )
        for var, reqs in grouped.items()
    ]
