"""The workflow's graph as SVG, drawn on the server: no JavaScript, no Graphviz, no build step.

A layered layout: the start agent in the first column, every other agent in the column of its
distance (in routes) from the start, unreachable agents in a last column. Each agent is one
``<g class="agent" data-agent="NAME">`` with its name, the fields it collects and its tools;
each route one ``<g class="route">`` arrow with a numbered badge, and a legend row
(``<g class="route-label">``) with its ``when``, its context policy and how many stored
sessions took it. Agents with validation warnings get a ``warning`` class and a
``⚠`` mark. All text is XML-escaped (config text is shown as given).
"""

from __future__ import annotations

import math
import textwrap
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from frontdesk.workflows.definition import WorkflowConfig

NODE_W = 230
LINE_H = 16
COL_GAP = 200
ROW_GAP = 90
BOW = 48
MARGIN = 40
CALLER_R = 26
LABEL_CHARS = 56


@dataclass(frozen=True)
class _Node:
    name: str
    x: float
    y: float
    h: float
    lines: tuple[str, ...]


def _layers(config: WorkflowConfig) -> list[list[str]]:
    start = config.workflow.start
    depth: dict[str, int] = {}
    if start in config.agents:
        depth[start] = 0
        queue = deque([start])
        while queue:
            name = queue.popleft()
            for route in config.agents[name].handoffs:
                if route.to in config.agents and route.to not in depth:
                    depth[route.to] = depth[name] + 1
                    queue.append(route.to)
    last = max(depth.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(last + 1)]
    for name in config.agents:  # config order within a column
        layers[depth.get(name, last)].append(name)
    return [layer for layer in layers if layer]


def _node_lines(config: WorkflowConfig, name: str) -> tuple[str, ...]:
    agent = config.agents[name]
    lines: list[str] = []
    if agent.collects:
        lines.append("collects: " + ", ".join(agent.collects))
    tools = [f"record_{field}" for field in agent.collects]
    tools += [f"transfer_to_{route.to}" for route in agent.handoffs]
    for tool in tools:
        lines.append("⚙ " + tool)
    return tuple(lines)


def _bezier(
    p0: tuple[float, float],
    p1: tuple[float, float],
    p2: tuple[float, float],
    p3: tuple[float, float],
    t: float,
) -> tuple[float, float]:
    u = 1 - t
    return (
        u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
        u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
    )


def render_svg(
    config: WorkflowConfig,
    *,
    counts: Mapping[tuple[str, str], int] | None = None,
    warnings: Mapping[str, list[str]] | None = None,
    agent_classes: Mapping[str, str] | None = None,
) -> str:
    """The SVG drawing of ``config``'s agents and routes.

    ``counts``: handoffs taken per (from, to); ``warnings``: messages per agent name;
    ``agent_classes``: an extra CSS class per agent (its colour on the session pages).
    """
    counts = counts or {}
    warnings = warnings or {}
    agent_classes = agent_classes or {}
    layers = _layers(config)
    nodes: dict[str, _Node] = {}
    column_heights: list[float] = []
    for layer in layers:
        heights = [44 + LINE_H * len(_node_lines(config, name)) for name in layer]
        column_heights.append(sum(heights) + ROW_GAP * (len(heights) - 1))
    total_h = max(column_heights, default=100)
    caller_x = MARGIN + CALLER_R
    first_x = caller_x + CALLER_R + 90
    for col, layer in enumerate(layers):
        x = first_x + col * (NODE_W + COL_GAP)
        y = MARGIN + 30 + (total_h - column_heights[col]) / 2
        for name in layer:
            lines = _node_lines(config, name)
            h = 44 + LINE_H * len(lines)
            nodes[name] = _Node(name=name, x=x, y=y, h=h, lines=lines)
            y += h + ROW_GAP
    width = first_x + len(layers) * (NODE_W + COL_GAP) - COL_GAP + MARGIN
    height = MARGIN * 2 + 60 + total_h

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'aria-label="{escape(config.workflow.name)} workflow graph">',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" '
        'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    edges: list[str] = []
    labels: list[str] = []
    legend: list[tuple[int, str, str, str, str, int]] = []
    box = [0.0, 0.0, width, height]  # min x, min y, max x, max y of everything drawn

    def grow(x0: float, y0: float, x1: float, y1: float) -> None:
        box[0], box[1] = min(box[0], x0), min(box[1], y0)
        box[2], box[3] = max(box[2], x1), max(box[3], y1)

    pairs = {(name, r.to) for name, agent in config.agents.items() for r in agent.handoffs}
    for name, agent in config.agents.items():
        for route in agent.handoffs:
            if name not in nodes or route.to not in nodes:
                continue
            a, b = nodes[name], nodes[route.to]
            two_way = (route.to, name) in pairs
            if b.x != a.x:
                right = b.x > a.x
                p0 = (a.x + (NODE_W if right else 0), a.y + a.h / 2)
                p3 = (b.x + (0 if right else NODE_W), b.y + b.h / 2)
            else:
                down = b.y > a.y
                p0 = (a.x + NODE_W / 2, a.y + (a.h if down else 0))
                p3 = (b.x + NODE_W / 2, b.y + (0 if down else b.h))
            dx, dy = p3[0] - p0[0], p3[1] - p0[1]
            length = math.hypot(dx, dy) or 1.0
            normal = (dy / length, -dx / length)  # left of the direction of travel
            bow = BOW if two_way else BOW / 3
            p1 = (p0[0] + dx / 3 + normal[0] * bow, p0[1] + dy / 3 + normal[1] * bow)
            p2 = (p0[0] + 2 * dx / 3 + normal[0] * bow, p0[1] + 2 * dy / 3 + normal[1] * bow)
            t = 0.5 if not two_way else (0.42 if name < route.to else 0.58)
            mid = _bezier(p0, p1, p2, p3, t)
            taken = counts.get((name, route.to), 0)
            stroke = 1.5 + min(math.log2(1 + taken), 4.0)
            route_id = f"route-{escape(name)}-{escape(route.to)}"
            edges.append(
                f'<g class="route" id="{route_id}" data-from="{escape(name)}" '
                f'data-to="{escape(route.to)}" data-count="{taken}">'
                f"<title>{escape(name)} → {escape(route.to)}: {escape(route.when)} "
                f"(context {escape(route.context)}; taken {taken}×)</title>"
                f'<path d="M{p0[0]:.1f},{p0[1]:.1f} C{p1[0]:.1f},{p1[1]:.1f} '
                f'{p2[0]:.1f},{p2[1]:.1f} {p3[0]:.1f},{p3[1]:.1f}" '
                f'stroke-width="{stroke:.1f}" marker-end="url(#arrow)"/></g>'
            )
            number = len(legend) + 1
            grow(min(p1[0], p2[0]), min(p1[1], p2[1]), max(p1[0], p2[0]), max(p1[1], p2[1]))
            labels.append(
                f'<g class="route-badge" data-from="{escape(name)}" data-to="{escape(route.to)}">'
                f'<circle cx="{mid[0]:.1f}" cy="{mid[1]:.1f}" r="10"/>'
                f'<text x="{mid[0]:.1f}" y="{mid[1] + 4:.1f}" text-anchor="middle">{number}</text></g>'
            )
            legend.append((number, name, route.to, route.when, route.context, taken))
    # the legend: every route's number, ends, when, context policy and count
    lx = box[2] + 30
    ly = max(box[1], MARGIN)
    legend_parts = [
        f'<text class="legend-title" x="{lx:.1f}" y="{ly + 14:.1f}">Routes (when · context · taken)</text>'
    ]
    ly += 30
    for number, from_agent, to_agent, when, context, taken in legend:
        when_lines = textwrap.wrap(when, LABEL_CHARS)
        legend_parts.append(
            f'<g class="route-label" data-from="{escape(from_agent)}" data-to="{escape(to_agent)}">'
            f'<circle cx="{lx + 10:.1f}" cy="{ly + 6:.1f}" r="10"/>'
            f'<text class="badge-number" x="{lx + 10:.1f}" y="{ly + 10:.1f}" text-anchor="middle">{number}</text>'
            f'<text class="route-ends" x="{lx + 28:.1f}" y="{ly + 10:.1f}">{escape(from_agent)} → {escape(to_agent)}'
            f'<tspan class="route-meta"> · {escape(context)} · {taken}×</tspan></text>'
            + "".join(
                f'<text class="route-when" x="{lx + 28:.1f}" y="{ly + 26 + i * 14:.1f}">{escape(line)}</text>'
                for i, line in enumerate(when_lines)
            )
            + "</g>"
        )
        longest = max(
            [len(f"{from_agent} → {to_agent} · {context} · {taken}×"), *map(len, when_lines)]
        )
        grow(lx, ly, lx + 40 + longest * 6.6, ly + 26 + 14 * len(when_lines))
        ly += 34 + 14 * len(when_lines)
    labels.extend(legend_parts)
    out[0] = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" role="img" '
        f'viewBox="{box[0] - 10:.0f} {box[1] - 10:.0f} {box[2] - box[0] + 20:.0f} '
        f'{box[3] - box[1] + 20:.0f}" width="{box[2] - box[0] + 20:.0f}" '
        f'height="{box[3] - box[1] + 20:.0f}" '
        f'aria-label="{escape(config.workflow.name)} workflow graph">'
    )
    # the caller's arrow into the start agent
    start = nodes.get(config.workflow.start)
    caller_y = start.y + start.h / 2 if start else MARGIN + 60
    out.append(
        f'<g class="caller"><circle cx="{caller_x}" cy="{caller_y:.1f}" r="{CALLER_R}"/>'
        f'<text x="{caller_x}" y="{caller_y + 4:.1f}" text-anchor="middle">caller</text></g>'
    )
    if start:
        out.append(
            f'<g class="route start-route"><path d="M{caller_x + CALLER_R},{caller_y:.1f} '
            f'L{start.x:.1f},{caller_y:.1f}" marker-end="url(#arrow)"/></g>'
        )
    out.extend(edges)
    for node in nodes.values():
        classes = ["agent"]
        if node.name == config.workflow.start:
            classes.append("start")
        if node.name in warnings:
            classes.append("warning")
        if node.name in agent_classes:
            classes.append(agent_classes[node.name])
        title = escape(node.name) + (
            "".join(f"\n⚠ {escape(w)}" for w in warnings.get(node.name, []))
        )
        parts = [
            f'<g class="{" ".join(classes)}" id="agent-{escape(node.name)}" '
            f'data-agent="{escape(node.name)}"><title>{title}</title>'
            f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{NODE_W}" height="{node.h:.1f}" '
            'rx="8"/>',
            f'<text class="agent-name" x="{node.x + 12:.1f}" y="{node.y + 24:.1f}">'
            f"{escape(node.name)}</text>",
        ]
        if node.name in warnings:
            parts.append(
                f'<text class="warning-mark" x="{node.x + NODE_W - 12:.1f}" '
                f'y="{node.y + 24:.1f}" text-anchor="end">⚠</text>'
            )
        for i, line in enumerate(node.lines):
            parts.append(
                f'<text class="agent-detail" x="{node.x + 12:.1f}" '
                f'y="{node.y + 44 + i * LINE_H:.1f}">{escape(line)}</text>'
            )
        parts.append("</g>")
        out.append("".join(parts))
    out.extend(labels)
    out.append("</svg>")
    return "".join(out)
