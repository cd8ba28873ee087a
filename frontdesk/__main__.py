"""``python -m frontdesk``: the same as the ``frontdesk`` command."""

from __future__ import annotations

import sys

from frontdesk.workflows.cli import main

sys.exit(main())
