"""Subscription lists in OPML: planning the import of one or more files into the configured
sources, and exporting every configured source grouped by category.

Import never touches the network: each outline is judged by its URL alone. Duplicates are
found by ``configedit.feed_url_key``, so running the same import twice adds nothing the second
time. Entity declarations are defused before parsing (``xmlsafety``), so a hostile file cannot
make the parser expand entities. Writing the plan is ``configedit.add_sources``'s job.
"""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from aggregator.catalog import LANG_RE, Catalog, clean_title, url_problem
from aggregator.editorial.configedit import NewCategory, NewSource, configured_tables, feed_url_key
from aggregator.editorial.subscribe import MAX_ID_LENGTH, slug_for
from aggregator.errors import ConfigError, ParseError
from aggregator.safety.xml import defuse_entities

# An OPML file bigger than this is not a subscription list.
MAX_OPML_BYTES = 20 * 1024 * 1024
EXPORT_TITLE = "Aggregator sources"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Outline:
    """A feed outline: its title as the file gives it, its URL, the folders it sits in."""

    title: str
    url: str
    folders: tuple[str, ...]
    site_url: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Skipped:
    title: str
    url: str
    reason: str


@dataclass
class ImportPlan:
    """What an import adds, and what it leaves out and why."""

    sources: list[NewSource] = field(default_factory=list)
    categories: list[NewCategory] = field(default_factory=list)
    duplicates: list[Skipped] = field(default_factory=list)
    bad: list[Skipped] = field(default_factory=list)

    def describe(self) -> str:
        created = f", {len(self.categories)} new categories" if self.categories else ""
        return (
            f"added {len(self.sources)} sources{created}; skipped "
            f"{len(self.duplicates)} duplicates and {len(self.bad)} bad URLs"
        )


def read_outlines(path: Path) -> tuple[list[Outline], str | None]:
    """Every feed outline of an OPML file, nested folders included, in document order, and a
    note when the file is not well-formed XML and was read leniently (many exporters write
    bare ``&`` and unescaped quotes or HTML in attributes)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc
    if len(content) > MAX_OPML_BYTES:
        raise ConfigError(
            f"larger than {MAX_OPML_BYTES} bytes: not a subscription list", file=str(path)
        )
    try:
        defused = defuse_entities(content)
    except ParseError as exc:
        raise ConfigError(str(exc), file=str(path)) from exc
    try:
        root = ET.fromstring(defused)  # noqa: S314 - entity declarations defused above
    except ET.ParseError as exc:
        outlines = _lenient_outlines(_decode(content))
        if not outlines:
            raise ConfigError(f"not a readable OPML file: {exc}", file=str(path)) from exc
        return outlines, f"not well-formed XML ({exc}); read leniently"
    if _local(root.tag) != "opml":
        raise ConfigError(
            f"not an OPML file: the root element is <{_local(root.tag)}>", file=str(path)
        )
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise ConfigError("not an OPML file: no <body>", file=str(path))
    return list(_walk(body, ())), None


def _walk(element: ET.Element, folders: tuple[str, ...]) -> Iterator[Outline]:
    for child in element:
        if _local(child.tag) != "outline":
            continue
        attributes = {name.lower(): value for name, value in child.attrib.items()}
        title = (attributes.get("title") or attributes.get("text") or "").strip()
        if "xmlurl" in attributes:
            yield Outline(
                title=title,
                url=attributes["xmlurl"].strip(),
                folders=folders,
                site_url=(attributes.get("htmlurl") or "").strip() or None,
                language=(attributes.get("language") or "").strip() or None,
            )
        else:
            # An outline without a feed URL is a folder (or a note, when it has no children).
            yield from _walk(child, (*folders, title) if title else folders)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


_OUTLINE_TAG = re.compile(r"<outline\b|</outline\s*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(
    r"""(?<![\w:-])(xmlurl|htmlurl|title|text|language)\s*=\s*(?:"([^"]*)"|'([^']*)')""",
    re.IGNORECASE,
)
_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _lenient_outlines(text: str) -> list[Outline]:
    """Outlines found tag by tag, for files an XML parser rejects: each ``<outline`` runs to
    the next outline tag, its first ``name="value"`` of each kind counts, and ``/>`` or a
    ``</outline>`` closes it. No DTD is read, so no entity is ever expanded."""
    folders: list[str | None] = []
    outlines: list[Outline] = []
    tags = list(_OUTLINE_TAG.finditer(text))
    for position, tag in enumerate(tags):
        if tag.group().startswith("</"):
            if folders:
                folders.pop()
            continue
        end = tags[position + 1].start() if position + 1 < len(tags) else len(text)
        segment = text[tag.end() : end]
        attributes: dict[str, str] = {}
        for match in _ATTRIBUTE.finditer(segment):
            value = match.group(2) if match.group(2) is not None else match.group(3)
            attributes.setdefault(match.group(1).lower(), html.unescape(value))
        title = (attributes.get("title") or attributes.get("text") or "").strip()
        closed = (
            segment.split(">", 1)[0].rstrip().endswith("/")
            or re.search(r"/>\s*$", segment) is not None
        )
        inside = tuple(f for f in folders if f)
        if "xmlurl" in attributes:
            outlines.append(
                Outline(
                    title=title,
                    url=attributes["xmlurl"].strip(),
                    folders=inside,
                    site_url=(attributes.get("htmlurl") or "").strip() or None,
                    language=(attributes.get("language") or "").strip() or None,
                )
            )
            if not closed:
                folders.append(None)
        elif not closed:
            folders.append(title or None)
    return outlines


def _decode(content: bytes) -> str:
    declared = _ENCODING.match(content.lstrip())
    encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def category_id_for(folder: str) -> str:
    """A stable category id for a folder title; titles without Latin letters or digits get
    one made from a hash of the title, so the next import finds the same category."""
    base = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")[:MAX_ID_LENGTH].strip("-")
    if not base:
        base = "folder-" + hashlib.sha256(folder.encode("utf-8")).hexdigest()[:8]
    return base


@dataclass(frozen=True)
class Configured:
    """What is configured already: source ids with their URLs, category ids with titles."""

    sources: dict[str, str]
    categories: dict[str, str]

    @classmethod
    def of(cls, catalog: Catalog) -> Configured:
        return cls(
            sources={s.id: s.url for s in catalog.sources},
            categories={c.id: c.title for c in catalog.categories},
        )

    @classmethod
    def read(cls, config_dir: Path) -> Configured:
        """From the files as written (a fresh folder may not pass the catalog's checks)."""
        sources, categories = configured_tables(config_dir)
        return cls(
            sources={
                t["id"]: t["url"]
                for t in sources
                if isinstance(t.get("id"), str) and isinstance(t.get("url"), str)
            },
            categories={
                t["id"]: str(t.get("title") or t["id"])
                for t in categories
                if isinstance(t.get("id"), str)
            },
        )


def plan_import(
    files: Sequence[tuple[Path, Sequence[Outline]]],
    configured: Configured,
    *,
    category: str | None,
    folders_as_categories: bool,
    on_progress: Progress | None = None,
) -> ImportPlan:
    """What importing ``files`` (already read) into ``catalog`` would add.

    Without ``folders_as_categories`` every feed goes to ``category``. With it, each feed goes
    to the category of its innermost folder (the category with that title or id, else a new
    one without rules: it takes every entry) and feeds outside any folder to ``category``. A
    URL repeated in another folder of the same import adds that folder's category to the one
    new source.
    """
    known_categories = set(configured.categories)
    # A folder named like an existing category (its title, as export writes it) is that one.
    titled = {title.strip().casefold(): cid for cid, title in configured.categories.items()}
    if category is not None and category not in known_categories:
        raise ConfigError(
            f"unknown category {category!r}; known: "
            + (", ".join(sorted(known_categories)) or "none"),
            key="--category",
        )
    plan = ImportPlan()
    taken = set(configured.sources)
    present = {feed_url_key(url): sid for sid, url in configured.sources.items()}
    planned: dict[str, int] = {}  # URL key -> index in plan.sources
    created: dict[str, NewCategory] = {}
    total = sum(len(outlines) for _, outlines in files)
    done = 0
    for path, outlines in files:
        for outline in outlines:
            done += 1
            target = _target(
                outline, path, category, folders_as_categories, known_categories, titled, created
            )
            key = feed_url_key(outline.url)
            problem = (
                "empty URL"
                if not outline.url
                else "not an http(s) URL"
                if key is None
                else url_problem(outline.url)
            )
            if problem is not None or key is None:
                plan.bad.append(Skipped(outline.title, outline.url, problem or "no URL"))
            elif key in present:
                plan.duplicates.append(
                    Skipped(outline.title, outline.url, f"already configured as {present[key]!r}")
                )
            elif key in planned:
                index = planned[key]
                first = plan.sources[index]
                if target not in first.categories:
                    plan.sources[index] = replace(first, categories=(*first.categories, target))
                plan.duplicates.append(
                    Skipped(
                        outline.title, outline.url, f"repeated in this import (as {first.id!r})"
                    )
                )
            else:
                source = NewSource(
                    id=slug_for(outline.title, outline.url, taken),
                    url=outline.url,
                    title=clean_title(outline.title),
                    categories=(target,),
                    site_url=_site_url(outline.site_url),
                    language=_language(outline.language),
                )
                taken.add(source.id)
                planned[key] = len(plan.sources)
                plan.sources.append(source)
            if on_progress is not None:
                on_progress(done, total)
    used = {c for s in plan.sources for c in s.categories}
    plan.categories = [c for c in created.values() if c.id in used]
    return plan


def _target(
    outline: Outline,
    path: Path,
    category: str | None,
    folders_as_categories: bool,
    known: set[str],
    titled: dict[str, str],
    created: dict[str, NewCategory],
) -> str:
    if folders_as_categories and outline.folders:
        folder = outline.folders[-1]
        category_id = titled.get(folder.strip().casefold()) or category_id_for(folder)
        if category_id not in known and category_id not in created:
            created[category_id] = NewCategory(
                id=category_id, title=clean_title(folder) or category_id
            )
        return category_id
    if category is None:
        where = "outside any folder" if folders_as_categories else "to import"
        raise ConfigError(
            f"the outline {outline.title!r} is {where}: name a category for it with --category",
            file=str(path),
        )
    return category


def _site_url(url: str | None) -> str | None:
    return url if url and feed_url_key(url) is not None else None


def _language(tag: str | None) -> str | None:
    return tag if tag and LANG_RE.match(tag) else None


# -- export ----------------------------------------------------------------------------------


def export_opml(catalog: Catalog, *, title: str = EXPORT_TITLE) -> bytes:
    """OPML 2.0 with one folder per category holding its sources (a source in several
    categories is in each folder); paused sources are included, as they are configured."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for category in catalog.categories:
        folder = ET.SubElement(body, "outline", text=category.title, title=category.title)
        if category.description:
            folder.set("description", category.description)
        for source in catalog.sources:
            if category.id not in source.categories:
                continue
            name = source.title or source.id
            outline = ET.SubElement(
                folder, "outline", type="rss", text=name, title=name, xmlUrl=source.url
            )
            if source.site_url:
                outline.set("htmlUrl", source.site_url)
            if source.language:
                outline.set("language", source.language)
            if source.full_text:
                # Not an OPML attribute readers know; ours, so an export says what we fetch.
                outline.set("fullText", "true")
                if source.full_text_selector:
                    outline.set("fullTextSelector", source.full_text_selector)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
