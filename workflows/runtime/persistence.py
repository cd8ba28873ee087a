"""Opening the state store a command or a worker uses: a configured Redis, or the embedded one.

The URL comes from ``FRONTDESK_REDIS_URL``, else ``[state] redis_url``. When neither is set,
commands that run calls locally (``demo``, ``chat``, ``simulate``) start a private
``redis-server`` (:class:`~frontdesk.state.embedded.EmbeddedRedis`): real Redis, never a fake.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from frontdesk.errors import StateError
from frontdesk.state.attempts import RedisAttemptCounter
from frontdesk.state.connection import connect_redis
from frontdesk.state.crypto import DATA_KEY_ENV, DataKeyError, DataKeys
from frontdesk.state.durability import with_durability
from frontdesk.state.identity import caller_secret_from_env, previous_secrets_from_env
from frontdesk.state.local_dir import local_redis
from frontdesk.state.redis_store import AsyncRedisClient, RedisSessionStore
from frontdesk.state.versions import RedisWorkflowVersions
from frontdesk.workflows.definition import StateSection, Workflow
from frontdesk.workflows.runtime.session import Persistence

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "FRONTDESK_REDIS_URL"


def configured_redis_url(workflow: Workflow) -> str:
    """The Redis URL in force: the environment first, then config; '' means none."""
    return os.environ.get(REDIS_URL_ENV, "").strip() or workflow.config.state.redis_url.strip()


def connect_state_redis(url: str, settings: StateSection) -> AsyncRedisClient:
    """A client for ``url`` in the deployment ``[state]`` names (standalone, Sentinel, Cluster)."""
    return connect_redis(
        url,
        mode=settings.mode,
        sentinels=settings.sentinels,
        sentinel_service=settings.sentinel_service,
    )


@contextlib.asynccontextmanager
async def open_persistence(
    workflow: Workflow, *, embedded_dir: Path | None = None, allow_embedded: bool = True
) -> AsyncIterator[Persistence]:
    """Yield the :class:`Persistence` of ``workflow``, starting an embedded server if needed.

    ``embedded_dir`` keeps the embedded server's AOF files there (so state outlives the
    command); without it they live in a temporary folder removed afterwards.
    """
    settings = workflow.config.state
    url = configured_redis_url(workflow)
    # A private embedded server lives and dies with the command: no warning about its secret.
    secret = caller_secret_from_env(warn=bool(url))
    async with contextlib.AsyncExitStack() as stack:
        if not url:
            if not allow_embedded:
                raise StateError(
                    f"no Redis configured: set {REDIS_URL_ENV} or [state] redis_url in {workflow.source}"
                )
            url = await stack.enter_async_context(local_redis(embedded_dir))
            logger.info("using an embedded redis-server at %s", url)
        client = connect_state_redis(url, settings)
        stack.push_async_callback(client.aclose)
        store = RedisSessionStore.from_settings(settings, client=client, caller_secret=secret)
        yield Persistence(
            store=with_durability(store, client, settings),
            settings=settings,
            caller_secret=secret,
            previous_secrets=previous_secrets_from_env(),
            attempts=RedisAttemptCounter(client, key_prefix=settings.key_prefix),
            data_keys=data_keys(workflow, secret),
            versions=RedisWorkflowVersions(
                client, key_prefix=settings.key_prefix, ttl=settings.ttl
            ),
        )


def data_keys(workflow: Workflow, secret: bytes) -> DataKeys:
    """``FRONTDESK_DATA_KEY``, or a development key derived from the secret (warned about)."""
    try:
        keys = DataKeys.from_env(secret)
    except DataKeyError as exc:
        raise StateError(str(exc)) from None
    if keys.development and workflow.sensitive_fields:
        logger.warning(
            "%s is not set: sensitive fields (%s) are encrypted with a key derived from the "
            "caller-index secret; set %s in production",
            DATA_KEY_ENV,
            ", ".join(sorted(workflow.sensitive_fields)),
            DATA_KEY_ENV,
        )
    return keys
