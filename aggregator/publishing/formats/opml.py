"""OPML 2.0: the list of every category feed, for importing all of them into a reader at once.

Stdlib ElementTree only; deterministic like the feeds (the newest feed update is its date).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from email.utils import format_datetime

from aggregator.publishing.formats.common import (
    FEED_FORMATS,
    FORMAT_LABELS,
    clean,
    feed_url,
    home_url,
    lang_tag,
    utc,
)
from aggregator.types import OutputFeed

OPML_FORMAT_LABELS = FORMAT_LABELS


def document(feeds: Sequence[OutputFeed], base_url: str, title: str) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = clean(title)
    if feeds:
        newest = max(utc(f.updated, "updated") for f in feeds)
        ET.SubElement(head, "dateModified").text = format_datetime(newest, usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        feed_title = clean(feed.title).strip() or feed.category_id
        outline = ET.SubElement(
            body,
            "outline",
            text=feed_title,
            title=feed_title,
            type="rss",
            xmlUrl=feed_url(base_url, feed.category_id, "atom"),
            htmlUrl=home_url(base_url),
        )
        description = clean(feed.description).strip()
        if description:
            outline.set("description", description)
        language = lang_tag(feed.language)
        if language:
            outline.set("language", language)
        for fmt in FEED_FORMATS:
            ET.SubElement(
                outline,
                "outline",
                text=OPML_FORMAT_LABELS[fmt],
                type="link",
                url=feed_url(base_url, feed.category_id, fmt),
            )
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
