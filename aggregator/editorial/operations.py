"""The editors' operations shared by the command line, the JSON API and the /admin/ pages:
source care, category rules and their dry run, story corrections. Each checks its input, calls
the config editor or the store, applies a config change to the running service, and turns
every refusal into an ``EditRefused`` naming why and the field at fault.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aggregator.catalog import (
    LANG_RE,
    MAX_INTERVAL_SECONDS,
    MAX_RULE_LENGTH,
    MAX_RULES,
    MIN_INTERVAL_SECONDS,
    SLUG_RE,
    Catalog,
    CategoryConfig,
    Rule,
    SourceConfig,
    parse_duration,
    parse_rule,
    text_problem,
    url_problem,
)
from aggregator.clock import utc_now
from aggregator.delivery.subscribers import Problem, check_subscriber
from aggregator.editorial.configedit import (
    ConfigNotWritable,
    NewSource,
    UnknownItem,
    add_sources,
    remove_source,
    set_category_rules,
    set_source_enabled,
)
from aggregator.editorial.dryrun import DryRun, rules_dry_run
from aggregator.editorial.sourcenotes import added_note, enabled_note, removed_note
from aggregator.editorial.subscribe import slug_for
from aggregator.errors import AggregatorError, ConfigError, EditRefused, Refusal
from aggregator.safety.netguard import forbidden_reason
from aggregator.safety.tokens import new_token
from aggregator.store import Store
from aggregator.store.accounts import AuditNote, AuditView, EditorView
from aggregator.store.overrides import OverrideView
from aggregator.store.reclassify import NewRow
from aggregator.store.search import BadQuery, SearchHit, parse_query
from aggregator.store.stories import StoryDetail
from aggregator.store.webhooks import DeliveryView, HealthMark
from aggregator.types import (
    AuditKind,
    DeliveryState,
    Role,
    SourceStatus,
    StoryView,
    Subscriber,
)

log = logging.getLogger("aggregator.web.editing")
T = TypeVar("T")
# The API declares these limits in its schema; they are the catalog's.
__all__ = [
    "DEFAULT_DRY_RUN_SINCE",
    "MAX_NOTE_LENGTH",
    "MAX_RULES",
    "MAX_RULE_LENGTH",
    "Done",
    "EditRefused",
    "Workbench",
    "parse_rules",
    "parse_since",
    "rule_text",
]

# A dry run reads stored history; a year bounds its cost whatever a caller asks.
MAX_DRY_RUN_SINCE = timedelta(days=366)
DEFAULT_DRY_RUN_SINCE = "7d"
MAX_NOTE_LENGTH = 500
# Who an edit is recorded as when its caller names nobody (the CLI names $USER).
UNNAMED_EDITOR = "unknown"
EDITOR_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Done:
    """What an edit did, in words, and whether the running service has applied it yet."""

    message: str
    applied: bool = True
    override_id: int | None = None
    story_id: int | None = None


def parse_rules(
    lines: Sequence[str], field: str, category_id: str | None = None
) -> tuple[Rule, ...]:
    """Rules as an editor wrote them (``/regex/`` or a keyword), each checked as the catalog
    checks the file (``text_problem``, ``parse_rule``), blanks skipped."""
    if len(lines) > MAX_RULES:
        raise EditRefused(Refusal.INVALID, f"at most {MAX_RULES} rules", field=field)
    where = f" of category {category_id!r}" if category_id else ""
    rules = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if len(line) > MAX_RULE_LENGTH:
            raise EditRefused(
                Refusal.INVALID,
                f"a rule may have at most {MAX_RULE_LENGTH} characters",
                field=f"{field}[{index}]",
            )
        try:
            reason = text_problem(line, field)
            if reason is not None:
                raise ValueError(reason)
            rules.append(parse_rule(line))
        except (re.error, ValueError) as exc:
            raise EditRefused(
                Refusal.INVALID,
                f"bad rule {line.strip()!r} in {field}{where}: {exc}",
                field=f"{field}[{index}]",
            ) from exc
    return tuple(rules)


def rule_text(rule: Rule) -> str:
    """A rule as written in categories.toml."""
    return f"/{rule.pattern}/" if rule.is_regex else rule.pattern


def parse_since(text: str, field: str = "since") -> timedelta:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise EditRefused(Refusal.INVALID, str(exc), field=field) from exc
    # Compared as a number first: a timedelta of a huge count would overflow.
    if not 0 < seconds <= MAX_DRY_RUN_SINCE.total_seconds():
        raise EditRefused(
            Refusal.INVALID, f"must be between 1s and {MAX_DRY_RUN_SINCE.days}d", field=field
        )
    return timedelta(seconds=seconds)


def applied_json(done: Done, diff: DryRun, days: int) -> dict[str, Any]:
    """Rules applied to stored entries, as the CLI (``rules apply --json``) and the API
    answer it: what was done, the correction to undo it with, and the diff written."""
    return {
        "message": done.message,
        "override_id": done.override_id,
        "category": diff.category_id,
        "days": days,
        "added": [e.as_json() for e in diff.added],
        "removed": [e.as_json() for e in diff.removed],
    }


def _note(note: str | None) -> str | None:
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise EditRefused(Refusal.INVALID, f"at most {MAX_NOTE_LENGTH} characters", field="note")
    return (note or "").strip() or None


class Workbench:
    """The editors' operations over one store and the running configuration."""

    def __init__(
        self,
        *,
        store: Store,
        catalog: Callable[[], Catalog],
        config_dir: Path | None,
        on_config_change: Callable[[], None] | None = None,
        allow_private_addresses: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self._catalog = catalog
        self.config_dir = config_dir
        self.on_config_change = on_config_change
        self.allow_private_addresses = allow_private_addresses
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The configuration the service runs on now."""
        return self._catalog()

    def sources(self) -> list[SourceStatus]:
        return self.store.sources()

    def source(self, source_id: str) -> SourceConfig:
        try:
            return self.catalog.source(source_id)
        except KeyError:
            raise EditRefused(
                Refusal.NOT_FOUND,
                f"no source {source_id!r} in the configuration",
                field="source_id",
            ) from None

    def category(self, category_id: str) -> CategoryConfig:
        try:
            return self.catalog.category(category_id)
        except KeyError:
            raise EditRefused(
                Refusal.NOT_FOUND, f"no category {category_id!r}", field="category_id"
            ) from None

    def story(self, story_id: int) -> StoryDetail:
        detail = self.store.story_detail(story_id)
        if detail is None:
            raise EditRefused(Refusal.NOT_FOUND, f"no story {story_id}", field="story_id")
        return detail

    def recent_stories(self, category_id: str, limit: int) -> list[StoryView]:
        return self.store.category_stories(category_id, limit)

    def search(
        self,
        text: str,
        limit: int,
        *,
        after: tuple[datetime, int] | None = None,
        include_hidden: bool = False,
    ) -> tuple[list[SearchHit], tuple[datetime, int] | None]:
        """Entries whose title or text holds every word of ``text``, newest first, each with
        its story: how editors find the story to merge, split, pin or hide."""
        try:
            terms = parse_query(text)
        except BadQuery as exc:
            raise EditRefused(Refusal.INVALID, str(exc), field="q") from exc
        return self.store.search(terms, limit, after=after, include_hidden=include_hidden)

    def corrections(self, *, include_undone: bool = False) -> list[OverrideView]:
        return self.store.overrides(include_undone=include_undone)

    # -- the editorial files ----------------------------------------------------------------

    def _folder(self) -> Path:
        if self.config_dir is None:
            raise EditRefused(Refusal.CONFLICT, "this service has no editorial folder to write to")
        return self.config_dir

    def _edit(self, action: Callable[[Path], None], message: str, audit: AuditNote) -> Done:
        """Edit the files with the audit row in an open transaction: the row is kept only if
        the edit is, and the edit is not made when the row cannot be written."""
        folder = self._folder()
        try:
            with self.store.audited(audit, self.clock()):
                action(folder)
        except ConfigError as exc:
            raise _config_refusal(exc) from exc
        return Done(message=message, applied=self._apply())

    def _apply(self) -> bool:
        """Make the running service take the edited files now; False when it could not (the
        files are saved all the same and the next reload picks them up)."""
        if self.on_config_change is None:
            return False
        try:
            self.on_config_change()
        except AggregatorError as exc:
            log.error("action=config-apply outcome=error error=%r", str(exc))
            return False
        return True

    def set_enabled(self, source_id: str, enabled: bool, *, by: str = UNNAMED_EDITOR) -> Done:
        source = self.source(source_id)
        verb = "resumed" if enabled else "paused"
        return self._edit(
            lambda folder: set_source_enabled(folder, source_id, enabled),
            f"{verb} source {source_id!r}",
            enabled_note(by, source, enabled),
        )

    def remove(self, source_id: str, *, by: str = UNNAMED_EDITOR) -> Done:
        source = self.source(source_id)
        return self._edit(
            lambda folder: remove_source(folder, source_id),
            f"removed source {source_id!r}; its stored entries stay",
            removed_note(by, source),
        )

    def new_source(
        self,
        *,
        url: str,
        categories: Sequence[str],
        source_id: str | None = None,
        title: str | None = None,
        language: str | None = None,
        interval: str | None = None,
    ) -> NewSource:
        """The source to add, its id derived from the title or host when not given."""
        url = url.strip()
        reason = url_problem(url)
        if reason is not None:
            raise EditRefused(Refusal.INVALID, reason, field="url")
        taken = {s.id for s in self.catalog.sources}
        return NewSource(
            id=(source_id or "").strip() or slug_for(title, url, taken),
            url=url,
            title=(title or "").strip() or None,
            categories=tuple(c for c in categories if c),
            language=language or None,
            interval=interval or None,
            # Nobody reviewed this URL: it may only ever reach public addresses.
            public_only=not self.allow_private_addresses,
        )

    def add(self, source: NewSource, *, by: str = UNNAMED_EDITOR) -> Done:
        self._check_new_source(source)
        return self._edit(
            lambda folder: add_sources(folder, [source]),
            f"added source {source.id!r} ({source.url}); the next poll reads it",
            added_note(by, source),
        )

    def _check_new_source(self, source: NewSource) -> None:
        if not SLUG_RE.match(source.id):
            raise EditRefused(
                Refusal.INVALID, "must be a slug: lower-case letters, digits and '-'", field="id"
            )
        # The catalog's own checks, so that the door refuses what the files would.
        for key, value in (
            ("url", source.url),
            ("title", source.title),
            ("language", source.language),
            ("interval", source.interval),
        ):
            reason = (
                None
                if value is None
                else (url_problem(value) if key == "url" else text_problem(value, key))
            )
            if reason is not None:
                raise EditRefused(Refusal.INVALID, reason, field=key)
        host = urlsplit(source.url).hostname or ""
        if not self.allow_private_addresses:
            reason = _literal_host_refusal(host)
            if reason:
                raise EditRefused(
                    Refusal.INVALID,
                    f"{host} is {reason}; sources added here may only point "
                    "at public addresses (AGGREGATOR_ALLOW_PRIVATE_ADDRESSES "
                    "allows others)",
                    field="url",
                )
        if not source.categories:
            raise EditRefused(
                Refusal.INVALID, "a source needs at least one category", field="categories"
            )
        known = {c.id for c in self.catalog.categories}
        for category in source.categories:
            if category not in known:
                raise EditRefused(
                    Refusal.INVALID,
                    f"unknown category {category!r}; known: " + ", ".join(sorted(known)),
                    field="categories",
                )
        if source.language is not None and not LANG_RE.match(source.language):
            raise EditRefused(
                Refusal.INVALID,
                f"{source.language!r} is not a language tag such as 'en'",
                field="language",
            )
        if source.interval is not None:
            try:
                seconds = parse_duration(source.interval)
            except ValueError as exc:
                raise EditRefused(Refusal.INVALID, str(exc), field="interval") from exc
            if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
                raise EditRefused(
                    Refusal.INVALID, f"{source.interval!r} is outside 1m..7d", field="interval"
                )
        for existing in self.catalog.sources:
            if existing.id == source.id:
                raise EditRefused(
                    Refusal.CONFLICT, f"a source {source.id!r} already exists", field="id"
                )
            if existing.url == source.url:
                raise EditRefused(
                    Refusal.CONFLICT, f"{source.url} is already source {existing.id!r}", field="url"
                )

    def set_rules(
        self,
        category_id: str,
        include: Sequence[str],
        exclude: Sequence[str],
        *,
        by: str = UNNAMED_EDITOR,
    ) -> Done:
        current = self.category(category_id)
        included = [rule_text(r) for r in parse_rules(include, "include", category_id)]
        excluded = [rule_text(r) for r in parse_rules(exclude, "exclude", category_id)]
        was_in = [rule_text(r) for r in current.include]
        was_out = [rule_text(r) for r in current.exclude]
        return self._edit(
            lambda folder: set_category_rules(
                folder, category_id, include=included, exclude=excluded
            ),
            f"saved the rules of {category_id!r}: {len(included)} include, {len(excluded)} exclude",
            AuditNote(
                by,
                AuditKind.RULES,
                "save",
                category_id,
                {
                    "include": {
                        "added": [r for r in included if r not in was_in],
                        "removed": [r for r in was_in if r not in included],
                    },
                    "exclude": {
                        "added": [r for r in excluded if r not in was_out],
                        "removed": [r for r in was_out if r not in excluded],
                    },
                },
            ),
        )

    def dry_run(
        self, category_id: str, include: Sequence[str], exclude: Sequence[str], since: timedelta
    ) -> DryRun:
        """What the category would have gained and lost over ``since`` with these rules."""
        current = self.category(category_id)
        changed = dataclasses.replace(
            current,
            include=parse_rules(include, "include", category_id),
            exclude=parse_rules(exclude, "exclude", category_id),
        )
        return rules_dry_run(self.store, self.catalog, changed, since=since, now=self.clock())

    def apply_rules(
        self, category_id: str, days: int, *, by: str, note: str | None
    ) -> tuple[Done, DryRun]:
        """Apply the category's rules, as the service runs them now, to the entries stored
        over the last ``days``: what a dry run of them shows is written, as one correction
        (who, when) that undo takes back. Returns what was done and the diff written."""
        category = self.category(category_id)
        if not 1 <= days <= MAX_DRY_RUN_SINCE.days:
            raise EditRefused(
                Refusal.INVALID,
                f"days must be from 1 to {MAX_DRY_RUN_SINCE.days}, not {days}",
                field="days",
            )
        diff = rules_dry_run(
            self.store, self.catalog, category, since=timedelta(days=days), now=self.clock()
        )
        if not diff.added and not diff.removed:
            return Done(
                f"the rules of {category_id!r} change nothing stored over the last {days} days",
                applied=True,
            ), diff
        why = _note(note)
        detail: dict[str, object] = {
            "days": days,
            "added": len(diff.added),
            "removed": len(diff.removed),
        }
        if why is not None:
            detail["note"] = why  # the audit row says why, as a merge's or a split's does
        override, added, removed = self._correct(
            lambda: self.store.apply_category_rules(
                category_id,
                [NewRow(e.entry_id, e.score, e.reason) for e in diff.added],
                [e.entry_id for e in diff.removed],
                days=days,
                by=by,
                now=self.clock(),
                note=why,
                audit=AuditNote(by, AuditKind.RULES, "apply", category_id, detail),
            )
        )
        return Done(
            f"applied the rules of {category_id!r} to the last {days} days: "
            f"{added} added, {removed} removed (correction #{override})",
            applied=True,
            override_id=override,
        ), diff

    # -- story corrections -----------------------------------------------------------------

    def merge(self, story_id: int, other_story_id: int, *, by: str, note: str | None) -> Done:
        if story_id == other_story_id:
            raise EditRefused(
                Refusal.INVALID, "a story cannot be merged with itself", field="other_story_id"
            )
        self._story(story_id, "story_id")
        self._story(other_story_id, "other_story_id")
        override = self._correct(
            lambda: self.store.merge_stories(
                story_id,
                other_story_id,
                by=by,
                now=self.clock(),
                note=_note(note),
                audit=_correction(by, "merge", story_id, other_story_id=other_story_id, note=note),
            )
        )
        # The older story keeps its id; ask the store which one that is.
        after = self.store.story_detail(story_id)
        kept = (after.merged_into_id or story_id) if after is not None else story_id
        gone = other_story_id if kept == story_id else story_id
        return Done(
            f"merged story #{gone} into #{kept} (correction #{override})",
            override_id=override,
            story_id=kept,
        )

    def split(self, story_id: int | None, entry_id: int, *, by: str, note: str | None) -> Done:
        """Take ``entry_id`` out of ``story_id`` (or, when None, out of whichever story holds
        it) into a story of its own."""
        if story_id is not None:
            detail = self._story(story_id, "story_id")
            if entry_id not in {e.entry_id for e in detail.entries}:
                raise EditRefused(
                    Refusal.INVALID,
                    f"entry {entry_id} is not in story {story_id}",
                    field="entry_id",
                )
        new_story = self._correct(
            lambda: self.store.split_entry(
                entry_id,
                by=by,
                now=self.clock(),
                note=_note(note),
                audit=_correction(by, "split", story_id, entry_id=entry_id, note=note),
            )
        )
        return Done(f"split entry #{entry_id} into new story #{new_story}", story_id=new_story)

    def pin(self, story_id: int, category: str, *, by: str, note: str | None) -> Done:
        self._story(story_id, "story_id")
        self._category_field(category)
        override = self._correct(
            lambda: self.store.pin_story(
                story_id,
                category,
                by=by,
                now=self.clock(),
                note=_note(note),
                audit=_correction(by, "pin", story_id, category=category, note=note),
            )
        )
        return Done(
            f"pinned story #{story_id} in {category!r} (correction #{override})",
            override_id=override,
            story_id=story_id,
        )

    def hide(self, story_id: int, category: str | None, *, by: str, note: str | None) -> Done:
        self._story(story_id, "story_id")
        if category is not None:
            self._category_field(category)
        override = self._correct(
            lambda: self.store.hide_story(
                story_id,
                category,
                by=by,
                now=self.clock(),
                note=_note(note),
                audit=_correction(by, "hide", story_id, category=category, note=note),
            )
        )
        where = f"in {category!r}" if category else "in every category"
        return Done(
            f"hid story #{story_id} {where} (correction #{override})",
            override_id=override,
            story_id=story_id,
        )

    def undo(self, override_id: int, *, by: str) -> Done:
        undone = self._correct(
            lambda: self.store.undo_override(
                override_id,
                by=by,
                now=self.clock(),
                audit=AuditNote(
                    by,
                    AuditKind.CORRECTION,
                    "undo",
                    f"correction #{override_id}",
                    {"override_id": override_id},
                ),
            )
        )
        if not undone:
            raise EditRefused(
                Refusal.NOT_FOUND, f"no active correction {override_id}", field="override_id"
            )
        return Done(f"undid correction #{override_id}", override_id=override_id)

    # -- webhooks and source-health alerts --------------------------------------------------

    def webhook_subscribers(self) -> list[Subscriber]:
        return self.store.webhooks.subscribers()

    def add_webhook(self, data: Mapping[str, Any]) -> Done:
        """Add a subscriber (checked as ``webhooks.toml`` is: address rules, secret,
        filters); its secret is stored and never shown again."""
        if "secret_env" in data:
            # An environment variable from the API could sign with the service's own secrets.
            raise EditRefused(
                Refusal.INVALID, "secret_env may only be used in webhooks.toml", field="secret_env"
            )
        result = check_subscriber(
            data,
            categories=[c.id for c in self.catalog.categories],
            allow_private=self.allow_private_addresses,
        )
        if isinstance(result, Problem):
            raise EditRefused(Refusal.INVALID, f"{result.key}: {result.message}", field=result.key)
        if not self.store.webhooks.add_subscriber(result, self.clock()):
            raise EditRefused(Refusal.CONFLICT, f"a subscriber {result.id!r} exists", field="id")
        log.info("action=webhook_add outcome=done subscriber=%s", result.id)
        return Done(f"added webhook subscriber {result.id}")

    def remove_webhook(self, subscriber_id: str) -> Done:
        """Stop sending to an API subscriber; those of ``webhooks.toml`` are edited there."""
        found = self.store.webhooks.subscriber(subscriber_id)
        if found is None or not found.active:
            raise EditRefused(
                Refusal.NOT_FOUND, f"no webhook subscriber {subscriber_id!r}", field="subscriber_id"
            )
        if found.origin == "file":
            raise EditRefused(
                Refusal.CONFLICT,
                f"subscriber {subscriber_id!r} is configured in webhooks.toml; remove it there",
                field="subscriber_id",
            )
        self.store.webhooks.deactivate_subscriber(subscriber_id)
        log.info("action=webhook_remove outcome=done subscriber=%s", subscriber_id)
        return Done(f"removed webhook subscriber {subscriber_id}")

    def webhook_deliveries(
        self, *, limit: int = 100, subscriber_id: str | None = None, state: str | None = None
    ) -> list[DeliveryView]:
        if state is not None and state not in {s.value for s in DeliveryState}:
            raise EditRefused(Refusal.INVALID, f"unknown delivery state {state!r}", field="state")
        return self.store.webhooks.deliveries(limit=limit, subscriber_id=subscriber_id, state=state)

    def redeliver(self, delivery_id: int) -> Done:
        """Queue a failed delivery again, now."""
        if not self.store.webhooks.retry(delivery_id, self.clock()):
            raise EditRefused(
                Refusal.NOT_FOUND, f"no failed delivery {delivery_id}", field="delivery_id"
            )
        return Done(f"delivery {delivery_id} is queued again")

    def source_alerts(self) -> list[HealthMark]:
        """Sources whose health is not ok, as last sent to subscribers."""
        return self.store.webhooks.health_alerts()

    # -- editors' accounts and the audit log ------------------------------------------------

    def editors(self) -> list[EditorView]:
        return self.store.editors()

    def audit_log(self, limit: int, before: int | None = None) -> list[AuditView]:
        return self.store.audit_log(limit, before)

    def add_editor(self, name: str, role: str, *, by: str) -> tuple[Done, str]:
        """A new account; the token comes back once, here, and is kept only hashed."""
        name = name.strip()
        if not EDITOR_NAME_RE.match(name):
            raise EditRefused(
                Refusal.INVALID,
                "a name of 1 to 64 letters, digits and . _ @ - starting with a letter or digit",
                field="name",
            )
        try:
            chosen = Role(role)
        except ValueError:
            raise EditRefused(
                Refusal.INVALID,
                f"{role!r} is not a role; roles: " + ", ".join(r.value for r in Role),
                field="role",
            ) from None
        made = new_token()
        self._account(
            "add",
            name,
            AuditNote(by, AuditKind.EDITOR, "add", name, {"role": chosen.value}),
            role=chosen.value,
            key=made.key,
            hashed=made.hashed,
        )
        return Done(f"added {chosen.value} {name!r}"), made.token

    def rotate_editor(self, name: str, *, by: str) -> tuple[Done, str]:
        """A new token for ``name``; the old one stops working at once."""
        made = new_token()
        self._account(
            "rotate",
            name,
            AuditNote(by, AuditKind.EDITOR, "rotate", name),
            key=made.key,
            hashed=made.hashed,
        )
        return Done(f"new token for {name!r}; the old one no longer works"), made.token

    def revoke_editor(self, name: str, *, by: str) -> Done:
        self._account("revoke", name, AuditNote(by, AuditKind.EDITOR, "revoke", name))
        return Done(f"revoked {name!r}: their token and sessions no longer work")

    def _account(self, action: str, name: str, audit: AuditNote, **values: str) -> None:
        try:
            self.store.change_editor(action, name, now=self.clock(), audit=audit, **values)
        except ValueError as exc:
            refusal = Refusal.CONFLICT if "already exists" in str(exc) else Refusal.NOT_FOUND
            raise EditRefused(refusal, str(exc), field="name") from exc

    def _category_field(self, category: str) -> None:
        if category not in {c.id for c in self.catalog.categories}:
            raise EditRefused(Refusal.INVALID, f"unknown category {category!r}", field="category")

    def _story(self, story_id: int, field: str) -> StoryDetail:
        detail = self.store.story_detail(story_id)
        if detail is None:
            raise EditRefused(Refusal.NOT_FOUND, f"no story {story_id}", field=field)
        return detail

    @staticmethod
    def _correct(action: Callable[[], T]) -> T:
        try:
            return action()
        except ValueError as exc:
            # The store names what it refused ("no story 5", "entry 3 is already …").
            raise EditRefused(Refusal.INVALID, str(exc)) from exc


def _correction(
    by: str, action: str, story_id: int | None, *, note: str | None, **detail: object
) -> AuditNote:
    target = f"story #{story_id}" if story_id is not None else f"entry #{detail.get('entry_id')}"
    values = {
        k: v for k, v in {**detail, "story_id": story_id, "note": note}.items() if v is not None
    }
    return AuditNote(by, AuditKind.CORRECTION, action, target, values)


def _literal_host_refusal(host: str) -> str | None:
    """Why a host written as an IP address (or localhost) is refused; names are not resolved
    here, so a request never waits on DNS."""
    if host.lower().rstrip(".") in {"localhost", "localhost.localdomain"} or host.lower().endswith(
        ".localhost"
    ):
        return "a loopback name"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return forbidden_reason(address)


def _config_refusal(exc: ConfigError) -> EditRefused:
    if isinstance(exc, ConfigNotWritable):
        return EditRefused(Refusal.CONFLICT, str(exc))
    if isinstance(exc, UnknownItem):
        return EditRefused(Refusal.NOT_FOUND, str(exc), field=exc.key)
    return EditRefused(Refusal.INVALID, str(exc), field=exc.key)
