"""The stored models: strict on load, validated on update, JSON-encoded field by field."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from frontdesk.state import SCHEMA_VERSION, HandoffEntry, SessionState
from frontdesk.state.models import decode_meta, encode_meta, encode_meta_update


def state(**fields: object) -> SessionState:
    values: dict[str, object] = {
        "session_id": "call-1",
        "workflow": "support_line",
        "workflow_hash": "hash-a",
        "current_agent": "support",
        "created_at": 1.0,
        "updated_at": 2.0,
    }
    values.update(fields)
    return SessionState.model_validate(values)


def test_meta_encodes_one_json_field_per_attribute_and_decodes_back() -> None:
    original = state(
        caller_data={"name": "Zoë"},
        handoff_trail=[HandoffEntry(from_agent=None, to_agent="support", reason="r", at=1.0)],
        turns=3,
    )
    encoded = encode_meta(original)
    assert "items" not in encoded
    assert orjson.loads(encoded["schema_version"]) == SCHEMA_VERSION
    assert decode_meta(encoded) == original.meta


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("turns", b'"3"'),
        ("ended", b"1"),
        # caller data are JSON strings, numbers, booleans or lists of them (typed fields): an
        # object or a null is no caller-data value
        ("caller_data", b'{"a": {"b": 1}}'),
        ("caller_data", b'{"a": null}'),
        ("created_at", b'"x"'),
    ],
)
def test_decoding_refuses_to_coerce_wrong_types(field: str, raw: bytes) -> None:
    encoded = {**encode_meta(state()), field: raw}
    with pytest.raises(ValidationError):
        decode_meta(encoded)


def test_decoding_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown session fields"):
        decode_meta({**encode_meta(state()), "surprise": b"1"})


def test_meta_update_validates_names_and_types() -> None:
    assert encode_meta_update({"turns": 4, "current_agent": "billing"}) == {
        "turns": b"4",
        "current_agent": b'"billing"',
    }
    with pytest.raises(ValueError, match="unknown session field 'items'"):
        encode_meta_update({"items": []})
    with pytest.raises(ValueError, match="cannot be changed"):
        encode_meta_update({"created_at": 5.0})
    with pytest.raises(ValueError, match="'turns'"):
        encode_meta_update({"turns": "4"})
    with pytest.raises(ValueError, match="'turns'"):
        encode_meta_update({"turns": -1})


def test_handoff_entries_are_accepted_as_models_or_plain_dicts() -> None:
    entry = HandoffEntry(from_agent="a", to_agent="b", reason="r", at=1.0)
    as_model = encode_meta_update({"handoff_trail": [entry]})
    as_dict = encode_meta_update({"handoff_trail": [entry.model_dump()]})
    assert as_model == as_dict


def test_meta_view_leaves_items_out() -> None:
    full = state(items=[{"id": "i1"}])
    assert "items" not in full.meta.model_dump()
    assert full.meta.session_id == "call-1"
