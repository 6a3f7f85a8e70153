"""Hand-built pipeline values for tests, with sensible defaults and explicit overrides."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.clustering import ClusteringStage
from aggregator.store import Store
from aggregator.types import CategoryMatch, FetchResult, NormalizedEntry

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def entry(key: str, **overrides: Any) -> NormalizedEntry:
    title = overrides.pop("title", f"Title {key}")
    text = overrides.pop("text", f"{title}. Body of {key}.")
    values: dict[str, Any] = {
        "identity_key": f"guid:{key}",
        "guid": key,
        "url": f"https://news.example/{key}",
        "link": f"https://news.example/{key}",
        "title": title,
        "summary_html": f"<p>{text}</p>",
        "content_html": "",
        "text": text,
        "language": "en",
        "published_at": NOW,
        "updated_at": NOW,
        "author": None,
        "tags": (),
        "enclosures": (),
        "content_hash": hashlib.sha256(text.encode()).hexdigest()[:32],
    }
    values.update(overrides)
    return NormalizedEntry(**values)


def fetched(
    url: str = "https://feeds.example/a.xml",
    status: int = 200,
    content: bytes | None = b"<rss/>",
    etag: str | None = '"v1"',
) -> FetchResult:
    return FetchResult(
        url=url,
        status=status,
        content=content,
        headers={},
        etag=etag,
        last_modified=None,
        elapsed=0.01,
    )


def match(category: str, reason: str = "all entries of source") -> CategoryMatch:
    return CategoryMatch(category_id=category, score=1.0, reason=reason)


def catalog(*sources: SourceConfig, categories: tuple[str, ...] = ("news",)) -> Catalog:
    return Catalog(
        sources=sources,
        categories=tuple(
            CategoryConfig(id=c, title=c.title(), languages=("en", "fr")) for c in categories
        ),
    )


def source(
    source_id: str,
    url: str | None = None,
    categories: tuple[str, ...] = ("news",),
    **overrides: Any,
) -> SourceConfig:
    return SourceConfig(
        id=source_id,
        url=url or f"https://feeds.example/{source_id}.xml",
        categories=categories,
        **overrides,
    )


def settle(store: Store) -> None:
    """The clustering stage's exact path over what the polls wrote: it settles their stories,
    and only settled stories reach the outputs."""
    ClusteringStage(store, semantic=False).run()
