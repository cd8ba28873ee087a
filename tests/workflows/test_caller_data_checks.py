"""Caller data is checked against its field's pattern, in full, when recorded and when resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.workflows.definition import CallerField, Workflow, load_workflow
from frontdesk.workflows.runtime import valid_caller_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


@pytest.mark.parametrize("value", ["AC-48213", " AC-48213 "])
def test_a_value_matching_the_pattern_in_full_is_accepted(value: str) -> None:
    assert CallerField(description="account", pattern=r"AC-\d{5}").accepts(value)


@pytest.mark.parametrize("value", ["AC-482131", "xAC-48213", "my AC-48213 please", "AC-4821", ""])
def test_a_pattern_must_match_the_whole_value_not_a_part_of_it(value: str) -> None:
    assert not CallerField(description="account", pattern=r"AC-\d{5}").accepts(value)


def test_a_field_without_pattern_accepts_any_non_blank_value() -> None:
    field = CallerField(description="a name")
    assert field.accepts("Ada Lovelace")
    assert not field.accepts("   ")


def test_stored_caller_data_is_kept_only_when_declared_and_still_matching(
    workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    stored = {
        "account_number": "AC-48213",  # declared, matches: kept
        "postcode": "941030",  # declared, matches only in part: dropped
        "favourite_colour": "blue",  # no longer declared: dropped
    }
    with caplog.at_level("WARNING", logger="frontdesk.workflows.runtime.session"):
        kept = valid_caller_data(workflow, stored, session_id="s-1")
    assert kept == {"account_number": "AC-48213"}
    dropped = sorted(r.getMessage() for r in caplog.records)
    assert dropped == [
        "session s-1: stored caller data 'favourite_colour' dropped on resume",
        "session s-1: stored caller data 'postcode' dropped on resume",
    ]
