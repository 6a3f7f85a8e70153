"""Logging set-up for entry points: one readable line per event, ``key=value`` fields.

Messages about a source carry ``source=<id> action=<what> outcome=<result>`` so one grep finds a
source's history.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Their per-request chatter would drown the per-source lines.
    for noisy in ("urllib3", "apscheduler.executors", "apscheduler.scheduler",
                  "uvicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
