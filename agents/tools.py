"""The tools an agent's ``tools`` list names: Python tools and HTTP tools, as LiveKit tools.

- A **Python tool** (``"module:function"``) is imported once per process. A LiveKit
  ``@function_tool`` is used as is; a plain ``async def`` with type hints and a docstring is
  wrapped by LiveKit's own :func:`~livekit.agents.function_tool`. It receives the caller data as
  ``context: RunContext[CallerData]`` (``context.userdata.fields``), and may return a value for
  the model, record fields, or return an ``Agent`` to hand off (LiveKit's mechanism).
- An **HTTP tool** (``[tools.<name>]``) is a raw function tool without arguments: its templates
  are filled from the caller data and ``{env.X}`` from the environment; the call has a timeout,
  retries on timeouts, connection errors and 5xx, a bounded response, and stores the picked part
  of the JSON response in ``store_as``. A failure is spoken verbatim (``failure_line``), logged
  with the tool name and status (never the filled headers, query or body), and the call goes on.

Problems with a Python reference are :class:`~frontdesk.errors.ConfigError` lines naming the key
path (``agents.support.tools[0]: …``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import aiohttp
from livekit.agents import RunContext, StopResponse, ToolError, function_tool, llm
from livekit.agents.llm import FunctionTool, RawFunctionTool
from livekit.agents.llm.tool_context import is_function_tool, is_raw_function_tool

from frontdesk.agents.userdata import CallerData
from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import KeyLocator, Workflow, format_path
from frontdesk.workflows.definition.tools import TEMPLATE_FIELD, HttpTool, is_python_ref

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 500
"""A stored or returned tool result longer than this is cut (caller data are short facts)."""

AnyTool = FunctionTool[Any, Any] | RawFunctionTool[Any, Any]
_loaded: dict[str, AnyTool] = {}


class ToolFailure(Exception):
    """An HTTP tool's request failed; ``status`` is the HTTP status or a short reason."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


# --------------------------------------------------------------------------- Python tools


def _problem_with(reference: str) -> tuple[AnyTool | None, str | None]:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure of user code is a config problem
        return None, f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
    target = getattr(module, attribute, None)
    if target is None:
        public = sorted(
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and callable(value)
        )
        return None, (
            f"module {module_name!r} has no function {attribute!r} "
            f"(callables: {', '.join(public) or 'none'})"
        )
    if is_function_tool(target) or is_raw_function_tool(target):
        return target, None
    if not inspect.iscoroutinefunction(target):
        return None, f"{reference} must be an async function or a LiveKit @function_tool"
    if not inspect.getdoc(target):
        return None, f"{reference} needs a docstring (it is the model's description of the tool)"
    for parameter in inspect.signature(target).parameters.values():
        if parameter.annotation is inspect.Parameter.empty:
            return None, (
                f"{reference}: parameter {parameter.name!r} needs a type hint "
                "(the model's argument schema is built from them)"
            )
    try:
        tool = function_tool(target)
        llm.utils.function_arguments_to_pydantic_model(target)
    except Exception as exc:
        return None, f"{reference}: LiveKit cannot make a tool of it: {exc}"
    return tool, None


def python_tool(reference: str, path: str = "tools") -> AnyTool:
    """The LiveKit tool ``reference`` names; :class:`ConfigError` naming ``path`` if it cannot be."""
    if reference in _loaded:
        return _loaded[reference]
    tool, problem = _problem_with(reference)
    if tool is None:
        raise ConfigError([f"{path}: {problem}"])
    _loaded[reference] = tool
    return tool


def argument_names(tool: AnyTool) -> list[str]:
    """The model-given parameters of a Python tool (not its ``RunContext``)."""
    if is_raw_function_tool(tool):
        properties = tool.info.raw_schema.get("parameters", {}).get("properties", {})
        return list(properties)
    names: list[str] = []
    for parameter in inspect.signature(tool).parameters.values():
        annotation = parameter.annotation
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if "RunContext" in str(text) or "RunContext" in str(annotation):
            continue
        names.append(parameter.name)
    return names


def check_python_tools(workflow: Workflow, locator: KeyLocator | None = None) -> list[str]:
    """One line per Python tool reference that does not import or has a bad signature.

    With ``locator`` (the config text's) each line is ``file:line key.path: message``.
    """
    problems: list[str] = []
    for name, agent in workflow.config.agents.items():
        for index, reference in enumerate(agent.tools):
            if not is_python_ref(reference):
                continue
            path: tuple[str | int, ...] = ("agents", name, "tools", index)
            tool, problem = (
                (_loaded[reference], None) if reference in _loaded else _problem_with(reference)
            )
            if tool is None:
                assert problem is not None
                if problem.startswith("cannot import module") and "ModuleNotFoundError" in problem:
                    problem += " (is its folder on PYTHONPATH?)"
                if locator is not None:
                    problems.append(locator.format(workflow.source, path, problem))
                else:
                    problems.append(f"{workflow.source} {format_path(path)}: {problem}")
            else:
                _loaded[reference] = tool
    return problems


# --------------------------------------------------------------------------- HTTP tools


def fill(template: str, fields: dict[str, str], environ: dict[str, str] | None = None) -> str:
    """``template`` with ``{field}`` from caller data and ``{env.X}`` from the environment."""
    env = os.environ if environ is None else environ

    def value(match: Any) -> str:
        name = match.group(1)
        if name.startswith("env."):
            key = name.removeprefix("env.")
            if key not in env:
                raise ToolFailure(f"environment variable {key} is not set")
            return env[key]
        return fields[name]

    return TEMPLATE_FIELD.sub(value, template)


def pick(value: Any, path: str | None) -> Any:
    """The part of a JSON value at a dotted path (``outage.eta``, ``slots.0``)."""
    if path is None:
        return value
    for step in path.split("."):
        if isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            raise ToolFailure(f"the response has nothing at {path!r}")
    return value


def as_text(value: Any) -> str:
    """A picked result as caller-data text: strings as is, booleans 'true'/'false', else JSON."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = json.dumps(value, separators=(",", ":"))
    return text[:MAX_RESULT_CHARS]


@dataclass
class HttpToolRunner:
    """Runs one HTTP tool for one call's caller data."""

    name: str
    spec: HttpTool

    async def request(self, fields: dict[str, str]) -> str:
        """The picked result as text; :class:`ToolFailure` after the last failed attempt."""
        spec = self.spec
        missing = [name for name in spec.needed_fields() if name not in fields]
        if missing:
            raise ToolFailure(f"missing caller data: {', '.join(missing)}")
        url = fill(spec.url, fields)
        headers = {key: fill(value, fields) for key, value in spec.headers.items()}
        query = {key: fill(value, fields) for key, value in spec.query.items()}
        body = {key: fill(value, fields) for key, value in spec.body.items()} if spec.body else None
        last = "no attempt"
        timeout = aiohttp.ClientTimeout(total=spec.timeout)
        for attempt in range(spec.retries + 1):
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as client,
                    client.request(
                        spec.method, url, headers=headers, params=query, json=body
                    ) as response,
                ):
                    raw = await response.content.read(spec.max_bytes + 1)
                    if response.status >= 500:
                        last = f"HTTP {response.status}"
                        continue
                    if response.status >= 400:
                        raise ToolFailure(f"HTTP {response.status}")
                    if len(raw) > spec.max_bytes:
                        raise ToolFailure(f"response larger than {spec.max_bytes} bytes")
                    try:
                        decoded: Any = json.loads(raw) if raw.strip() else ""
                    except ValueError:
                        if spec.pick is not None:
                            raise ToolFailure("the response is not JSON") from None
                        decoded = raw.decode("utf-8", "replace")
                    return as_text(pick(decoded, spec.pick))
            except TimeoutError:
                last = f"timeout after {spec.timeout:g}s"
            except aiohttp.ClientError as exc:
                last = f"connection error ({type(exc).__name__})"
            if attempt < spec.retries:
                await asyncio.sleep(min(0.2 * (attempt + 1), 1.0))
        raise ToolFailure(last)

    async def run(self, data: CallerData) -> str | None:
        """Run and record: the result (stored in ``store_as``), or None after a logged failure."""
        data.tools_run = data.tools_run | {self.name}
        try:
            result = await self.request(data.fields)
        except ToolFailure as failure:
            logger.warning(
                "session %s: tool %s failed: %s", data.session_id, self.name, failure.status
            )
            return None
        if self.spec.store_as is not None:
            data.fields = {**data.fields, self.spec.store_as: result}
        logger.info("session %s: tool %s ok", data.session_id, self.name)
        return result


def make_http_tool(name: str, spec: HttpTool, *, on_stored: Any) -> RawFunctionTool[Any, Any]:
    """The model-callable tool of ``[tools.<name>]`` (no arguments: the caller data fill it)."""
    runner = HttpToolRunner(name, spec)
    schema = {
        "name": name,
        "description": spec.description,
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }

    async def call(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> str:
        data = context.userdata
        missing = [field for field in spec.needed_fields() if field not in data.fields]
        if missing:
            raise ToolError(
                f"{name} needs the caller's {', '.join(m.replace('_', ' ') for m in missing)} "
                "first: ask for it and record it."
            )
        result = await runner.run(data)
        if result is None:
            # spoken verbatim; no tool reply, so the model does not improvise the facts
            context.session.say(spec.failure_line)
            raise StopResponse()
        await on_stored(context)
        return result

    return function_tool(call, raw_schema=schema)


def agent_tools(workflow: Workflow, agent: str, *, on_stored: Any) -> list[llm.Tool]:
    """The LiveKit tools of ``agents.<agent>.tools``, in order."""
    tools: list[llm.Tool] = []
    for index, reference in enumerate(workflow.agent(agent).tools):
        if is_python_ref(reference):
            tools.append(python_tool(reference, f"{workflow.source} agents.{agent}.tools[{index}]"))
        else:
            tools.append(
                make_http_tool(reference, workflow.config.tools[reference], on_stored=on_stored)
            )
    return tools


def due_auto_tools(workflow: Workflow, agent: str, data: CallerData) -> list[HttpToolRunner]:
    """The ``auto`` HTTP tools of ``agent`` whose fields are all recorded and that have not run."""
    due: list[HttpToolRunner] = []
    for reference in workflow.agent(agent).tools:
        spec = workflow.config.tools.get(reference)
        if spec is None or not spec.auto or reference in data.tools_run:
            continue
        if all(field in data.fields for field in spec.needed_fields()):
            due.append(HttpToolRunner(reference, spec))
    return due
