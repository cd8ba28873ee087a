"""The agents suite's sessions (real ``AgentSession``s in text mode on the offline brain)."""

from tests.agents.conftest import open_session

__all__ = ["open_session"]
