"""Hostile documents stay harmless: entity expansion, external entities, bombs and huge bodies.

Each attack runs in a child process with an address-space limit and a generous timeout, so a
regression fails the test instead of taking the machine down. The child reports its peak memory
growth (Linux VmHWM, reset just before the attack) and what the parsed entries contain; the
loopback FeedServer in this process records any request an external entity would make.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from aggregator.demo.feedserver import FeedServer, Resource

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Far above the milliseconds a harmless parse or a capped fetch takes, far below a blow-up.
CHILD_TIMEOUT_SECONDS = 60
# The child cannot map more than this, whatever goes wrong.
CHILD_ADDRESS_SPACE_BYTES = 2 * 1024**3
# Peak memory an attack may add (the fetch cap itself is 10 MB; an uncapped read is 100+).
MAX_GROWTH_MB = 40
# No field of a parsed entry should come anywhere near an expanded entity's size.
MAX_FIELD_CHARS = 400_000
FETCH_LIMIT_BYTES = 10 * 1024 * 1024
PASSWD_MARKER = "root:"

CHILD_PRELUDE = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
def reset_peak():
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM), so the peak measured next is
    # the attack's own, not start-up's. Returns the RSS the attack starts from.
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return status_kib("VmRSS")
def peak_kib():
    return status_kib("VmHWM")
"""
PARSE_CHILD = (
    CHILD_PRELUDE
    + """
from aggregator.polling.parse import parse_feed
document = open(sys.argv[1], "rb").read()
parse_feed(b"<rss version='2.0'><channel><title>warm</title></channel></rss>",
           url="http://warm.test/", headers={{}})
before = reset_peak()
started = time.monotonic()
try:
    feed = parse_feed(document, url="http://attack.test/feed", headers={{}})
    fields = [feed.title or ""] + [value or "" for entry in feed.entries
              for value in (entry.title, entry.summary, entry.content, entry.guid)]
    outcome = "parsed"
except Exception as exc:
    fields, outcome = [], type(exc).__name__ + ": " + str(exc)[:200]
print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - started,
                  "growth_mb": (peak_kib() - before) / 1024, "fields": fields}}))
"""
)
FETCH_CHILD = (
    CHILD_PRELUDE
    + """
from aggregator.errors import FetchError
from aggregator.polling.fetch import Fetcher
with Fetcher(user_agent="attack-tests/1.0", max_bytes={max_bytes}, total_timeout=30) as fetcher:
    fetcher.fetch(sys.argv[2])  # warm up: imports, session, connection
    before = reset_peak()
    started = time.monotonic()
    try:
        result = fetcher.fetch(sys.argv[1])
        outcome = "fetched %d bytes" % len(result.content or b"")
    except FetchError as exc:
        outcome = exc.kind
print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - started,
                  "growth_mb": (peak_kib() - before) / 1024}}))
"""
)


def run_child(script: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def parse_in_child(tmp_path: Path, document: bytes) -> dict[str, Any]:
    path = tmp_path / "attack.xml"
    path.write_bytes(document)
    return run_child(PARSE_CHILD.format(limit=CHILD_ADDRESS_SPACE_BYTES), str(path))


def assert_harmless(report: dict[str, Any]) -> None:
    assert report["growth_mb"] < MAX_GROWTH_MB, report["outcome"]
    assert all(len(field) < MAX_FIELD_CHARS for field in report.get("fields", []))
    assert not any(PASSWD_MARKER in field for field in report.get("fields", []))


def rss_with_doctype(doctype: str, text: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>{text}</title>'
        f"<item><title>{text}</title><guid>g1</guid><description>{text}</description>"
        "</item></channel></rss>"
    ).encode()


def billion_laughs() -> bytes:
    declarations = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return rss_with_doctype("<!DOCTYPE rss [\n" + "\n".join(declarations) + "\n]>", "&lol9;")


def test_billion_laughs_is_not_expanded(tmp_path: Path) -> None:
    report = parse_in_child(tmp_path, billion_laughs())
    assert_harmless(report)


def test_quadratic_blowup_on_one_line_is_not_expanded(tmp_path: Path) -> None:
    # Declared on the DOCTYPE's own line, feedparser drops the subset as malformed.
    document = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "'
        + "A" * 10_000
        + '">]>\n<rss version="2.0"><channel><title>t</title><item><title>x</title>'
        "<description>" + "&a;" * 10_000 + "</description></item></channel></rss>"
    )
    assert_harmless(parse_in_child(tmp_path, document.encode()))


def test_quadratic_blowup_is_not_expanded(tmp_path: Path) -> None:
    # 10 kB entity × 10,000 references: 100 MB of text from a 40 kB document.
    document = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "'
        + "A" * 10_000
        + '">\n]>\n<rss version="2.0"><channel><title>t</title><item><title>x</title>'
        "<description>" + "&a;" * 10_000 + "</description></item></channel></rss>"
    )
    assert_harmless(parse_in_child(tmp_path, document.encode()))


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>',
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE rss [\n<!ENTITY xxe PUBLIC "-//x//y" "file:///etc/passwd">\n]>',
    ],
)
def test_external_file_entity_does_not_leak(tmp_path: Path, doctype: str) -> None:
    if not Path("/etc/passwd").is_file() or PASSWD_MARKER not in Path("/etc/passwd").read_text():
        pytest.skip("no /etc/passwd with a root line to leak here")
    report = parse_in_child(tmp_path, rss_with_doctype(doctype, "&xxe;"))
    assert_harmless(report)


def test_external_http_entities_and_dtds_are_not_fetched(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set("/evil", Resource(body=b"SECRET-FROM-THE-NETWORK", content_type="text/plain"))
    feed_server.set(
        "/evil.dtd",
        Resource(body=b'<!ENTITY leak "SECRET-FROM-THE-DTD">', content_type="application/xml-dtd"),
    )
    url = feed_server.url("/evil")
    dtd = feed_server.url("/evil.dtd")
    for doctype, text in [
        (f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{url}">\n]>', "&xxe;"),
        (f'<!DOCTYPE rss [\n<!ENTITY % ext SYSTEM "{dtd}">\n%ext;\n]>', "&leak;"),
        (f'<!DOCTYPE rss SYSTEM "{dtd}">', "&leak;"),
    ]:
        report = parse_in_child(tmp_path, rss_with_doctype(doctype, text))
        assert_harmless(report)
        assert not any("SECRET" in field for field in report["fields"])
    assert feed_server.requests == []


# -- bombs and huge bodies through the fetcher -----------------------------------------------


def fetch_in_child(server: FeedServer, path: str) -> dict[str, Any]:
    server.set("/warm.xml", Resource(body=b"<rss version='2.0'/>"))
    script = FETCH_CHILD.format(limit=CHILD_ADDRESS_SPACE_BYTES, max_bytes=FETCH_LIMIT_BYTES)
    return run_child(script, server.url(path), server.url("/warm.xml"))


def gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


def test_gzip_bomb_is_capped_with_bounded_memory(feed_server: FeedServer) -> None:
    bomb = gzip_of_zeros(256 * 1024 * 1024)
    assert len(bomb) < FETCH_LIMIT_BYTES // 10
    feed_server.set("/bomb.xml", Resource(body=bomb, headers={"Content-Encoding": "gzip"}))
    report = fetch_in_child(feed_server, "/bomb.xml")
    assert report["outcome"] == "too_large"
    assert report["growth_mb"] < MAX_GROWTH_MB


def test_50_mb_body_is_cut_while_streaming_with_bounded_memory(feed_server: FeedServer) -> None:
    feed_server.set("/huge.xml", Resource(body=b"<rss>" + b"x" * (50 * 1024 * 1024), chunked=True))
    report = fetch_in_child(feed_server, "/huge.xml")
    assert report["outcome"] == "too_large"
    assert report["growth_mb"] < MAX_GROWTH_MB
