"""RFC 5005 archive pages: which stories each page holds, frozen so its bytes never change.

Per category, every story gets a place in an append-only sequence the first time the outputs
see it (oldest first-seen first). Page k is the k-th run of ``page_size`` places; once full it
is frozen: its stories are written to a snapshot with their content as it was then, and later
changes (a source joining, an edit, a merge) never reach it. The open tail is kept with each
story's latest content until its page freezes. A tail story that has dropped out of the live
feed closes its page early, so the live feed plus the archives always hold every story shown.
Snapshots live under a folder (kept with the database), or in memory when none is given.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aggregator.types import EntryView, StoryView, media_from_json, media_json

log = logging.getLogger("aggregator.archives")

SNAPSHOT_VERSION: Final = 1
_PAGES: Final = "pages"
_STATE: Final = "state.json"
_FROZEN: Final = "frozen.txt"
_LOCK: Final = ".lock"
DEFAULT_DIR: Final = Path("var") / "archives"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def archive_dir_for(configured: str, database_url: str) -> Path | None:
    """Where the pages live: the configured folder, else beside an SQLite database file
    (``x.db`` → ``x.archives``), else ``./var/archives/{host}-{database}`` (pages belong to
    one database: two must never share them); None (memory) for an in-memory SQLite
    database, whose stories vanish with the process anyway."""
    if configured:
        return Path(configured)
    scheme, _, rest = database_url.partition("://")
    if scheme.split("+", 1)[0] != "sqlite":
        parts = urlsplit(database_url)
        name = f"{parts.hostname or 'local'}-{parts.path.strip('/') or 'default'}"
        return DEFAULT_DIR / _UNSAFE_NAME.sub("_", name)
    location = rest.removeprefix("/").split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    database = Path(location)
    return database.with_name(database.stem + ".archives")


@dataclass
class _Category:
    pages: int = 0
    tail: list[StoryView] = field(default_factory=list)
    frozen: set[str] = field(default_factory=set)
    frozen_offset: int = 0
    # Pages frozen in this process when there is no folder to keep them in.
    memory_pages: dict[int, tuple[StoryView, ...]] = field(default_factory=dict)


class ArchiveLog:
    """Assigns stories to archive pages and keeps the frozen pages.

    Safe for threads of one process and, through a lock file per category, for processes
    sharing the folder: the first process to freeze a page writes it, the others read it.
    """

    def __init__(self, directory: Path | None, page_size: int) -> None:
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        self.directory = directory
        self.page_size = page_size
        self._lock = threading.Lock()
        self._categories: dict[str, _Category] = {}

    def observe(
        self,
        category_id: str,
        stories: Sequence[StoryView],
        shown: Sequence[StoryView],
        withdrawn: Callable[[Sequence[str]], Collection[str]] | None = None,
    ) -> int:
        """Record ``stories`` (the newest of the category, any order) and freeze every page
        that is complete; ``shown`` are the stories the live feed shows. Returns the number of
        frozen pages. ``withdrawn`` tells, of the open page's stories missing from
        ``stories``, those editors took out (hidden, merged away): they leave the open page
        instead of being frozen into it, and are placed anew if they come back."""
        with self._lock, self._locked(category_id):
            state = self._load(category_id)
            fresh = {s.uid: _bare(s) for s in stories}
            missing = [s.uid for s in state.tail if s.uid not in fresh]
            gone = set(withdrawn(missing)) if withdrawn is not None and missing else set()
            placed = state.frozen | {s.uid for s in state.tail if s.uid not in gone}
            # Tail stories keep their latest content until their page freezes.
            tail = [fresh.get(s.uid, s) for s in state.tail if s.uid not in gone]
            new = sorted(
                (fresh[s.uid] for s in stories if s.uid not in placed),
                key=lambda s: (s.first_seen, s.story_id, s.uid),
            )
            tail += new
            frozen_now: list[tuple[StoryView, ...]] = []
            while len(tail) >= self.page_size:
                frozen_now.append(tuple(tail[: self.page_size]))
                tail = tail[self.page_size :]
            visible = {s.uid for s in shown}
            if tail and any(s.uid not in visible for s in tail):
                frozen_now.append(tuple(tail))
                tail = []
            if not new and not frozen_now and tail == state.tail:
                return state.pages
            for page in frozen_now:
                self._freeze(category_id, state, page)
            state.tail = tail
            self._save(category_id, state)
            return state.pages

    def page_count(self, category_id: str) -> int:
        with self._lock, self._locked(category_id):
            return self._load(category_id).pages

    def page(self, category_id: str, number: int) -> tuple[StoryView, ...] | None:
        """The stories of frozen page ``number``, or None when it is not (yet) frozen."""
        if number < 0:
            return None
        with self._lock:
            state = self._categories.get(category_id)
            if state is not None and number in state.memory_pages:
                return state.memory_pages[number]
        if self.directory is None:
            return None
        path = self._dir(category_id) / _PAGES / f"{number}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return tuple(_story(s) for s in data["stories"])

    # -- persistence -------------------------------------------------------------------------

    def _dir(self, category_id: str) -> Path:
        assert self.directory is not None
        return self.directory / category_id

    @contextmanager
    def _locked(self, category_id: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        folder = self._dir(category_id)
        (folder / _PAGES).mkdir(parents=True, exist_ok=True)
        with (folder / _LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self, category_id: str) -> _Category:
        state = self._categories.setdefault(category_id, _Category())
        if self.directory is None:
            return state
        folder = self._dir(category_id)
        # Another process may have frozen pages since: read what it appended.
        try:
            with (folder / _FROZEN).open("rb") as handle:
                handle.seek(state.frozen_offset)
                added = handle.read()
        except FileNotFoundError:
            added = b""
        complete = added[: added.rfind(b"\n") + 1]
        state.frozen.update(line for line in complete.decode("utf-8").splitlines() if line)
        state.frozen_offset += len(complete)
        try:
            data = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        state.pages = int(data["pages"])
        state.tail = [_story(s) for s in data["tail"]]
        return state

    def _freeze(self, category_id: str, state: _Category, stories: tuple[StoryView, ...]) -> None:
        number = state.pages
        if self.directory is None:
            state.memory_pages[number] = stories
        else:
            folder = self._dir(category_id)
            _write_new(
                folder / _PAGES / f"{number}.json",
                {
                    "version": SNAPSHOT_VERSION,
                    "category": category_id,
                    "page": number,
                    "stories": [_story_data(s) for s in stories],
                },
            )
            with (folder / _FROZEN).open("a", encoding="utf-8") as handle:
                handle.write("".join(f"{s.uid}\n" for s in stories))
        state.frozen.update(s.uid for s in stories)
        state.pages = number + 1
        log.info(
            "action=archive outcome=frozen category=%s page=%d stories=%d",
            category_id,
            number,
            len(stories),
        )

    def _save(self, category_id: str, state: _Category) -> None:
        if self.directory is None:
            return
        path = self._dir(category_id) / _STATE
        data = {
            "version": SNAPSHOT_VERSION,
            "pages": state.pages,
            "tail": [_story_data(s) for s in state.tail],
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)


def _write_new(path: Path, data: dict[str, Any]) -> None:
    """Write a frozen page once; an existing page is never replaced, whatever we hold."""
    if path.exists():
        return
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


# -- snapshots: the views as plain JSON (membership evidence is not part of any output) ---------


def _bare(story: StoryView) -> StoryView:
    """The story as a snapshot keeps it: without the clustering evidence of its entries."""
    if all(e.membership is None for e in story.entries):
        return story
    return dataclasses.replace(
        story, entries=tuple(dataclasses.replace(e, membership=None) for e in story.entries)
    )


def _story_data(story: StoryView) -> dict[str, Any]:
    return {
        "story_id": story.story_id,
        "uid": story.uid,
        "first_seen": story.first_seen.isoformat(),
        "updated_at": story.updated_at.isoformat(),
        "entries": [_entry_data(e) for e in story.entries],
    }


def _entry_data(entry: EntryView) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "source_id": entry.source_id,
        "source_title": entry.source_title,
        "url": entry.url,
        "title": entry.title,
        "summary_html": entry.summary_html,
        "language": entry.language,
        "published_at": entry.published_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "author": entry.author,
        "in_category": entry.in_category,
        # Only when there are media: the snapshots of media-less entries stay as they were.
        **(media_json(entry.enclosures, entry.image) if entry.enclosures or entry.image else {}),
        # Only when there is one, so pages frozen before full text keep their bytes.
        **({"full_html": entry.full_html} if entry.full_html else {}),
    }


def _story(data: dict[str, Any]) -> StoryView:
    return StoryView(
        story_id=int(data["story_id"]),
        uid=str(data["uid"]),
        first_seen=datetime.fromisoformat(data["first_seen"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        entries=tuple(_entry(e) for e in data["entries"]),
    )


def _entry(data: dict[str, Any]) -> EntryView:
    return EntryView(
        entry_id=int(data["entry_id"]),
        source_id=str(data["source_id"]),
        source_title=str(data["source_title"]),
        url=data["url"],
        title=str(data["title"]),
        summary_html=str(data["summary_html"]),
        language=data["language"],
        published_at=datetime.fromisoformat(data["published_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        author=data["author"],
        in_category=bool(data["in_category"]),
        **_media(data),
        # Pages frozen before full text existed have no such key.
        full_html=data.get("full_html"),
    )


def _media(data: dict[str, Any]) -> dict[str, Any]:
    enclosures, image = media_from_json(data.get("enclosures"), data.get("image"))
    return {"enclosures": enclosures, "image": image}
