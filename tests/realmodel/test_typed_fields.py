"""Typed caller data through the real OpenAI plugin: the record tool's JSON schema in the model
request carries the type and its constraints, and a typed value the model records is stored
typed (and shown typed in the next request's call-context block)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import loopback_workflow, open_call
from .loopback_llm import Answer, ToolCall

BOOKING = (Path(__file__).parents[1] / "flowdata" / "booking.toml").read_text()


def tool_schema(body: dict[str, Any], name: str) -> dict[str, Any]:
    (tool,) = [t["function"] for t in body.get("tools", []) if t["function"]["name"] == name]
    return tool


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
        for m in body["messages"]
        if m["role"] in ("system", "developer")
    )


def tool_results(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m["role"] == "tool"]


class Model:
    """A model that books a table: it hands off, then records what the script says, as JSON."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = list(records)

    def __call__(self, body: dict[str, Any]) -> Answer:
        names = {t["function"]["name"] for t in body.get("tools", [])}
        last = body["messages"][-1]
        if "transfer_to_bookings" in names and last["role"] == "user":
            return Answer(tool_calls=(ToolCall("transfer_to_bookings", {}),))
        if last["role"] == "user" and self.records and body.get("tool_choice") != "none":
            arguments = self.records.pop(0)
            (field,) = arguments
            return Answer(tool_calls=(ToolCall(f"record_{field}", arguments),))
        return Answer(text="Noted.")


async def test_the_record_schema_is_typed_and_a_typed_value_is_stored_typed(serve) -> None:
    model = Model([{"party_size": 13}, {"party_size": 4}, {"seating": "outside"}])
    async with serve(model) as server:
        workflow = loopback_workflow(server.base_url, text=BOOKING)
        async with open_call(workflow) as call:
            await call.session.run(user_input="I'd like to book a table")
            request = server.completions()[-1]
            party = tool_schema(request, "record_party_size")["parameters"]
            assert party["properties"]["party_size"]["type"] == "integer"
            assert party["properties"]["party_size"]["minimum"] == 1
            assert party["properties"]["party_size"]["maximum"] == 12
            seating = tool_schema(request, "record_seating")["parameters"]["properties"]
            assert seating["seating"]["enum"] == ["inside", "terrace"]
            assert "outside" in seating["seating"]["description"]  # the synonyms, for the model
            allergies = tool_schema(request, "record_allergies")["parameters"]["properties"]
            assert allergies["allergies"]["type"] == "array"
            assert allergies["allergies"]["maxItems"] == 5
            day = tool_schema(request, "record_day")["parameters"]["properties"]["day"]
            assert day["format"] == "date"

            await call.session.run(user_input="we are thirteen")
            refused = tool_results(server.completions()[-1])[-1]
            assert "the party size must be between 1 and 12" in refused
            assert "party_size" not in call.userdata.fields

            await call.session.run(user_input="four then")
            assert call.userdata.fields["party_size"] == 4
            assert type(call.userdata.fields["party_size"]) is int
            await call.session.run(user_input="outside please")
            assert call.userdata.fields["seating"] == "terrace"  # the synonym, normalised
            assert "- party_size: 4\n" in system_text(server.completions()[-1])
