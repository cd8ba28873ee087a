"""A session's latest chat items decoded, the older ones kept as stored: what a resume reads.

Decoding is the cost of a resume: at 1,000 turns (2,330 items, ~1 MB of JSON) parsing the JSON
and validating every item as a LiveKit item takes tens of milliseconds, while the resumed
agent's model sees only a bounded part of it. :meth:`RedisSessionStore.load_recent
<.redis_store.RedisSessionStore.load_recent>` therefore decodes only the latest ``window``
items and returns the others as :class:`StoredItems`: the bytes exactly as Redis holds them,
decoded only when something reads them (a transcript, a full rewrite, a background check).

How the window is found without parsing the snapshot: the snapshot is the stored items'
JSON objects joined by commas (``state/lua/append.lua``, ``write_full.lua``) and every item
LiveKit serialises starts with its ``id`` field, so item boundaries are the places where
``,{"id":`` occurs. That byte sequence cannot occur inside a JSON string (the quote after the
brace would have to be unescaped, and an unescaped quote ends a string, which ``id`` cannot
follow), so a candidate is either a boundary between two items or the start of an object
nested inside one. A candidate inside an item leaves more closing than opening brackets after
it, so parsing ``[`` + the rest + ``]`` fails there; the last candidates whose rest parses as a
JSON array of objects are real boundaries. Anything unusual (no candidate, too many failures,
items not starting with ``id``) falls back to decoding everything, which is what :meth:`load`
does, with its exact errors.

What is checked when (the trade-off): the window is decoded strictly (JSON objects here,
LiveKit items by the session layer). The older part gets a structural check only, at the cost
of a byte scan: it is framed as JSON objects, and it holds at least as many item starts as the
stored counts say it must. Whether each older item is JSON and a LiveKit item is checked when it
is first decoded (:meth:`StoredItems.decode` raises ``ValueError``), which the session layer
does in the background right after the resumed call's first reply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .models import SessionState

ITEM_START = b'{"id":'
"""How every chat item LiveKit serialises begins (its ``id`` field comes first)."""
BOUNDARY = b"," + ITEM_START
"""Between two stored items in the snapshot (and possibly at a nested object: see the module)."""
MAX_FALSE_BOUNDARIES = 8
"""Candidates that turn out not to be item boundaries before the split gives up (decode all)."""


@dataclass(frozen=True)
class StoredItems:
    """Chat items as the store holds them (JSON bytes), older than a resumed call's window.

    ``snap[:snap_end]`` is a comma-joined run of items (a prefix of the snapshot), followed by
    ``elements`` (list elements, one item each); ``count`` is how many items they hold by the
    stored counts. ``decoded`` is set instead when the load had to decode them anyway.
    """

    session_id: str
    count: int
    snap: bytes = b""
    snap_end: int = 0
    elements: Sequence[bytes] = ()
    decoded: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def of_items(cls, session_id: str, items: list[dict[str, Any]]) -> StoredItems:
        return cls(session_id=session_id, count=len(items), decoded=items)

    @property
    def nbytes(self) -> int:
        """Bytes of stored JSON held undecoded."""
        return self.snap_end + sum(len(element) for element in self.elements)

    def decode(self) -> list[dict[str, Any]]:
        """Every item, in order, as JSON objects; ``ValueError`` says what is wrong."""
        if self.decoded is not None:
            return list(self.decoded)
        return [item for chunk in self.chunks() for item in chunk]

    def chunks(self, target_bytes: int = 64 * 1024) -> Iterator[list[dict[str, Any]]]:
        """The items decoded a slice of about ``target_bytes`` at a time (for a background check).

        Raises ``ValueError`` at the first slice that is not JSON objects, or at the end when
        the number of items is not ``count``.
        """
        if self.decoded is not None:
            yield list(self.decoded)
            return
        seen = 0
        start, end = 0, self.snap_end
        while start < end:
            stop = self.snap.find(BOUNDARY, min(start + target_bytes, end), end)
            stop = end if stop < 0 else stop
            joined = 0
            while True:
                try:
                    items = orjson.loads(b"[" + self.snap[start:stop] + b"]")
                    break
                except orjson.JSONDecodeError as exc:
                    if stop >= end:  # nothing left to join: the stored JSON is damaged
                        raise ValueError(
                            f"stored chat items {seen} onwards are not JSON: {exc}"
                        ) from None
                    # a nested object's `,{"id":`, not a boundary: take the next one too (or,
                    # after a few, everything left: damaged JSON fails the same either way)
                    joined += 1
                    stop = -1 if joined > MAX_FALSE_BOUNDARIES else stop
                    stop = self.snap.find(BOUNDARY, stop + 1, end) if stop >= 0 else end
                    stop = end if stop < 0 else stop
            _check_objects(items, seen)
            seen += len(items)
            yield items
            start = stop + 1
        batch: list[dict[str, Any]] = []
        for element in self.elements:
            try:
                batch.append(orjson.loads(element))
            except orjson.JSONDecodeError as exc:
                raise ValueError(
                    f"stored chat item {seen + len(batch)} is not JSON: {exc}"
                ) from None
        _check_objects(batch, seen)
        seen += len(batch)
        if batch:
            yield batch
        if seen != self.count:
            raise ValueError(
                f"older stored items: {seen} found, the stored counts say {self.count}"
            )


@dataclass(frozen=True)
class RecentSession:
    """A stored session with only its latest chat items decoded.

    ``state`` is the meta with ``items`` = the latest items (at least the window asked for,
    or all of them); ``earlier`` holds every item before those, as stored.
    """

    state: SessionState
    earlier: StoredItems

    @property
    def item_count(self) -> int:
        """Every stored item: the earlier ones and the decoded latest ones."""
        return self.earlier.count + len(self.state.items)


def _check_objects(items: Any, first: int) -> None:
    if type(items) is not list:  # pragma: no cover - always a list: it is wrapped in [ ]
        raise ValueError("stored chat items are not a JSON array")
    for position, item in enumerate(items, start=first):
        if type(item) is not dict:
            raise ValueError(f"chat item {position} is not a JSON object")


def split_snapshot(snap: bytes, need: int) -> tuple[int, list[Any]] | None:
    """``(offset, items)``: the snapshot's last items (at least ``need``) decoded from ``offset``.

    None when no split is found (too few boundaries, or too many candidates that are not
    boundaries): the caller decodes the whole snapshot instead. ``need`` ≥ 1.
    """
    pos = len(snap)
    candidates = 0
    false_ones = 0
    while True:
        found = snap.rfind(BOUNDARY, 0, pos)
        if found < 0:
            return None
        pos = found
        candidates += 1
        if candidates < need:
            continue
        try:
            items = orjson.loads(b"[" + snap[found + 1 :] + b"]")
        except orjson.JSONDecodeError:
            false_ones += 1
            if false_ones > MAX_FALSE_BOUNDARIES:
                return None
            continue
        if len(items) >= need:
            return found + 1, items
        candidates = len(items)  # nested candidates were counted: more boundaries are needed


def structure_problem(
    snap: bytes, snap_end: int, elements: Sequence[bytes], count: int
) -> str | None:
    """Why the older part cannot be ``count`` stored items, from a byte scan; None if it can.

    Cheap (C-speed scans, no parsing): the snapshot part is framed as objects and holds at least
    ``count_in_snap`` item starts, each list element is framed as one object.
    """
    in_snap = count - len(elements)
    if in_snap < 0:
        return (
            f"the stored counts say {count} older items, but the list alone holds {len(elements)}"
        )
    if snap_end == 0:
        if in_snap:
            return f"the snapshot holds no items before the window, the stored counts say {in_snap}"
    else:
        if not (snap.startswith(ITEM_START) and snap[snap_end - 1 : snap_end] == b"}"):
            return "the snapshot is not a run of JSON objects"
        starts = snap.count(BOUNDARY, 0, snap_end) + 1
        if starts < in_snap:
            return f"the snapshot holds {starts} items before the window, the stored counts say {in_snap}"
        if in_snap == 0:
            return "the snapshot holds items the stored counts do not"
    for position, element in enumerate(elements, start=in_snap):
        if not (element.startswith(b"{") and element.endswith(b"}")):
            return f"stored chat item {position} is not a JSON object"
    return None
