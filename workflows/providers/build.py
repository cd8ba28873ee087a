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
imported with this module, on the main thread, as LiveKit requires plugins to register there.

Which config keys each plugin takes is :data:`frontdesk.workflows.providers.registry.PLUGINS`:
anything else is a :class:`ConfigError`, since a key that would be silently ignored is a
mistake waiting to be found on a live call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents import vad

from frontdesk.agents.pipeline import Pipeline
from frontdesk.errors import ConfigError, WorkerSetupError
from frontdesk.workflows.definition import (
    AgentConfig,
    ComponentConfig,
    ComponentOverride,
    ProviderProfile,
    Workflow,
)
from frontdesk.workflows.providers.registry import PLUGINS, SETTING_KEYS, Plugin, Slot

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class EnvRequirement:
    """One environment variable a profile needs, and whether it is set (never its value)."""

    name: str
    component: str
    """Who needs it, e.g. ``"tts (cartesia)"`` or ``"agent 'sales' tts (cartesia)"``."""
    is_set: bool


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
            # another provider starts from scratch: the profile's model, voice or base_url
            # belong to its own provider (an Aura model means nothing to Cartesia)
            switches = base is not None and override.provider not in (None, base.provider)
            try:
                config = override.apply(None if switches else base)
            except ValueError as exc:
                raise ConfigError([f"{path}: {exc}"]) from None
            overridden = True
        if config is None:
            continue
        who = f"profile '{profile_label}'"
        if overridden:
            who += f" agent '{agent_label}'"
        resolved.append(_Resolved(slot, config, path, who, overridden))
    return resolved


def _check_supported(item: _Resolved) -> None:
    """A :class:`ConfigError` for a provider that cannot fill the slot or a key it ignores."""
    plugin = PLUGINS.get((item.slot, item.config.provider))
    if plugin is None:
        choices = sorted(provider for slot, provider in PLUGINS if slot == item.slot)
        raise ConfigError(
            [
                f"{item.path}.provider: '{item.config.provider}' cannot be the {item.slot} "
                f"(use one of: {', '.join(choices)})"
            ]
        )
    for key in SETTING_KEYS:
        if getattr(item.config, key) is not None and key not in plugin.accepts:
            raise ConfigError(
                [
                    f"{item.path}.{key}: the {item.config.provider} {item.slot} has no {key!r} setting"
                ]
            )
    if item.config.options and not plugin.options:
        raise ConfigError([f"{item.path}.options: the {plugin.label} takes no options"])


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


def _kwargs(item: _Resolved, plugin: Plugin, api_key: str | None) -> dict[str, object]:
    """The plugin's settings that are set (later rows win), the key, then ``options`` as is."""
    kwargs: dict[str, object] = {}
    for key, keyword in plugin.settings:
        value = getattr(item.config, key)
        if value is not None:
            kwargs[keyword] = value
    if api_key is not None:
        kwargs["api_key"] = api_key
    kwargs.update(item.config.options)
    return kwargs


def _construct(item: _Resolved, plugin: Plugin, kwargs: dict[str, object]) -> object:
    """Call a plugin constructor; its complaints about settings become a :class:`ConfigError`."""
    try:
        return plugin.constructor()(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            [f"{item.path}: the {item.config.provider} {item.slot} rejected its settings: {exc}"]
        ) from None


def load_vad(component: ComponentConfig, *, path: str = "vad") -> vad.VAD:
    """Load Silero's VAD (blocking, ~50 ms; the model ships in the wheel, no network).

    The worker calls this once per process in ``prewarm_fnc`` and hands the result to
    :func:`build_components`, so no call waits for a model load.
    """
    item = _Resolved("vad", component, path, "", False)
    _check_supported(item)
    plugin = PLUGINS[("vad", component.provider)]
    vad_model = _construct(item, plugin, dict(component.options))
    assert isinstance(vad_model, vad.VAD)
    return vad_model


def _build_one(
    item: _Resolved,
    *,
    env: Mapping[str, str],
    workflow: Workflow | None,
    prewarmed_vad: vad.VAD | None,
) -> object:
    if item.slot == "vad":
        return prewarmed_vad if prewarmed_vad is not None else load_vad(item.config, path=item.path)
    plugin = PLUGINS[(item.slot, item.config.provider)]  # _check_supported ran
    name = key_env(item.config) if plugin.keyed else None
    kwargs = _kwargs(item, plugin, env.get(name) if name else None)
    if plugin.needs_workflow:
        if workflow is None:
            raise WorkerSetupError(
                f"{item.who} {item.label}: the {plugin.label} needs the workflow"
            )
        kwargs["workflow"] = workflow
    return _construct(item, plugin, kwargs)


def build_components(
    profile: ProviderProfile,
    *,
    agent_override: AgentConfig | None = None,
    workflow: Workflow | None = None,
    profile_name: str | None = None,
    base: Pipeline | None = None,
    prewarmed_vad: vad.VAD | None = None,
    env: Mapping[str, str] | None = None,
) -> Pipeline:
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
    for item in items:
        built[item.slot] = _build_one(
            item, env=environ, workflow=workflow, prewarmed_vad=prewarmed_vad
        )
    logger.debug(
        "built components",
        extra={"profile": label, "agent": agent_label, "slots": [item.slot for item in items]},
    )
    return Pipeline(
        stt=built["stt"], llm=built["llm"], tts=built["tts"], vad=built["vad"], profile=label
    )


def agent_overrides(workflow: Workflow) -> dict[str, AgentConfig]:
    """Agents that override a component; the others simply use the call's components."""
    return {
        name: agent
        for name, agent in workflow.config.agents.items()
        if any(getattr(agent, slot) is not None for slot in OVERRIDABLE_SLOTS)
    }


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
