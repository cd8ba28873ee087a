"""A loopback HTTP API for HTTP tools (records every request), and the tools example config."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from frontdesk.workflows.definition import Workflow, parse_workflow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tools"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))  # the example's acme_tools module, as a worker's PYTHONPATH


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAcmeApi:
    """``GET /outages/<account>`` → ``{"outage": {"summary": ...}}``, with faults on demand."""

    outages: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    """The next this many requests get HTTP 503."""
    hang: float = 0.0
    huge: bool = False
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def _outage(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if self.failures > 0:
            self.failures -= 1
            return web.json_response({"error": "busy"}, status=503)
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.huge:
            return web.json_response({"outage": {"summary": "x" * 200_000}})
        account = request.match_info["account"]
        summary = self.outages.get(account)
        return web.json_response(
            {
                "account": account,
                "outage": {"active": summary is not None, "summary": summary or "none"},
            }
        )

    async def __aenter__(self) -> FakeAcmeApi:
        app = web.Application()
        app.router.add_get("/outages/{account}", self._outage)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


TOOLS_CONFIG = EXAMPLE / "config.toml"


def tools_workflow(base_url: str, *, replace: tuple[tuple[str, str], ...] = ()) -> Workflow:
    """The tools example config with its API base URL pointed at ``base_url``."""
    text = TOOLS_CONFIG.read_text().replace("http://127.0.0.1:8099", base_url)
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new, 1)
    return parse_workflow(text, source="tools.toml")
