"""JSON Feed 1.1 documents (stdlib json): keys in a fixed order, UTF-8, no clock.

Paging uses ``next_url`` (the next older archive page); WebSub hubs go in ``hubs``. What JSON
Feed has no field for (the other language versions, the sources) sits under ``_aggregator``,
which the spec reserves for extensions and readers ignore.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aggregator.publishing.formats.common import (
    UNTITLED,
    FeedLinks,
    clean,
    feed_url,
    home_url,
    lang_tag,
    prev_archive_url,
    rfc3339,
    self_url,
)
from aggregator.publishing.formats.items import UNKNOWN_MEDIA_TYPE, Item, items
from aggregator.types import Enclosure, OutputFeed

JSON_FEED_VERSION: Final = "https://jsonfeed.org/version/1.1"
# Custom JSON Feed objects must start with "_" (spec §"Extensions"); readers ignore unknown ones.
JSON_EXTENSION_KEY: Final = "_aggregator"
# WebSub is the protocol JSON Feed 1.1 names for ``hubs[].type``.
HUB_TYPE: Final = "WebSub"


def document(feed: OutputFeed, lang: str | None, links: FeedLinks) -> bytes:
    data: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": clean(feed.title).strip() or UNTITLED,
        "home_page_url": home_url(feed.base_url),
        # An archive page belongs to the same logical feed, so it names the live feed's URL:
        # JSON Feed makes feed_url the feed's identity, and has no "self" of its own.
        "feed_url": (
            self_url(feed, "json", lang, links)
            if links.query
            else feed_url(feed.base_url, feed.category_id, "json", lang)
        ),
    }
    older = prev_archive_url(feed, "json", lang, links)
    if older is not None:
        data["next_url"] = older
    description = clean(feed.description).strip()
    if description:
        data["description"] = description
    language = lang_tag(lang or feed.language)
    if language:
        data["language"] = language
    site = clean(feed.site_title).strip()
    if site:
        data["authors"] = [{"name": site}]
    if links.hub and links.archive is None:
        data["hubs"] = [{"type": HUB_TYPE, "url": links.hub}]
    data["items"] = [_json_item(entry) for entry in items(feed)]
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    return (text + "\n").encode("utf-8")


def _json_item(entry: Item) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": entry.id,
        "url": entry.link,
        "title": entry.title,
        "content_html": entry.content_html or entry.body_html,
        "date_published": rfc3339(entry.published),
        "date_modified": rfc3339(entry.updated),
    }
    if entry.author:
        data["authors"] = [{"name": entry.author}]
    if entry.language:
        data["language"] = entry.language
    if entry.image:
        data["image"] = entry.image.url
    if entry.enclosures:
        data["attachments"] = [_attachment(e) for e in entry.enclosures]
    data[JSON_EXTENSION_KEY] = {
        "versions": [
            {
                "language": v.language,
                "url": v.url,
                "title": v.title,
                "source": v.source_title,
            }
            for v in entry.versions
        ],
        "sources": list(entry.sources),
    }
    return data


def _attachment(enclosure: Enclosure) -> dict[str, Any]:
    # mime_type is required; size_in_bytes is optional and written only when the feed gave it.
    data: dict[str, Any] = {"url": enclosure.url, "mime_type": enclosure.type or UNKNOWN_MEDIA_TYPE}
    if enclosure.length:
        data["size_in_bytes"] = enclosure.length
    return data
