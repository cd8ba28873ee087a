"""``python -m bench.report [--json-dir bench/results]``: the README tables, in Markdown.

Reads the JSON that ``python -m bench`` wrote and prints the tables of the README's
"Performance" section (bench/README_SECTION.md), so the README is regenerated from a run, never
typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .common import fmt_bytes, fmt_ms, fmt_x

DEFAULT_DIR = Path(__file__).resolve().parent / "results"


def _load(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _cpu(data: dict[str, Any]) -> str:
    cpu = data.get("cpu") or {}
    if not cpu:
        return ""
    return (
        f"_Other processes used {cpu['other_processes_pct_of_all_cpus']:.0f}% of the machine's "
        f"CPUs during this benchmark (the bench and its Redis servers "
        f"{cpu['bench_and_redis_pct_of_all_cpus']:.0f}%)._"
    )


def machine_line(data: dict[str, Any]) -> str:
    m = data["machine"]
    return (
        f"{m['cpu_count']} vCPU {m['cpu_model']}, {m['memory_gib']} GiB RAM · Python "
        f"{m['python']} · Redis {m['redis_server']} (AOF {m['redis_appendonly']}, appendfsync "
        f"{m['redis_appendfsync']}) · redis-py {m['redis_py']} + hiredis {m['hiredis']} · "
        f"livekit-agents {m['livekit_agents']} · Frontdesk {m['frontdesk_commit']} · "
        f"{data['mode']} mode, {data['written_at']}"
    )


def persist_md(data: dict[str, Any]) -> str:
    rows = []
    for r in data["results"]:
        o, n, nd, lg = r["ours"], r["naive"], r["naive_to_dict"], r.get("langgraph")
        rows.append(
            [
                f"{r['history_turns']:,} ({fmt_bytes(r['history_bytes'])})",
                f"{fmt_ms(o['median_ms'])} / {fmt_ms(o['p99_ms'])}",
                f"{fmt_ms(n['median_ms'])} / {fmt_ms(n['p99_ms'])}",
                fmt_x(_num(r["naive_over_ours_median"])),
                f"{fmt_ms(nd['median_ms'])} ({fmt_x(_num(r['naive_to_dict_over_ours_median']))})",
                f"{fmt_ms(lg['median_ms'])} / {fmt_ms(lg['p99_ms'])}" if lg else "skipped",
                fmt_x(_num(r["langgraph_over_ours_median"])) if lg else "-",
                f"{o['round_trips_per_turn']:.0f} / {n['round_trips_per_turn']:.0f}"
                + (f" / {lg['round_trips_per_turn']:.0f}" if lg else ""),
                f"{fmt_bytes(o['bytes_sent_per_turn_client'])} / "
                f"{fmt_bytes(n['bytes_sent_per_turn_client'])}",
                fmt_bytes(o["redis_memory_per_session_bytes"]),
            ]
        )
    header = [
        "history (turns)",
        "ours ms med / p99",
        "naive ms med / p99",
        "× naive",
        "naive + to_dict ms (×)",
        "LangGraph ms med / p99",
        "× LangGraph",
        "round trips (ours / naive / LG)",
        "bytes sent (ours / naive)",
        "Redis / session (ours)",
    ]
    return _table(header, rows) + "\n\n" + _cpu(data)


def floor_md(data: dict[str, Any]) -> str:
    """The append against its floor, and the commands it runs, per history length."""
    rows = []
    for r in data["results"]:
        ap, fl, o = r.get("append_only"), r.get("floor"), r["ours"]
        if not ap or not fl or not ap.get("n"):
            continue
        rows.append(
            [
                f"{r['history_turns']:,}",
                f"{fmt_ms(o['median_ms'])} / {fmt_ms(o['p99_ms'])}",
                f"{fmt_ms(ap['median_ms'])} / {fmt_ms(ap['p99_ms'])}",
                f"{fmt_ms(fl['median_ms'])} / {fmt_ms(fl['p99_ms'])}",
                f"{_num(r['append_over_floor_median']):.2f}×",
                f"{o['server_commands_per_turn_total'] - 1:.2f}",
                " / ".join(
                    f"{v:.0f}" if isinstance(v, int | float) else "-"
                    for v in (r.get("script_us_per_turn_server") or {}).values()
                )
                or "-",
            ]
        )
    header = [
        "history (turns)",
        "recorder + append ms med / p99",
        "store.append ms med / p99",
        "floor (bare EVALSHA) ms med / p99",
        "append / floor",
        "Redis commands in the script",
        "server µs per EVALSHA (append / floor)",
    ]
    return _table(header, rows)


def jobs_md(data: dict[str, Any]) -> str:
    rows = []
    mib = 1024 * 1024
    for label, result in data["results"].items():
        s = result["summary"]
        rows.append(
            [
                label,
                fmt_bytes(result["parent"]["rss"]),
                " / ".join(fmt_bytes(s["idle"][f]) for f in ("uss", "pss", "rss")),
                " / ".join(fmt_bytes(s["live"][f]) for f in ("uss", "pss", "rss")),
                f"{1024 * mib / s['live']['uss']:.0f} / {1024 * mib / s['live']['pss']:.0f}",
                str(len(result["failed"])),
            ]
        )
    header = [
        "profile",
        "prewarmed parent RSS",
        "idle job USS / PSS / RSS",
        "live job USS / PSS / RSS",
        "calls per GiB (USS / PSS)",
        "failed",
    ]
    return _table(header, rows)


def targets_md(directory: Path) -> str:
    rows = []
    for name in ("persist", "resume", "handoff", "capacity", "jobs"):
        data = _load(directory, name)
        for t in (data or {}).get("targets", []):
            rows.append(
                [
                    name,
                    t["target"],
                    t["wanted"],
                    t["measured"],
                    "✓ holds" if t["holds"] else "✗ missed",
                    t.get("missed_by") or "",
                ]
            )
    return _table(["bench", "target", "wanted", "measured", "", "missed by"], rows)


def resume_md(data: dict[str, Any]) -> str:
    rows = []
    for r in data["results"]:
        o, n, lg = r["ours"], r["naive"], r.get("langgraph")
        s = r["start_call_to_first_reply"]
        rows.append(
            [
                f"{r['history_turns']:,} ({r['items']:,} items)",
                f"{fmt_ms(o['load']['median_ms'])} / {fmt_ms(o['load']['p99_ms'])}",
                f"{fmt_ms(o['load_rebuild']['median_ms'])} / {fmt_ms(o['load_rebuild']['p99_ms'])}",
                f"{fmt_ms(n['load']['median_ms'])} / {fmt_ms(n['load']['p99_ms'])}",
                f"{fmt_ms(n['load_rebuild']['median_ms'])} / {fmt_ms(n['load_rebuild']['p99_ms'])}",
                fmt_x(_num(r["naive_over_ours_median_load_rebuild"])),
                f"{fmt_ms(lg['load_rebuild']['median_ms'])} / {fmt_ms(lg['load_rebuild']['p99_ms'])}"
                if lg
                else "skipped",
                fmt_x(_num(r["langgraph_over_ours_median_load_rebuild"])) if lg else "-",
                f"{fmt_ms(s['median_ms'])} / {fmt_ms(s['p99_ms'])}",
            ]
        )
    header = [
        "history (turns)",
        "ours load",
        "ours load + rebuild",
        "naive load",
        "naive load + rebuild",
        "× naive",
        "LangGraph load + rebuild",
        "× LangGraph",
        "`start_call` → 1st reply",
    ]
    return _table(header, rows) + "\n\n" + _cpu(data)


def handoff_md(data: dict[str, Any]) -> str:
    rows = []
    for r in data["results"]:
        trips = r.get("redis_round_trips_per_turn")
        sent = r.get("bytes_sent_per_turn")
        rows.append(
            [
                r["label"],
                f"{fmt_ms(r['median_ms'])} / {fmt_ms(r['p99_ms'])}",
                f"{r['median_over_bare']:.2f}×",
                f"{trips:.1f}" if trips is not None else "-",
                fmt_bytes(sent) if sent is not None else "-",
            ]
        )
    header = ["configuration", "ms per handoff turn, med / p99", "× bare", "Redis trips", "bytes"]
    return _table(header, rows) + "\n\n" + _cpu(data)


def capacity_md(data: dict[str, Any]) -> str:
    rows = []
    extra = data.get("largest_level_with_big_pool")
    for r in [*data["results"], *([extra] if extra else [])]:
        p, m, b = r["paced"], r["memory"], r["burst"]
        gen2 = r["gc_paced_phase"]["gen2"]
        redis_errors = sum(
            count for kind, count in r["frontdesk_warnings"].items() if kind.startswith("redis")
        )
        label = f"{r['sessions']:,}"
        if r["max_connections"] is not None:
            label += f" (pool {r['max_connections']:,})"
        per_session = max(
            m["redis_memory_usage_per_session_bytes"], m["redis_used_memory_per_session_bytes"]
        )
        rows.append(
            [
                label,
                f"{fmt_ms(p['turn_latency']['median_ms'])} / {fmt_ms(p['turn_latency']['p99_ms'])}",
                f"{fmt_ms(p['reconnect_resume']['median_ms'])} / "
                f"{fmt_ms(p['reconnect_resume']['p99_ms'])}",
                f"{p['cpu_ms_per_turn']:.1f}",
                f"{b['turns_per_s']:.0f}",
                f"{gen2['collections']} / {gen2['max_ms']:.0f} ms",
                fmt_bytes(m["rss_per_session_bytes"]),
                fmt_bytes(per_session),
                fmt_bytes(1000 * per_session),
                f"{redis_errors:,}",
                str(p["hung_closes"]),
            ]
        )
    header = [
        "sessions",
        "turn ms med / p99",
        "resume ms med / p99",
        "CPU ms / caller turn",
        "max turns/s",
        "full GCs / longest",
        "RSS / session",
        "Redis / session",
        "Redis / 1,000 calls",
        "Redis errors",
        "hung `aclose`",
    ]
    base = data["baselines"]
    tail = (
        f"A fresh job process (Frontdesk and LiveKit imported, heap frozen as in `prewarm`) is "
        f"{fmt_bytes(base['job_process_rss_bytes_offline_profile'])} RSS, "
        f"{fmt_bytes(base['job_process_rss_bytes_with_silero_vad'])} with Silero's VAD loaded."
    )
    return _table(header, rows) + "\n\n" + tail + "\n\n" + _cpu(data)


def voice_md(data: dict[str, Any]) -> str:
    if "turns" not in data:
        return f"_skipped: {data.get('skipped', 'no data')}_"
    rows = []
    for kind, t in data["turns"].items():
        rows.append(
            [
                kind,
                str(len(t["frontdesk_ms"])),
                f"{t['providers_ms']:.0f}",
                f"{t['bare_median_ms']:.0f} / {max(t['bare_ms']):.0f}",
                f"{t['frontdesk_median_ms']:.0f} / {max(t['frontdesk_ms']):.0f}",
                f"{t['overhead_vs_bare_ms']:+.0f}",
                f"{t['ratio_vs_bare']:.3f}×",
            ]
        )
    header = [
        "turn",
        "samples / side",
        "providers (S + n·L + T)",
        "bare LiveKit med / max",
        "Frontdesk med / max",
        "Frontdesk − bare",
        "× bare",
    ]
    cpu_rows = []
    for side, label in (("bare", "bare LiveKit"), ("frontdesk", "Frontdesk")):
        cpu = data["cpu_per_audio_second"][side]
        stops = sorted(data["barge_in_stop_ms"][side])
        silent = sorted(cpu["silent"])[len(cpu["silent"]) // 2]
        whole = sorted(cpu["call"])[len(cpu["call"]) // 2]
        cpu_rows.append(
            [
                label,
                f"{whole * 100:.1f}%",
                f"{silent * 100:.1f}%",
                f"{stops[len(stops) // 2]:.0f}",
            ]
        )
    cpu_header = [
        "side",
        "CPU / s of audio, whole call (incl. loopback server)",
        "CPU / s, caller silent",
        "barge-in → silent, ms",
    ]
    return _table(header, rows) + "\n\n" + _table(cpu_header, cpu_rows) + "\n\n" + _cpu(data)


def realmodel_md(data: dict[str, Any]) -> str:
    seen = data["one_request_median_s"]
    rows = []
    for label, key in (
        ("Frontdesk", "frontdesk"),
        ("bare LiveKit, `say` as the tool's reply", "bare_livekit"),
    ):
        r = data[key]
        rows.append(
            [
                label,
                f"{r['requests_per_turn_median']:.0f}",
                f"{r['to_say_line_median_s'] * 1000:,.0f} ms = {r['to_say_line_median_s'] / seen:.2f} × L",
                f"{r['to_reply_median_s'] * 1000:,.0f} ms = {r['to_reply_median_s'] / seen:.2f} × L",
            ]
        )
    header = ["", "model requests per handoff turn", "→ `say` line (median)", "→ reply (median)"]
    tail = (
        f"Fake model latency {data['latency_s']:.1f} s; L as the client sees it (one plain "
        f"request) {seen * 1000:,.0f} ms; {data['calls']} calls × {data['turns_per_call']} turns."
    )
    return _table(header, rows) + "\n\n" + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("--json-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    sections = (
        ("persist", persist_md),
        ("persist", floor_md),
        ("resume", resume_md),
        ("handoff", handoff_md),
        ("capacity", capacity_md),
        ("jobs", jobs_md),
        ("voice", voice_md),
        ("realmodel", realmodel_md),
    )
    print("#### targets\n")
    print(targets_md(args.json_dir) + "\n")
    first = True
    for name, render in sections:
        data = _load(args.json_dir, name)
        if data is None:
            print(f"<!-- {name}: no {name}.json in {args.json_dir} -->\n")
            continue
        if first:
            print(f"Measured on: {machine_line(data)}\n")
            first = False
        print(f"#### {name}\n")
        print(render(data) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
