"""Provider building: the plugin registry and the voice pipeline of a provider profile."""

from __future__ import annotations

from frontdesk.workflows.providers.build import (
    DEFAULT_KEY_ENV,
    OVERRIDABLE_SLOTS,
    PROFILE_ENV,
    SLOTS,
    EnvRequirement,
    active_profile,
    active_profile_name,
    agent_overrides,
    build_components,
    describe_component,
    ensure_env,
    key_env,
    load_vad,
    required_env,
)
from frontdesk.workflows.providers.registry import (
    PLUGINS,
    SETTING_KEYS,
    Plugin,
    Slot,
)

__all__ = [
    "DEFAULT_KEY_ENV",
    "OVERRIDABLE_SLOTS",
    "PLUGINS",
    "PROFILE_ENV",
    "SETTING_KEYS",
    "SLOTS",
    "EnvRequirement",
    "Plugin",
    "Slot",
    "active_profile",
    "active_profile_name",
    "agent_overrides",
    "build_components",
    "describe_component",
    "ensure_env",
    "key_env",
    "load_vad",
    "required_env",
]
