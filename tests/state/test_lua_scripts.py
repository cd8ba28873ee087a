"""The store's Lua scripts are package data (``state/lua/*.lua``), each file used and shipped."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from frontdesk.state.scripts import LIBRARIES, lua_source

ROOT = Path(__file__).resolve().parents[2]


def _shipped_lua() -> set[str]:
    folder = resources.files("frontdesk.state").joinpath("lua")
    return {entry.name for entry in folder.iterdir() if entry.name.endswith(".lua")}


def test_every_lua_file_is_a_script_or_a_library_one_uses() -> None:
    used = {name for parts in LIBRARIES.values() for name in parts} | set(LIBRARIES)
    assert {f"{name}.lua" for name in used} == _shipped_lua()


def _file(name: str) -> str:
    return resources.files("frontdesk.state").joinpath("lua", f"{name}.lua").read_text("utf-8")


def test_every_function_a_script_calls_is_defined_in_what_it_is_sent_as() -> None:
    functions = ("bookkeeping_damage", "fence_damage", "lease_damage", "quarantine", "refresh")
    functions += ("push_chunked",)
    for name, libraries in LIBRARIES.items():
        source, own = lua_source(name), _file(name)
        assert source.endswith(own)
        assert all(_file(library) in source for library in libraries)
        for function in functions:
            if f"{function}(" in own:
                assert f"local function {function}(" in source, (name, function)
        assert "{{" not in source  # no f-string escaping left behind


def test_pyproject_ships_the_lua_folder() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        package_data = tomllib.load(file)["tool"]["setuptools"]["package-data"]
    patterns = package_data["frontdesk.state"]
    shipped = {path.name for pattern in patterns for path in (ROOT / "state").glob(pattern)}
    assert shipped == _shipped_lua()
