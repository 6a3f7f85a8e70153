"""Small feed documents written for tests, and a helper to run the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

CLI_TIMEOUT_SECONDS = 120


def rss(title: str, items: list[dict[str, str]], language: str = "en") -> bytes:
    body = "".join(
        "<item>"
        f"<title>{escape(i['title'])}</title>"
        f"<link>{escape(i['link'])}</link>"
        f'<guid isPermaLink="false">{escape(i["guid"])}</guid>'
        f"<pubDate>{i.get('date', 'Tue, 17 Nov 2026 09:00:00 GMT')}</pubDate>"
        f"<description>{escape(i.get('body', ''))}</description>"
        "</item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://site.example/</link>"
        f"<description>{escape(title)}</description><language>{language}</language>"
        f"{body}</channel></rss>"
    ).encode()


def atom(title: str, items: list[dict[str, str]], language: str = "en") -> bytes:
    body = "".join(
        "<entry>"
        f"<title>{escape(i['title'])}</title>"
        f'<link href="{escape(i["link"])}"/>'
        f"<id>{escape(i['guid'])}</id>"
        f"<updated>{i.get('date', '2026-11-17T09:00:00Z')}</updated>"
        f"<summary>{escape(i.get('body', ''))}</summary>"
        "</entry>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:lang="{language}"><title>{escape(title)}</title><id>urn:x:{escape(title)}</id>'
        f"<updated>2026-11-17T09:00:00Z</updated>{body}</feed>"
    ).encode()


TomlValue = str | int | float | bool | Sequence[str]


def toml_tables(kind: str, *tables: Mapping[str, TomlValue]) -> str:
    """``[[kind]]`` tables (``source`` or ``category``) as an editor writes them in
    sources.toml or categories.toml: one ``key = value`` line a field, a blank line between."""

    def value(v: TomlValue) -> str:
        return json.dumps(
            v if isinstance(v, str | int | float | bool) else list(v), ensure_ascii=False
        )

    return "\n".join(
        f"[[{kind}]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in t.items()) for t in tables
    )


def write_config(directory: Path, sources: str, categories: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sources.toml").write_text(sources, encoding="utf-8")
    (directory / "categories.toml").write_text(categories, encoding="utf-8")
    return directory


def cli_env(**extra: str) -> dict[str, str]:
    # The tests' shared model cache stays (tests/conftest.py): a build costs seconds of CPU.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGGREGATOR_") or k == "AGGREGATOR_MODEL_CACHE"
    }
    env.update(extra)
    return env


def aggregator(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=env or cli_env(),
        cwd=cwd,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"aggregator {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result
