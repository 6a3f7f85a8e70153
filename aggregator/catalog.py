"""The editorial catalog: ``sources.toml`` and ``categories.toml`` read and validated.

Owns the config file format. Every problem becomes a ``ConfigError`` naming the file, the source
or category id and the key, and all problems are collected before raising so an editor sees them
at once. Reading files is the only I/O here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator.errors import ConfigError
from aggregator.types import FetchOptions

SOURCES_FILE = "sources.toml"
CATEGORIES_FILE = "categories.toml"

DEFAULT_INTERVAL_SECONDS = 30 * 60
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LANG_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Longest accepted values, within the store's columns (store/models.py) so that whatever
# ``check`` accepts can also be written by ``run`` and ``poll``.
MAX_URL_LENGTH = 2048
MAX_TITLE_LENGTH = 512
MAX_LANGUAGE_LENGTH = 35
MAX_DESCRIPTION_LENGTH = 2000
MAX_RULES = 500
MAX_RULE_LENGTH = 500
MAX_LENGTHS = {
    "url": MAX_URL_LENGTH,
    "site_url": MAX_URL_LENGTH,
    "title": MAX_TITLE_LENGTH,
    "language": MAX_LANGUAGE_LENGTH,
    "languages": MAX_LANGUAGE_LENGTH,
    "description": MAX_DESCRIPTION_LENGTH,
    "include": MAX_RULE_LENGTH,
    "exclude": MAX_RULE_LENGTH,
    "categories": 64,
    "id": 64,
    "full_text_selector": 500,
    "topic_examples": 1000,
    "user_agent": 300,
    "header": 1000,
}
DEFAULT_MAX_LENGTH = 200
# Control characters (C0, DEL, C1) and lone surrogates: nothing an editor means to type, and
# NUL cannot even be stored in PostgreSQL. Only a description may hold newlines and tabs.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTILINE_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
MULTILINE_KEYS = frozenset({"description", "topic_examples"})

SOURCE_KEYS = {
    "id",
    "url",
    "title",
    "site_url",
    "categories",
    "language",
    "interval",
    "enabled",
    "include",
    "exclude",
    "priority",
    "public_only",
    "full_text",
    "full_text_selector",
    "user_agent",
    "headers",
    "auth_env",
    "cookie_env",
    "proxy",
}
CATEGORY_KEYS = {
    "id",
    "title",
    "description",
    "languages",
    "include",
    "exclude",
    "min_score",
    "topic",
    "topic_threshold",
    "topic_examples",
    "variants",
    "translations",
}
# What ``[category.translations.LANG]`` may hold: the category's own words in that language.
TRANSLATION_KEYS = ("title", "description")
# Per-source request settings. A header name is an RFC 9110 token; secrets never sit in the
# file, so the headers that carry them are refused there and named where they belong.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_EXTRA_HEADERS = 20
SECRET_HEADERS = {
    "authorization": "auth_env",
    "cookie": "cookie_env",
    "proxy-authorization": "proxy",
}
FETCHER_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "if-none-match",
        "if-modified-since",
        "accept-encoding",
        "te",
        "upgrade",
        "keep-alive",
    }
)

# What a per-language feed does with a story that has no version in its language.
VARIANT_MODES = ("omit", "fallback")

# Which copy of a story represents it: any whole number in this range, higher first.
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
# Centered cosine between an entry and the category's description (and examples) from which
# the topic match accepts the entry. On hand-labelled topics of the WMT14 dev stories in six
# languages (bench/topic_eval.py, docs/topic-match.md) 0.14 gave precision 0.76 at recall
# 0.52 with the description alone, 0.78 at 0.74 with examples: precision first, for a feed.
DEFAULT_TOPIC_THRESHOLD = 0.14
MAX_TOPIC_EXAMPLES = 50
# The model reads a title and lead of about this length; a longer example adds nothing.
MAX_TOPIC_EXAMPLE_CHARS = 300


@dataclass(frozen=True)
class Rule:
    """A keyword (plain text) or a regex (written ``/…/`` in the file)."""

    pattern: str
    is_regex: bool

    @property
    def label(self) -> str:
        return f"/{self.pattern}/" if self.is_regex else repr(self.pattern)

    @property
    def text(self) -> str:
        """The rule as written in the file (``parse_rule`` reads it back)."""
        return f"/{self.pattern}/" if self.is_regex else self.pattern


@dataclass(frozen=True)
class SourceRules:
    """A source's own include/exclude rules, applied in every category the source feeds."""

    source_id: str
    include: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class SourceConfig:
    id: str
    url: str
    categories: tuple[str, ...]
    title: str | None = None
    site_url: str | None = None
    language: str | None = None
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    enabled: bool = True
    include: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    # Higher wins when several copies of a story in the preferred language could represent it.
    priority: int = 0
    # Fetched only from public addresses: set on sources added through the API or admin pages,
    # whose URL nobody reviewed, so they cannot be pointed at the service's own network.
    public_only: bool = False
    fetch: FetchOptions = dataclasses.field(default_factory=FetchOptions)
    # Fetch each entry's article page and publish its main text (``polling.fulltext``);
    # ``full_text_selector`` names the element holding it where extraction guesses wrong.
    full_text: bool = False
    full_text_selector: str | None = None

    @property
    def rules(self) -> SourceRules | None:
        if not self.include and not self.exclude:
            return None
        return SourceRules(self.id, self.include, self.exclude)


@dataclass(frozen=True)
class CategoryText:
    """A category's title and description in one language (``[category.translations.fr]``)."""

    language: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class CategoryConfig:
    id: str
    title: str
    description: str = ""
    languages: tuple[str, ...] = ()
    include: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    # An entry whose rule score is below this is not accepted (0 accepts any match).
    min_score: float = 0.0
    # The multilingual topic match, run by the clustering stage once entries are embedded.
    topic: bool = False
    topic_threshold: float | None = None
    topic_examples: tuple[str, ...] = ()
    # None: the service's AGGREGATOR_LANGUAGE_VARIANTS decides.
    variants: str | None = None
    # The rules of this category's sources that have their own (``attach_source_rules``):
    # carried here so that every place that classifies with the category applies them.
    source_rules: tuple[SourceRules, ...] = ()
    # The title and description in other languages, used by the per-language variants.
    translations: tuple[CategoryText, ...] = ()

    def _text_in(self, lang: str | None) -> CategoryText | None:
        if not lang:
            return None
        wanted = lang.lower()
        exact = [t for t in self.translations if t.language.lower() == wanted]
        primary = [
            t
            for t in self.translations
            if t.language.split("-", 1)[0].lower() == wanted.split("-", 1)[0]
        ]
        found = exact or primary
        return found[0] if found else None

    def title_in(self, lang: str | None) -> str:
        """The title in ``lang`` where the file gives one, else the title."""
        text = self._text_in(lang)
        return text.title if text is not None and text.title else self.title

    def description_in(self, lang: str | None) -> str:
        """The description in ``lang`` where the file gives one, else the description."""
        text = self._text_in(lang)
        return text.description if text is not None and text.description else self.description

    @property
    def threshold(self) -> float:
        """The topic match's threshold, the default unless the file sets one."""
        return DEFAULT_TOPIC_THRESHOLD if self.topic_threshold is None else self.topic_threshold

    def rules_of(self, source_id: str) -> SourceRules | None:
        for rules in self.source_rules:
            if rules.source_id == source_id:
                return rules
        return None


@dataclass(frozen=True)
class FilesRead:
    """The editorial files' bytes a catalog was parsed from, hashed (``files_digest``), and the
    sources parsed from them: a catalog changed since (``dataclasses.replace``) no longer has
    the sources these bytes give, and then nothing may be concluded from the bytes."""

    digest: str
    sources: tuple[SourceConfig, ...]


@dataclass(frozen=True)
class Catalog:
    sources: tuple[SourceConfig, ...]
    categories: tuple[CategoryConfig, ...]
    directory: Path | None = None
    files: FilesRead | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # However the catalog was built (files, code, an editor's change), each category
        # carries the own rules of its sources, so nothing that classifies can forget them.
        attached = tuple(attach_source_rules(c, self.sources) for c in self.categories)
        object.__setattr__(self, "categories", attached)

    def category(self, category_id: str) -> CategoryConfig:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(category_id)

    def source(self, source_id: str) -> SourceConfig:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    @cached_property
    def priorities(self) -> dict[str, int]:
        """Source id → priority, for the sources whose priority is not the default 0."""
        return {s.id: s.priority for s in self.sources if s.priority}

    def unset_secrets(self, environ: Mapping[str, str]) -> list[str]:
        """Each ``auth_env`` / ``cookie_env`` not set in ``environ``, in words: the files are
        valid without them, but those sources fail (kind credentials) until they are set."""
        return [
            f"source {s.id!r}: {key} names {name}, which is not set in this environment"
            for s in self.sources
            for key, name in (("auth_env", s.fetch.auth_env), ("cookie_env", s.fetch.cookie_env))
            if name is not None and not environ.get(name)
        ]

    def sources_of(self, category_id: str) -> tuple[SourceConfig, ...]:
        """The sources that list ``category_id``, in file order."""
        return tuple(s for s in self.sources if category_id in s.categories)


def attach_source_rules(
    category: CategoryConfig, sources: Sequence[SourceConfig]
) -> CategoryConfig:
    """``category`` carrying the own rules of those of ``sources`` that feed it."""
    found = tuple(
        sorted(
            (
                rules
                for s in sources
                if category.id in s.categories
                for rules in (s.rules,)
                if rules is not None
            ),
            key=lambda rules: rules.source_id,
        )
    )
    if found == category.source_rules:
        return category
    return dataclasses.replace(category, source_rules=found)


class _Problems:
    """Collects every problem so ``check`` can report all of them in one run."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(
        self, message: str, *, file: str, item: str | None = None, key: str | None = None
    ) -> None:
        self.errors.append(ConfigError(message, file=file, item=item, key=key))

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise CatalogErrors(self.errors)


class CatalogErrors(ConfigError):
    """Several configuration problems at once; ``errors`` lists each one."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        # No single file/id/key: each listed problem names its own.
        super().__init__(f"{len(errors)} problems:\n" + "\n".join(f"  - {e}" for e in errors))


def parse_duration(text: str) -> int:
    """``"30m"`` → 1800. Accepts s, m, h, d; raises ValueError otherwise."""
    match = DURATION_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as '90s', '30m', '6h' or '1d'")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_rule(text: str) -> Rule:
    """``"/regex/"`` is a regex, anything else a keyword; regexes are compiled to check them.

    A regex must be valid Python syntax (``re.error`` otherwise) that the linear-time engine
    rules run on can take (``safety.regex.UnsupportedRegex``, a ValueError, otherwise).
    """
    text = text.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        pattern = text[1:-1]
        if not pattern.strip():
            raise ValueError("an empty regex would match everything")
        re.compile(pattern)  # raises re.error, reported by the caller
        # The checkers' libraries load when a file has a regex, a selector or a translation:
        # `aggregator --help` and a catalog without them never import them.
        from aggregator.safety.regex import compile_rule_regex  # noqa: PLC0415

        compile_rule_regex(pattern)
        return Rule(pattern=pattern, is_regex=True)
    if not text:
        raise ValueError("an empty rule would match everything")
    return Rule(pattern=text, is_regex=False)


def load_catalog(directory: Path, *, categories_path: Path | None = None) -> Catalog:
    """Read and validate both editorial files under ``directory``.

    ``categories_path`` reads the categories from another file instead (an edited copy not yet
    saved over the real one, for a dry run); the sources still come from ``directory``.
    """
    problems = _Problems()
    sources_path = directory / SOURCES_FILE
    real_files = categories_path is None
    categories_path = categories_path or directory / CATEGORIES_FILE
    sources_bytes, categories_bytes = _read(sources_path), _read(categories_path)
    sources_doc = _parse_toml(sources_bytes, sources_path)
    categories_doc = _parse_toml(categories_bytes, categories_path)
    categories = _categories(categories_doc, str(categories_path), problems)
    sources = _sources(sources_doc, str(sources_path), problems)
    _cross_check(sources, categories, str(sources_path), str(categories_path), problems)
    problems.raise_if_any()
    files = (
        FilesRead(files_digest(sources_bytes, categories_bytes), tuple(sources))
        if real_files
        else None
    )
    return Catalog(
        sources=tuple(sources), categories=tuple(categories), directory=directory, files=files
    )


def files_digest(sources: bytes, categories: bytes) -> str:
    """The digest of the two editorial files' bytes (``FilesRead``, ``read_files_digest``)."""
    hashed = hashlib.sha256()
    for name, data in ((SOURCES_FILE, sources), (CATEGORIES_FILE, categories)):
        hashed.update(f"{name}\0{len(data)}\0".encode())
        hashed.update(data)
    return hashed.hexdigest()


def read_files_digest(directory: Path) -> str | None:
    """``files_digest`` of the files under ``directory`` as they are now, without parsing them;
    None when one cannot be read (then only ``load_catalog`` can say why)."""
    try:
        return files_digest(
            (directory / SOURCES_FILE).read_bytes(), (directory / CATEGORIES_FILE).read_bytes()
        )
    except OSError:
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc


def _parse_toml(data: bytes, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc


def _tables(doc: dict[str, Any], name: str, file: str, problems: _Problems) -> list[Any]:
    for key in doc:
        if key != name:
            problems.add(f"unknown top-level key (expected [[{name}]] tables)", file=file, key=key)
    tables = doc.get(name, [])
    if not isinstance(tables, list):
        problems.add(f"must be an array of tables, written [[{name}]]", file=file, key=name)
        return []
    return tables


def _each_table(
    doc: dict[str, Any], name: str, allowed: set[str], file: str, problems: _Problems
) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """Each ``[[name]]`` table with its label and its id, after reporting non-tables, unknown
    keys and bad or duplicate ids."""
    seen: set[str] = set()
    for index, table in enumerate(_tables(doc, name, file, problems)):
        if not isinstance(table, dict):
            problems.add(f"each [[{name}]] must be a table", file=file, key=f"{name}[{index}]")
            continue
        item = _item_label(table, name, index)
        for key in table:
            if key not in allowed:
                problems.add(
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                    file=file,
                    item=item,
                    key=key,
                )
        yield item, table, _table_id(table, name, seen, file, item, problems)


def _table_id(
    table: dict[str, Any], kind: str, seen: set[str], file: str, item: str, problems: _Problems
) -> str | None:
    """The table's ``id``, checked to be a slug and unique among ``seen``."""
    table_id = _str(table, "id", file, item, problems, required=True)
    if table_id is not None:
        if not SLUG_RE.match(table_id):
            problems.add(
                "must be a slug: lower-case letters, digits and '-'", file=file, item=item, key="id"
            )
        if table_id in seen:
            problems.add(f"duplicate {kind} id", file=file, item=table_id, key="id")
        seen.add(table_id)
    return table_id


def _item_label(table: dict[str, Any], kind: str, index: int) -> str:
    """The id as written, or the table's position when the id is missing or not a string."""
    value = table.get("id")
    return value if isinstance(value, str) and value else f"{kind}[{index}]"


def _str(
    table: dict[str, Any],
    key: str,
    file: str,
    item: str,
    problems: _Problems,
    *,
    required: bool = False,
) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            problems.add("missing required key", file=file, item=item, key=key)
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add("must be a non-empty string", file=file, item=item, key=key)
        return None
    reason = text_problem(value, key)
    if reason is not None:
        problems.add(reason, file=file, item=item, key=key)
        return None
    return value.strip()


def text_problem(value: str, key: str) -> str | None:
    """Why ``value`` cannot be the editors' ``key`` (a control character, too long), or None.

    The one check of free text from editors, whether it comes from the files, the command
    line, the API or the admin pages (``configedit`` runs every edit through ``load_catalog``).
    """
    pattern = _MULTILINE_CONTROL_RE if key in MULTILINE_KEYS else _CONTROL_RE
    found = pattern.search(value)
    if found is not None:
        return (
            f"contains the control character U+{ord(found.group()):04X} at position "
            f"{found.start()}; remove it"
        )
    limit = MAX_LENGTHS.get(key, DEFAULT_MAX_LENGTH)
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    return None


def clean_title(text: str | None) -> str | None:
    """A title found in a feed or an OPML file, made one the catalog accepts: control
    characters dropped, whitespace runs made one space, cut to ``MAX_TITLE_LENGTH``. Text
    that nobody typed for us is cleaned rather than refused."""
    if text is None:
        return None
    cleaned = " ".join(_CONTROL_RE.sub(" ", text).split())[:MAX_TITLE_LENGTH].strip()
    return cleaned or None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a feed or site address the service can fetch, or None: an absolute
    http(s) URL with a host, a valid port, and no spaces or control characters."""
    reason = text_problem(url, "url")
    if reason is not None:
        return reason
    if any(ch.isspace() for ch in url):
        return f"{url!r} contains a space; write it as %20"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} is not an http(s) URL"
    if not parts.hostname:
        return f"{url!r} has no host name"
    return None


def _str_list(
    table: dict[str, Any], key: str, file: str, item: str, problems: _Problems
) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add("must be a list of strings", file=file, item=item, key=key)
        return []
    if len(value) > MAX_RULES:
        problems.add(
            f"has {len(value)} entries; at most {MAX_RULES}", file=file, item=item, key=key
        )
        return []
    kept = []
    for index, text in enumerate(value):
        reason = text_problem(text, key)
        if reason is None:
            kept.append(text)
        else:
            problems.add(f"entry {index + 1} {reason}", file=file, item=item, key=key)
    return kept


def _check_url(url: str, file: str, item: str, key: str, problems: _Problems) -> None:
    reason = url_problem(url)
    if reason is not None:
        problems.add(reason, file=file, item=item, key=key)


def _sources(doc: dict[str, Any], file: str, problems: _Problems) -> list[SourceConfig]:
    result: list[SourceConfig] = []
    for item, table, source_id in _each_table(doc, "source", SOURCE_KEYS, file, problems):
        url = _str(table, "url", file, item, problems, required=True)
        if url is not None:
            _check_url(url, file, item, "url", problems)
        site_url = _str(table, "site_url", file, item, problems)
        if site_url is not None:
            _check_url(site_url, file, item, "site_url", problems)
        categories = _str_list(table, "categories", file, item, problems)
        if "categories" not in table or not categories:
            problems.add(
                "a source needs at least one category", file=file, item=item, key="categories"
            )
        language = _str(table, "language", file, item, problems)
        if language is not None and not LANG_RE.match(language):
            problems.add(
                f"{language!r} is not a language tag such as 'en' or 'fr-CA'",
                file=file,
                item=item,
                key="language",
            )
        interval = DEFAULT_INTERVAL_SECONDS
        if "interval" in table:
            raw = table["interval"]
            try:
                if not isinstance(raw, str):
                    raise ValueError(f"{raw!r} is not a duration string such as '30m'")
                interval = parse_duration(raw)
                if not MIN_INTERVAL_SECONDS <= interval <= MAX_INTERVAL_SECONDS:
                    raise ValueError(f"{raw!r} is outside 1m..7d")
            except ValueError as exc:
                problems.add(str(exc), file=file, item=item, key="interval")
        enabled = _bool(table, "enabled", True, file, item, problems)
        public_only = _bool(table, "public_only", False, file, item, problems)
        include = _rules(table, "include", file, item, problems)
        exclude = _rules(table, "exclude", file, item, problems)
        priority = _priority(table, file, item, problems)
        fetch = _fetch_options(table, public_only, file, item, problems)
        full_text = _bool(table, "full_text", False, file, item, problems)
        selector = _str(table, "full_text_selector", file, item, problems)
        if selector is not None:
            from aggregator.safety.selector import selector_problem  # noqa: PLC0415

            reason = selector_problem(selector)
            if reason is not None:
                problems.add(reason, file=file, item=item, key="full_text_selector")
                selector = None
            elif not full_text:
                problems.add(
                    "a selector needs full_text = true to be used",
                    file=file,
                    item=item,
                    key="full_text_selector",
                )
        if source_id is None or url is None:
            continue
        result.append(
            SourceConfig(
                id=source_id,
                url=url,
                categories=tuple(categories),
                title=_str(table, "title", file, item, problems),
                site_url=site_url,
                language=language,
                interval_seconds=interval,
                enabled=enabled,
                include=include,
                exclude=exclude,
                priority=priority,
                public_only=public_only,
                fetch=fetch,
                full_text=full_text,
                full_text_selector=selector,
            )
        )
    return result


def _fetch_options(
    table: dict[str, Any], public_only: bool, file: str, item: str, problems: _Problems
) -> FetchOptions:
    """``user_agent``, ``headers``, ``auth_env``, ``cookie_env`` and ``proxy``, checked; the
    environment variables are named here and read only when a fetch sends them."""
    user_agent = _str(table, "user_agent", file, item, problems)
    headers: list[tuple[str, str]] = []
    raw = table.get("headers", {})
    if not isinstance(raw, dict):
        problems.add(
            'must be a table of strings, such as headers = { "X-Client" = "news" }',
            file=file,
            item=item,
            key="headers",
        )
        raw = {}
    if len(raw) > MAX_EXTRA_HEADERS:
        problems.add(
            f"has {len(raw)} headers; at most {MAX_EXTRA_HEADERS}",
            file=file,
            item=item,
            key="headers",
        )
        raw = {}
    for name, value in raw.items():
        where = f"headers.{name}"
        lowered = name.lower()
        if not HEADER_NAME_RE.match(name):
            problems.add(f"{name!r} is not an HTTP header name", file=file, item=item, key=where)
        elif lowered in SECRET_HEADERS:
            problems.add(
                f"a secret does not belong in the file: use {SECRET_HEADERS[lowered]} "
                "with the name of an environment variable",
                file=file,
                item=item,
                key=where,
            )
        elif lowered in FETCHER_HEADERS:
            problems.add("is set by the fetcher itself", file=file, item=item, key=where)
        elif not isinstance(value, str):
            problems.add("must be a string", file=file, item=item, key=where)
        elif (reason := text_problem(value, "header")) is not None:
            problems.add(reason, file=file, item=item, key=where)
        else:
            headers.append((name, value.strip()))
    envs: dict[str, str | None] = {}
    for key in ("auth_env", "cookie_env"):
        name = _str(table, key, file, item, problems)
        if name is not None and not ENV_NAME_RE.match(name):
            problems.add(
                f"{name!r} is not an environment variable name such as 'WIRE_FEED_AUTH'",
                file=file,
                item=item,
                key=key,
            )
            name = None
        envs[key] = name
    proxy = _str(table, "proxy", file, item, problems)
    if proxy is not None:
        reason = url_problem(proxy)
        parts = urlsplit(proxy) if reason is None else None
        if reason is not None:
            problems.add(reason, file=file, item=item, key="proxy")
        elif parts is not None and (parts.username or parts.password):
            problems.add(
                "a proxy's password does not belong in the file; use a proxy that "
                "needs none, or the HTTPS_PROXY variable",
                file=file,
                item=item,
                key="proxy",
            )
        elif public_only:
            # The address guard checks where a fetch connects; through a proxy it could only
            # check the proxy, so sources restricted to public addresses go direct.
            problems.add(
                "a public_only source is fetched directly, never through a proxy",
                file=file,
                item=item,
                key="proxy",
            )
        else:
            return FetchOptions(
                user_agent=user_agent,
                headers=tuple(headers),
                auth_env=envs["auth_env"],
                cookie_env=envs["cookie_env"],
                proxy=proxy,
            )
    return FetchOptions(
        user_agent=user_agent,
        headers=tuple(headers),
        auth_env=envs["auth_env"],
        cookie_env=envs["cookie_env"],
    )


def _bool(
    table: dict[str, Any], key: str, default: bool, file: str, item: str, problems: _Problems
) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.add("must be true or false", file=file, item=item, key=key)
        return default
    return value


def _number(
    table: dict[str, Any],
    key: str,
    file: str,
    item: str,
    problems: _Problems,
    *,
    low: float,
    high: float,
    low_open: bool = False,
) -> float | None:
    """A number in [low, high] (or (low, high]); None when absent or wrong, reported."""
    if key not in table:
        return None
    value = table[key]
    wanted = (
        f"a number above {low:g} and at most {high:g}"
        if low_open
        else f"a number from {low:g} to {high:g}"
    )
    # TOML booleans are Python ints: "min_score = true" must not read as 1.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
        or (low_open and value == low)
    ):
        problems.add(f"must be {wanted}, not {value!r}", file=file, item=item, key=key)
        return None
    return float(value)


def _priority(table: dict[str, Any], file: str, item: str, problems: _Problems) -> int:
    value = table.get("priority", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(
            "must be a whole number (higher represents a story first)",
            file=file,
            item=item,
            key="priority",
        )
        return 0
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        problems.add(
            f"{value} is outside {MIN_PRIORITY}..{MAX_PRIORITY}",
            file=file,
            item=item,
            key="priority",
        )
        return 0
    return value


def _rules(
    table: dict[str, Any], key: str, file: str, item: str, problems: _Problems
) -> tuple[Rule, ...]:
    rules = []
    for text in _str_list(table, key, file, item, problems):
        try:
            rules.append(parse_rule(text))
        except (re.error, ValueError) as exc:
            problems.add(f"bad rule {text!r}: {exc}", file=file, item=item, key=key)
    return tuple(rules)


def _categories(doc: dict[str, Any], file: str, problems: _Problems) -> list[CategoryConfig]:
    result: list[CategoryConfig] = []
    for item, table, category_id in _each_table(doc, "category", CATEGORY_KEYS, file, problems):
        title = _str(table, "title", file, item, problems, required=True)
        languages = _str_list(table, "languages", file, item, problems)
        for language in languages:
            if not LANG_RE.match(language):
                problems.add(
                    f"{language!r} is not a language tag such as 'en' or 'fr'",
                    file=file,
                    item=item,
                    key="languages",
                )
        include = _rules(table, "include", file, item, problems)
        exclude = _rules(table, "exclude", file, item, problems)
        description = _str(table, "description", file, item, problems) or ""
        min_score = _number(table, "min_score", file, item, problems, low=0.0, high=1.0)
        topic = _bool(table, "topic", False, file, item, problems)
        # Centered cosines of unrelated texts sit around 0: a threshold at or below it would
        # take nearly everything.
        threshold = _number(
            table, "topic_threshold", file, item, problems, low=0.0, high=1.0, low_open=True
        )
        examples = _topic_examples(table, file, item, problems)
        variants = _str(table, "variants", file, item, problems)
        if variants is not None and variants not in VARIANT_MODES:
            problems.add(
                f"{variants!r} is not one of {', '.join(VARIANT_MODES)}",
                file=file,
                item=item,
                key="variants",
            )
            variants = None
        if topic and not description and not examples:
            problems.add(
                "topic = true needs a description or topic_examples to compare entries with",
                file=file,
                item=item,
                key="topic",
            )
        translations = _translations(table, file, item, problems)
        if category_id is None or title is None:
            continue
        result.append(
            CategoryConfig(
                id=category_id,
                title=title,
                description=description,
                languages=tuple(languages),
                include=include,
                exclude=exclude,
                min_score=min_score or 0.0,
                topic=topic,
                topic_threshold=threshold,
                topic_examples=examples,
                variants=variants,
                translations=translations,
            )
        )
    return result


def _translations(
    table: dict[str, Any], file: str, item: str, problems: _Problems
) -> tuple[CategoryText, ...]:
    """``[category.translations.fr]`` tables, each with a ``title`` and/or ``description``."""
    value = table.get("translations", {})
    if not isinstance(value, dict):
        problems.add(
            "must be a table of languages, such as [category.translations.fr]",
            file=file,
            item=item,
            key="translations",
        )
        return ()
    if not value:
        return ()  # Babel (through i18n) loads only for a file that has translations
    from aggregator.i18n import known_language  # noqa: PLC0415

    result = []
    for language, texts in value.items():
        key = f"translations.{language}"
        if not LANG_RE.match(language) or not known_language(language):
            problems.add(
                f"{language!r} is not a known language code such as 'fr', 'de' or 'pt-BR'",
                file=file,
                item=item,
                key=key,
            )
            continue
        if not isinstance(texts, dict):
            problems.add(
                "must be a table with a title and/or a description", file=file, item=item, key=key
            )
            continue
        unknown = sorted(set(texts) - set(TRANSLATION_KEYS))
        if unknown:
            problems.add(
                f"unknown key(s) {', '.join(unknown)}; expected title or description",
                file=file,
                item=item,
                key=key,
            )
        # Checked like the category's own title and description, reported under this key.
        found: dict[str, str | None] = {}
        for name in TRANSLATION_KEYS:
            own = _Problems()
            found[name] = _str(texts, name, file, item, own)
            for error in own.errors:
                problems.add(error.reason, file=file, item=item, key=f"{key}.{name}")
        if not any(found.values()):
            problems.add("gives neither a title nor a description", file=file, item=item, key=key)
            continue
        result.append(CategoryText(language, found["title"], found["description"]))
    return tuple(result)


def _topic_examples(
    table: dict[str, Any], file: str, item: str, problems: _Problems
) -> tuple[str, ...]:
    examples = [
        " ".join(text.split()) for text in _str_list(table, "topic_examples", file, item, problems)
    ]
    if any(not text for text in examples):
        problems.add("an example must not be empty", file=file, item=item, key="topic_examples")
    if len(examples) > MAX_TOPIC_EXAMPLES:
        problems.add(
            f"at most {MAX_TOPIC_EXAMPLES} examples", file=file, item=item, key="topic_examples"
        )
    for text in examples:
        if len(text) > MAX_TOPIC_EXAMPLE_CHARS:
            problems.add(
                f"example {text[:40]!r}… is longer than {MAX_TOPIC_EXAMPLE_CHARS} "
                "characters; the model reads a short phrase",
                file=file,
                item=item,
                key="topic_examples",
            )
    return tuple(text for text in examples if text)


def _cross_check(
    sources: Iterable[SourceConfig],
    categories: Iterable[CategoryConfig],
    sources_file: str,
    categories_file: str,
    problems: _Problems,
) -> None:
    known = {c.id for c in categories}
    used: set[str] = set()
    for source in sources:
        for category_id in source.categories:
            used.add(category_id)
            if category_id not in known:
                problems.add(
                    f"category {category_id!r} is not defined in {CATEGORIES_FILE}",
                    file=sources_file,
                    item=source.id,
                    key="categories",
                )
    for category in categories:
        if category.id not in used:
            problems.add(
                "no source uses this category", file=categories_file, item=category.id, key="id"
            )
