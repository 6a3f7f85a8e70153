"""Live reload of the editorial files while the service runs.

A daemon thread compares the files' modification time, size and inode every ``interval``
seconds; when they changed it reads the catalog again and hands it to ``apply``. A file that
fails the checks leaves the running configuration in place and is logged once, as one line
naming the file, the id and the key; the next change is tried again. ``reload_now`` does the
same at once, for an editor who has just saved through the admin pages.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from aggregator.catalog import CATEGORIES_FILE, SOURCES_FILE, Catalog, CatalogErrors, load_catalog
from aggregator.delivery.subscribers import WEBHOOKS_FILE
from aggregator.editorial.configedit import config_lock
from aggregator.errors import ConfigError

log = logging.getLogger("aggregator.reload")

Stamp = tuple[tuple[int, int, int] | None, ...]


def stamp(config_dir: Path) -> Stamp:
    """What changes when an editorial file (webhooks.toml too) is saved: mtime, size and
    inode (editors and our own edits replace the file, which changes the inode even within
    one mtime tick)."""
    marks: list[tuple[int, int, int] | None] = []
    for name in (SOURCES_FILE, CATEGORIES_FILE, WEBHOOKS_FILE):
        try:
            status = os.stat(config_dir / name)
        except OSError:
            marks.append(None)
        else:
            marks.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(marks)


class ConfigReloader:
    """Watches ``config_dir`` and applies each valid new catalog with ``apply``."""

    def __init__(
        self, config_dir: Path, apply: Callable[[Catalog], None], *, interval: float
    ) -> None:
        self.config_dir = config_dir
        self.apply = apply
        self.interval = interval
        # The files as they were when the running catalog was read.
        self._seen = stamp(config_dir)
        self._refused: Stamp | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch in a daemon thread; an interval of 0 means only ``reload_now`` reloads."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="config-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)

    def check(self) -> bool:
        """Reload if the files changed since last seen; True when a new catalog was applied.
        A refused configuration is logged once, not at every check."""
        with self._lock:
            current = stamp(self.config_dir)
            if current in (self._seen, self._refused):
                return False
            try:
                catalog = self._load()
            except ConfigError as exc:
                if stamp(self.config_dir) != current:
                    return False  # saved again while we read it: judge the newer files
                self._refused = current
                _log_refused(exc)
                return False
            self._apply(catalog, current)
            return True

    def reload_now(self) -> Catalog:
        """Read and apply the files now, changed or not; raises ConfigError (nothing applied)
        when they fail the checks."""
        with self._lock:
            current = stamp(self.config_dir)
            try:
                catalog = self._load()
            except ConfigError as exc:
                self._refused = current
                _log_refused(exc)
                raise
            self._apply(catalog, current)
            return catalog

    def _load(self) -> Catalog:
        # The shared lock keeps out a two-file edit half done (see configedit).
        with config_lock(self.config_dir, shared=True):
            return load_catalog(self.config_dir)

    def _apply(self, catalog: Catalog, current: Stamp) -> None:
        self.apply(catalog)
        self._seen, self._refused = current, None
        log.info(
            "action=config-reload outcome=applied sources=%d categories=%d",
            len(catalog.sources),
            len(catalog.categories),
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # a failed apply must not end the watching
                log.exception("action=config-reload outcome=error")


def _log_refused(exc: ConfigError) -> None:
    """One line: where the (first) problem is, how many there are, and the message."""
    first = exc.errors[0] if isinstance(exc, CatalogErrors) and exc.errors else exc
    problems = len(exc.errors) if isinstance(exc, CatalogErrors) else 1
    log.error(
        "action=config-reload outcome=refused file=%s item=%s key=%s problems=%d "
        "error=%r; the previous configuration stays in use",
        first.file or "-",
        first.item or "-",
        first.key or "-",
        problems,
        first.reason,
    )
