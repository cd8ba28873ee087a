"""`frontdesk validate` as a user runs it: Python tools are imported (``--no-import`` skips
that), and ``--diff OLD NEW`` lists what changed and what breaks live or resumable calls."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from .support import EXAMPLE, ROOT, TOOLS_CONFIG

MODULE = '''
from livekit.agents import RunContext


async def good(context: RunContext, day: str) -> str:
    """Book a day.

    Args:
        day: the day
    """
    return day


async def untyped(context: RunContext, day) -> str:
    """No type hint on day."""
    return day


async def undocumented(day: str) -> str:
    return day
'''


def frontdesk(
    *args: str, pythonpath: Path | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FRONTDESK_CONFIG")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "frontdesk", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def config_with_tools(tmp_path: Path, tools: list[str]) -> tuple[Path, int]:
    """The tools example with its agent's tools replaced; the line of the ``tools =`` key."""
    text = TOOLS_CONFIG.read_text()
    old = 'tools = ["outage_lookup", "acme_tools:book_slot", "acme_tools:check_availability"]'
    assert old in text
    listed = ", ".join(f'"{tool}"' for tool in tools)
    text = text.replace(old, f"tools = [{listed}]")
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, text.splitlines().index(f"tools = [{listed}]") + 1


def test_validate_imports_the_python_tools_and_passes_when_they_import() -> None:
    done = frontdesk("validate", str(TOOLS_CONFIG), pythonpath=EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert "acme-tools" in done.stdout


def test_a_module_that_does_not_import_is_an_error_with_file_line_and_key_path() -> None:
    done = frontdesk("validate", str(TOOLS_CONFIG))  # acme_tools is not on PYTHONPATH
    assert done.returncode == 2
    line = (
        TOOLS_CONFIG.read_text()
        .splitlines()
        .index('tools = ["outage_lookup", "acme_tools:book_slot", "acme_tools:check_availability"]')
    )
    assert (
        f"config.toml:{line + 1} agents.support.tools[1]: cannot import module 'acme_tools': "
        "ModuleNotFoundError" in done.stderr
    )
    assert "agents.support.tools[2]" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_import_skips_importing_for_config_only_repositories() -> None:
    done = frontdesk("validate", "--no-import", str(TOOLS_CONFIG))
    assert done.returncode == 0, done.stderr


def test_a_missing_function_and_bad_signatures_are_each_named(tmp_path: Path) -> None:
    (tmp_path / "shop_tools.py").write_text(MODULE)
    config, line = config_with_tools(
        tmp_path,
        ["shop_tools:good", "shop_tools:nope", "shop_tools:untyped", "shop_tools:undocumented"],
    )
    done = frontdesk("validate", str(config), pythonpath=tmp_path)
    assert done.returncode == 2
    errors = [row for row in done.stderr.splitlines() if "agents.support.tools" in row]
    assert len(errors) == 3, done.stderr
    assert (
        f"config.toml:{line} agents.support.tools[1]: module 'shop_tools' has no function "
        in (errors[0])
    )
    assert (
        f"config.toml:{line} agents.support.tools[2]: shop_tools:untyped: parameter 'day' needs a type hint"
        in errors[1]
    )
    assert "agents.support.tools[3]: shop_tools:undocumented needs a docstring" in errors[2]
    assert "tools[0]" not in done.stderr  # the good one imports


def test_a_module_that_raises_on_import_is_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken_tools.py").write_text("raise RuntimeError('no database')\n")
    config, line = config_with_tools(tmp_path, ["broken_tools:f"])
    done = frontdesk("validate", str(config), pythonpath=tmp_path)
    assert done.returncode == 2
    assert (
        f"config.toml:{line} agents.support.tools[0]: cannot import module 'broken_tools': "
        "RuntimeError: no database" in done.stderr
    )
    assert "Traceback" not in done.stderr


LIVEKIT = {
    "LIVEKIT_URL": "ws://127.0.0.1:9",
    "LIVEKIT_API_KEY": "k",
    "LIVEKIT_API_SECRET": "s",
    "ACME_TOKEN": "t",
}


def test_the_worker_refuses_to_start_with_a_python_tool_that_does_not_import() -> None:
    done = frontdesk("worker", "--config", str(TOOLS_CONFIG), "dev", env_extra=LIVEKIT)
    assert done.returncode == 2
    assert "agents.support.tools[1]: cannot import module 'acme_tools'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_worker_reads_its_config_from_frontdesk_config() -> None:
    done = frontdesk("worker", "dev", env_extra={**LIVEKIT, "FRONTDESK_CONFIG": str(TOOLS_CONFIG)})
    assert done.returncode == 2  # the tools example's config, not ./config.toml, was loaded
    assert "agents.support.tools[1]: cannot import module 'acme_tools'" in done.stderr


# --------------------------------------------------------------------------- --diff


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_diff_of_identical_configs_says_no_changes(tmp_path: Path) -> None:
    done = frontdesk("validate", "--diff", "config.toml", "config.toml")
    assert done.returncode == 0, done.stderr
    assert "no changes" in done.stdout


def test_diff_lists_added_agents_routes_fields_and_tools_without_warnings(tmp_path: Path) -> None:
    old = (ROOT / "config.toml").read_text()
    new = old + (
        '\n[caller_data.callback_time]\ndescription = "When to call back"\n'
        '\n[agents.billing]\ninstructions = "You handle bills."\n'
        '\n[tools.status_page]\ndescription = "Service status"\nurl = "http://127.0.0.1:9/s"\n'
        '\n[[agents.receptionist.handoffs]]\nto = "billing"\nwhen = "The caller asks about a bill"\n'
    )
    new = new.replace(
        '[agents.billing]\ninstructions = "You handle bills."',
        '[agents.billing]\ninstructions = "You handle bills."\ntools = ["status_page"]',
    )
    new_path = write(tmp_path, "new.toml", new)
    done = frontdesk("validate", "--no-import", "--diff", "config.toml", str(new_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "+ agent agents.billing" in out
    assert "+ field caller_data.callback_time" in out
    assert "+ tool tools.status_page" in out
    assert "+ route agents.receptionist.handoffs -> billing" in out
    assert "warning" not in out
    assert "none breaking" in out


def test_diff_warns_about_removed_agents_removed_fields_and_changed_patterns(
    tmp_path: Path,
) -> None:
    old_text = (ROOT / "config.toml").read_text()
    old_path = write(tmp_path, "old.toml", old_text)
    pattern = tomllib.loads(old_text)["caller_data"]["account_number"]["pattern"]
    new_text = old_text.replace(pattern, pattern.replace("5", "6"), 1)
    assert new_text != old_text
    new_path = write(tmp_path, "new.toml", new_text)
    done = frontdesk("validate", "--diff", str(old_path), str(new_path))
    assert done.returncode == 0, done.stderr
    assert "~ field caller_data.account_number: pattern" in done.stdout
    assert "warning breaks live or resumable sessions: pattern changed" in done.stdout
    assert "1 breaking" in done.stdout


def test_diff_warns_when_an_agent_is_removed(tmp_path: Path) -> None:
    old = write(
        tmp_path,
        "old.toml",
        '[workflow]\nname = "w"\nstart = "a"\n[caller_data.x]\ndescription = "x"\n'
        '[agents.a]\ninstructions = "a"\n[[agents.a.handoffs]]\nto = "b"\nwhen = "b"\n'
        '[agents.b]\ninstructions = "b"\n',
    )
    new = write(
        tmp_path,
        "new.toml",
        '[workflow]\nname = "w"\nstart = "a"\n[agents.a]\ninstructions = "a2"\n',
    )
    done = frontdesk("validate", "--diff", str(old), str(new))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "- agent agents.b" in out
    assert "calls on b restart at 'a' on resume" in out
    assert "- route agents.a.handoffs -> b" in out
    assert "~ agent agents.a: instructions" in out
    assert "- field caller_data.x" in out
    assert "a stored x is dropped on resume" in out
    assert "2 breaking" in out


def test_diff_needs_two_files() -> None:
    done = frontdesk("validate", "--diff", "config.toml")
    assert done.returncode == 1
    assert "needs two config files" in done.stderr
