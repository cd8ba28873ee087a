"""What ``validate`` adds to pydantic's own errors.

* :func:`unknown_key_message`: "unknown key" names the keys allowed in that table, read from the
  pydantic models (never a hand-kept list), with a "did you mean" for a near miss.
* :func:`salvage`: the parts of a config that did validate, so the cross-reference checks of
  :mod:`frontdesk.workflows.definition.graph` run even while the schema has errors. Pydantic's
  validation is not weakened: the config is validated as written first, and only the problems it
  reports are taken out (an optional key's bad value is dropped so its default applies; a missing
  or bad required text gets a placeholder) before the rest is validated again. Findings about
  what was taken out are left out, so every reported problem is about what the file says.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# --------------------------------------------------------------------------- allowed keys


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have (a union's members, None left out)."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _extra_type(model: type[BaseModel]) -> Any:
    """The type of a model's extra keys when it allows typed extras (``[providers]``)."""
    if model.model_config.get("extra") != "allow":
        return None
    try:
        return typing.get_type_hints(model).get("__pydantic_extra__")
    except Exception:  # unresolvable hints: no typed extras known
        return None


def _step(annotation: Any, part: str | int) -> Any:
    """The type one step (a key or an index) inside a value of ``annotation``; None: no such."""
    members = _members(annotation)
    for member in members:
        origin = typing.get_origin(member)
        if _is_model(member) and isinstance(part, str):
            info = member.model_fields.get(part)
            if info is not None:
                return info.annotation
            extra = _extra_type(member)
            if extra is not None:
                return _step(extra, part)
        elif origin is dict:
            return typing.get_args(member)[1]
        elif origin in (tuple, list) and isinstance(part, int):
            return typing.get_args(member)[0]
    if len(members) > 1 and isinstance(part, str):
        return annotation  # a union member's tag in the error location (``literal[...]``)
    return None


def model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model of the table at ``path`` (``("agents", "support")`` → ``AgentConfig``)."""
    annotation: Any = root
    for part in path:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    models = [member for member in _members(annotation) if _is_model(member)]
    return models[0] if len(models) == 1 else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of ``model`` may hold, in the order the model declares them."""
    return [
        info.alias or name for name, info in model.model_fields.items() if info.exclude is not True
    ]


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``known``, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key_message(root: type[BaseModel], path: Sequence[str | int]) -> str:
    """``unknown key (allowed: a, b, c; did you mean 'b'?)`` for the key at ``path``."""
    model = model_at(root, path[:-1])
    if model is None or not path:
        return "unknown key"
    allowed = allowed_keys(model)
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key (allowed: {', '.join(allowed)}{hint})"


def describe_error(error: Any, root: type[BaseModel]) -> str:
    """A pydantic error's message as Frontdesk words it (no "Value error, " prefix)."""
    if error["type"] == "extra_forbidden":
        return unknown_key_message(root, tuple(error["loc"]))
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


# --------------------------------------------------------------------------- salvage

MAX_ROUNDS = 50
"""Validation rounds :func:`salvage` tries before it gives up (each takes out what failed)."""
NAMED_TABLES = ("agents", "caller_data", "tools")
PLACEHOLDER = "salvage_placeholder"
"""The text put in for a missing or refused required text (a valid name, too); findings that
mention it are about the stand-in, not the file."""
"""Tables whose keys other parts of a config refer to by name."""


@dataclass
class Salvage(typing.Generic[M]):
    """The validated remainder of a broken config, and what was taken out to get it."""

    config: M | None
    touched: list[Path] = field(default_factory=list)
    """Key paths (of the file as written) whose value was dropped or replaced."""
    removed_names: set[str] = field(default_factory=set)
    """Agents, fields and tools taken out whole: findings naming them are not about the file."""
    removed_items: dict[Path, list[int]] = field(default_factory=dict)
    """For each array with elements taken out: the original index of each element left."""

    def original(self, path: Path) -> Path:
        """``path`` in the salvaged config → the same key path in the file as written."""
        out: list[str | int] = []
        for part in path:
            indices = self.removed_items.get(tuple(out))
            if isinstance(part, int) and indices is not None and part < len(indices):
                part = indices[part]
            out.append(part)
        return tuple(out)

    def is_about_removed(self, path: Path, message: str) -> bool:
        """Whether a finding at ``path`` concerns something salvage took out or made up."""
        if any(path[: len(touched)] == touched for touched in self.touched):
            return True
        if PLACEHOLDER in message or any(f"'{name}'" in message for name in self.removed_names):
            return True
        routes_changed = (
            self.removed_names
            or any(
                len(touched) >= 3 and touched[0] == "agents" and touched[2] == "handoffs"
                for touched in self.touched
            )
            or any(touched[:1] == ("workflow",) for touched in self.touched)
        )
        reachability = len(path) == 2 and path[0] == "agents"
        return bool(routes_changed and reachability)


def _walk(data: Any, path: Sequence[str | int]) -> list[Any]:
    """The containers along ``path`` that exist in ``data`` (``[data, data[p0], …]``)."""
    nodes = [data]
    for part in path:
        node = nodes[-1]
        in_table = isinstance(node, dict) and isinstance(part, str) and part in node
        in_array = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_table or in_array):
            break
        nodes.append(node[part])
    return nodes


def _placeholder(root: type[BaseModel], parent: Path, key: str) -> tuple[bool, Any]:
    """A stand-in for a missing required key: text for a text, an empty table for a table."""
    model = model_at(root, parent)
    info = model.model_fields.get(key) if model is not None else None
    if info is None:
        return False, None
    members = _members(info.annotation)
    if str in members:
        return True, PLACEHOLDER
    if any(_is_model(member) for member in members) or any(
        typing.get_origin(member) is dict for member in members
    ):
        return True, {}
    return False, None


def salvage(data: dict[str, Any], root: type[M]) -> Salvage[M]:
    """Validate ``data`` as ``root`` after taking out every part pydantic refuses.

    ``data`` (parsed TOML) is not changed. The result's ``config`` is None when nothing useful
    validates (e.g. the top level itself is refused).
    """
    work = copy.deepcopy(data)
    result: Salvage[M] = Salvage(config=None)
    patched: set[Path] = set()
    for _ in range(MAX_ROUNDS):
        try:
            result.config = root.model_validate(work)
            return result
        except ValidationError as exc:
            errors = exc.errors()
        except Exception:  # a validator that breaks on odd input: nothing to salvage
            return result
        changed = False
        for error in errors:
            outcome = _take_out(work, tuple(error["loc"]), error["type"], root, result, patched)
            changed |= outcome is not None
            if outcome == "shifted":
                break  # an array lost an element: later locations may have moved; next round
        if not changed:
            return result
    return result


def _take_out(
    work: dict[str, Any],
    loc: Path,
    kind: str,
    root: type[BaseModel],
    result: Salvage[Any],
    patched: set[Path],
) -> str | None:
    """Take out what one error refuses: None when nothing could be, else what was done
    (``"shifted"``: an array element went, so later indices moved)."""
    nodes = _walk(work, loc)
    depth = len(nodes) - 1  # how much of ``loc`` exists
    if depth == 0 and not (kind == "missing" and len(loc) == 1):
        return None  # the top level itself is refused
    if kind == "missing" and depth == len(loc) - 1:
        key = loc[-1]
        current = tuple(loc)
        if isinstance(key, str) and current not in patched:
            ok, value = _placeholder(root, loc[:-1], key)
            if ok and isinstance(nodes[-1], dict):
                nodes[-1][key] = value
                patched.add(current)
                result.touched.append(result.original(current))
                return "patched"
        depth -= 1  # the table lacking it goes instead
        if depth <= 0:
            return None
    target = tuple(loc[:depth])
    container, key = nodes[depth - 1], target[-1]
    original = result.original(target)
    outcome = "removed"
    if isinstance(container, dict) and isinstance(key, str) and key in container:
        del container[key]
    elif isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        indices = result.removed_items.setdefault(target[:-1], list(range(len(container))))
        del container[key]
        del indices[key]
        outcome = "shifted"
    else:
        return None
    result.touched.append(original)
    if len(original) == 2 and original[0] in NAMED_TABLES and isinstance(original[1], str):
        result.removed_names.add(original[1])
    return outcome


def salvaged_findings(
    data: dict[str, Any],
    root: type[M],
    check: Callable[[M], Sequence[Any]],
) -> list[Any]:
    """``check``'s findings (objects with ``path`` and ``message``) on what of ``data``
    validates, each at its key path in the file, leaving out those about what was taken out."""
    salvaged = salvage(data, root)
    if salvaged.config is None:
        return []
    try:
        findings = list(check(salvaged.config))
    except Exception:  # the checks assume a whole config; a partial one may surprise them
        logger.debug("cross-reference checks skipped on a partial config", exc_info=True)
        return []
    kept = []
    for finding in findings:
        path = salvaged.original(tuple(finding.path))
        if not salvaged.is_about_removed(path, finding.message):
            kept.append(type(finding)(path, *_rest(finding)))
    return kept


def _rest(finding: Any) -> tuple[Any, ...]:
    """A finding's fields after ``path`` (GraphIssue: message, is_error)."""
    values = [getattr(finding, f.name) for f in dataclasses.fields(finding)]
    return tuple(values[1:])
