"""Live reload: a worker follows its config file without a restart.

Each job process keeps a :class:`WorkflowSource` for the file the worker was started with
(``--config`` / ``FRONTDESK_CONFIG``). Every call start asks it for the current workflow: it
hashes the file (at most once per ``min_interval``; a config is at most 1 MiB) and a changed
file is validated like ``frontdesk validate`` does (schema, graph, Python tools imported, the
worker's provider profile still there).

- A valid change becomes the workflow of *new* calls. Calls in progress keep the workflow
  object they started with; a caller who drops and resumes gets the version their session
  started with while it is kept (:mod:`frontdesk.state.versions`), else the rule for a changed
  workflow applies (:func:`frontdesk.state.resume.plan_resume`).
- An invalid change is logged once, with every problem's ``file:line key.path``, and never
  replaces the last good workflow.

Polling needs no dependency and works on every filesystem (network mounts and Kubernetes
ConfigMaps, whose files are swapped by symlink, included).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from frontdesk.agents.tools import check_python_tools
from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import KeyLocator, Workflow, parse_workflow

logger = logging.getLogger(__name__)

MIN_INTERVAL = 1.0
"""Seconds between two looks at the file (a call start in between reuses the last answer)."""


class WorkflowSource:
    """The last good workflow of one config file, reloaded when the file changes."""

    def __init__(
        self,
        path: str | Path,
        workflow: Workflow,
        *,
        profile_name: str | None = None,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self._good = workflow
        self._profile = profile_name
        self._min_interval = min_interval
        self._checked_at = float("-inf")
        # unknown: the first look reads the file (it may have changed since ``workflow`` was
        # read from it); an unchanged one is recognised by its content hash, silently
        self._digest: str | None = None
        self.rejected: list[str] = []
        """The problems of the latest rejected change (empty: none rejected since the last
        good one)."""

    @property
    def workflow(self) -> Workflow:
        """The last good workflow, without looking at the file."""
        return self._good

    def current(self) -> Workflow:
        """The workflow new calls use: the file's, if it changed and is valid; else the last good."""
        now = time.monotonic()
        if now - self._checked_at < self._min_interval:
            return self._good
        self._checked_at = now
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            if self._digest != "unreadable":
                logger.error("config file %s cannot be read (calls keep %s): %s", self.path,
                             self._good.identity, exc)  # fmt: skip
                self._digest = "unreadable"
            return self._good
        # the content, not the modification time: two writes within the clock's resolution
        # (or a ConfigMap's symlink swap) leave the mtime as it was
        digest = hashlib.sha256(raw).hexdigest()
        if digest != self._digest:
            self._digest = digest
            self._try(raw.decode("utf-8", "replace"))
        return self._good

    def _try(self, text: str) -> None:
        source = str(self.path)
        try:
            candidate = parse_workflow(text, source=source)
            problems = check_python_tools(candidate, KeyLocator(text))
            if self._profile and self._profile not in candidate.config.providers.profiles:
                problems.append(
                    f"{source} providers.{self._profile}: the profile this worker runs is gone "
                    "(restart the worker to change profiles)"
                )
            if problems:
                raise ConfigError(problems)
        except ConfigError as exc:
            self.rejected = list(exc.problems)
            logger.error(
                "config change in %s NOT applied (calls keep %s):\n%s",
                source,
                self._good.identity,
                "\n".join(exc.problems),
            )
            return
        previous, self._good, self.rejected = self._good, candidate, []
        if candidate.content_hash != previous.content_hash:
            logger.warning(
                "config reloaded from %s: %s -> %s (new calls use it; calls in progress keep "
                "their version)",
                source,
                previous.identity,
                candidate.identity,
            )


_sources: dict[str, WorkflowSource] = {}


def watched(path: str | None, workflow: Workflow, profile_name: str) -> Workflow:
    """The current workflow of this process's source for ``path`` (``workflow`` when there is
    no file to watch)."""
    if path is None:
        return workflow
    source = _sources.get(path)
    if source is None:
        source = WorkflowSource(
            path, workflow, profile_name=profile_name, min_interval=MIN_INTERVAL
        )
        _sources[path] = source
    return source.current()
