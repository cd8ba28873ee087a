"""The one exception hierarchy of Frontdesk.

Every error a user can meet derives from :class:`FrontdeskError`; its message says what is wrong
and where (config key path and line, scenario turn, session id) so the CLI can print it as is and
exit with :attr:`FrontdeskError.exit_code`, never with a traceback.
"""

from __future__ import annotations


class FrontdeskError(Exception):
    """Base of every error Frontdesk raises on purpose."""

    exit_code: int = 1


class ConfigError(FrontdeskError):
    """A workflow config is invalid. ``problems`` holds one line per problem found."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ScenarioError(FrontdeskError):
    """A scenario file is malformed (key path named in the message)."""

    exit_code = 2


class StateError(FrontdeskError):
    """Session state could not be read or written."""


class StateUnavailableError(StateError):
    """Redis cannot be reached right now; the call may continue unpersisted."""


class StaleOwnerError(StateError):
    """A write carried a fencing token older than the session's: another worker owns it now."""


class CorruptStateError(StateError):
    """A stored session cannot be decoded (bad JSON, wrong types, unknown schema version)."""


class SessionNotFoundError(StateError):
    """No stored session has the given id."""


class WorkerSetupError(FrontdeskError):
    """The LiveKit worker cannot start: a credential, provider key or plugin is missing."""

    exit_code = 2
