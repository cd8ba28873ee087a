"""The Lua scripts of the Redis store: ``state/lua/*.lua``, shipped as package data.

A script is its own file, preceded by the library files it calls (``lib_*.lua``), joined at load
time: :data:`LIBRARIES` says which. Every per-session script gets the five session keys
(``KEYS`` 1 meta, 2 items, 3 snap, 4 fence, 5 lease, see :mod:`.keys`); the ones that can
quarantine get the three quarantine names after them. Scripts that check a fencing token first
check that fence and lease are keys this store could have written, and answer ``'corrupt'``
before writing anything: a Lua error half-way through would leave a half-applied write behind
(scripts are not rolled back).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from redis.commands.core import AsyncScript

from .keys import AsyncRedisClient

LIBRARIES: dict[str, tuple[str, ...]] = {
    "claim": ("lib_bookkeeping", "lib_quarantine"),
    "renew": ("lib_bookkeeping",),
    "release": (),
    "append": ("lib_bookkeeping", "lib_refresh"),
    "write_full": ("lib_bookkeeping", "lib_refresh"),
    "set_meta": ("lib_bookkeeping", "lib_refresh"),
    "quarantine": ("lib_bookkeeping", "lib_quarantine"),
    "index": (),
}
"""Each script and the library files put before it, in order."""


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def lua_source(name: str) -> str:
    """The whole text of script ``name``: its libraries, then the script itself."""
    return "\n".join(_read(part) for part in (*LIBRARIES[name], name))


@dataclass(frozen=True, slots=True)
class Scripts:
    """The scripts registered on one client (redis-py runs them by ``EVALSHA``)."""

    claim: AsyncScript
    renew: AsyncScript
    release: AsyncScript
    append: AsyncScript
    write_full: AsyncScript
    set_meta: AsyncScript
    quarantine: AsyncScript
    index: AsyncScript

    @classmethod
    def register(cls, client: AsyncRedisClient) -> Scripts:
        return cls(**{name: client.register_script(lua_source(name)) for name in LIBRARIES})
