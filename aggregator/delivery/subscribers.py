"""Webhook subscribers as editors write them: ``webhooks.toml`` in the config folder, or one
added through the API and admin pages. Owns their validation (id, URL under the same address
rules as API-added sources, secret or the environment variable holding it, filters) with
errors naming the file, the subscriber and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator.catalog import LANG_RE, SLUG_RE, url_problem
from aggregator.errors import ConfigError
from aggregator.safety.netguard import forbidden_reason
from aggregator.types import EventKind, Subscriber

WEBHOOKS_FILE = "webhooks.toml"
KEYS = frozenset({"id", "url", "secret", "secret_env", "categories", "languages", "events"})
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# A secret shorter than this is guessable; 16 characters of a random token are 96 bits.
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 512
MAX_FILTER_VALUES = 100


@dataclass(frozen=True)
class Problem:
    """What is wrong with one subscriber field, for ``ConfigError`` or ``EditRefused``."""

    key: str
    message: str


def check_subscriber(
    data: Mapping[str, Any],
    *,
    categories: Iterable[str] | None,
    allow_private: bool,
    environ: Mapping[str, str] | None = None,
    origin: str = "api",
) -> Subscriber | Problem:
    """A valid ``Subscriber`` from ``data``, or the first problem found. ``categories`` are
    the configured category ids (None: not checked)."""
    unknown = sorted(set(data) - KEYS)
    if unknown:
        return Problem(unknown[0], f"unknown key (expected one of {', '.join(sorted(KEYS))})")
    ident = data.get("id")
    if not isinstance(ident, str) or not SLUG_RE.match(ident):
        return Problem("id", "must be a slug: lowercase letters, digits and '-', at most 64")
    url = data.get("url")
    if not isinstance(url, str):
        return Problem("url", "missing; the address events are POSTed to")
    reason = url_problem(url) or _address_problem(url, allow_private)
    if reason is not None:
        return Problem("url", reason)
    secret, secret_env = data.get("secret"), data.get("secret_env")
    if (secret is None) == (secret_env is None):
        return Problem("secret", "give exactly one of secret and secret_env")
    if secret_env is not None:
        if not isinstance(secret_env, str) or not ENV_NAME_RE.match(secret_env):
            return Problem("secret_env", "must be an environment variable name")
        value = (os.environ if environ is None else environ).get(secret_env)
        if value is None:
            return Problem("secret_env", f"environment variable {secret_env} is not set")
        secret_problem = _secret_problem(value)
        if secret_problem:
            return Problem("secret_env", f"{secret_env}: {secret_problem}")
    else:
        secret_problem = _secret_problem(secret) if isinstance(secret, str) else "must be a string"
        if secret_problem:
            return Problem("secret", secret_problem)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("categories", "languages", "events"):
        values = data.get(key, [])
        if (
            not isinstance(values, list)
            or len(values) > MAX_FILTER_VALUES
            or not all(isinstance(v, str) for v in values)
        ):
            return Problem(key, f"must be a list of at most {MAX_FILTER_VALUES} strings")
        lists[key] = tuple(dict.fromkeys(values))
    known = set(categories) if categories is not None else None
    for value in lists["categories"]:
        if known is not None and value not in known:
            return Problem("categories", f"unknown category {value!r}")
    for value in lists["languages"]:
        if not LANG_RE.match(value):
            return Problem("languages", f"{value!r} is not a language code like en or pt-BR")
    kinds = {kind.value for kind in EventKind}
    for value in lists["events"]:
        if value not in kinds:
            return Problem("events", f"unknown event {value!r} (one of {', '.join(kinds)})")
    return Subscriber(
        id=ident,
        url=url,
        secret=secret if secret_env is None else None,
        secret_env=secret_env,
        categories=lists["categories"],
        languages=lists["languages"],
        events=lists["events"],
        origin=origin,
    )


def _secret_problem(secret: str) -> str | None:
    if len(secret) < MIN_SECRET_LENGTH:
        return f"a secret needs at least {MIN_SECRET_LENGTH} characters"
    if len(secret) > MAX_SECRET_LENGTH:
        return f"a secret may have at most {MAX_SECRET_LENGTH} characters"
    return None


def _address_problem(url: str, allow_private: bool) -> str | None:
    """An IP literal outside the public internet, refused as for API-added sources; names
    are checked again, after resolution, on every connection (``safety.netguard``)."""
    if allow_private:
        return None
    host = (urlsplit(url).hostname or "").strip("[]")
    if host in ("localhost",) or host.endswith(".localhost"):
        return f"{host} is a loopback name (AGGREGATOR_ALLOW_PRIVATE_ADDRESSES allows it)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = forbidden_reason(address)
    if reason is None:
        return None
    return f"{host} is {reason} (AGGREGATOR_ALLOW_PRIVATE_ADDRESSES allows it)"


def load_subscribers(
    directory: Path,
    *,
    categories: Iterable[str] | None,
    allow_private: bool,
    environ: Mapping[str, str] | None = None,
) -> list[Subscriber]:
    """The subscribers of ``directory/webhooks.toml`` (none when the file is absent); the
    first problem is a ``ConfigError`` naming the file, the subscriber and the key."""
    path = directory / WEBHOOKS_FILE
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except FileNotFoundError:
        return []
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc
    extra = sorted(set(doc) - {"subscriber"})
    if extra:
        raise ConfigError(
            "unknown table; subscribers go in [[subscriber]] tables", file=str(path), key=extra[0]
        )
    tables = doc.get("subscriber", [])
    if not isinstance(tables, list):
        raise ConfigError(
            "must be an array of tables ([[subscriber]])", file=str(path), key="subscriber"
        )
    known = list(categories) if categories is not None else None
    found: list[Subscriber] = []
    for index, table in enumerate(tables):
        item = table.get("id") if isinstance(table.get("id"), str) else f"#{index + 1}"
        result = check_subscriber(
            table, categories=known, allow_private=allow_private, environ=environ, origin="file"
        )
        if isinstance(result, Problem):
            raise ConfigError(result.message, file=str(path), item=item, key=result.key)
        if any(s.id == result.id for s in found):
            raise ConfigError("duplicate id", file=str(path), item=result.id, key="id")
        found.append(result)
    return found


def resolve_secret(subscriber: Subscriber, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret to sign with; None when its environment variable has gone."""
    if subscriber.secret_env:
        return (os.environ if environ is None else environ).get(subscriber.secret_env)
    return subscriber.secret
