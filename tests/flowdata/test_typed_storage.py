"""Typed caller data at rest: stored in a real redis-server with its JSON type, resumed typed,
shown typed by ``sessions show --json``, and a sensitive value beside typed ones still sealed."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from frontdesk.state import RedisSessionStore
from frontdesk.state.crypto import DataKeys
from frontdesk.workflows.cli.render import session_json
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Persistence, build_transcript, start_call
from frontdesk.workflows.runtime.session import open_state
from tests.reliability.support import dump_keyspace
from tests.security.support import SECRET, persistence, said

CARD = "4111222233334444"
NUMBER = "+15551230000"


def booking_with_card() -> Workflow:
    text = (Path(__file__).with_name("booking.toml")).read_text()
    text = text.replace(
        'collects = ["party_size", "day", "arrival", "phone", "seating", "highchair", "allergies"]',
        'collects = ["party_size", "day", "highchair", "card"]',
    )
    # the security code stays declared sensitive (not collected here): its 3-digit pattern
    # seals every stored text holding three digits, never an id (the session id has digits)
    return parse_workflow(text + '\n[state.resume]\ntrust = "caller_id"\n', source="b.toml")


async def test_typed_values_are_stored_resumed_and_shown_typed_and_the_card_stays_sealed(
    redis_client: Any,
) -> None:
    workflow = booking_with_card()
    store = RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=SECRET
    )
    keys = DataKeys.parse(base64.b64encode(os.urandom(32)).decode())
    p: Persistence = replace(persistence(store, redis_client, workflow), data_keys=keys)
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    try:
        await call.session.run(user_input="a table for four on March 9th 2014 please")
        await call.session.run(user_input="no")
        await call.session.run(user_input=CARD)
        fields = dict(call.userdata.fields)
        assert await call.flush(5.0)
    finally:
        await call.aclose("caller dropped")
    assert fields == {"party_size": 4, "day": "2014-03-09", "highchair": False, "card": CARD}

    stored = await store.load(call.session_id)
    assert stored.caller_data["party_size"] == 4 and stored.caller_data["highchair"] is False
    keyspace = await dump_keyspace(redis_client)
    blob = b"\n".join(k + b" " + b" ".join(v) for k, (_, v, _) in keyspace.items())
    assert CARD.encode() not in blob and b"fdenc:v1:" in blob
    assert b'"party_size":4' in blob or b'"party_size": 4' in blob  # a JSON number at rest

    opened = open_state(stored, workflow, p)  # as `sessions show` does with the data key
    assert opened.caller_data["card"] == CARD and opened.caller_data["party_size"] == 4
    shown = json.loads(
        session_json(
            opened,
            build_transcript(opened.session_id, opened.items),
            sensitive=workflow.sensitive_fields,
        )
    )
    assert shown["caller_data"]["party_size"] == 4
    assert shown["caller_data"]["highchair"] is False
    assert shown["caller_data"]["card"] == "****4444"

    back = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    try:
        assert back.resumed
        assert back.userdata.fields["party_size"] == 4
        assert type(back.userdata.fields["party_size"]) is int
        assert back.userdata.fields["card"] == CARD
        assert "How many people" not in said(back.opening)
    finally:
        await back.aclose()


SURVEY = """[workflow]
name = "survey"
start = "desk"

[caller_data.email]
description = "The caller's email address"
type = "email"
confirm = true
ask = "What's your email address?"

[caller_data.phone]
description = "A phone number"
type = "phone"
confirm = true
ask = "And your phone number?"

[agents.desk]
instructions = "Collect the email address, then the phone number."
collects = ["email", "phone"]

[state.resume]
trust = "caller_id"
"""


async def test_a_drop_during_a_read_back_keeps_what_was_confirmed_and_asks_again(
    redis_client: Any,
) -> None:
    workflow = parse_workflow(SURVEY, source="survey.toml")
    store = RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=SECRET
    )
    p = persistence(store, redis_client, workflow)
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    try:
        await call.session.run(user_input="hi")
        await call.session.run(user_input="ann@example.com")
        await call.session.run(user_input="yes")
        run = await call.session.run(user_input="555 123 4567")
        assert said(run) == "phone 5551234567, is that right?"
        assert await call.flush(5.0)
    finally:
        await call.aclose("caller dropped")  # before agreeing to the phone number
    stored = await store.load(call.session_id)
    assert stored.caller_data == {"email": "ann@example.com"}

    back = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    try:
        assert back.resumed and back.userdata.fields == {"email": "ann@example.com"}
        assert said(back.opening).endswith("And your phone number?")
        await back.session.run(user_input="555 123 4567")
        await back.session.run(user_input="yes")
        assert back.userdata.fields["phone"] == "5551234567"
    finally:
        await back.aclose()
