"""The inspector's ASGI app (Starlette): sessions, one session, the workflow, and a JSON API.

Routes:

* ``/`` — the sessions list (``?q=`` search, ``?state=`` filter); ``inspector.js`` polls
  ``/api/sessions`` every two seconds and updates it while calls run;
* ``/sessions/{id}`` — transcript with handoff markers, tool calls, caller data, timings,
  connections and their metrics; ``/sessions/{id}/export.json`` the stored session as JSON;
  ``/sessions/{id}/delete`` (GET: a confirmation page, POST: delete) only with ``allow_delete``;
* ``/workflow`` — the graph as SVG, validation warnings, per-route handoff counts;
* ``/api/sessions``, ``/api/sessions/{id}``, ``/api/workflow`` — the same as JSON.

With a ``token`` every request needs it (``Authorization: Bearer``, or ``?token=`` once,
which sets a same-site cookie). Responses carry a Content-Security-Policy that allows scripts
and styles from the app only.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from frontdesk.errors import SessionNotFoundError, StateError
from frontdesk.state.models import SessionState
from frontdesk.workflows.definition import Workflow, check_graph

from . import pages
from .graph_svg import render_svg
from .source import RedisSource
from .views import build_page, route_counts

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
TOKEN_COOKIE = "frontdesk_inspector_token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

SourceOpener = Callable[[], contextlib.AbstractAsyncContextManager[RedisSource]]


@dataclass
class InspectorSettings:
    """How the app behaves: what it shows, who may see it, whether it may delete."""

    workflow: Workflow
    open_source: SourceOpener
    token: str | None = None
    allow_delete: bool = False
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class _Security(BaseHTTPMiddleware):
    def __init__(self, app: Any, settings: InspectorSettings) -> None:
        super().__init__(app)
        self._settings = settings

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = self._settings.token
        response: Response
        if token is not None:
            given = request.query_params.get("token")
            header = request.headers.get("authorization", "")
            cookie = request.cookies.get(TOKEN_COOKIE, "")
            bearer = header[7:] if header.lower().startswith("bearer ") else ""
            if given is not None and hmac.compare_digest(given.encode(), token.encode()):
                # Exchange the token in the URL for a cookie, and drop it from the address bar.
                response = RedirectResponse(request.url.remove_query_params("token"), 303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
                return self._headers(response)
            if not any(
                value and hmac.compare_digest(value.encode(), token.encode())
                for value in (bearer, cookie)
            ):
                return self._headers(
                    Response(
                        "token required: open the URL printed by `frontdesk inspect` "
                        "(it carries ?token=…) or send Authorization: Bearer <token>\n",
                        status_code=401,
                        media_type="text/plain",
                    )
                )
        response = await call_next(request)
        return self._headers(response)

    @staticmethod
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def create_app(settings: InspectorSettings) -> Starlette:
    """The inspector app for ``settings``; the store is opened in the app's lifespan."""
    workflow = settings.workflow
    config = workflow.config
    holder: dict[str, RedisSource] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with settings.open_source() as source:
            holder["source"] = source
            yield

    def source() -> RedisSource:
        return holder["source"]

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status)

    def unavailable(exc: Exception) -> Response:
        logger.warning("inspector: %s", exc)
        return html(
            pages.message_page("State store unavailable", str(exc), where=source().where), 503
        )

    async def sessions(request: Request) -> Response:
        try:
            rows = await source().rows()
        except StateError as exc:
            return unavailable(exc)
        return html(
            pages.sessions_page(
                rows,
                query=request.query_params.get("q", ""),
                state=request.query_params.get("state", ""),
                where=source().where,
            )
        )

    async def api_sessions(request: Request) -> Response:
        try:
            rows = await source().rows()
        except StateError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        query = request.query_params.get("q", "")
        state = request.query_params.get("state", "")
        now = time.time()
        shown = [r for r in rows if r.matches(query) and (not state or r.state == state)]
        return JSONResponse(
            {
                "generated_at": now,
                "total": len(rows),
                "states": {
                    s: sum(1 for r in rows if r.state == s) for s in {r.state for r in rows}
                },
                "sessions": [row.as_json(now) for row in shown],
            }
        )

    async def _state_of(session_id: str) -> str:
        for row in await source().rows():
            if row.session_id == session_id:
                return row.state
        return "?"

    async def session(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        try:
            state = await source().load(session_id)
        except SessionNotFoundError:
            return await _missing_or_quarantined(session_id)
        except StateError as exc:
            if "invalid session id" in str(exc):
                return html(
                    pages.message_page("No such session", str(exc), where=source().where), 404
                )
            return await _missing_or_quarantined(session_id)
        page = build_page(state, config)
        return html(
            pages.session_page(
                page,
                config=config,
                row_state=await _state_of(session_id),
                allow_delete=settings.allow_delete,
                where=source().where,
            )
        )

    async def _missing_or_quarantined(session_id: str) -> Response:
        try:
            meta = await source().quarantined_meta(session_id)
        except StateError as exc:
            return unavailable(exc)
        if meta.get("_exists"):
            return html(
                pages.quarantined_page(
                    session_id, meta, where=source().where, prefix=source().store.key_prefix
                )
            )
        return html(
            pages.message_page(
                "No such session", f"nothing is stored under {session_id!r}", where=source().where
            ),
            404,
        )

    async def _stored(request: Request) -> SessionState | Response:
        """The session the path names, or the JSON 404 the API answers when it cannot load."""
        try:
            return await source().load(request.path_params["session_id"])
        except StateError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    async def export(request: Request) -> Response:
        state = await _stored(request)
        if isinstance(state, Response):
            return state
        return Response(
            state.model_dump_json(indent=2),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="session-{quote(state.session_id)}.json"'
            },
        )

    async def api_session(request: Request) -> Response:
        state = await _stored(request)
        if isinstance(state, Response):
            return state
        session_id = state.session_id
        page = build_page(state, config)
        return JSONResponse(
            {
                "session_id": state.session_id,
                "state": await _state_of(session_id),
                "workflow": state.workflow,
                "current_agent": state.current_agent,
                "turns": state.turns,
                "caller_data": page.caller_data,
                "entries": [
                    {k: v for k, v in vars(entry).items() if v not in (None, "", False)}
                    for entry in page.entries
                ],
            }
        )

    async def delete(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        if not settings.allow_delete:
            return html(
                pages.message_page(
                    "Read-only",
                    "this inspector is read-only: start it with --allow-delete to delete sessions",
                    where=source().where,
                ),
                403,
            )
        if request.method == "GET":
            return html(
                pages.confirm_delete_page(session_id, csrf=settings.csrf, where=source().where)
            )
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body[:8192].decode("utf-8", "replace")).items()}
        csrf = form.get("csrf", "")
        if (
            not hmac.compare_digest(csrf.encode(), settings.csrf.encode())
            or form.get("confirm", "") != session_id
        ):
            return html(
                pages.message_page(
                    "Not deleted",
                    "the confirmation did not match: use the Delete button of the session page",
                    where=source().where,
                ),
                400,
            )
        try:
            await source().delete(session_id)
        except StateError as exc:
            return unavailable(exc)
        logger.warning("inspector: session %s deleted", session_id)
        return RedirectResponse("/", status_code=303)

    async def _workflow_data() -> tuple[Any, int, list[tuple[str | None, str]]]:
        trails = await source().trails(workflow.name)
        counts = route_counts(trails)
        warnings: list[tuple[str | None, str]] = []
        for issue in check_graph(config):
            agent = (
                str(issue.path[1]) if len(issue.path) > 1 and issue.path[0] == "agents" else None
            )
            warnings.append((agent, issue.message))
        for message in workflow.warnings:
            if not any(message.endswith(text) for _, text in warnings):
                warnings.append((None, message))
        return counts, len(trails), warnings

    async def workflow_view(request: Request) -> Response:
        try:
            counts, counted, warnings = await _workflow_data()
        except StateError as exc:
            return unavailable(exc)
        by_agent: dict[str, list[str]] = {}
        for agent, message in warnings:
            if agent is not None:
                by_agent.setdefault(agent, []).append(message)
        svg = render_svg(
            config,
            counts=counts,
            warnings=by_agent,
            agent_classes={name: pages.agent_class(config, name) for name in config.agents},
        )
        return html(
            pages.workflow_page(
                config,
                svg=svg,
                identity=workflow.identity,
                source=str(workflow.source),
                warnings=warnings,
                counts=counts,
                sessions_counted=counted,
                where=source().where,
            )
        )

    async def api_workflow(request: Request) -> Response:
        try:
            counts, counted, warnings = await _workflow_data()
        except StateError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(
            {
                "workflow": workflow.name,
                "identity": workflow.identity,
                "agents": list(config.agents),
                "routes": [
                    {
                        "from": name,
                        "to": route.to,
                        "when": route.when,
                        "context": route.context,
                        "taken": counts.get((name, route.to), 0),
                    }
                    for name, agent in config.agents.items()
                    for route in agent.handoffs
                ],
                "sessions_counted": counted,
                "warnings": [{"agent": agent, "message": message} for agent, message in warnings],
            }
        )

    routes = [
        Route("/", sessions),
        Route("/api/sessions", api_sessions),
        Route("/api/sessions/{session_id}", api_session),
        Route("/api/workflow", api_workflow),
        Route("/sessions/{session_id}", session),
        Route("/sessions/{session_id}/export.json", export),
        Route("/sessions/{session_id}/delete", delete, methods=["GET", "POST"]),
        Route("/workflow", workflow_view),
        Route("/favicon.ico", lambda _: RedirectResponse("/static/favicon.svg", 301)),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_Security, settings=settings)],
    )
