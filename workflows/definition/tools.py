"""``[tools.<name>]`` (HTTP tools) and ``agents.<a>.tools`` references, and their checks.

An agent's ``tools`` list names either a Python tool (``"module:function"``: a LiveKit
``@function_tool`` or a plain typed async function, imported by
:mod:`frontdesk.agents.tools`) or an HTTP tool declared in ``[tools.<name>]``. An HTTP tool's
``url``, ``headers``, ``query`` and ``body`` are templates: ``{field}`` is filled from the
caller data, ``{env.NAME}`` from the worker's environment (secrets: never logged, never stored).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from frontdesk.workflows.definition import templates
from frontdesk.workflows.definition.durations import Duration

PYTHON_REF = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
"""``package.module:function``."""
TEMPLATE_FIELD = templates.PLACEHOLDER
"""``{account_number}``, ``{field|default}`` or ``{env.ACME_TOKEN}`` inside a template (the one
placeholder syntax: :mod:`frontdesk.workflows.definition.templates`)."""
MAX_RESPONSE_BYTES = 1024 * 1024


def is_python_ref(reference: str) -> bool:
    return PYTHON_REF.match(reference) is not None


def template_names(template: str) -> list[str]:
    """Every ``{name}`` a template uses, in order (``env.X`` included)."""
    return templates.names(template)


class HttpTool(BaseModel):
    """``[tools.<name>]``: a tool that calls an HTTP API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(
        min_length=1, max_length=2000, description="What the tool does; the model's tool doc."
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="GET", description="HTTP method."
    )
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="URL template, e.g. 'https://api.acme.test/outages/{account_number}'.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Header templates, e.g. Authorization = 'Bearer {env.ACME_TOKEN}'.",
    )
    query: dict[str, str] = Field(default_factory=dict, description="Query-parameter templates.")
    body: dict[str, str] | None = Field(
        default=None, description="JSON body templates (an object of strings), for POST/PUT/PATCH."
    )
    timeout: Duration = Field(default=5.0, gt=0, le=60, description="Seconds per attempt.")
    retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Extra attempts after a timeout, a connection error or a 5xx.",
    )
    store_as: str | None = Field(
        default=None,
        description="Caller-data field the result is recorded in (declared in [caller_data]).",
    )
    pick: str | None = Field(
        default=None,
        max_length=200,
        description="Dotted path into the JSON response, e.g. 'outage.eta' or 'slots.0'; "
        "unset: the whole body.",
    )
    max_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        le=MAX_RESPONSE_BYTES,
        description="A longer response is a failure (bounded memory per call).",
    )
    auto: bool = Field(
        default=False,
        description="Run by Frontdesk (not the model) as soon as every caller-data field its "
        "templates need is recorded, before the agent's next reply; once per call.",
    )
    failure_line: str = Field(
        default="I'm sorry, I can't check that right now.",
        min_length=1,
        max_length=2000,
        description="Spoken verbatim when the call fails (after retries); the call goes on.",
    )

    @field_validator("pick")
    @classmethod
    def _pick_path(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", value):
            raise ValueError(f"{value!r} is not a dotted path such as 'outage.eta' or 'slots.0'")
        return value

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path inside the tool, template text) of every template."""
        found: list[tuple[tuple[str | int, ...], str]] = [(("url",), self.url)]
        found += [(("headers", key), value) for key, value in self.headers.items()]
        found += [(("query", key), value) for key, value in self.query.items()]
        found += [(("body", key), value) for key, value in (self.body or {}).items()]
        return found

    def needed_fields(self) -> list[str]:
        """Caller-data fields the templates cannot do without (``env.`` names and placeholders
        with a default left out), in order, once each."""
        names: list[str] = []
        for _, template in self.templates():
            for name in templates.required_names(template):
                if not name.startswith("env.") and name not in names:
                    names.append(name)
        return names


class ToolIssue(BaseModel):
    path: tuple[str | int, ...]
    message: str


def check_tools(
    tools: dict[str, HttpTool], agents: dict[str, tuple[str, ...]], fields: list[str]
) -> list[ToolIssue]:
    """Cross-references of tools: agents name declared tools, templates and ``store_as`` name
    declared caller-data fields, ``{env.X}`` only in headers, query and body (never in the URL
    path, where it would be logged)."""
    issues: list[ToolIssue] = []
    for agent, references in agents.items():
        for index, reference in enumerate(references):
            path: tuple[str | int, ...] = ("agents", agent, "tools", index)
            if is_python_ref(reference):
                continue
            if reference not in tools:
                known = ", ".join(sorted(tools)) or "none declared"
                issues.append(
                    ToolIssue(
                        path=path,
                        message=f"unknown tool {reference!r}: use 'module:function' for a Python "
                        f"tool or the name of a [tools.<name>] table (declared: {known})",
                    )
                )
    for name, tool in tools.items():
        for where, template in tool.templates():
            for used in template_names(template):
                if used.startswith("env."):
                    if where == ("url",):
                        issues.append(
                            ToolIssue(
                                path=("tools", name, *where),
                                message=f"{{{used}}} may not be in the url (it would be logged): "
                                "put secrets in headers, query or body",
                            )
                        )
                elif used not in fields:
                    issues.append(
                        ToolIssue(
                            path=("tools", name, *where),
                            message=f"unknown caller-data field {{{used}}} (declared: "
                            f"{', '.join(fields) or 'none'})",
                        )
                    )
        if tool.store_as is not None and tool.store_as not in fields:
            issues.append(
                ToolIssue(
                    path=("tools", name, "store_as"),
                    message=f"unknown caller-data field {tool.store_as!r} (declare it in "
                    "[caller_data])",
                )
            )
        if tool.body is not None and tool.method == "GET":
            issues.append(
                ToolIssue(
                    path=("tools", name, "body"), message="a GET request has no body: use query"
                )
            )
    return issues
