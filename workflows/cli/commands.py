"""The ``frontdesk`` command: thin wrappers that parse arguments, call the layers, print with rich.

Every :class:`~frontdesk.errors.FrontdeskError` becomes its message and exit code (2 for bad
config or scenario input); anything unexpected becomes one line naming the error, never a
traceback (set ``FRONTDESK_DEBUG=1`` to see it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from livekit.agents.voice.run_result import RunEvent, RunResult

from frontdesk import __version__
from frontdesk.agents.tools import check_python_tools
from frontdesk.errors import ConfigError, FrontdeskError
from frontdesk.state.crypto import DATA_KEY_ENV, data_key_is_configured, mask
from frontdesk.state.identity import (
    PREVIOUS_SECRETS_ENV,
    SECRET_ENV,
    namespaced_identity,
    normalise_phone_number,
    previous_secrets_from_env,
    split_namespaced,
)
from frontdesk.state.local_dir import default_state_dir
from frontdesk.state.models import SessionState
from frontdesk.workflows.cli.display import shown
from frontdesk.workflows.cli.render import (
    console,
    err_console,
    plural,
    print_diff,
    print_lines,
    print_providers,
    print_session,
    print_session_list,
    print_turn,
    session_json,
    session_list_json,
)
from frontdesk.workflows.definition import KeyLocator, Workflow, load_workflow, render_graph
from frontdesk.workflows.definition.diff import diff_workflows
from frontdesk.workflows.providers.text_mode import (
    TextProfile,
    build_text_profile,
    text_profile_name,
)
from frontdesk.workflows.runtime import (
    DEMO_SCENARIO,
    Persistence,
    Scenario,
    ScenarioRunner,
    TurnResult,
    build_transcript,
    configured_redis_url,
    load_scenario,
    open_persistence,
    open_state,
    reply_of,
    start_call,
)
from frontdesk.workflows.runtime.scenario_checks import check_scenario, scenario_config
from frontdesk.workflows.worker import run_worker

PROFILE_HELP = (
    "provider profile whose LLM drives the call, text only (default: FRONTDESK_PROFILE, "
    "else offline)"
)


def _setup_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # LiveKit logs every tool error and speech event at INFO/WARNING; the CLI shows its own.
    logging.getLogger("livekit").setLevel(logging.INFO if verbose else logging.ERROR)
    logging.getLogger("livekit.agents").setLevel(logging.INFO if verbose else logging.ERROR)


def _workflow(path: str | None) -> Workflow:
    return load_workflow(path or _default_config())


def _default_config() -> str | None:
    """``./config.toml`` when there is one, else the embedded default workflow."""
    return "config.toml" if Path("config.toml").is_file() else None


# --------------------------------------------------------------------------- validate, graph


def cmd_validate(args: argparse.Namespace) -> int:
    if args.diff:
        return cmd_diff(args)
    workflow = _workflow(args.config)
    if not args.no_import:
        problems = check_python_tools(workflow, _locator(workflow))
        if problems:
            raise ConfigError(problems)
    config = workflow.config
    routes = sum(len(agent.handoffs) for agent in config.agents.values())
    console.print(
        f"[green]✓[/] {shown(workflow.source)}: workflow [bold]{shown(workflow.name)}[/] "
        f"({plural(len(config.agents), 'agent')}, "
        f"{plural(len(config.caller_data), 'caller-data field')}, {plural(routes, 'route')}), "
        f"identity {shown(workflow.identity)}"
    )
    for warning in workflow.warnings:
        console.print(f"[yellow]warning[/] {shown(warning, lines=True)}")
    return 0


def _locator(workflow: Workflow) -> KeyLocator | None:
    """The line finder of the file ``workflow`` came from (None when it cannot be read again)."""
    try:
        return KeyLocator(Path(workflow.source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def cmd_diff(args: argparse.Namespace) -> int:
    """``validate --diff OLD NEW``: what changed between two configs, and what it breaks."""
    if args.config is None or args.new is None:
        raise FrontdeskError("'frontdesk validate --diff' needs two config files: OLD NEW")
    old, new = load_workflow(args.config), load_workflow(args.new)
    changes = diff_workflows(old, new)
    print_diff(old, new, changes)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    workflow = _workflow(args.config)
    print(render_graph(workflow.config, args.format))
    return 0


# --------------------------------------------------------------------------- simulate, demo


def _text_profile(workflow: Workflow, requested: str | None) -> TextProfile:
    """The profile a text-mode command runs on (``--profile``, ``FRONTDESK_PROFILE``, offline)."""
    return build_text_profile(workflow, text_profile_name(workflow, requested))


async def _run_scenario(
    scenario: Scenario, workflow: Workflow, *, use_state: bool, profile: TextProfile | None = None
) -> list[TurnResult]:
    try:
        if not use_state:
            runner = ScenarioRunner(workflow=workflow, persistence=None, profile=profile)
            return await runner.run(scenario)
        async with open_persistence(workflow) as persistence:
            runner = ScenarioRunner(workflow=workflow, persistence=persistence, profile=profile)
            return await runner.run(scenario)
    finally:
        if profile is not None:
            await profile.aclose()


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    workflow = load_workflow(scenario_config(scenario, args.config))
    check_scenario(scenario, workflow)  # every misnamed agent or field, before any call runs
    profile = _text_profile(workflow, args.profile)
    results = asyncio.run(
        _run_scenario(scenario, workflow, use_state=not args.no_state, profile=profile)
    )
    if args.json:
        for result in results:
            exclude = {"failures"} if result.ok else set()
            if not result.skipped:
                exclude.add("skipped")
            if result.resumed is None:
                exclude.add("resumed")
            print(json.dumps(result.model_dump(exclude=exclude)))
    else:
        for result in results:
            print_turn(result)
    failed = [result for result in results if not result.ok]
    summary = f"{plural(len(results) - len(failed), 'turn')} passed, {len(failed)} failed"
    skipped = sum(len(result.skipped) for result in results)
    if skipped:
        summary += f", {skipped} expectations skipped (profile {profile.name})"
    (err_console if args.json else console).print(
        f"[red]✗ {summary}[/]" if failed else f"[green]✓ {summary}[/]"
    )
    return 1 if failed else 0


async def _run_demo(
    scenario: Scenario, workflow: Workflow, profile: TextProfile | None
) -> tuple[list[TurnResult], str]:
    """The demo's call, kept where ``frontdesk inspect`` looks (the configured Redis, else the
    embedded server's default data folder); the previous demo call is forgotten first."""
    url = configured_redis_url(workflow)
    folder = None if url else default_state_dir()
    try:
        async with open_persistence(workflow, embedded_dir=folder) as persistence:
            caller = namespaced_identity(scenario.caller_kind, scenario.caller)
            await persistence.store.forget_caller(caller)
            runner = ScenarioRunner(workflow=workflow, persistence=persistence, profile=profile)
            return await runner.run(scenario), (str(folder) if folder else "the configured Redis")
    finally:
        if profile is not None:
            await profile.aclose()


def cmd_demo(args: argparse.Namespace) -> int:
    scenario = load_scenario(DEMO_SCENARIO)
    workflow = _workflow(args.config)
    check_scenario(scenario, workflow)
    profile = _text_profile(workflow, args.profile)
    brain = "offline brain" if profile.offline else f"profile {profile.name}"
    console.print(
        f"[bold]Frontdesk demo[/] — workflow {workflow.name}, {brain}, "
        "state in an embedded redis-server. The caller reports an outage, gives their account, "
        "drops, calls back, confirms the account number (caller ID alone is no proof of "
        "identity) and is resumed on support without being greeted or triaged again.\n"
    )
    results, where = asyncio.run(_run_demo(scenario, workflow, profile))
    for result in results:
        print_turn(result)
    failed = [result for result in results if not result.ok]
    console.print(f"\n[dim]The call is stored in {where}: `frontdesk inspect` shows it.[/]")
    console.print(
        "\n[green]✓ demo finished: every expectation held[/]"
        if not failed
        else f"\n[red]✗ demo: {plural(len(failed), 'turn')} did not go as expected[/]"
    )
    return 1 if failed else 0


# --------------------------------------------------------------------------- chat


async def _chat(
    workflow: Workflow, caller: str, embedded_dir: Path | None, profile: TextProfile | None = None
) -> None:
    extra: dict[str, Any] = profile.start_kwargs() if profile is not None else {}
    async with open_persistence(workflow, embedded_dir=embedded_dir) as persistence:
        call = await start_call(
            workflow=workflow, caller_identity=caller, persistence=persistence, **extra
        )

        def show(events: list[RunEvent], agent: str | None) -> None:
            reply = reply_of(events, agent)
            print_lines(reply.lines, reply.handoffs)

        state = "resumed" if call.resumed else "new call"
        console.print(
            f"[dim]{state} {call.session_id[:8]} as {shown(caller)}. Type as the caller; "
            "/drop hangs up and calls back, /data shows caller data, /quit ends.[/]"
        )
        show(list(call.opening.events) if call.opening else [], None)
        loop = asyncio.get_running_loop()
        piped = not sys.stdin.isatty()
        prompt = "" if piped else "you> "
        try:
            while True:
                try:
                    line = await loop.run_in_executor(None, lambda: input(prompt))
                except EOFError:
                    break
                text = line.strip()
                if piped and text:
                    # Piped input is not echoed by a terminal: show it, so the output is a dialogue.
                    console.print(f"[cyan]caller[/]: {shown(text)}")
                if text in ("/quit", "/exit"):
                    break
                if text == "/data":
                    console.print(shown(json.dumps(_masked_data(workflow, call.userdata.fields))))
                    continue
                if text == "/drop":
                    await call.aclose("caller dropped")
                    console.print("[magenta]✂ dropped; calling back…[/]")
                    call = await start_call(
                        workflow=workflow, caller_identity=caller, persistence=persistence, **extra
                    )
                    show(list(call.opening.events) if call.opening else [], None)
                    continue
                if not text:
                    continue
                before = call.session.current_agent.id
                run: RunResult[Any] = await call.session.run(user_input=text)
                show(list(run.events), before)
                if call.ended_reason:
                    console.print(f"[magenta]✂ the call ended: {call.ended_reason}[/]")
                    break
        finally:
            await call.aclose("caller hung up")


def cmd_chat(args: argparse.Namespace) -> int:
    workflow = _workflow(args.config)
    embedded_dir = Path(args.state_dir) if args.state_dir else None
    profile = _text_profile(workflow, args.profile)

    async def run() -> None:
        try:
            await _chat(workflow, args.caller, embedded_dir, profile)
        finally:
            await profile.aclose()

    asyncio.run(run())
    return 0


# --------------------------------------------------------------------------- sessions


async def _sessions(args: argparse.Namespace) -> int:
    workflow = _workflow(args.config)
    embedded_dir = Path(args.state_dir) if args.state_dir else None
    async with open_persistence(
        workflow, embedded_dir=embedded_dir, allow_embedded=embedded_dir is not None
    ) as persistence:
        store = persistence.store
        if args.action == "list":
            summaries = await store.list_sessions()
            if args.json:
                print(session_list_json(summaries))
            else:
                print_session_list(summaries)
            return 0
        if args.action == "forget-caller":
            return await _forget_caller(store, args.target)
        if args.action == "delete":
            await store.delete(args.target)
            console.print(f"deleted session {args.target}")
            return 0
        state = await store.load(args.target)
        if args.action == "export":
            return _export(workflow, persistence, state)
        state = open_state(state, workflow, persistence)
        transcript = build_transcript(state.session_id, state.items)
        if args.json:
            print(session_json(state, transcript, sensitive=workflow.sensitive_fields))
        else:
            print_session(state, transcript, sensitive=workflow.sensitive_fields)
        return 0


async def _forget_caller(store: Any, target: str) -> int:
    """Forget every session of a caller, under each form the identity can be stored in."""
    kind, bare = split_namespaced(target.strip())
    if kind is not None:
        forms = [f"{kind}:{bare}"]
    else:
        forms = [namespaced_identity("sip", bare), namespaced_identity("web", bare)]
    stores = [store]
    with_secret = getattr(store, "with_secret", None)
    if with_secret is not None:
        stores += [with_secret(old) for old in previous_secrets_from_env()]
    removed = 0
    for form in dict.fromkeys(forms):
        for keyed in stores:
            removed += await keyed.forget_caller(form)
    looked_up = " and ".join(dict.fromkeys(forms))
    if removed:
        console.print(
            f"removed {removed} session(s) of that caller (looked up as {shown(looked_up)})"
        )
        return 0
    hints = [
        f"it was looked up as {looked_up}",
        f"sessions stored under an earlier {SECRET_ENV} are only found with it listed in "
        f"{PREVIOUS_SECRETS_ENV}",
    ]
    if kind is None and normalise_phone_number(bare) is None and any(c.isdigit() for c in bare):
        hints.append("it is not a phone number Frontdesk can normalise (E.164: +, country code)")
    err_console.print(
        "found no session of that caller; nothing removed. Possible reasons: " + "; ".join(hints),
        soft_wrap=True,
        markup=False,
    )
    return 0


def _masked_data(workflow: Workflow, data: dict[str, str]) -> dict[str, str]:
    """Caller data as screens show it: sensitive values masked (``****8213``)."""
    return {
        name: mask(value) if name in workflow.sensitive_fields else value
        for name, value in data.items()
    }


def _export(workflow: Workflow, persistence: Persistence, state: SessionState) -> int:
    """``sessions export``: sensitive values decrypted only when ``FRONTDESK_DATA_KEY`` is set."""
    if data_key_is_configured():
        state = open_state(state, workflow, persistence)
    elif workflow.sensitive_fields:
        err_console.print(
            f"note: {DATA_KEY_ENV} is not set: sensitive values are exported encrypted",
            markup=False,
        )
    print(state.model_dump_json(indent=2))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    if args.action != "list" and not args.target:
        raise FrontdeskError(f"'frontdesk sessions {args.action}' needs an argument")
    return asyncio.run(_sessions(args))


# --------------------------------------------------------------------------- providers, worker


def cmd_providers(args: argparse.Namespace) -> int:
    return print_providers(_workflow(args.config), console)


def cmd_inspect(args: argparse.Namespace) -> int:
    from frontdesk.workflows.inspector import cmd_inspect as inspect

    return inspect(args, _workflow(args.config))


CONFIG_ENV = "FRONTDESK_CONFIG"
"""The worker's config file when ``--config`` is not given (it is watched: live reload)."""


def cmd_worker(args: argparse.Namespace) -> int:
    config = args.config or os.environ.get(CONFIG_ENV, "").strip() or _default_config()
    return run_worker(list(args.livekit_args), config)


# --------------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frontdesk",
        description="Multi-agent handoff orchestration for LiveKit voice calls.",
    )
    parser.add_argument("--version", action="version", version=f"frontdesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    validate = add("validate", cmd_validate, "check a workflow config and report every problem")
    validate.add_argument(
        "config", nargs="?", help="config file (default: ./config.toml or the embedded default)"
    )
    validate.add_argument(
        "new", nargs="?", help="with --diff: the new config file (the first is the old one)"
    )
    validate.add_argument(
        "--no-import",
        action="store_true",
        help="do not import the Python tools (module:function) the agents name",
    )
    validate.add_argument(
        "--diff",
        action="store_true",
        help="compare OLD and NEW: what changed, and what breaks live or resumable sessions",
    )

    graph = add("graph", cmd_graph, "draw the workflow's agents and routes")
    graph.add_argument("config", nargs="?", help="config file")
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")

    chat = add("chat", cmd_chat, "talk to the workflow as a caller, in the terminal")
    chat.add_argument("--config", help="config file")
    chat.add_argument("--caller", default="+15550000000", help="caller identity (phone number)")
    chat.add_argument("--profile", help=PROFILE_HELP)
    chat.add_argument(
        "--state-dir",
        help="keep the embedded Redis data here, so a later chat with the same --caller resumes",
    )

    simulate = add("simulate", cmd_simulate, "run a scripted call with expectations")
    simulate.add_argument("scenario", help="scenario file (TOML)")
    simulate.add_argument("--config", help="config file (overrides the scenario's)")
    simulate.add_argument("--json", action="store_true", help="print one JSON object per turn")
    simulate.add_argument("--no-state", action="store_true", help="run without Redis persistence")
    simulate.add_argument("--profile", help=PROFILE_HELP)

    demo = add(
        "demo", cmd_demo, "run the default workflow end to end, offline: handoff, drop, resume"
    )
    demo.add_argument("--config", help="config file (default: the embedded default workflow)")
    demo.add_argument("--profile", help=PROFILE_HELP)

    sessions = add("sessions", cmd_sessions, "list, show, export or delete stored sessions")
    sessions.add_argument("action", choices=["list", "show", "export", "delete", "forget-caller"])
    sessions.add_argument(
        "target", nargs="?", help="session id, or caller identity for forget-caller"
    )
    sessions.add_argument("--config", help="config file")
    sessions.add_argument("--format", choices=["json"], default="json", help="export format")
    sessions.add_argument(
        "--json", action="store_true", help="list/show: print JSON instead of text"
    )
    sessions.add_argument(
        "--state-dir", help="the embedded Redis data folder used by `chat --state-dir`"
    )

    from frontdesk.workflows.inspector.serve import add_arguments as inspect_arguments

    inspect_arguments(add("inspect", cmd_inspect, "browse stored sessions and the workflow graph"))

    providers = add("providers", cmd_providers, "list provider profiles and the keys they need")
    providers.add_argument("--config", help="config file")

    worker = add(
        "worker", cmd_worker, "run the LiveKit worker (LiveKit's modes: dev, start, console, …)"
    )
    worker.add_argument("--config", help="config file")
    worker.add_argument("livekit_args", nargs=argparse.REMAINDER, help="passed to LiveKit's CLI")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["worker"]:
        # LiveKit's own CLI parses everything after `worker` (including --help).
        config = None
        rest = arguments[1:]
        if rest[:1] == ["--config"] and len(rest) > 1:
            config, rest = rest[1], rest[2:]
        return _guarded(lambda: cmd_worker(argparse.Namespace(livekit_args=rest, config=config)))
    parser = build_parser()
    args = parser.parse_args(arguments)
    _setup_logging(args.verbose)
    return _guarded(lambda: int(args.handler(args)))


def _guarded(run: Callable[[], int]) -> int:
    try:
        return run()
    except FrontdeskError as exc:
        err_console.print(f"[red]error:[/] {shown(exc, limit=20_000, lines=True)}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("FRONTDESK_DEBUG"):
            traceback.print_exc()
        err_console.print(
            f"[red]internal error:[/] {type(exc).__name__}: {shown(exc)} "
            "(FRONTDESK_DEBUG=1 shows the traceback)"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
