"""``frontdesk inspect``: the operator's view of stored sessions and of the workflow, in a browser.

A small ASGI app (:mod:`.app`, Starlette, served by uvicorn) over the state layer's store; its
page logic is in :mod:`.views` (pure), its HTML in :mod:`.pages`, the workflow drawing in
:mod:`.graph_svg`, and its one script and stylesheet in ``static/`` (package data, no build).
"""

from __future__ import annotations

from .app import InspectorSettings, create_app
from .serve import cmd_inspect, serve

__all__ = ["InspectorSettings", "cmd_inspect", "create_app", "serve"]
