"""Serve benchmark: a category feed from ``aggregator run`` against nginx serving the bytes
``aggregator publish --out`` wrote, measured with wrk in the same run, side by side.

    .venv/bin/python bench/serve_bench.py [--duration 10] [--rounds 3] [--connections 32]

Steps: a fresh SQLite store gets ``--stories`` stories (English with French and German
versions) in one category; ``aggregator publish --out`` writes the static site; ``aggregator
run`` (scheduler and web server in one process, exactly as deployed; clustering "exact" so no
model loads) and nginx (a non-daemon child, generated config, one worker process like the one
Python process, ``open_file_cache`` on) listen on loopback ports. For each round wrk measures,
alternating servers, requests/s for a plain GET (200, identity) and a GET with the document's
own ``If-None-Match`` (304) on ``/feeds/{category}.atom``. The medians go to a markdown table
(with ratios to nginx) on stdout and, with every round's figures and the machine, to
``bench/results/serve-*.json``. ``--profile`` records the aggregator process with py-spy
during one extra 200 run (``.venv-bench/bin/py-spy``) and writes its collapsed stacks there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from aggregator.catalog import load_catalog
from aggregator.store import open_store, upgrade
from aggregator.types import CategoryMatch, FetchResult, NormalizedEntry

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CATEGORY = "world"
FEED_PATH = f"/feeds/{CATEGORY}.atom"
STARTUP_SECONDS = 20
PY_SPY = ROOT / ".venv-bench" / "bin" / "py-spy"
NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {tmp}/client;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        application/atom+xml atom;
        application/rss+xml rss;
        application/feed+json json;
        text/x-opml opml;
        text/html html;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {site};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_site(tmp: Path, stories: int) -> tuple[Path, str]:
    """A store with ``stories`` stories in one category and its config; returns both."""
    config = tmp / "config"
    config.mkdir()
    sources = {"wire": "en", "journal": "fr", "zeitung": "de"}
    (config / "sources.toml").write_text(
        "".join(
            f'[[source]]\nid = "{sid}"\nurl = "http://127.0.0.1:9/{sid}.xml"\n'
            f'categories = ["{CATEGORY}"]\nlanguage = "{lang}"\ninterval = "24h"\n'
            for sid, lang in sources.items()
        ),
        encoding="utf-8",
    )
    (config / "categories.toml").write_text(
        f'[[category]]\nid = "{CATEGORY}"\ntitle = "World news"\n'
        'description = "Stories from everywhere, in every language"\n'
        'languages = ["en", "fr", "de"]\n',
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp / 'store.db'}"
    store = open_store(url)
    upgrade(store.engine)
    catalog = load_catalog(config)
    now = datetime.now(UTC).replace(microsecond=0)
    store.sync_sources(catalog, now)
    text = (
        "A long enough summary of the story, with <b>some</b> markup and a "
        '<a href="https://example.org/">link</a>, as sources send them. '
    ) * 3
    for sid, lang in sources.items():
        entries = []
        for n in range(stories):
            when = now - timedelta(minutes=10 * (stories - n))
            # Every story in English; every second one also in French, every third in German.
            if (lang == "fr" and n % 2) or (lang == "de" and n % 3):
                continue
            entries.append(
                (
                    NormalizedEntry(
                        identity_key=f"guid:{sid}-{n}",
                        guid=f"{sid}-{n}",
                        url=f"https://news.example/{n}",
                        link=f"https://news.example/{n}",
                        title=f"Story {n} ({lang})",
                        summary_html=f"<p>{text}</p>",
                        content_html="",
                        text=text,
                        language=lang,
                        published_at=when,
                        updated_at=when,
                        author=None,
                        tags=(),
                        enclosures=(),
                        content_hash=f"{sid}-{n}",
                    ),
                    [CategoryMatch(CATEGORY, 1.0, "all entries of source")],
                )
            )
        fetched = FetchResult(
            url=f"http://127.0.0.1:9/{sid}.xml",
            status=200,
            content=b"",
            headers={},
            etag=None,
            last_modified=None,
            elapsed=0.0,
        )
        # Next check a day away: the scheduler of ``aggregator run`` stays idle.
        store.save_poll(
            sid,
            fetched,
            body_hash=None,
            feed_title=sid,
            feed_link=None,
            entries=entries,
            next_check_at=now + timedelta(days=1),
            now=now,
        )
    store.close()
    return config, url


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {STARTUP_SECONDS} s")


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.headers["ETag"])


def wrk(
    url: str, duration: int, connections: int, threads: int, headers: dict[str, str]
) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", output)
    p99 = re.search(r"99%\s+(\S+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rate,
        "p50": p50.group(1) if p50 else None,
        "p99": p99.group(1) if p99 else None,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def status_of(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nginx = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    http = "httptools" if _importable("httptools") else "h11"
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nginx": nginx,
        "wrk": wrk_version,
        "uvicorn": f"{uvicorn.__version__} ({http}, {loop})",
    }


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--stories", type=int, default=120)
    parser.add_argument("--nginx-workers", default="1")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install -y {tool})", file=sys.stderr)
            return 2

    children: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as name:
        tmp = Path(name)
        # nginx's workers drop root for an unprivileged user, who must be able to read the site.
        tmp.chmod(0o755)
        try:
            return run(args, tmp, children)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()


def run(args: argparse.Namespace, tmp: Path, children: list[subprocess.Popen[bytes]]) -> int:
    config, database = make_site(tmp, args.stories)
    ours_port, nginx_port = free_port(), free_port()
    base = f"http://127.0.0.1:{ours_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        {
            "AGGREGATOR_PORT": str(ours_port),
            "AGGREGATOR_HOST": "127.0.0.1",
            "AGGREGATOR_BASE_URL": base,
            "AGGREGATOR_CLUSTERING": "exact",
            "AGGREGATOR_LOG_LEVEL": "WARNING",
            "AGGREGATOR_ARCHIVE_DIR": str(tmp / "archives"),
        }
    )
    options = ["--config", str(config), "--database", database]
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "aggregator", "publish", "--out", str(site), *options],
        env=env,
        check=True,
        capture_output=True,
        cwd=tmp,
    )
    log = (tmp / "aggregator.log").open("wb")
    ours = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", *options],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children.append(ours)
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(workers=args.nginx_workers, tmp=tmp, port=nginx_port, site=site),
        encoding="utf-8",
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children.append(nginx)
    urls = {"aggregator": base + FEED_PATH, "nginx": f"http://127.0.0.1:{nginx_port}{FEED_PATH}"}
    try:
        for url, process in ((urls["aggregator"], ours), (urls["nginx"], nginx)):
            wait_for(url, process)
    except RuntimeError:
        for log_file in ("aggregator.log", "nginx-error.log"):
            if (tmp / log_file).exists():
                print((tmp / log_file).read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    bodies = {name: urllib.request.urlopen(url, timeout=10).read() for name, url in urls.items()}
    assert bodies["aggregator"] == bodies["nginx"], "the two servers must send the same bytes"
    etags = {name: etag_of(url) for name, url in urls.items()}
    for name, url in urls.items():
        assert status_of(url, {"If-None-Match": etags[name]}) == 304, name
    # Warm both up (first requests render, open files) before anything is measured.
    for url in urls.values():
        wrk(url, 2, args.connections, args.threads, {})

    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        row: dict[str, Any] = {}
        for case in ("200", "304"):
            for name, url in urls.items():
                headers = {"If-None-Match": etags[name]} if case == "304" else {}
                row[f"{name}/{case}"] = wrk(
                    url, args.duration, args.connections, args.threads, headers
                )
                print(
                    f"round {number + 1} {name} {case}: {row[f'{name}/{case}']['rps']:.0f} req/s",
                    file=sys.stderr,
                    flush=True,
                )
        rounds.append(row)

    profile_file = None
    if args.profile and PY_SPY.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        args.out.mkdir(parents=True, exist_ok=True)
        profile_file = args.out / f"serve-profile-{stamp}.txt"
        spy = subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                "--pid",
                str(ours.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                "--output",
                str(profile_file),
                "--duration",
                str(args.duration),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wrk(urls["aggregator"], args.duration, args.connections, args.threads, {})
        spy.wait(timeout=args.duration + 60)

    summary = {key: statistics.median(r[key]["rps"] for r in rounds) for key in rounds[0]}
    table = render_table(summary, len(bodies["aggregator"]), args)
    print(table)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "when": stamp,
        "machine": machine(),
        "feed": FEED_PATH,
        "feed_bytes": len(bodies["aggregator"]),
        "stories": args.stories,
        "duration_s": args.duration,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "nginx_workers": args.nginx_workers,
        "rounds": rounds,
        "median_rps": summary,
        "ratio_200": summary["aggregator/200"] / summary["nginx/200"],
        "ratio_304": summary["aggregator/304"] / summary["nginx/304"],
        "profile": str(profile_file) if profile_file else None,
        "table": table,
    }
    path = args.out / f"serve-{stamp}.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nresults: {path}")
    return 0


def render_table(summary: dict[str, float], size: int, args: argparse.Namespace) -> str:
    lines = [
        f"GET {FEED_PATH} ({size:,} bytes), wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, median of {args.rounds} alternating rounds",
        "",
        "| request | aggregator run (req/s) | nginx (req/s) | ratio | goal |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for case, goal in (("200", "≥ 0.33"), ("304", "≥ 0.50")):
        ours, theirs = summary[f"aggregator/{case}"], summary[f"nginx/{case}"]
        lines.append(f"| {case} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} | {goal} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
