"""Runtime settings, read once from ``AGGREGATOR_*`` environment variables by an entry point.

Every setting is declared in ``SETTINGS`` with its default and a one-line meaning; that table is
the single source for the environment file example and the docs. Command-line flags such as
``--config`` and ``--database`` override the environment through ``Settings.with_overrides``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator import __version__
from aggregator.errors import ConfigError

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


def _base_url(text: str) -> str:
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return text.rstrip("/")


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("database_url", "AGGREGATOR_DATABASE_URL", DEFAULT_DATABASE_URL,
                "SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://…"),
    SettingSpec("config_dir", "AGGREGATOR_CONFIG", "./config",
                "folder holding sources.toml and categories.toml"),
    SettingSpec("host", "AGGREGATOR_HOST", "127.0.0.1", "address the HTTP server listens on"),
    SettingSpec("port", "AGGREGATOR_PORT", "8080", "port the HTTP server listens on", _port),
    SettingSpec("base_url", "AGGREGATOR_BASE_URL", "",
                "public URL of the service, used in feed links (default http://HOST:PORT)",
                _base_url),
    SettingSpec("tag_authority", "AGGREGATOR_TAG_AUTHORITY", "",
                "domain used in tag: item ids; never change it once published "
                "(default: the host of the base URL)"),
    SettingSpec("user_agent", "AGGREGATOR_USER_AGENT", DEFAULT_USER_AGENT,
                "User-Agent header sent to sources"),
    SettingSpec("fetch_workers", "AGGREGATOR_FETCH_WORKERS", "8",
                "concurrent fetches per process", _positive_int),
    SettingSpec("parse_processes", "AGGREGATOR_PARSE_PROCESSES", "0",
                "worker processes that parse fetched feeds (0: parse in the polling process)",
                _non_negative_int),
    SettingSpec("host_concurrency", "AGGREGATOR_HOST_CONCURRENCY", "2",
                "most requests in flight to one host at a time", _positive_int),
    SettingSpec("host_delay", "AGGREGATOR_HOST_DELAY", "0.25",
                "least seconds between the starts of two requests to one host",
                _non_negative_float),
    SettingSpec("allow_private_addresses", "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "false",
                "let sources added through the API or admin pages point at loopback, private "
                "or link-local addresses", _flag),
    SettingSpec("connect_timeout", "AGGREGATOR_CONNECT_TIMEOUT", "10",
                "seconds to wait for a source's TCP/TLS connection", _positive_float),
    SettingSpec("read_timeout", "AGGREGATOR_READ_TIMEOUT", "30",
                "seconds to wait between bytes from a source", _positive_float),
    SettingSpec("fetch_deadline", "AGGREGATOR_FETCH_DEADLINE", "60",
                "total seconds one fetch may take, however the server drips", _positive_float),
    SettingSpec("max_feed_bytes", "AGGREGATOR_MAX_FEED_BYTES", "10485760",
                "largest feed body accepted, in bytes", _positive_int),
    SettingSpec("tick_seconds", "AGGREGATOR_TICK_SECONDS", "60",
                "how often the scheduler looks for due sources", _positive_int),
    SettingSpec("feed_size", "AGGREGATOR_FEED_SIZE", "50",
                "number of stories in each output feed", _positive_int),
    SettingSpec("log_level", "AGGREGATOR_LOG_LEVEL", "INFO",
                "DEBUG, INFO, WARNING or ERROR", _log_level),
)


@dataclass(frozen=True)
class Settings:
    database_url: str
    config_dir: Path
    host: str
    port: int
    base_url: str
    tag_authority: str
    user_agent: str
    fetch_workers: int
    parse_processes: int
    host_concurrency: int
    host_delay: float
    allow_private_addresses: bool
    connect_timeout: float
    read_timeout: float
    fetch_deadline: float
    max_feed_bytes: int
    tick_seconds: int
    feed_size: int
    log_level: str

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
                raise ConfigError(f"{spec.env}={raw!r}: {exc}", key=spec.env) from exc
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


def tag_authority_for(base_url: str) -> str:
    """A tag: URI needs a DNS name; an IP address or a bare host becomes ``localhost``."""
    host = urlsplit(base_url).hostname or "localhost"
    if host.replace(".", "").isdigit() or ":" in host:
        return "localhost"
    return host
