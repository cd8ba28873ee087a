"""Running the inspector: ``frontdesk inspect`` checks where it binds, then serves with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path

from frontdesk.errors import FrontdeskError
from frontdesk.workflows.definition import Workflow

from .app import InspectorSettings, create_app
from .source import open_source

logger = logging.getLogger(__name__)

TOKEN_ENV = "FRONTDESK_INSPECT_TOKEN"
DEFAULT_PORT = 8765


class InspectorSetupError(FrontdeskError):
    """``frontdesk inspect`` was asked to do something unsafe (bind beyond loopback without a token)."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token in force: ``--token``, else ``FRONTDESK_INSPECT_TOKEN``; required off loopback."""
    chosen = token or os.environ.get(TOKEN_ENV, "") or None
    if chosen is not None and len(chosen) < 16:
        raise InspectorSetupError(
            f"the inspector token is only {len(chosen)} characters long: use at least 16 "
            f"(e.g. {secrets.token_urlsafe(24)})"
        )
    if chosen is None and not is_loopback(host):
        raise InspectorSetupError(
            f"--host {host} is reachable from other machines: a token is required. Pass "
            f"--token (or set {TOKEN_ENV}) to a long random value, e.g. "
            f"--token {secrets.token_urlsafe(24)}"
        )
    return chosen


def serve(
    workflow: Workflow,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    allow_delete: bool = False,
    state_dir: Path | None = None,
) -> None:
    """Serve the inspector until interrupted."""
    import uvicorn

    token = resolve_token(host, token)
    settings = InspectorSettings(
        workflow=workflow,
        open_source=lambda: open_source(workflow, state_dir=state_dir),
        token=token,
        allow_delete=allow_delete,
    )
    app = create_app(settings)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    mode = "read-write (--allow-delete)" if allow_delete else "read-only"
    print(f"Frontdesk inspector on {url} ({mode}); Ctrl-C stops it.", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()


def cmd_inspect(args: argparse.Namespace, workflow: Workflow) -> int:
    """The ``frontdesk inspect`` command."""
    serve(
        workflow,
        host=args.host,
        port=args.port,
        token=args.token,
        allow_delete=args.allow_delete,
        state_dir=Path(args.state_dir) if args.state_dir else None,
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (its workflow, state settings)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--token", help=f"require this token (default ${TOKEN_ENV}); required off loopback"
    )
    parser.add_argument(
        "--allow-delete", action="store_true", help="allow deleting sessions (read-only otherwise)"
    )
    parser.add_argument(
        "--state-dir",
        help="the embedded Redis data folder to read (default: the one `frontdesk demo` writes)",
    )
