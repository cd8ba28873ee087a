"""``frontdesk worker <mode>``: every check that can fail before connecting, then LiveKit's CLI.

Everything plugs into LiveKit's own worker (``WorkerOptions`` run by ``cli.run_app``, so its modes
``dev``, ``start``, ``console``, ``connect`` and ``download-files`` all work).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from livekit.agents import cli

from frontdesk.agents.tools import check_python_tools
from frontdesk.errors import ConfigError, WorkerSetupError
from frontdesk.state.crypto import DATA_KEY_ENV, data_key_is_configured
from frontdesk.state.identity import SECRET_ENV, state_secret_is_configured
from frontdesk.workflows.definition import KeyLocator, Workflow, load_workflow
from frontdesk.workflows.providers import active_profile_name, ensure_env
from frontdesk.workflows.runtime import REDIS_URL_ENV
from frontdesk.workflows.worker.dispatch import short_repr
from frontdesk.workflows.worker.options import build_worker_options

LIVEKIT_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
"""What a worker needs to register with LiveKit (Cloud or a self-hosted livekit-server)."""

_CREDENTIAL_FLAGS = {
    "--url": "LIVEKIT_URL",
    "--api-key": "LIVEKIT_API_KEY",
    "--api-secret": "LIVEKIT_API_SECRET",
}
"""LiveKit's CLI flags that stand in for the variables (``start --url wss://…``)."""


def check_credentials(env: Mapping[str, str]) -> None:
    """Raise :class:`WorkerSetupError` naming every missing LiveKit variable (or a bad URL)."""
    missing = [name for name in LIVEKIT_ENV if not env.get(name, "").strip()]
    if missing:
        raise WorkerSetupError(
            f"LiveKit credentials missing: {', '.join(missing)} "
            "(set them in the environment, or pass --url/--api-key/--api-secret)"
        )
    url = urlparse(env["LIVEKIT_URL"].strip())
    if url.scheme not in ("ws", "wss", "http", "https") or not url.netloc:
        raise WorkerSetupError(
            f"LIVEKIT_URL must look like wss://<project>.livekit.cloud or ws://localhost:7880, "
            f"got {short_repr(env['LIVEKIT_URL'])}"
        )


LIVEKIT_MODES = ("console", "start", "dev", "connect", "download-files")
_NEEDS_LIVEKIT = frozenset({"start", "dev", "connect"})
_RUNS_CALLS = frozenset({"start", "dev", "connect", "console"})


def _mode(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _env_with_flags(argv: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the credentials given as LiveKit CLI flags (``--url X`` or ``--url=X``)."""
    merged = dict(env)
    for index, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        if flag in _CREDENTIAL_FLAGS:
            value = inline or (argv[index + 1] if index + 1 < len(argv) else "")
            if value and not value.startswith("-"):
                merged[_CREDENTIAL_FLAGS[flag]] = value
    return merged


def preflight(workflow: Workflow, mode: str | None, *, env: Mapping[str, str]) -> str:
    """Every check that can fail before the worker connects; returns the profile name.

    ``console`` and ``download-files`` need no LiveKit credentials (the console runs a local fake
    job); every mode that runs calls needs the profile's provider keys, and ``start`` (production)
    needs a configured Redis, because an unpersisted production call cannot resume.
    """
    if mode in _NEEDS_LIVEKIT:
        check_credentials(env)
    profile_name = active_profile_name(workflow, env=env)
    if mode in _RUNS_CALLS:
        profile = workflow.config.providers.profiles[profile_name]
        ensure_env(profile, profile_name=profile_name, workflow=workflow, env=env)
    if mode == "start" and not (
        env.get(REDIS_URL_ENV, "").strip() or workflow.config.state.redis_url.strip()
    ):
        raise WorkerSetupError(
            f"`worker start` needs Redis for resumable calls: set {REDIS_URL_ENV} or "
            f"state.redis_url in {workflow.source}"
        )
    if mode == "start":
        check_production_secrets(workflow, env)
    return profile_name


def check_production_secrets(workflow: Workflow, env: Mapping[str, str]) -> None:
    """``worker start`` refuses the built-in development secret and a missing data key.

    With the public development secret anyone who reads Redis can test phone numbers against
    the caller index (and forge resume tokens); without a data key, sensitive fields would be
    stored under a key derived from that secret.
    """
    problems = []
    if not state_secret_is_configured(env):
        problems.append(
            f"`worker start` needs {SECRET_ENV} (at least 16 random bytes, e.g. "
            "`openssl rand -hex 32`): without it the caller index and resume tokens use the "
            "public development secret"
        )
    sensitive = sorted(workflow.sensitive_fields)
    if sensitive and not data_key_is_configured(env):
        problems.append(
            f"`worker start` needs {DATA_KEY_ENV} (`openssl rand -base64 32`): "
            f"{', '.join(sensitive)} {'is' if len(sensitive) == 1 else 'are'} marked sensitive "
            f"in {workflow.source} and are stored encrypted with it"
        )
    if problems:
        raise WorkerSetupError("\n".join(problems))


def run_worker(argv: list[str], workflow_path: str | None) -> int:
    """``frontdesk worker <LiveKit mode> [options]``: check, then hand over to LiveKit's CLI.

    ``argv`` is what follows ``worker`` (``start``, ``dev``, ``console --text``, ``--help``…).
    Setup problems raise :class:`WorkerSetupError` / :class:`ConfigError` before anything
    connects; LiveKit's own exit code is returned.
    """
    workflow = load_workflow(workflow_path)
    mode = _mode(argv)
    wants_help = "--help" in argv or mode is None
    if wants_help:
        profile_name = _profile_for_help(workflow)
    else:
        profile_name = preflight(workflow, mode, env=_env_with_flags(argv, os.environ))
        if mode in _RUNS_CALLS:
            # a Python tool that does not import would fail every call: fail here instead
            try:
                locator: KeyLocator | None = KeyLocator(Path(workflow.source).read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                locator = None
            problems = check_python_tools(workflow, locator)
            if problems:
                raise ConfigError(problems)
    options = build_worker_options(
        workflow,
        profile_name=profile_name,
        config_path=str(Path(workflow_path).resolve()) if workflow_path else None,
    )
    saved_argv = sys.argv
    sys.argv = ["frontdesk worker", *argv]
    try:
        cli.run_app(options)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved_argv
    return 0


def _profile_for_help(workflow: Workflow) -> str:
    """Help must work even with a bad ``FRONTDESK_PROFILE``: nothing runs."""
    try:
        return active_profile_name(workflow)
    except WorkerSetupError:
        return "offline"
