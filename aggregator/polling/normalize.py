"""From a parsed entry to one ready to store: canonical URL, identity key, plausible UTC dates,
sanitized HTML, plain text, a language tag and a content hash.

Pure logic: no I/O and no clock (``now`` is an argument). HTML cleaning is delegated to
``aggregator.safety.sanitize``; everything else here is standard library.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus, urljoin, urlsplit

from aggregator.safety.sanitize import clean_html, html_to_text, plain_title
from aggregator.types import Enclosure, MediaImage, NormalizedEntry, ParsedEntry, ParsedFeed

# Query parameters that only say how a reader arrived; dropping them makes the same article
# shared through different campaigns one URL. Compared case-insensitively.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_hsenc", "_hsmi",
        "__hssc", "__hstc", "__hsfp", "hsctatracking", "ref_src", "ref_url", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "vero_id", "vero_conv",
        "wickedid", "_openstat", "ncid", "sr_share", "at_medium", "at_campaign", "guccounter",
        "guce_referrer", "guce_referrer_sig", "cmpid", "ocid",
    }
)  # fmt: skip
TRACKING_PARAM_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 4096

# A date more than this far ahead of ``now`` is a broken clock, a typo or a placeholder
# (9999-12-31): it counts as missing, like the placeholders below.
MAX_FUTURE_SKEW = timedelta(days=1)
# Dates before this are epoch-zero bugs and placeholders (1970-01-01, 0001-01-01), not real
# publication dates: they count as missing.
EARLIEST_PLAUSIBLE_DATE = datetime(1990, 1, 1, tzinfo=UTC)

MAX_TITLE_CHARS = 1000
MAX_HTML_CHARS = 200_000
MAX_TEXT_CHARS = 200_000
MAX_GUID_CHARS = 1000
MAX_AUTHOR_CHARS = 300
MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_ENCLOSURES = 20
DERIVED_TITLE_CHARS = 80
CONTENT_HASH_CHARS = 32
UNTITLED = "(untitled)"
HASH_PREFIX = "hash:"
ELLIPSIS = "…"

# Old ISO 639 codes still seen in feeds, mapped to the current ones.
DEPRECATED_LANGUAGE_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters left as they are in a path or a query piece; anything else is percent-encoded.
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_ESCAPE_OR_CHAR = re.compile(r"%[0-9A-Fa-f]{2}|.", re.DOTALL)
# Components made only of these are left as they are by _normalize_escapes (no escapes).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*")
_URL_JUNK = re.compile(r"[\t\n\r]")
# An absolute http(s) URL that urllib splits and puts back together as it is: lower-case scheme,
# a host without brackets (checked as IPv6), a path without ";" (split off as params), a "?" or
# "#" only with something after it, nothing urllib strips or removes (controls, spaces).
_PLAIN_HTTP_URL = re.compile(
    r"(https?)://([^/?#\[\]\x00-\x20]+)(/[^?#;\x00-\x20]*)?(?:\?([^#\x00-\x20]+))?"
    r"(?:#([^\x00-\x20]+))?"
)
_BAD_HOST_CHARS = frozenset(' <>"`{}|\\^%/?#@')
_LANGUAGE_SPLIT = re.compile(r"[,;\s]")
_TRAILING_ELLIPSIS = re.compile(r"(\s*(\[\s*(…|\.\.\.)\s*\]|…|\.\.\.))+$")


# ---------------------------------------------------------------------------------------------
# URLs


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The comparable form of an http(s) URL, or None when ``url`` is not one.

    Resolves against ``base``; lower-cases scheme and host (IDN hosts become punycode); drops
    the default port, user info, the fragment (except ``#!`` routes) and tracking parameters
    (``TRACKING_PARAMS``, ``TRACKING_PARAM_PREFIXES``); keeps the other query parameters in
    their order; decodes needlessly escaped characters and escapes the rest; removes ``.``
    and ``..`` segments; an empty path becomes ``/``.
    """
    if not url:
        return None
    plain = None if base else _plain_http_parts(url)
    hostname: str | None
    if plain is not None:
        scheme, hostname, path, query, fragment = plain
        port = None
    else:
        url = _URL_JUNK.sub("", url).strip()
        if not url or len(url) > MAX_URL_CHARS:
            return None
        try:
            if base:
                url = urljoin(_URL_JUNK.sub("", base).strip(), url)
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme, hostname = parts.scheme.lower(), parts.hostname
        path, query, fragment = parts.path, parts.query, parts.fragment
    if scheme not in DEFAULT_PORTS:
        return None
    host = _canonical_host(hostname)
    if host is None:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _remove_dot_segments(_normalize_escapes(path, _PATH_SAFE)) or "/"
    result = f"{scheme}://{netloc}{path}"
    query = _strip_tracking(query)
    if query:
        result = f"{result}?{query}"
    if fragment.startswith("!"):
        # A "#!" fragment is a route in a single-page site: it names the article.
        result = f"{result}#{_normalize_escapes(fragment, _QUERY_SAFE)}"
    return result if len(result) <= MAX_URL_CHARS else None


def _plain_http_parts(url: str) -> tuple[str, str, str, str, str] | None:
    """Scheme, host name, path, query and fragment of a plain http(s) URL as ``urlsplit`` and
    its ``hostname`` give them, or None for any other URL: this one has nothing to strip, no
    user info or port, and is ASCII."""
    plain = _PLAIN_HTTP_URL.fullmatch(url)
    if plain is None or len(url) > MAX_URL_CHARS or not url.isascii():
        return None
    scheme, netloc, path, query, fragment = plain.groups()
    if "@" in netloc or ":" in netloc or "%" in netloc:
        return None
    return scheme, netloc.lower(), path or "", query or "", fragment or ""


def _canonical_host(hostname: str | None) -> str | None:
    if not hostname:
        return None
    host = hostname.lower().rstrip(".")
    if not host or not _BAD_HOST_CHARS.isdisjoint(host):
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            # Not valid IDNA 2003 (e.g. some emoji domains): keep the lower-cased Unicode,
            # which is still a stable key.
            return host
    return host


def _normalize_escapes(component: str, safe: frozenset[str]) -> str:
    """Upper-case escapes, decode escaped unreserved characters, escape unsafe ones."""
    plain = _PLAIN_QUERY if safe is _QUERY_SAFE else _PLAIN_PATH if safe is _PATH_SAFE else None
    if plain is not None and plain.fullmatch(component):
        return component  # nothing escaped, nothing to escape: most paths and queries

    def fix(match: re.Match[str]) -> str:
        token = match.group()
        if len(token) == 3:
            char = chr(int(token[1:], 16))
            return char if char in _UNRESERVED else token.upper()
        if token in safe:
            return token
        return "".join(f"%{byte:02X}" for byte in token.encode("utf-8", "surrogatepass"))

    return _ESCAPE_OR_CHAR.sub(fix, component)


def _remove_dot_segments(path: str) -> str:
    # A dot segment is "/." or "/.." followed by "/" or the end.
    if "/." not in path or not path.startswith("/"):
        return path
    segments = path[1:].split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        is_last = index == len(segments) - 1
        if segment in {".", ".."}:
            if segment == ".." and kept:
                kept.pop()
            if is_last:
                kept.append("")
        else:
            kept.append(segment)
    return "/" + "/".join(kept)


def _strip_tracking(query: str) -> str:
    kept: list[str] = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.split("=", 1)[0]).strip().lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PARAM_PREFIXES):
            continue
        kept.append(_normalize_escapes(piece, _QUERY_SAFE))
    return "&".join(kept)


# ---------------------------------------------------------------------------------------------
# Languages


def normalize_language(tag: str | None) -> str | None:
    """A BCP 47-ish tag in one consistent form: all lower case, ``-`` separated.

    ``en-US`` → ``en-us``, ``pt_BR`` → ``pt-br``, ``EN`` → ``en``, ``iw`` → ``he``. The region
    and script are kept; compare on ``primary_language`` when they do not matter. Returns None
    when the primary subtag is not 2–3 letters (``English``, ``*``, ``utf-8``…).
    """
    if not tag:
        return None
    first = _LANGUAGE_SPLIT.split(tag.strip(), maxsplit=1)[0]
    subtags = first.replace("_", "-").lower().split("-")
    primary = subtags[0]
    if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
        return None
    kept = [DEPRECATED_LANGUAGE_CODES.get(primary, primary)]
    for subtag in subtags[1:]:
        if not (1 <= len(subtag) <= 8 and subtag.isascii() and subtag.isalnum()):
            break
        kept.append(subtag)
    return "-".join(kept)


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of a normalized tag: ``pt-br`` → ``pt``."""
    normalized = normalize_language(tag)
    return normalized.split("-", 1)[0] if normalized else None


# ---------------------------------------------------------------------------------------------
# Entries


def normalize_entry(
    entry: ParsedEntry,
    *,
    feed: ParsedFeed,
    feed_url: str,
    source_language: str | None,
    now: datetime,
) -> NormalizedEntry:
    """Clean one entry of ``feed`` (fetched from ``feed_url``) as of ``now``.

    Identity (unique within one feed; see ``_identity``): ``guid:<guid>`` when the entry has a
    guid (even a permalink URL stays a guid), else ``url:<canonical url>`` with the link's
    ``#fragment`` and first enclosure when it has them, else ``hash:<content hash>`` with the
    first enclosure and the feed's date when it has them. ``normalize_feed`` numbers entries
    that still share a ``hash:`` key.

    Dates: a date later than ``now + MAX_FUTURE_SKEW`` or before ``EARLIEST_PLAUSIBLE_DATE``
    counts as missing (placeholders such as 0001-01-01 and 9999-12-31). Published falls back to
    updated, then to ``now`` (``date_source`` "first-seen"); updated falls back to published
    and is never earlier than published.

    Language: the entry's, else the feed's, else ``source_language``, the first that
    ``normalize_language`` accepts.
    """
    now = _as_utc(now)
    link = _absolute_http(entry.link, feed_url)
    url = canonical_url(link)
    html_base = link or feed_url

    summary = (entry.summary or "")[:MAX_HTML_CHARS]
    content = (entry.content or "")[:MAX_HTML_CHARS]
    summary_html = clean_html(summary, html_base)
    summary_text = html_to_text(summary_html)
    # Many feeds give the same HTML as summary and content: cleaned and read once.
    if content == summary:
        content_html, content_text = summary_html, summary_text
    else:
        content_html = clean_html(content, html_base)
        content_text = html_to_text(content_html)
    body = _merge_texts(summary_text, content_text)

    title = _truncate(plain_title(entry.title, entry.title_is_html), MAX_TITLE_CHARS)
    text = "\n".join(part for part in (title, body) if part)[:MAX_TEXT_CHARS]
    if not title:
        title = _derive_title(body) or url or link or UNTITLED

    enclosures = _enclosures(entry.enclosures, feed_url)
    content_hash = _content_hash(
        text or " ".join(filter(None, [link, *(e.url for e in enclosures)]))
    )
    published, updated, dated = _dates(entry.published, entry.updated, now)
    guid, identity_key, legacy_key = _identity(
        entry.guid, link, url, enclosures, content_hash, published if dated else None
    )
    if not dated:
        date_source = "first-seen"
    else:
        date_source = "feed-localized" if entry.date_localized else "feed"

    return NormalizedEntry(
        identity_key=identity_key,
        guid=guid,
        url=url,
        link=link,
        title=title,
        summary_html=summary_html,
        content_html=content_html,
        text=text,
        language=_first_language(entry.language, feed.language, source_language),
        published_at=published,
        updated_at=updated,
        author=_truncate(plain_title(entry.author, False), MAX_AUTHOR_CHARS) or None,
        tags=_tags(entry.tags),
        # Media RSS files join after the declared enclosures, which alone make the key above.
        enclosures=(
            _enclosures(entry.enclosures + entry.media_enclosures, feed_url)
            if entry.media_enclosures
            else enclosures
        ),
        content_hash=content_hash,
        date_source=date_source,
        legacy_key=legacy_key,
        image=_image(entry.image, feed_url),
    )


def normalize_feed(
    feed: ParsedFeed,
    *,
    feed_url: str,
    source_language: str | None,
    now: datetime,
) -> list[NormalizedEntry]:
    """Every entry of ``feed`` normalized, in feed order.

    Entries with neither guid nor link that still share a key (the same text on the same
    date, or undated) are distinct entries at distinct positions: counted from the feed's
    end, the oldest keeps the plain key and the nth repeat above it gets ``~n``. Counting from
    the end keeps keys stable when a feed prepends new items, so a re-poll finds the same
    entries; when old items drop off the end, a repeat takes the plain key and is taken for
    the entry already stored (an update, never a duplicate).

    When entries still share an identity key (feeds with duplicate guids or links exist) the
    first one wins. Entries with nothing to identify or show (no guid, no link, no text, no
    enclosure) are dropped: they would all collapse onto one empty hash anyway.
    """
    seen: set[str] = set()
    result: list[NormalizedEntry] = []
    for entry in numbered_entries(
        feed, feed_url=feed_url, source_language=source_language, now=now
    ):
        if entry.identity_key in seen or _is_empty(entry):
            continue
        seen.add(entry.identity_key)
        result.append(entry)
    return result


def numbered_entries(
    feed: ParsedFeed,
    *,
    feed_url: str,
    source_language: str | None,
    now: datetime,
) -> list[NormalizedEntry]:
    """Every entry of ``feed`` normalized, repeats numbered, none dropped (for audits)."""
    normalized = [
        normalize_entry(
            entry, feed=feed, feed_url=feed_url, source_language=source_language, now=now
        )
        for entry in feed.entries
    ]
    repeats: dict[str, int] = {}
    for index in range(len(normalized) - 1, -1, -1):
        entry = normalized[index]
        if not entry.identity_key.startswith(HASH_PREFIX) or _is_empty(entry):
            continue
        count = repeats.get(entry.identity_key, 0)
        repeats[entry.identity_key] = count + 1
        if count:
            normalized[index] = replace(entry, identity_key=f"{entry.identity_key}~{count}")
    return normalized


def _is_empty(entry: NormalizedEntry) -> bool:
    return not (entry.guid or entry.url or entry.text or entry.enclosures)


def _identity(
    raw_guid: str | None,
    link: str | None,
    url: str | None,
    enclosures: tuple[Enclosure, ...],
    content_hash: str,
    feed_date: datetime | None,
) -> tuple[str | None, str, str | None]:
    """(guid, identity key, the key earlier versions gave when it differs).

    Without a guid, what tells one feed's items apart goes into the key: the link's fragment
    (one-page blogs and comment feeds give every post ``page#post``), the first enclosure
    (podcasts whose episodes all link to the home page), and, with no link at all, the date
    the feed gave (a changelog repeating an item's text on a later date). ``url`` itself keeps
    dropping the fragment: it is the cross-feed signal, where ``#xtor=RSS-…``-style fragments
    and ``#comments`` would keep the same article apart.
    """
    guid = raw_guid.strip() if raw_guid else ""
    if guid:
        if len(guid) > MAX_GUID_CHARS:
            # Keep the stored guid bounded but the key exact: hash the whole thing.
            digest = hashlib.sha256(guid.encode("utf-8", "surrogatepass")).hexdigest()
            return guid[:MAX_GUID_CHARS], f"guid:sha256-{digest}", None
        return guid, f"guid:{guid}", None
    enclosure = f" enc:{enclosures[0].url}" if enclosures else ""
    if url:
        legacy = f"url:{url}"
        key = f"{legacy}{_fragment(link)}{enclosure}"
    else:
        legacy = f"{HASH_PREFIX}{content_hash}"
        stamp = f"@{feed_date.isoformat()}" if feed_date else ""
        key = f"{legacy}{enclosure}{stamp}"
    return None, key, legacy if key != legacy else None


def _fragment(link: str | None) -> str:
    """``#fragment`` of ``link`` in canonical escapes; "" for none or a ``#!`` route (which
    ``canonical_url`` keeps already)."""
    if not link or "#" not in link:
        return ""
    fragment = link.split("#", 1)[1]
    if not fragment or fragment.startswith("!"):
        return ""
    return "#" + _normalize_escapes(_URL_JUNK.sub("", fragment).strip(), _QUERY_SAFE)


def resolve_link(link: str, base: str) -> tuple[str, str] | None:
    """``link``, stripped, resolved against ``base`` (when there is one) with its lower-case
    scheme; None when it is not a URL that can be split."""
    link = link.strip()
    try:
        if base:
            # urljoin raises on a base it cannot split, even for an absolute link.
            urlsplit(base)
        plain = _PLAIN_HTTP_URL.fullmatch(link)
        if plain is not None and link.isascii():
            # What urljoin returns for it whatever the base (the same link, split and put
            # back together unchanged), without splitting it twice.
            return link, plain.group(1)
        resolved = urljoin(base, link) if base else link
        return resolved, urlsplit(resolved).scheme.lower()
    except ValueError:
        return None


def _absolute_http(link: str | None, base: str) -> str | None:
    if not link or not link.strip():
        return None
    found = resolve_link(link, base)
    return found[0] if found is not None and found[1] in DEFAULT_PORTS else None


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC: that is what every stage is promised.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _plausible(moment: datetime | None, now: datetime) -> datetime | None:
    if moment is None:
        return None
    moment = _as_utc(moment)
    if moment < EARLIEST_PLAUSIBLE_DATE or moment > now + MAX_FUTURE_SKEW:
        return None
    return moment


def _dates(
    published: datetime | None, updated: datetime | None, now: datetime
) -> tuple[datetime, datetime, bool]:
    """(published, updated, whether the feed gave a usable date)."""
    good_published = _plausible(published, now)
    good_updated = _plausible(updated, now)
    first = good_published or good_updated or now
    last = good_updated or first
    return first, max(first, last), (good_published or good_updated) is not None


def _merge_texts(summary: str, content: str) -> str:
    """Summary and content as one text, without repeating a summary that opens the content."""
    if not summary or not content:
        return summary or content
    flat_summary = _collapse(summary)
    short_summary = _TRAILING_ELLIPSIS.sub("", flat_summary)
    flat_content = _collapse(content)
    if flat_content.startswith(short_summary):
        return content
    if flat_summary.startswith(flat_content):
        return summary
    return f"{summary}\n{content}"


def _derive_title(text: str) -> str:
    """A title from the start of the text: its first line, cut at a word near 80 chars."""
    first_line = text.split("\n", 1)[0].strip()
    if len(first_line) <= DERIVED_TITLE_CHARS:
        return first_line
    cut = first_line[:DERIVED_TITLE_CHARS]
    space = cut.rfind(" ")
    if space > DERIVED_TITLE_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + ELLIPSIS


def _content_hash(text: str) -> str:
    """Hash of the text as a reader sees it: Unicode-normalized, case-folded, spaces collapsed,
    so the same story with different markup or line breaks hashes the same."""
    # ASCII is its own NFKC form.
    canonical = _collapse(
        (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[
        :CONTENT_HASH_CHARS
    ]


def _first_language(*candidates: str | None) -> str | None:
    for candidate in candidates:
        normalized = normalize_language(candidate)
        if normalized:
            return normalized
    return None


def _tags(raw_tags: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for raw in raw_tags:
        tag = _truncate(plain_title(raw, False), MAX_TAG_CHARS)
        if tag and tag.casefold() not in seen:
            seen[tag.casefold()] = tag
            if len(seen) >= MAX_TAGS:
                break
    return tuple(seen.values())


def _enclosures(raw: tuple[Enclosure, ...], base: str) -> tuple[Enclosure, ...]:
    found: list[Enclosure] = []
    seen: set[str] = set()
    for enclosure in raw:
        href = _absolute_http(enclosure.url, base)
        if href and href not in seen and len(href) <= MAX_URL_CHARS:
            seen.add(href)
            found.append(Enclosure(url=href, type=enclosure.type, length=enclosure.length))
            if len(found) >= MAX_ENCLOSURES:
                break
    return tuple(found)


def _image(raw: MediaImage | None, base: str) -> MediaImage | None:
    if raw is None:
        return None
    href = _absolute_http(raw.url, base)
    if not href or len(href) > MAX_URL_CHARS:
        return None
    return MediaImage(url=href, width=raw.width, height=raw.height)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS
