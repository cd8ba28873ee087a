"""The workflow definition: the config.toml schema, its loader, durations, the line locator and graph checks."""

from __future__ import annotations

from frontdesk.workflows.definition.durations import (
    MAX_DURATION,
    Duration,
    parse_duration,
)
from frontdesk.workflows.definition.graph import (
    GraphIssue,
    check_graph,
    reachable_from,
    render_graph,
)
from frontdesk.workflows.definition.loader import (
    DEFAULT_CONFIG_PATH,
    Workflow,
    load_workflow,
    parse_workflow,
)
from frontdesk.workflows.definition.locator import (
    KeyLocator,
    format_path,
)
from frontdesk.workflows.definition.schema import (
    DEFAULT_STYLE,
    NAME_PATTERN,
    OFFLINE_PROFILE,
    AgentConfig,
    CallerField,
    ComponentConfig,
    ComponentOverride,
    ContextKind,
    ContextPolicy,
    Name,
    OfflineAgent,
    OfflineSection,
    ProviderName,
    ProviderProfile,
    ProvidersSection,
    ResumeSection,
    Route,
    StateSection,
    TrustMode,
    WorkerSection,
    WorkflowConfig,
    WorkflowSection,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_STYLE",
    "MAX_DURATION",
    "NAME_PATTERN",
    "OFFLINE_PROFILE",
    "AgentConfig",
    "CallerField",
    "ComponentConfig",
    "ComponentOverride",
    "ContextKind",
    "ContextPolicy",
    "Duration",
    "GraphIssue",
    "KeyLocator",
    "Name",
    "OfflineAgent",
    "OfflineSection",
    "ProviderName",
    "ProviderProfile",
    "ProvidersSection",
    "ResumeSection",
    "Route",
    "StateSection",
    "TrustMode",
    "WorkerSection",
    "Workflow",
    "WorkflowConfig",
    "WorkflowSection",
    "check_graph",
    "format_path",
    "load_workflow",
    "parse_duration",
    "parse_workflow",
    "reachable_from",
    "render_graph",
]
