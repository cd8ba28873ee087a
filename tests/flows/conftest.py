"""The flows suite opens sessions as the agents suite does (real ``AgentSession``s in text mode,
driven by the offline brain): the same fixture, not a copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.workflows.definition import Workflow, load_workflow, parse_workflow
from tests.agents.conftest import OpenSession, open_session

__all__ = ["CLINIC", "OpenSession", "clinic", "clinic_variant", "open_session"]

CLINIC = Path(__file__).with_name("clinic.toml")
"""A patient-intake flow: a guarded route, a condition, an automatic step, a final agent."""


@pytest.fixture(scope="session")
def clinic() -> Workflow:
    return load_workflow(CLINIC)


def clinic_variant(old: str, new: str) -> Workflow:
    """The clinic flow with one textual change (a test that needs a variant)."""
    text = CLINIC.read_text()
    assert old in text, f"{old!r} is not in {CLINIC}"
    return parse_workflow(text.replace(old, new, 1), source="clinic-variant.toml")
