"""Keeps the output documents current while the web app runs, requests or not.

A daemon thread checks every category each ``recheck_seconds`` (``Outputs.refresh``), so a
change is rendered, and its WebSub ping sent, soon after it is stored rather than on the next
request; and requests find documents already fresh in memory.
"""

from __future__ import annotations

import logging
import threading

from aggregator.errors import AggregatorError
from aggregator.publishing.outputs import Outputs

log = logging.getLogger("aggregator.web.watcher")


class OutputWatcher:
    def __init__(self, outputs: Outputs, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.outputs = outputs
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-watcher", daemon=True)

    def start(self) -> None:
        self.outputs.watched = True
        self._thread.start()

    def stop(self) -> None:
        self.outputs.watched = False
        self._stop.set()
        self._thread.join(timeout=self.interval + 30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                changed = self.outputs.refresh()
            except AggregatorError as exc:
                # A store outage or one unrenderable story: keep serving what we have.
                log.warning("action=output_refresh outcome=error error=%s", exc)
            else:
                if changed:
                    log.info("action=output_refresh outcome=changed feeds=%d", len(changed))
            self._stop.wait(self.interval)
