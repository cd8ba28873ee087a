"""Per-agent provider overrides have their keys checked at start, like the profile's own."""

from __future__ import annotations

import pytest

from frontdesk.errors import WorkerSetupError
from frontdesk.workflows.providers import ensure_env
from frontdesk.workflows.worker import preflight

from .conftest import LIVEKIT_KEYS, PLACEHOLDER_KEYS, with_extra

CARTESIA_VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091"
SALES_ON_CARTESIA = f'[agents.sales.tts]\nprovider = "cartesia"\nvoice = "{CARTESIA_VOICE}"\n'


def keys_without(*missing: str) -> dict[str, str]:
    return {k: v for k, v in {**PLACEHOLDER_KEYS, **LIVEKIT_KEYS}.items() if k not in missing}


def test_a_missing_key_of_an_agent_override_stops_the_start_check() -> None:
    overriding = with_extra(SALES_ON_CARTESIA)
    budget = overriding.config.providers.profiles["budget"]  # deepgram + openai: no cartesia
    env = keys_without("CARTESIA_API_KEY")
    ensure_env(budget, profile_name="budget", workflow=with_extra(""), env=env)  # no override: ok
    with pytest.raises(WorkerSetupError) as raised:
        ensure_env(budget, profile_name="budget", workflow=overriding, env=env)
    assert (
        str(raised.value) == "profile 'budget' agent 'sales' tts (cartesia) needs CARTESIA_API_KEY"
    )


@pytest.mark.parametrize("mode", ["start", "dev", "console"])
def test_the_worker_refuses_to_run_calls_without_an_agent_overrides_key(mode: str) -> None:
    overriding = with_extra(SALES_ON_CARTESIA)
    env = {
        **keys_without("CARTESIA_API_KEY"),
        "FRONTDESK_PROFILE": "budget",
        "FRONTDESK_REDIS_URL": "redis://127.0.0.1:1",  # `start` needs one configured
        "FRONTDESK_STATE_SECRET": "a-production-secret-of-32-bytes!",  # and a real secret
        "FRONTDESK_DATA_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",  # sensitive fields
    }
    with pytest.raises(
        WorkerSetupError, match=r"agent 'sales' tts \(cartesia\) needs CARTESIA_API_KEY"
    ):
        preflight(overriding, mode, env=env)
    assert preflight(overriding, mode, env={**env, "CARTESIA_API_KEY": "ca-x"}) == "budget"


def test_the_start_check_refuses_a_provider_that_cannot_fill_its_slot() -> None:
    """Checked before any key: the worker must not start on a config it cannot build."""
    from frontdesk.errors import ConfigError

    from .conftest import variant

    wrong = variant(
        'stt = { provider = "deepgram", model = "nova-3", language = "en" }',
        'stt = { provider = "cartesia", model = "nova-3" }',
    )
    budget = wrong.config.providers.profiles["budget"]
    with pytest.raises(ConfigError, match=r"providers.budget.stt.provider: 'cartesia' cannot be"):
        ensure_env(budget, profile_name="budget", workflow=wrong, env=keys_without())


def test_only_agents_that_override_a_component_have_their_own_pipeline() -> None:
    from frontdesk.workflows.providers import agent_overrides

    assert agent_overrides(with_extra("")) == {}
    assert list(agent_overrides(with_extra(SALES_ON_CARTESIA))) == ["sales"]
