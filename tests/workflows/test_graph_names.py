"""``frontdesk graph`` output stays valid Mermaid and DOT whatever the agents are called:
Mermaid reads ``end``, ``graph``, ``subgraph``, ``style``… as keywords and ``o``/``x`` right
after an arrow as edge shapes (Pipecat names its last node "end")."""

from __future__ import annotations

import re

from frontdesk.workflows.definition import parse_workflow, render_graph

TRICKY = ["caller", "end", "graph", "subgraph", "o", "x", "style", "class", "click", "default"]


def _config_text(names: list[str]) -> str:
    agents = []
    for index, name in enumerate(names):
        nxt = names[(index + 1) % len(names)]
        agents.append(
            f'[agents.{name}]\ninstructions = "be {name}"\ncollects = ["note"]\n'
            f'[[agents.{name}.handoffs]]\nto = "{nxt}"\nwhen = "the caller says \\"{nxt}\\""\n'
            'context = "last:2"\n'
        )
    return (
        f'[workflow]\nname = "tricky"\nstart = "{names[0]}"\n'
        '[caller_data.note]\ndescription = "a note"\n' + "\n".join(agents)
    )


def test_mermaid_ids_never_collide_with_keywords_and_labels_are_quoted() -> None:
    config = parse_workflow(_config_text(TRICKY)).config
    mermaid = render_graph(config, "mermaid").splitlines()
    assert mermaid[0] == "flowchart LR"
    assert mermaid[1] == "  caller((caller)) --> agent_caller"
    nodes = [line for line in mermaid[2:] if "-->" not in line]
    edges = [line for line in mermaid[2:] if "-->" in line]
    matches = [re.fullmatch(r'  agent_(\w+)\["(\w+)<br/>collects: note"\]', n) for n in nodes]
    assert [m.groups() if m else None for m in matches] == [(name, name) for name in TRICKY]
    for line in edges:
        assert re.fullmatch(r'  agent_\w+ -->\|"last:2"\| agent_\w+', line), line
    # every id (a line's first word, an arrow's target) is agent_<name>, never a bare name
    ids = [i for line in mermaid[2:] for i in re.findall(r"(?:^  |--> |\| )(\w+)", line)]
    assert ids and all(i.startswith("agent_") for i in ids), ids
    # every id is used consistently: each edge's ends are declared nodes
    declared = {re.match(r"  (agent_\w+)\[", n).group(1) for n in nodes}  # type: ignore[union-attr]
    for line in edges:
        source, target = re.findall(r"agent_\w+", line)
        assert source in declared and target in declared


def test_dot_quotes_every_id() -> None:
    config = parse_workflow(_config_text(TRICKY)).config
    dot = render_graph(config, "dot")
    for name in TRICKY:
        assert f'"{name}" [shape=' in dot
    assert len(re.findall(r'^  "\w+" -> "\w+" \[label="last:2"\];$', dot, re.M)) == len(TRICKY)
