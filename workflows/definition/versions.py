"""A workflow version as a document (normalised JSON) and back, for the kept versions of live
reload (:mod:`frontdesk.state.versions`)."""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from frontdesk.workflows.definition.loader import Workflow
from frontdesk.workflows.definition.schema import WorkflowConfig

logger = logging.getLogger(__name__)


def version_document(workflow: Workflow) -> bytes:
    """The normalised config of ``workflow`` (``[offline]`` included), as JSON bytes."""
    return json.dumps(workflow.config.model_dump(mode="json"), sort_keys=True).encode()


def workflow_from_document(document: bytes, *, expected_hash: str) -> Workflow | None:
    """The workflow a kept document holds; None when it does not validate or is not the version
    ``expected_hash`` names (damaged, or written by an incompatible Frontdesk)."""
    try:
        config = WorkflowConfig.model_validate(json.loads(document))
    except (ValueError, ValidationError) as exc:
        logger.warning("kept workflow version %s does not load: %s", expected_hash, exc)
        return None
    workflow = Workflow(config=config, source=f"kept version {expected_hash}")
    if workflow.content_hash != expected_hash:
        logger.warning(
            "kept workflow version %s holds %s instead; not used",
            expected_hash,
            workflow.content_hash,
        )
        return None
    return workflow
