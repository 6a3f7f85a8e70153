"""Editing the editorial files in place: pause, resume, remove and add sources, create
categories, set a category's rules. The one home of tomlkit.

The TOML files stay the single source of truth: the command line and the admin pages change them
here, keeping comments and layout. Every edit is checked three ways before the real file is
replaced (atomically): the edited text must parse to exactly the data asked for, the whole
catalog must pass ``load_catalog`` on a scratch copy, and the folder must be writable. Any
refusal is a ``ConfigError`` naming the file, the id and the key; the files are then unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, Table

from aggregator.catalog import CATEGORIES_FILE, SOURCES_FILE, CatalogErrors, load_catalog
from aggregator.errors import ConfigError
from aggregator.polling.normalize import canonical_url

FILES = (SOURCES_FILE, CATEGORIES_FILE)
# Written in this order: new categories first, so a reader that does not take the lock sees,
# at worst, a category no source uses yet rather than a source with an unknown category.
WRITE_ORDER = (CATEGORIES_FILE, SOURCES_FILE)

_HEADER_RE = re.compile(r"^\s*\[\[\s*(?P<name>[A-Za-z0-9_-]+)\s*\]\]\s*(?:#.*)?$")
_TABLE_RE = re.compile(r"^\s*\[")
_COMMENT_RE = re.compile(r"^\s*#")
_BLANK_RE = re.compile(r"^\s*$")


@dataclass(frozen=True)
class NewSource:
    """A source to append to ``sources.toml``; ``interval`` as written ("30m")."""

    id: str
    url: str
    title: str | None
    categories: tuple[str, ...]
    language: str | None = None
    interval: str | None = None
    site_url: str | None = None
    # Written as ``public_only = true`` (see catalog.SourceConfig) for API/admin additions.
    public_only: bool = False


@dataclass(frozen=True)
class NewCategory:
    """A category to append to ``categories.toml``; without rules it takes every entry."""

    id: str
    title: str
    description: str | None = None


class ConfigNotWritable(ConfigError):
    """The editorial folder or one of its files cannot be written (read-only deployment)."""


class UnknownItem(ConfigError):
    """No source or category has the id an edit names."""


# -- the edits ------------------------------------------------------------------------------


def set_source_enabled(config_dir: Path, source_id: str, enabled: bool) -> None:
    """Pause (``enabled = false``) or resume (the key removed: true is the default)."""

    def change(texts: dict[str, str], plain: dict[str, dict[str, Any]]) -> None:
        target = _target(config_dir, texts, SOURCES_FILE, "source", source_id)
        table = target.tables[target.index]
        expected = plain[SOURCES_FILE]["source"][target.index]
        if enabled:
            if table.get("enabled") is not False:
                return
            del table["enabled"]
            del expected["enabled"]
            texts[SOURCES_FILE] = tomlkit.dumps(target.doc)
        elif "enabled" in table:
            if table["enabled"] is False:
                return
            table["enabled"] = False
            expected["enabled"] = False
            texts[SOURCES_FILE] = tomlkit.dumps(target.doc)
        else:
            expected["enabled"] = False
            texts[SOURCES_FILE] = _insert_lines(
                target.text, "source", target.index, ["enabled = false"], target.file
            )

    _edit(config_dir, change)


def remove_source(config_dir: Path, source_id: str) -> None:
    """Remove the ``[[source]]`` table, and a comment written directly above it.

    Stored entries stay: the store marks the source ``removed`` at its next sync. A source that
    is the last one of a category cannot be removed while the category exists (the check
    refuses a category no source uses).
    """

    def change(texts: dict[str, str], plain: dict[str, dict[str, Any]]) -> None:
        target = _target(config_dir, texts, SOURCES_FILE, "source", source_id)
        expected = plain[SOURCES_FILE]
        del expected["source"][target.index]
        if not expected["source"]:
            del expected["source"]
        texts[SOURCES_FILE] = _remove_table(target.text, "source", target.index, target.file)

    _edit(config_dir, change)


def add_sources(
    config_dir: Path, sources: Sequence[NewSource], *, categories: Sequence[NewCategory] = ()
) -> None:
    """Append ``sources`` (and first the new ``categories`` they use) in one checked write.

    Refused when an id is taken or a URL is already configured (compared with
    ``feed_url_key``, so ``http``/``https`` and a trailing slash do not hide a duplicate).
    """

    def change(texts: dict[str, str], plain: dict[str, dict[str, Any]]) -> None:
        sources_file = _path(config_dir, SOURCES_FILE)
        categories_file = _path(config_dir, CATEGORIES_FILE)
        _check_new(plain, sources, categories, sources_file, categories_file)
        if categories:
            plain[CATEGORIES_FILE].setdefault("category", []).extend(
                _category_data(c) for c in categories
            )
            texts[CATEGORIES_FILE] = _append_tables(
                texts[CATEGORIES_FILE], "category", [_category_data(c) for c in categories]
            )
        if sources:
            plain[SOURCES_FILE].setdefault("source", []).extend(_source_data(s) for s in sources)
            texts[SOURCES_FILE] = _append_tables(
                texts[SOURCES_FILE], "source", [_source_data(s) for s in sources]
            )

    _edit(config_dir, change)


def set_category_rules(
    config_dir: Path, category_id: str, *, include: Sequence[str], exclude: Sequence[str]
) -> None:
    """Make the category's rules ``include`` and ``exclude`` (each as written in the file:
    a keyword, or ``/regex/``). Rules kept from before keep their place and their comments;
    removed ones go, new ones are appended (rule order has no effect). An empty list removes
    the key: without include rules a category takes every entry of its sources."""

    def change(texts: dict[str, str], plain: dict[str, dict[str, Any]]) -> None:
        target = _target(config_dir, texts, CATEGORIES_FILE, "category", category_id)
        table = target.tables[target.index]
        expected = plain[CATEGORIES_FILE]["category"][target.index]
        missing: list[str] = []
        for key, wanted in (("include", _unique(include)), ("exclude", _unique(exclude))):
            current = table.get(key)
            if not wanted:
                if key in table:
                    del table[key]
                    del expected[key]
            elif isinstance(current, Array):
                expected[key] = _update_array(current, wanted)
            else:
                if key in table:
                    del table[key]
                missing.append(_render_value(key, wanted))
                expected[key] = wanted
        text = tomlkit.dumps(target.doc)
        if missing:
            lines = [line for rendered in missing for line in rendered.splitlines()]
            text = _insert_lines(text, "category", target.index, lines, target.file)
        texts[CATEGORIES_FILE] = text

    _edit(config_dir, change)


def configured_tables(config_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``[[source]]`` and ``[[category]]`` tables as written, without the catalog's checks:
    an import into a fresh folder starts from files that do not pass them yet (a category no
    source uses), and the result is checked before anything is written."""
    with config_lock(config_dir, shared=True):
        sources = _loads(_read(config_dir / SOURCES_FILE), _path(config_dir, SOURCES_FILE))
        categories = _loads(_read(config_dir / CATEGORIES_FILE), _path(config_dir, CATEGORIES_FILE))
    return _listed(sources, "source"), _listed(categories, "category")


def feed_url_key(url: str) -> str | None:
    """What two feed URLs must share to be the same feed: the canonical URL without its
    scheme or a trailing slash (sites serve a feed over both, with and without). None when
    ``url`` is not an http(s) URL."""
    canonical = canonical_url(url)
    if canonical is None:
        return None
    rest = canonical.split("://", 1)[1]
    path, _, query = rest.partition("?")
    path = path.rstrip("/")
    return f"{path}?{query}" if query else path


@contextlib.contextmanager
def config_lock(config_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the editorial folder's lock: exclusive while editing, shared while reading, so a
    reload never sees one file of a two-file edit without the other."""
    try:
        handle = os.open(config_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        # A missing folder is reported by whoever reads it; nothing to lock.
        yield
        return
    try:
        with contextlib.suppress(OSError):  # file systems without flock: edit unlocked
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


# -- one checked edit -----------------------------------------------------------------------

Change = Callable[[dict[str, str], dict[str, dict[str, Any]]], None]


def _edit(config_dir: Path, change: Change) -> None:
    """Run ``change`` on both files' text (it also updates the plain data it expects them to
    hold), then check and write what differs."""
    with config_lock(config_dir):
        before = {name: _read(config_dir / name) for name in FILES}
        plain = {name: _loads(text, _path(config_dir, name)) for name, text in before.items()}
        after = dict(before)
        change(after, plain)
        changed = [name for name in WRITE_ORDER if after[name] != before[name]]
        if not changed:
            return
        for name in changed:
            if _loads(after[name], _path(config_dir, name)) != plain[name]:
                raise ConfigError(
                    "the edit would change more than asked (an unusual layout?); "
                    "make this change by hand",
                    file=_path(config_dir, name),
                )
        _require_writable(config_dir, changed)
        _validate(config_dir, after)
        for name in changed:
            _replace(config_dir / name, after[name])


def _path(config_dir: Path, name: str) -> str:
    return str(config_dir / name)


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc


def _loads(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from exc


def _validate(config_dir: Path, texts: dict[str, str]) -> None:
    """``load_catalog`` on a scratch copy; its errors name the real files."""
    with tempfile.TemporaryDirectory(prefix="aggregator-edit-") as scratch:
        trial = Path(scratch)
        for name, text in texts.items():
            with (trial / name).open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        try:
            load_catalog(trial)
        except ConfigError as exc:
            raise _relocated(exc, trial, config_dir) from None


def _relocated(error: ConfigError, trial: Path, real: Path) -> ConfigError:
    if isinstance(error, CatalogErrors):
        return CatalogErrors([_relocated(e, trial, real) for e in error.errors])
    file = error.file
    if file is not None and file.startswith(str(trial)):
        file = str(real) + file[len(str(trial)) :]
    return ConfigError(
        f"the change is refused, nothing was written: {error.reason}",
        file=file,
        item=error.item,
        key=error.key,
    )


def _require_writable(config_dir: Path, names: Sequence[str]) -> None:
    for target in (config_dir, *(config_dir / name for name in names)):
        if not os.access(target, os.W_OK):
            # The cause says why, as an OSError would (the web layer answers 409 for these).
            cause = (
                OSError(errno.EROFS, os.strerror(errno.EROFS))
                if _read_only_fs(target)
                else PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            )
            raise ConfigNotWritable(_NOT_WRITABLE, file=str(target)) from cause


_NOT_WRITABLE = (
    "the editorial folder is not writable here; change the files where they are "
    "kept (and deployed from), or run the command where they can be written"
)


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _replace(path: Path, text: str) -> None:
    """Write beside ``path``, then rename over it: readers see the old file or the new one."""
    try:
        status = path.stat()
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise ConfigNotWritable(f"{_NOT_WRITABLE} ({exc.strerror})", file=str(path)) from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private: keep the original's mode and owner, or a service
        # running as another user could no longer read its configuration.
        os.chmod(temporary, status.st_mode & 0o7777)
        with contextlib.suppress(OSError):
            os.chown(temporary, status.st_uid, status.st_gid)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigNotWritable(f"{_NOT_WRITABLE} ({exc.strerror})", file=str(path)) from exc


# -- finding and changing tables ------------------------------------------------------------


def _tables(text: str, name: str, file: str) -> tuple[tomlkit.TOMLDocument, list[Table]]:
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from exc
    tables = doc.get(name)
    if tables is None:
        return doc, []
    if not isinstance(tables, AoT):
        raise ConfigError(
            f"only [[{name}]] tables can be edited here; make this change by hand",
            file=file,
            key=name,
        )
    return doc, list(tables)


def _index(tables: Sequence[Table], item_id: str, kind: str, file: str) -> int:
    for index, table in enumerate(tables):
        if table.get("id") == item_id:
            return index
    raise UnknownItem(f"no {kind} has this id", file=file, item=item_id, key="id")


@dataclass(frozen=True)
class _Target:
    """The ``[[kind]]`` table an edit changes, and the file it is in as the edit has it."""

    file: str  # the path that errors name
    text: str
    doc: tomlkit.TOMLDocument
    tables: list[Table]
    index: int


def _target(config_dir: Path, texts: dict[str, str], name: str, kind: str, item_id: str) -> _Target:
    file = _path(config_dir, name)
    text = texts[name]
    doc, tables = _tables(text, kind, file)
    return _Target(file, text, doc, tables, _index(tables, item_id, kind, file))


@dataclass(frozen=True)
class _Span:
    header: int  # the ``[[name]]`` line
    last: int  # the table's last line that is neither blank nor a comment


def _spans(lines: Sequence[str], name: str, count: int, file: str) -> list[_Span]:
    """Where each ``[[name]]`` table is, by lines; refuses layouts it cannot be sure of."""
    headers = [
        n
        for n, line in enumerate(lines)
        if (m := _HEADER_RE.match(line)) and m.group("name") == name
    ]
    if len(headers) != count:
        raise ConfigError(
            f"cannot find each [[{name}]] header on a line of its own; make this change by hand",
            file=file,
            key=name,
        )
    spans = []
    for position, header in enumerate(headers):
        end = headers[position + 1] if position + 1 < len(headers) else len(lines)
        # Another table (``[other]``) ends this one too.
        for n in range(header + 1, end):
            if _TABLE_RE.match(lines[n]) and not _inside_value(lines, header, n):
                end = n
                break
        last = header
        for n in range(header + 1, end):
            if not (_BLANK_RE.match(lines[n]) or _COMMENT_RE.match(lines[n])):
                last = n
        spans.append(_Span(header, last))
    return spans


def _inside_value(lines: Sequence[str], header: int, line: int) -> bool:
    """Whether ``line`` continues a multi-line array or string opened since ``header``."""
    text = "".join(lines[header + 1 : line])
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True
    return False


def _insert_lines(text: str, name: str, index: int, new: Sequence[str], file: str) -> str:
    """``new`` lines added after the last key of the ``index``-th ``[[name]]`` table (tomlkit
    would append them after the comments that precede the next table)."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    span = _spans(lines, name, _count(text, name), file)[index]
    if not lines[span.last].endswith(("\n", "\r")):
        lines[span.last] += newline
    lines[span.last + 1 : span.last + 1] = [line + newline for line in new]
    return "".join(lines)


def _remove_table(text: str, name: str, index: int, file: str) -> str:
    """The text without the ``index``-th ``[[name]]`` table and a comment block written
    directly above its header. Blank lines and comments after its last key stay: they
    introduce what follows (a section heading, the next table's own comment)."""
    lines = text.splitlines(keepends=True)
    span = _spans(lines, name, _count(text, name), file)[index]
    start = span.header
    above = start
    while above > 0 and _COMMENT_RE.match(lines[above - 1]):
        above -= 1
    # A comment block reaching the top of the file is the file's own header: keep it.
    if above > 0:
        start = above
    end = span.last + 1
    if all(_BLANK_RE.match(line) or _COMMENT_RE.match(line) for line in lines[end:]):
        # Comments after the file's last table introduce nothing: they were about it.
        end = len(lines)
    # One blank line went with the table, so the layout keeps its rhythm.
    if (
        end < len(lines)
        and _BLANK_RE.match(lines[end])
        and (start == 0 or _BLANK_RE.match(lines[start - 1]))
    ):
        end += 1
    del lines[start:end]
    if start == len(lines):
        # The file's last table went: no blank lines left dangling at its end.
        while lines and _BLANK_RE.match(lines[-1]):
            lines.pop()
    return "".join(lines)


def _count(text: str, name: str) -> int:
    tables = tomllib.loads(text).get(name, [])
    return len(tables) if isinstance(tables, list) else 0


def _append_tables(text: str, name: str, tables: Sequence[dict[str, Any]]) -> str:
    doc = tomlkit.document()
    array = tomlkit.aot()
    for data in tables:
        table = tomlkit.table()
        for key, value in data.items():
            table.add(key, _value(value))
        array.append(table)
    doc.append(name, array)
    block = tomlkit.dumps(doc)
    newline = "\r\n" if "\r\n" in text else "\n"
    if newline != "\n":
        block = block.replace("\n", newline)
    if text and not text.endswith("\n"):
        text += newline
    return text + (newline if text.strip() else "") + block


def _update_array(array: Array, wanted: Sequence[str]) -> list[str]:
    """Change ``array`` in place to hold ``wanted``: kept items stay put with their comments,
    dropped ones go, new ones are appended. Returns the resulting list."""
    remaining = list(wanted)
    for position in reversed(range(len(array))):
        value = array[position]
        if isinstance(value, str) and str(value) in remaining:
            remaining.remove(str(value))
        else:
            del array[position]
    for rule in wanted:
        if rule in remaining:
            array.append(_value(rule))
            remaining.remove(rule)
    return [str(v) for v in array]


def _render_value(key: str, values: Sequence[str]) -> str:
    array = tomlkit.array()
    array.extend(_value(v) for v in values)
    if len(values) > 1:
        array.multiline(True)
    doc = tomlkit.document()
    doc.add(key, array)
    # The starter files indent array items by two spaces.
    return re.sub(r"(?m)^ {4}", "  ", tomlkit.dumps(doc))


def _value(value: Any) -> Any:
    """A regex with backslashes is written as a literal string, as editors write them."""
    if isinstance(value, str) and "\\" in value and "'" not in value and "\n" not in value:
        return tomlkit.string(value, literal=True)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    return value


def _unique(rules: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(rules))


# -- new sources and categories -------------------------------------------------------------


def _source_data(source: NewSource) -> dict[str, Any]:
    data: dict[str, Any] = {"id": source.id}
    if source.title:
        data["title"] = source.title
    data["url"] = source.url
    if source.site_url:
        data["site_url"] = source.site_url
    data["categories"] = list(source.categories)
    if source.language:
        data["language"] = source.language
    if source.interval:
        data["interval"] = source.interval
    if source.public_only:
        data["public_only"] = True
    return data


def _category_data(category: NewCategory) -> dict[str, Any]:
    data: dict[str, Any] = {"id": category.id, "title": category.title}
    if category.description:
        data["description"] = category.description
    return data


def _check_new(
    plain: dict[str, dict[str, Any]],
    sources: Sequence[NewSource],
    categories: Sequence[NewCategory],
    sources_file: str,
    categories_file: str,
) -> None:
    existing_sources = _listed(plain[SOURCES_FILE], "source")
    taken = {t.get("id") for t in existing_sources}
    urls = {
        feed_url_key(t["url"]): t.get("id")
        for t in existing_sources
        if isinstance(t.get("url"), str)
    }
    for source in sources:
        if source.id in taken:
            raise ConfigError(
                "a source with this id already exists", file=sources_file, item=source.id, key="id"
            )
        key = feed_url_key(source.url)
        if key is not None and key in urls:
            raise ConfigError(
                f"{source.url} is already configured as source {urls[key]!r}",
                file=sources_file,
                item=source.id,
                key="url",
            )
        taken.add(source.id)
        urls[key] = source.id
    known = {t.get("id") for t in _listed(plain[CATEGORIES_FILE], "category")}
    for category in categories:
        if category.id in known:
            raise ConfigError(
                "a category with this id already exists",
                file=categories_file,
                item=category.id,
                key="id",
            )
        known.add(category.id)


def _listed(plain: dict[str, Any], name: str) -> list[dict[str, Any]]:
    tables = plain.get(name, [])
    return [t for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []
