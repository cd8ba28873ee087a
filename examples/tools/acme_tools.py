"""Example Python tools for a Frontdesk agent (``tools = ["acme_tools:book_slot"]``).

Put this folder on ``PYTHONPATH`` (or install it) so the worker can import ``acme_tools``.
"""

from __future__ import annotations

from livekit.agents import RunContext, function_tool

from frontdesk.agents.userdata import CallerData

OPEN_SLOTS = {"monday": "09:00", "tuesday": "10:30", "friday": "14:00"}


async def book_slot(context: RunContext[CallerData], day: str) -> str:
    """Book an engineer visit on a weekday the caller chooses.

    Args:
        day: The weekday the caller wants, e.g. "tuesday".
    """
    wanted = day.strip().lower()
    time = OPEN_SLOTS.get(wanted)
    if time is None:
        open_days = ", ".join(OPEN_SLOTS)
        return f"There is no engineer free on {day}. Free days: {open_days}."
    account = context.userdata.fields.get("account_number", "your account")
    context.userdata.fields = {**context.userdata.fields, "booking": f"{wanted} {time}"}
    return f"Booked an engineer visit for {account} on {wanted.capitalize()} at {time}."


@function_tool
async def check_availability(context: RunContext[CallerData], day: str) -> str:
    """Check whether an engineer is free on a weekday.

    Args:
        day: The weekday to check, e.g. "monday".
    """
    free = day.strip().lower() in OPEN_SLOTS
    context.userdata.fields = {**context.userdata.fields, "available": "true" if free else "false"}
    return f"An engineer is {'free' if free else 'not free'} on {day}."


def not_async(day: str) -> str:
    """A synchronous function: not a valid tool (used by the tests)."""
    return day
